package e2e

import (
	"context"
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/kubeplay/kubeplay/events"
	"github.com/kubeplay/kubeplay/runner"
	"github.com/kubeplay/kubeplay/test/harness"
	"github.com/kubeplay/kubeplay/test/lab"
)

// installDocker puts Docker Engine and cri-dockerd on a lab node the way
// their packages do: units and binaries (the lab's runtime stand-in), and
// daemon.json.
const installDocker = `set -e
ln -sf /usr/local/bin/labnode /usr/local/bin/dockerd
ln -sf /usr/local/bin/labnode /usr/local/bin/cri-dockerd
printf '[Unit]\nDescription=Docker (kubeplay lab stand-in)\n[Service]\nExecStart=/usr/local/bin/dockerd\nRestart=always\n[Install]\nWantedBy=multi-user.target\n' > /lib/systemd/system/docker.service
printf '[Unit]\nDescription=cri-dockerd (kubeplay lab stand-in)\n[Service]\nExecStart=/usr/local/bin/cri-dockerd\nRestart=always\n[Install]\nWantedBy=multi-user.target\n' > /lib/systemd/system/cri-docker.service
mkdir -p /etc/docker
`

// TestBundledContainerRuntimeMigrate moves w2 from containerd to Docker
// Engine through cri-dockerd, and back:
//   - Docker on another cgroup driver than the kubelet is refused before
//     w2 is drained;
//   - to cri-dockerd: the Node reports docker://, the kubelet's endpoint and
//     the cri-socket annotation name cri-dockerd's socket, containerd is
//     stopped and disabled, and w2 is schedulable again; a second run
//     changes nothing;
//   - back to containerd, without a containerd config: the default one is
//     written and set to the kubelet's cgroup driver (the default, cgroupfs,
//     would not match systemd and the lab's kubelet would not start), and
//     the Node reports containerd:// again.
func TestBundledContainerRuntimeMigrate(t *testing.T) {
	l := lab.Start(t)
	ctx := context.Background()
	k := kube(t, l)
	run := func(to string) result {
		return runPlaybook(t, l, bundled(t, "container-runtime-migrate"), func(o *runner.Options) {
			apiClients(t, l)(o)
			o.Params = map[string]any{"to": to, "group": "w2"}
		})
	}
	node := func() (runtime, annotation string) {
		n, err := k.CoreV1().Nodes().Get(ctx, "w2", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if n.Spec.Unschedulable {
			t.Fatal("w2 must be schedulable again")
		}
		return n.Status.NodeInfo.ContainerRuntimeVersion, n.Annotations["kubeadm.alpha.kubernetes.io/cri-socket"]
	}
	const flags = "/var/lib/kubelet/kubeadm-flags.env"
	savedInstance := nodeFile(t, l, "w2", "/var/lib/kubelet/instance-config.yaml")
	savedToml := nodeFile(t, l, "w2", "/etc/containerd/config.toml")
	mustExec(t, l, "w2", installDocker)
	t.Cleanup(func() {
		if rt, _ := node(); !strings.HasPrefix(rt, "containerd://") {
			run("containerd")
		}
		l.Exec(ctx, "w2", `systemctl disable --now cri-docker docker; rm -rf /lib/systemd/system/docker.service /lib/systemd/system/cri-docker.service /usr/local/bin/dockerd /usr/local/bin/cri-dockerd /etc/docker
rm -f /etc/containerd/config.toml.kubeplay-* `+flags+`.kubeplay-* /var/lib/kubelet/config.yaml.kubeplay-* /var/lib/kubelet/instance-config.yaml.kubeplay-*`)
	})

	// Docker on cgroupfs, the kubelet on systemd
	mustExec(t, l, "w2", `echo '{}' > /etc/docker/daemon.json`)
	r := run("cri-dockerd")
	if r.err == nil || !strings.Contains(r.err.Error(), "cgroup driver") {
		t.Fatalf("Docker on another cgroup driver must be refused: %v", r.err)
	}
	if o := harness.Outcomes(r.rec)["drain@w2"]; o != "" {
		t.Fatalf("w2 must not be drained for a refused run: %s", o)
	}

	mustExec(t, l, "w2", `echo '{"exec-opts": ["native.cgroupdriver=systemd"]}' > /etc/docker/daemon.json`)
	if r = run("cri-dockerd"); r.err != nil {
		t.Fatal(r.err)
	}
	if o := harness.Outcomes(r.rec)["drain@w2"]; o != events.Changed {
		t.Fatalf("w2 must have been drained: %s", o)
	}
	if rt, ann := node(); !strings.HasPrefix(rt, "docker://") || ann != "unix:///var/run/cri-dockerd.sock" {
		t.Fatalf("w2 reports runtime %q, cri-socket %q", rt, ann)
	}
	for _, f := range []string{"/var/lib/kubelet/config.yaml", "/var/lib/kubelet/instance-config.yaml"} {
		if got := nodeFile(t, l, "w2", f); !strings.Contains(got, "containerRuntimeEndpoint: unix:///var/run/cri-dockerd.sock") {
			t.Fatalf("%s must name cri-dockerd's socket:\n%s", f, got)
		}
	}
	if got := mustExec(t, l, "w2", "systemctl is-active containerd docker cri-docker | tr '\\n' ' '; systemctl is-enabled containerd || true"); got != "inactive active active disabled" {
		t.Fatalf("services: %q", got)
	}
	if r = run("cri-dockerd"); r.err != nil || r.recap.Totals().Changed != 0 {
		t.Fatalf("a second run must change nothing: %v, %d changed", r.err, r.recap.Totals().Changed)
	}

	// back, without a containerd config
	mustExec(t, l, "w2", "rm -f /etc/containerd/config.toml")
	if r = run("containerd"); r.err != nil {
		t.Fatal(r.err)
	}
	if rt, ann := node(); !strings.HasPrefix(rt, "containerd://") || ann != "unix:///run/containerd/containerd.sock" {
		t.Fatalf("w2 reports runtime %q, cri-socket %q", rt, ann)
	}
	if toml := nodeFile(t, l, "w2", "/etc/containerd/config.toml"); !strings.Contains(toml, "SystemdCgroup = true") || !strings.Contains(toml, `sandbox_image`) {
		t.Fatalf("containerd's config must be the default, on systemd:\n%s", toml)
	}
	if got := mustExec(t, l, "w2", "systemctl is-active containerd docker cri-docker | tr '\\n' ' '"); got != "active inactive inactive" {
		t.Fatalf("services: %q", got)
	}
	if r = run("containerd"); r.err != nil || r.recap.Totals().Changed != 0 {
		t.Fatalf("a second run must change nothing: %v, %d changed", r.err, r.recap.Totals().Changed)
	}
	mustExec(t, l, "w2", "cat > /etc/containerd/config.toml <<'EOF'\n"+savedToml+"\nEOF")
	if got := nodeFile(t, l, "w2", "/var/lib/kubelet/instance-config.yaml"); !strings.Contains(got, "unix:///run/containerd/containerd.sock") {
		t.Fatalf("instance-config.yaml after the way back (was %s): %s", savedInstance, got)
	}
}
