// Command lab drives the kubeplay lab: up, down, env, status, add-node,
// remove-node.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/kubeplay/kubeplay/test/lab"
)

func main() {
	cfg := lab.DefaultConfig()
	flag.IntVar(&cfg.ControlPlane, "control-planes", 3, "control-plane nodes")
	flag.IntVar(&cfg.Workers, "workers", 2, "worker nodes")
	flag.BoolVar(&cfg.NoCluster, "no-cluster", false, "nodes with sshd only: no packages, no control plane")
	flag.Parse()
	ctx := context.Background()
	if err := do(ctx, cfg, flag.Args()); err != nil {
		fmt.Fprintln(os.Stderr, "lab:", err)
		os.Exit(1)
	}
}

func do(ctx context.Context, cfg lab.Config, args []string) error {
	if len(args) == 0 {
		return fmt.Errorf("usage: lab [flags] up|down|env|status|add-node NAME ROLE|remove-node NAME")
	}
	switch args[0] {
	case "up":
		l, err := lab.Up(ctx, cfg)
		if err != nil {
			return err
		}
		fmt.Println("lab is up:")
		for _, n := range l.Nodes {
			fmt.Printf("  %-4s %-13s %s\n", n.Name, n.Role, n.IP)
		}
		fmt.Printf("state dir:   %s\ninventory:   %s\nssh key:     %s\nknown_hosts: %s\nkubeconfig:  %s\n",
			l.StateDir(), l.InventoryFile(), l.KeyFile(), l.KnownHostsFile(), l.KubeconfigFile())
		fmt.Println("point your shell at it with: eval \"$(make -s lab-env)\"")
	case "down":
		return lab.Down(ctx, cfg)
	case "serve-apt":
		sctx, stop := signal.NotifyContext(ctx, syscall.SIGTERM, os.Interrupt)
		defer stop()
		return lab.ServeRepo(sctx, cfg)
	case "env", "status":
		l, err := lab.Open(ctx, cfg)
		if err != nil {
			return err
		}
		if args[0] == "env" {
			fmt.Print(l.Env())
			return nil
		}
		for _, n := range l.Nodes {
			fmt.Printf("%-4s %-13s %-12s sshd pid %d\n", n.Name, n.Role, n.IP, n.PID)
		}
	case "add-node", "remove-node":
		l, err := lab.Open(ctx, cfg)
		if err != nil {
			return err
		}
		if args[0] == "remove-node" && len(args) == 2 {
			return l.RemoveNode(ctx, args[1])
		}
		if len(args) != 3 {
			return fmt.Errorf("usage: add-node NAME control-plane|worker")
		}
		n, err := l.AddNode(ctx, args[1], args[2])
		if err != nil {
			return err
		}
		fmt.Printf("%s %s %s\n", n.Name, n.Role, n.IP)
	default:
		return fmt.Errorf("unknown command %q", args[0])
	}
	return nil
}
