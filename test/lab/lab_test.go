package lab_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os/exec"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/kubeplay/kubeplay/test/lab"
)

func client(t *testing.T, l *lab.Lab) kubernetes.Interface {
	t.Helper()
	c, err := l.Client()
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func poll(t *testing.T, timeout time.Duration, what string, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	last := ""
	for time.Now().Before(deadline) {
		ok, msg := cond()
		if ok {
			return
		}
		last = msg
		time.Sleep(500 * time.Millisecond)
	}
	t.Fatalf("%s: not true after %s: %s", what, timeout, last)
}

func TestNodesReadyAtFirstVersion(t *testing.T) {
	l := lab.Start(t)
	v, err := lab.LoadVersions(l.ScriptsDir())
	if err != nil {
		t.Fatal(err)
	}
	c := client(t, l)
	poll(t, 2*time.Minute, "every lab node Ready", func() (bool, string) {
		nodes, err := c.CoreV1().Nodes().List(context.Background(), metav1.ListOptions{})
		if err != nil {
			return false, err.Error()
		}
		ready := 0
		var state []string
		for _, n := range nodes.Items {
			for _, cond := range n.Status.Conditions {
				if cond.Type == corev1.NodeReady && cond.Status == corev1.ConditionTrue && n.Status.NodeInfo.KubeletVersion == "v"+v.Kube[0] {
					ready++
				}
			}
			state = append(state, n.Name+"="+n.Status.NodeInfo.KubeletVersion)
		}
		return ready == len(l.ClusterNodes()) && len(nodes.Items) == len(l.ClusterNodes()), fmt.Sprint(state)
	})
}

func TestEtcdThreeVotingMembers(t *testing.T) {
	l := lab.Start(t)
	out, err := l.Exec(context.Background(), "cp1", `ETCDCTL_API=3 "$(ls -d "$(cat /etc/kubeplay-lab/cache)"/etcd/v*/etcdctl | head -1)" --endpoints https://127.0.0.1:2379 \
  --cacert /etc/kubernetes/pki/etcd/ca.crt --cert /etc/kubernetes/pki/etcd/healthcheck-client.crt \
  --key /etc/kubernetes/pki/etcd/healthcheck-client.key member list -w json 2>/dev/null | head -c 100000`)
	if err != nil {
		t.Fatal(err)
	}
	var ml struct {
		Members []struct {
			Name      string `json:"name"`
			IsLearner bool   `json:"isLearner"`
		} `json:"members"`
	}
	if err := json.Unmarshal([]byte(firstJSON(out)), &ml); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	voting := 0
	for _, m := range ml.Members {
		if m.Name != "" && !m.IsLearner {
			voting++
		}
	}
	if voting != 3 {
		t.Fatalf("want 3 started voting members: %+v", ml.Members)
	}
}

func firstJSON(s string) string {
	if i := strings.Index(s, "{"); i >= 0 {
		return s[i:]
	}
	return s
}

func TestSSHStrictHostKeys(t *testing.T) {
	l := lab.Start(t)
	seen := map[string]bool{}
	for _, n := range l.ClusterNodes() {
		out, err := exec.Command("ssh", "-i", l.KeyFile(), "-o", "UserKnownHostsFile="+l.KnownHostsFile(),
			"-o", "StrictHostKeyChecking=yes", "-o", "BatchMode=yes", "root@"+n.IP, "hostname").CombinedOutput()
		if err != nil {
			t.Fatalf("%s: %v: %s", n.Name, err, out)
		}
		h := strings.TrimSpace(string(out))
		if h != n.Name || seen[h] {
			t.Fatalf("hostname %q on %s", h, n.Name)
		}
		seen[h] = true
	}
}

func TestPackagesHeldFromLabRepo(t *testing.T) {
	l := lab.Start(t)
	v, _ := lab.LoadVersions(l.ScriptsDir())
	out, err := l.Exec(context.Background(), "cp3", "apt-cache madison kubeadm; echo ---; apt-mark showhold; echo ---; cat /etc/apt/sources.list.d/kubernetes.list")
	if err != nil {
		t.Fatal(err)
	}
	parts := strings.Split(out, "---")
	if !strings.Contains(parts[0], "https://pkgs.k8s.io/core:/stable:/v"+lab.Minor(v.Kube[0])+"/deb") {
		t.Fatalf("madison: %s", parts[0])
	}
	n := 0
	for _, kv := range v.Packaged() {
		if lab.Minor(kv) == lab.Minor(v.Kube[0]) {
			n++
			if !strings.Contains(parts[0], lab.DebVersion(kv)) {
				t.Fatalf("madison does not list %s: %s", kv, parts[0])
			}
		}
	}
	if n < 2 {
		t.Fatalf("the current minor's repository should carry two or more patch versions, has %d", n)
	}
	for _, p := range []string{"kubeadm", "kubelet", "kubectl"} {
		if !strings.Contains(parts[1], p) {
			t.Fatalf("%s not held: %s", p, parts[1])
		}
	}
}

func TestStaticPodManifestControlsComponent(t *testing.T) {
	l := lab.Start(t)
	ctx := context.Background()
	// the node's own scheduler: its port in the node's network namespace
	// (process lists are shared between lab nodes)
	running := func() bool {
		out, _ := l.Exec(ctx, "cp2", "bash -c 'exec 3<>/dev/tcp/127.0.0.1/10259' 2>/dev/null && echo yes || echo no")
		return strings.TrimSpace(out) == "yes"
	}
	poll(t, 30*time.Second, "scheduler running on cp2", func() (bool, string) { return running(), "" })
	if _, err := l.Exec(ctx, "cp2", "mv /etc/kubernetes/manifests/kube-scheduler.yaml /etc/kubernetes/kube-scheduler.yaml.moved"); err != nil {
		t.Fatal(err)
	}
	defer l.Exec(ctx, "cp2", "test -f /etc/kubernetes/kube-scheduler.yaml.moved && mv /etc/kubernetes/kube-scheduler.yaml.moved /etc/kubernetes/manifests/kube-scheduler.yaml")
	poll(t, 30*time.Second, "scheduler stopped", func() (bool, string) { return !running(), "" })
	if _, err := l.Exec(ctx, "cp2", "mv /etc/kubernetes/kube-scheduler.yaml.moved /etc/kubernetes/manifests/kube-scheduler.yaml"); err != nil {
		t.Fatal(err)
	}
	poll(t, 30*time.Second, "scheduler restarted", func() (bool, string) { return running(), "" })
}

func TestStoppingTheKubelet(t *testing.T) {
	l := lab.Start(t)
	ctx := context.Background()
	c := client(t, l)
	ready := func(node string) (bool, string) {
		n, err := c.CoreV1().Nodes().Get(ctx, node, metav1.GetOptions{})
		if err != nil {
			return false, err.Error()
		}
		for _, cond := range n.Status.Conditions {
			if cond.Type == corev1.NodeReady {
				return cond.Status == corev1.ConditionTrue, string(cond.Status)
			}
		}
		return false, "no Ready condition"
	}
	apiserverUp := func() bool {
		out, _ := l.Exec(ctx, "cp3", "bash -c 'exec 3<>/dev/tcp/127.0.0.1/6443' 2>/dev/null && echo yes || echo no")
		return strings.TrimSpace(out) == "yes"
	}
	defer l.Exec(ctx, "cp3", "systemctl start kubelet")
	if out, err := l.Exec(ctx, "cp3", "systemctl stop kubelet; systemctl is-active kubelet || true"); err != nil || strings.TrimSpace(out) != "inactive" {
		t.Fatalf("stop: %q %v", out, err)
	}
	poll(t, 30*time.Second, "cp3's static pods stopped with its kubelet", func() (bool, string) { return !apiserverUp(), "" })
	poll(t, 90*time.Second, "cp3 NotReady", func() (bool, string) { ok, s := ready("cp3"); return !ok, s })
	// the node controller marks the pods of a node NotReady past its
	// grace period Ready=False; the returning kubelet marks them Ready
	podReady := func() (bool, string) {
		ps, err := c.CoreV1().Pods("kube-system").List(ctx, metav1.ListOptions{LabelSelector: "k8s-app=kube-proxy", FieldSelector: "spec.nodeName=cp3"})
		if err != nil || len(ps.Items) != 1 {
			return false, fmt.Sprint("kube-proxy pods on cp3: ", err)
		}
		for _, cond := range ps.Items[0].Status.Conditions {
			if cond.Type == corev1.PodReady {
				return cond.Status == corev1.ConditionTrue, string(cond.Status)
			}
		}
		return false, "no Ready condition"
	}
	poll(t, 60*time.Second, "cp3's kube-proxy pod marked not Ready", func() (bool, string) { ok, s := podReady(); return !ok, s })
	if _, err := l.Exec(ctx, "cp3", "systemctl start kubelet"); err != nil {
		t.Fatal(err)
	}
	poll(t, 60*time.Second, "cp3's kube-proxy pod Ready again", podReady)
	poll(t, 60*time.Second, "cp3's kube-apiserver back", func() (bool, string) { return apiserverUp(), "" })
	poll(t, 60*time.Second, "cp3 Ready again", func() (bool, string) { return ready("cp3") })
}

func TestKubeletRestartKeepsStaticPods(t *testing.T) {
	l := lab.Start(t)
	ctx := context.Background()
	pid := func() string {
		out, _ := l.Exec(ctx, "cp2", "cat /run/lab/pods/kube-apiserver.yaml.json")
		return out
	}
	before := pid()
	if _, err := l.Exec(ctx, "cp2", "systemctl restart kubelet && systemctl is-active kubelet"); err != nil {
		t.Fatal(err)
	}
	// watch through the new kubelet's first syncs: the component stays the same process
	for end := time.Now().Add(5 * time.Second); time.Now().Before(end); time.Sleep(250 * time.Millisecond) {
		if after := pid(); after != before || before == "" {
			t.Fatalf("a kubelet restart must not restart static pods: %s -> %s", before, after)
		}
	}
}
