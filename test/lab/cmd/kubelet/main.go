// Command kubelet is the lab's kubelet stand-in (see package
// test/lab/kubelet). The lab's kubelet .deb packages carry it, built with
// the package's version, as /usr/bin/kubelet.
package main

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/kubeplay/kubeplay/test/lab/kubelet"
)

// version is set at build time: -ldflags "-X main.version=v1.36.3".
var version = "v0.0.0-lab"

func main() {
	if len(os.Args) > 1 && (os.Args[1] == "--version" || os.Args[1] == "version") {
		fmt.Println("Kubernetes " + version)
		return
	}
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "kubelet:", err)
		os.Exit(1)
	}
}

func run() error {
	args := os.Args[1:]
	f := kubelet.ParseFlags(args)
	cfgPath := f.Config
	if cfgPath == "" {
		return fmt.Errorf("--config is required")
	}
	cfg, err := kubelet.LoadConfig(cfgPath)
	if err != nil {
		return err
	}
	// the runtime must answer on its endpoint (flag, else config), as
	// the kubelet validates its CRI connection before anything else
	endpoint := f.RuntimeEndpoint
	if endpoint == "" {
		endpoint = cfg.ContainerRuntimeEndpoint
	}
	if endpoint == "" {
		endpoint = "unix:///run/containerd/containerd.sock"
	}
	runtime, runtimeDriver, err := kubelet.QueryRuntime(endpoint, 3*time.Second)
	if err != nil {
		return fmt.Errorf("validate service connection: validate CRI v1 runtime API for endpoint %q: %w", endpoint, err)
	}
	if err := kubelet.CheckCgroupDriver(cfg, runtimeDriver); err != nil {
		return err
	}
	allocatable, err := kubelet.Allocatable(cfg, kubelet.Capacity())
	if err != nil {
		return fmt.Errorf("failed to initialize the container manager: %w", err)
	}
	if err := kubelet.CheckCPUManager(cfg, kubelet.CPUManagerState); err != nil {
		return fmt.Errorf("failed to initialize the CPU manager: %w", err)
	}
	if err := kubelet.CheckMemoryManager(cfg, kubelet.MemoryManagerState); err != nil {
		return fmt.Errorf("failed to initialize the memory manager: %w", err)
	}
	if err := kubelet.CheckTopologyManager(cfg); err != nil {
		return fmt.Errorf("failed to initialize the topology manager: %w", err)
	}
	name := f.HostnameOverride
	if name == "" {
		h, _ := os.Hostname()
		name = strings.ToLower(h)
	}
	ip := f.NodeIP
	if ip == "" {
		if b, err := os.ReadFile("/etc/kubeplay-lab/node-ip"); err == nil {
			ip = strings.TrimSpace(string(b))
		}
	}
	cache := os.Getenv("KUBEPLAY_LAB_CACHE")
	if cache == "" {
		if b, err := os.ReadFile("/etc/kubeplay-lab/cache"); err == nil {
			cache = strings.TrimSpace(string(b))
		}
	}
	// SIGTERM (systemctl stop) stops the static pods with the kubelet;
	// SIGUSR2 (systemctl restart) leaves them running for the next kubelet
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var leave atomic.Bool
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT, syscall.SIGUSR2)
	go func() {
		if <-sigs == syscall.SIGUSR2 {
			leave.Store(true)
		}
		cancel()
	}()
	pods := &kubelet.StaticPods{Dir: cfg.StaticPodPath, LogDir: "/var/log/lab", StateDir: "/run/lab/pods",
		Resolve: kubelet.CacheResolver(cache), Leave: leave.Load}
	done := make(chan struct{})
	go func() { pods.Run(ctx); close(done) }()

	kubeconfig := f.Kubeconfig
	if kubeconfig == "" {
		kubeconfig = "/etc/kubernetes/kubelet.conf"
	}
	labels := map[string]string{}
	for _, kv := range strings.Split(f.NodeLabels, ",") {
		if k, v, ok := strings.Cut(kv, "="); ok {
			labels[k] = v
		}
	}
	labels["kubeplay.lab/node"] = "true"
	ann := map[string]string{"node.alpha.kubernetes.io/ttl": "0", "volumes.kubernetes.io/controller-managed-attach-detach": "true"}
	if f.RuntimeEndpoint != "" {
		ann["kubeadm.alpha.kubernetes.io/cri-socket"] = f.RuntimeEndpoint
	}
	go serveHealthz(ctx)
	go func() {
		// the API server may be one of our own static pods: wait for it, and
		// for credentials (TLS bootstrap when joining)
		for ctx.Err() == nil {
			err := kubelet.EnsureClientConfig(ctx, kubeconfig, f.BootstrapConfig, name)
			if err != nil {
				fmt.Fprintln(os.Stderr, "kubelet: credentials:", err)
				select {
				case <-ctx.Done():
				case <-time.After(500 * time.Millisecond): // our own API server may be starting
				}
				continue
			}
			rc, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
			if err == nil {
				client, cerr := kubernetes.NewForConfig(rc)
				if cerr == nil {
					if cfg.ServerTLSBootstrap {
						go func() {
							for ctx.Err() == nil {
								err := kubelet.EnsureServingCert(ctx, client, name, ip)
								if err == nil {
									return
								}
								fmt.Fprintln(os.Stderr, "kubelet: serving certificate:", err)
								select {
								case <-ctx.Done():
								case <-time.After(5 * time.Second):
								}
							}
						}()
					}
					n := &kubelet.Node{Client: client, Name: name, IP: ip, KubeletVersion: version, Runtime: runtime,
						Labels: labels, Annotations: ann, Pods: pods, Allocatable: allocatable}
					n.Run(ctx)
					return
				}
			}
			select {
			case <-ctx.Done():
			case <-time.After(2 * time.Second):
			}
		}
	}()
	<-done
	return nil
}

// serveHealthz answers the kubelet health endpoint kubeadm waits for.
func serveHealthz(ctx context.Context) {
	mux := http.NewServeMux()
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("ok")) })
	srv := &http.Server{Addr: "127.0.0.1:10248", Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() { <-ctx.Done(); _ = srv.Close() }()
	if err := srv.ListenAndServe(); err != nil && err != http.ErrServerClosed {
		fmt.Fprintln(os.Stderr, "kubelet: healthz:", err)
	}
}
