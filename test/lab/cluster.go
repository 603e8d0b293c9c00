package lab

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
)

// Exec runs a shell script inside a node's namespaces (mount, UTS, network)
// as root, the way the lab itself provisions nodes. Tests use SSH instead.
func (l *Lab) Exec(ctx context.Context, node, script string, env ...string) (string, error) {
	n, ok := l.Node(node)
	if !ok {
		return "", fmt.Errorf("no node %s", node)
	}
	cmd := exec.CommandContext(ctx, "nsenter", "-t", fmt.Sprint(n.PID), "-m", "-u", "-n", "--", "/bin/sh", "-c", script)
	cmd.Env = append(nodeEnv(), env...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("node %s: %w\n%s", node, err, tail(string(out), 40))
	}
	return string(out), nil
}

// nodeEnv is the environment the lab runs scripts on a node with: root's,
// not the caller's.
func nodeEnv() []string {
	return []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "HOME=/root", "LANG=C"}
}

func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// imageScript installs what every node of a cluster lab has alike: the
// runtime stand-in, the package repository as the docs configure it, and
// the lab's first Kubernetes version's packages, held. It runs once into
// the node image (see image.go) or, for a scratch node about to become a
// control plane, inside the node.
const imageScript = `set -e
mkdir -p /etc/kubeplay-lab /etc/apt/keyrings /usr/local/share/ca-certificates /var/log/lab
echo "$LAB_CACHE" > /etc/kubeplay-lab/cache
# no systemd on lab nodes: the lab's systemctl manages its units
install -m 0755 "$LAB_BIN/labnode" /usr/local/bin/labnode
for n in systemctl containerd; do ln -sf /usr/local/bin/labnode /usr/local/bin/$n; done
ln -sf /usr/local/bin/labnode /usr/local/sbin/reboot
install -m 0755 "$LAB_BIN/labnode" /usr/bin/systemctl
cat > /lib/systemd/system/containerd.service <<'UNIT'
[Unit]
Description=containerd container runtime (kubeplay lab stand-in)
[Service]
ExecStart=/usr/local/bin/containerd
Restart=always
RestartSec=1
[Install]
WantedBy=multi-user.target
UNIT
# the systemd cgroup driver, as the docs recommend for kubeadm (section 1.2)
mkdir -p /etc/containerd
cat > /etc/containerd/config.toml <<'TOML'
version = 2
[plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
  runtime_type = "io.containerd.runc.v2"
  [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
    SystemdCgroup = true
TOML
systemctl enable containerd
# nodes are disposable: dpkg need not fsync every file it unpacks
echo force-unsafe-io > /etc/dpkg/dpkg.cfg.d/kubeplay-lab-unsafe-io
# the package repository, exactly as the docs configure it
cp "$LAB_CA" /usr/local/share/ca-certificates/kubeplay-lab.crt
update-ca-certificates >/dev/null 2>&1
cp "$LAB_KEYRING" /etc/apt/keyrings/kubernetes-apt-keyring.gpg
grep -q ' pkgs.k8s.io$' /etc/hosts || echo "$BRIDGE_IP pkgs.k8s.io" >> /etc/hosts
echo "deb [signed-by=/etc/apt/keyrings/kubernetes-apt-keyring.gpg] https://pkgs.k8s.io/core:/stable:/v$MINOR/deb/ /" > /etc/apt/sources.list.d/kubernetes.list
# a fresh node has no Kubernetes packages (the runner machine's own, seen
# through the overlay, are not the node's)
for p in kubeadm kubelet kubectl; do
  if dpkg -s "$p" >/dev/null 2>&1; then dpkg --purge --force-depends "$p" >/dev/null; fi
done
apt-get update -qq
# (unsafe-io: a lab node's disk is scratch; skipping fsyncs saves most of the install time)
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends -o DPkg::Options::=--force-unsafe-io \
  kubeadm="$DEB" kubelet="$DEB" kubectl="$DEB" >/dev/null
apt-mark hold kubeadm kubelet kubectl >/dev/null
`

// nodeScript is what makes an installed node this node: its address and
// role for the lab's kubelet, the repository's name (node-init wrote the
// node's own /etc/hosts), and its runtime started.
const nodeScript = `set -e
mkdir -p /etc/kubeplay-lab /run/lab
echo "$NODE_IP" > /etc/kubeplay-lab/node-ip
if [ "$ROLE" = control-plane ]; then touch /etc/kubeplay-lab/control-plane; fi
grep -q ' pkgs.k8s.io$' /etc/hosts || echo "$BRIDGE_IP pkgs.k8s.io" >> /etc/hosts
systemctl start containerd
`

func (l *Lab) imageEnv(kube string) []string {
	return []string{"LAB_CACHE=" + l.cacheDir(), "LAB_BIN=" + l.binDir(),
		"LAB_CA=" + l.CAFile(), "LAB_KEYRING=" + l.KeyringFile(), "BRIDGE_IP=" + BridgeIP,
		"MINOR=" + Minor(kube), "DEB=" + DebVersion(kube)}
}

// provision makes a node a cluster node of the lab's first Kubernetes
// version. A node started on the node image has everything but the
// node's own part; any other gets the image's part installed first.
func (l *Lab) provision(ctx context.Context, n Node, kube string, onImage bool) error {
	script := nodeScript
	if !onImage {
		script = imageScript + nodeScript
	}
	_, err := l.Exec(ctx, n.Name, script, append(l.imageEnv(kube), "NODE_IP="+n.IP, "ROLE="+n.Role)...)
	if err != nil {
		return fmt.Errorf("provision %s: %w", n.Name, err)
	}
	return nil
}

// clusterSecrets are the lab's join credentials (lab-only; kept in the
// state dir so joins work across lab commands).
type clusterSecrets struct {
	Token   string `json:"token"`
	CertKey string `json:"certificate_key"`
}

func (l *Lab) secrets() (clusterSecrets, error) {
	p := filepath.Join(l.cfg.StateDir, "join.env")
	if b, err := os.ReadFile(p); err == nil {
		f := strings.Fields(string(b))
		if len(f) == 2 {
			return clusterSecrets{Token: f[0], CertKey: f[1]}, nil
		}
	}
	rnd := func(n int) string { b := make([]byte, n); _, _ = rand.Read(b); return hex.EncodeToString(b) }
	s := clusterSecrets{Token: rnd(3) + "." + rnd(8), CertKey: rnd(32)}
	return s, os.WriteFile(p, []byte(s.Token+" "+s.CertKey+"\n"), 0o600)
}

func (l *Lab) endpoint() string {
	for _, n := range l.Nodes {
		if n.Role == RoleControlPlane {
			return n.IP + ":6443"
		}
	}
	return ""
}

func (l *Lab) kubeadmConfig(n Node, kube string, s clusterSecrets, join bool) string {
	var sans []string
	for _, x := range l.Nodes {
		if x.Role == RoleControlPlane {
			sans = append(sans, x.IP)
		}
	}
	reg := fmt.Sprintf(`nodeRegistration:
  name: %s
  criSocket: unix:///run/containerd/containerd.sock
  imagePullPolicy: Never
  ignorePreflightErrors: [all]
  kubeletExtraArgs:
    - {name: node-ip, value: %s}
`, n.Name, n.IP)
	if join {
		cp := ""
		if n.Role == RoleControlPlane {
			cp = fmt.Sprintf("controlPlane:\n  localAPIEndpoint: {advertiseAddress: %s, bindPort: 6443}\n  certificateKey: %s\n", n.IP, s.CertKey)
		}
		return fmt.Sprintf(`apiVersion: kubeadm.k8s.io/v1beta4
kind: JoinConfiguration
discovery:
  bootstrapToken:
    apiServerEndpoint: %s
    token: %s
    unsafeSkipCAVerification: true
%s%s`, l.endpoint(), s.Token, cp, reg)
	}
	return fmt.Sprintf(`apiVersion: kubeadm.k8s.io/v1beta4
kind: InitConfiguration
bootstrapTokens:
  - token: %s
    ttl: 24h0m0s
certificateKey: %s
localAPIEndpoint: {advertiseAddress: %s, bindPort: 6443}
%s---
apiVersion: kubeadm.k8s.io/v1beta4
kind: ClusterConfiguration
kubernetesVersion: v%s
clusterName: kubeplay-lab
controlPlaneEndpoint: %s
networking: {podSubnet: 10.244.0.0/16, serviceSubnet: 10.96.0.0/12, dnsDomain: cluster.local}
apiServer:
  certSANs: [%s]
controllerManager:
  extraArgs:
    - {name: node-monitor-grace-period, value: 20s}
---
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
cgroupDriver: systemd
`, s.Token, s.CertKey, n.IP, reg, kube, l.endpoint(), strings.Join(sans, ", "))
}

// bootstrapCluster runs the real kubeadm: init on the first control plane,
// join for the other control planes (one at a time, for etcd) and workers.
func (l *Lab) bootstrapCluster(ctx context.Context, kube string) error {
	s, err := l.secrets()
	if err != nil {
		return err
	}
	var first Node
	var cps, workers []Node
	for _, n := range l.ClusterNodes() {
		switch {
		case n.Role == RoleControlPlane && first.Name == "":
			first = n
		case n.Role == RoleControlPlane:
			cps = append(cps, n)
		default:
			workers = append(workers, n)
		}
	}
	kubeadm := func(n Node, cfg, verb string) error {
		script := `set -e
cat > /etc/kubeplay-lab/kubeadm.yaml <<'CFG'
` + cfg + `CFG
kubeadm ` + verb + ` --config /etc/kubeplay-lab/kubeadm.yaml -v=1 > /var/log/lab/kubeadm-` + strings.Fields(verb)[0] + `.log 2>&1 || { tail -40 /var/log/lab/kubeadm-` + strings.Fields(verb)[0] + `.log; exit 1; }`
		_, err := l.Exec(ctx, n.Name, script)
		return err
	}
	fmt.Fprintf(os.Stderr, "lab: kubeadm init on %s (v%s)\n", first.Name, kube)
	if err := kubeadm(first, l.kubeadmConfig(first, kube, s, false), "init --upload-certs"); err != nil {
		return err
	}
	if err := l.fetchKubeconfig(ctx, first); err != nil {
		return err
	}
	// kubeadm join's discovery retries every 5s until kube-controller-
	// manager's bootstrap signer has signed cluster-info for the token:
	// the first join waits here instead, at a finer grain
	c, err := l.Client()
	if err != nil {
		return err
	}
	tokenID, _, _ := strings.Cut(s.Token, ".")
	if err := waitFor(ctx, time.Minute, "cluster-info signed for the join token", func() (bool, error) {
		cm, err := c.CoreV1().ConfigMaps("kube-public").Get(ctx, "cluster-info", metav1.GetOptions{})
		if err != nil {
			return false, nil // not written yet, or the server still starting
		}
		_, ok := cm.Data["jws-kubeconfig-"+tokenID]
		return ok, nil
	}); err != nil {
		return err
	}
	for _, n := range cps {
		fmt.Fprintf(os.Stderr, "lab: kubeadm join --control-plane on %s\n", n.Name)
		if err := kubeadm(n, l.kubeadmConfig(n, kube, s, true), "join"); err != nil {
			return err
		}
	}
	var wg sync.WaitGroup
	errs := make([]error, len(workers))
	for i, n := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			fmt.Fprintf(os.Stderr, "lab: kubeadm join on %s\n", n.Name)
			errs[i] = kubeadm(n, l.kubeadmConfig(n, kube, s, true), "join")
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

// fetchKubeconfig copies admin.conf from a control plane for the runner.
func (l *Lab) fetchKubeconfig(ctx context.Context, n Node) error {
	out, err := l.Exec(ctx, n.Name, "cat /etc/kubernetes/admin.conf")
	if err != nil {
		return err
	}
	return os.WriteFile(l.KubeconfigFile(), []byte(out), 0o600)
}

// waitFor polls cond until it holds or the timeout passes.
func waitFor(ctx context.Context, timeout time.Duration, what string, cond func() (bool, error)) error {
	deadline := time.Now().Add(timeout)
	var last error
	for time.Now().Before(deadline) {
		ok, err := cond()
		if ok {
			return nil
		}
		last = err
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(250 * time.Millisecond):
		}
	}
	return fmt.Errorf("%s: not done after %s (last error: %v)", what, timeout, last)
}

// kwok's pod stages the lab uses: pods on lab nodes are created, become
// ready, complete and are deleted as a kubelet would do it. Mirror pods of
// static pods are left to the lab's kubelet.
var kwokStages = []string{"pod-create", "pod-ready", "pod-complete", "pod-delete"}

// kwok starts its pod controller for nodes only when a node stage exists;
// the lab's kubelet does the node's own work, so this stage never matches.
const kwokNodeNoop = `apiVersion: kwok.x-k8s.io/v1alpha1
kind: Stage
metadata:
  name: kubeplay-lab-node-noop
spec:
  resourceRef:
    apiGroup: v1
    kind: Node
  selector:
    matchExpressions:
    - key: '.metadata.annotations["kubeplay.lab/kwok-never"]'
      operator: 'Exists'
  next: {}
`

const mirrorExclusion = `    - key: '.metadata.annotations["kubernetes.io/config.mirror"]'
      operator: 'DoesNotExist'
`

func (l *Lab) kwokConfig(version string) (string, error) {
	dir := filepath.Join(l.cacheDir(), "kwok", "v"+version, "stage", "pod", "general")
	var docs []string
	for _, s := range kwokStages {
		b, err := os.ReadFile(filepath.Join(dir, s+".yaml"))
		if err != nil {
			return "", err
		}
		doc := string(b)
		i := strings.Index(doc, "    matchExpressions:\n")
		if i < 0 {
			return "", fmt.Errorf("kwok stage %s: no matchExpressions to extend", s)
		}
		i += len("    matchExpressions:\n")
		docs = append(docs, doc[:i]+mirrorExclusion+doc[i:])
	}
	docs = append(docs, kwokNodeNoop)
	p := filepath.Join(l.cfg.StateDir, "kwok-stages.yaml")
	return p, os.WriteFile(p, []byte(strings.Join(docs, "\n---\n")), 0o600)
}

// startKwok runs kwok on the runner machine for the lab's nodes.
func (l *Lab) startKwok(ctx context.Context, version string) error {
	pidFile := filepath.Join(l.cfg.StateDir, "kwok.pid")
	stopPIDFile(pidFile)
	cfg, err := l.kwokConfig(version)
	if err != nil {
		return err
	}
	logf, err := os.OpenFile(filepath.Join(l.cfg.StateDir, "logs", "kwok.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	defer logf.Close()
	cmd := exec.Command(filepath.Join(l.cacheDir(), "kwok", "v"+version, "kwok"),
		"--kubeconfig="+l.KubeconfigFile(), "--config="+cfg,
		"--manage-nodes-with-label-selector=kubeplay.lab/node=true", "--cidr=10.244.0.0/16")
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = setsid()
	if err := cmd.Start(); err != nil {
		return err
	}
	go func() { _ = cmd.Wait() }()
	return os.WriteFile(pidFile, []byte(fmt.Sprint(cmd.Process.Pid)), 0o600)
}

// Client returns an API client for the lab's cluster (admin credentials).
func (l *Lab) Client() (kubernetes.Interface, error) {
	rc, err := clientcmd.BuildConfigFromFlags("", l.KubeconfigFile())
	if err != nil {
		return nil, err
	}
	return kubernetes.NewForConfig(rc)
}
