package main

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"os/user"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"golang.org/x/term"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/kubeplay/kubeplay/events"
	"github.com/kubeplay/kubeplay/failure"
	"github.com/kubeplay/kubeplay/inventory"
	"github.com/kubeplay/kubeplay/lock"
	"github.com/kubeplay/kubeplay/output"
	"github.com/kubeplay/kubeplay/runner"
	"github.com/kubeplay/kubeplay/secret"
	kubetransport "github.com/kubeplay/kubeplay/transport/kube"
	"github.com/kubeplay/kubeplay/transport/local"
	"github.com/kubeplay/kubeplay/transport/ssh"
)

type runFlags struct {
	sshConfig   string
	askBecome   bool
	becomeFile  string
	inventory   string
	limit       string
	extra       []string
	check       bool
	diff        bool
	forks       int
	tags        []string
	skipTags    []string
	startAt     string
	verbose     bool
	output      string
	yes         bool
	stateDir    string
	rollbackTTL time.Duration
	knownHosts  string
	acceptNew   bool
	useAgent    bool
	kubeconfig  string
	kcFromHost  string
	kubeContext string
	resume      string
	breakLock   bool
	noLock      bool
	lockTTL     time.Duration
}

func newRunCmd() *cobra.Command {
	f := &runFlags{}
	cmd := &cobra.Command{
		Use:   "run PLAYBOOK|BUNDLED_NAME",
		Short: "Run a playbook (or continue a failed one with --resume RUN_ID)",
		Args:  cobra.RangeArgs(0, 1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ref := ""
			if len(args) == 1 {
				ref = args[0]
			} else if f.resume == "" {
				return fmt.Errorf("%w: run needs a playbook (or --resume RUN_ID)", failure.ErrValidation)
			}
			return runPlaybook(cmd.Context(), f, ref, cmd.OutOrStdout())
		},
	}
	fl := cmd.Flags()
	fl.StringVarP(&f.inventory, "inventory", "i", os.Getenv("KUBEPLAY_INVENTORY"), "inventory file (kubeplay YAML, Ansible INI or YAML; default $KUBEPLAY_INVENTORY)")
	fl.StringVarP(&f.limit, "limit", "l", "", "further limit hosts with a pattern")
	fl.StringArrayVarP(&f.extra, "extra", "e", nil, "param or extra var: key=value or @file.yaml (repeatable)")
	fl.BoolVar(&f.check, "check", false, "check mode: predict changes, change nothing")
	fl.BoolVar(&f.diff, "diff", false, "show file and object diffs")
	fl.IntVar(&f.forks, "forks", 5, "hosts worked on at once within a step")
	fl.StringSliceVar(&f.tags, "tags", nil, "only run steps with these tags")
	fl.StringSliceVar(&f.skipTags, "skip-tags", nil, "skip steps with these tags")
	fl.StringVar(&f.startAt, "start-at-step", "", "skip steps before the first step with this name")
	fl.BoolVarP(&f.verbose, "verbose", "v", false, "print every step's message")
	fl.StringVar(&f.output, "output", "text", "output format: text or json")
	fl.BoolVar(&f.yes, "yes", false, "never prompt (pause steps use their declared default, or fail)")
	fl.StringVar(&f.stateDir, "state-dir", defaultStateDir(), "where run directories (events, logs) are kept")
	fl.DurationVar(&f.rollbackTTL, "rollback-timeout", 10*time.Minute, "bound on each host's rollback after a failure or interrupt")
	fl.StringVar(&f.knownHosts, "known-hosts", os.Getenv("KUBEPLAY_KNOWN_HOSTS"), "known_hosts file that host keys are checked against (default $KUBEPLAY_KNOWN_HOSTS, else ~/.ssh/known_hosts)")
	fl.BoolVar(&f.acceptNew, "ssh-accept-new", false, "trust and record the key of a host not yet in known_hosts (a changed key is still refused)")
	fl.StringVar(&f.sshConfig, "ssh-config", "", "ssh_config file whose HostName, User, Port, IdentityFile and ProxyJump apply where the inventory is silent (default ~/.ssh/config; \"none\" for none)")
	fl.BoolVarP(&f.askBecome, "ask-become-pass", "K", false, "ask for the sudo password of hosts with become: true (it reaches sudo through stdin only)")
	fl.StringVar(&f.becomeFile, "become-password-file", "", "read the sudo password of hosts with become: true from this file")
	fl.BoolVar(&f.useAgent, "ssh-agent", true, "also offer keys from ssh-agent (SSH_AUTH_SOCK)")
	fl.StringVar(&f.kubeconfig, "kubeconfig", "", "kubeconfig for cluster steps (default $KUBECONFIG, else ~/.kube/config)")
	fl.StringVar(&f.kubeContext, "context", "", "kubeconfig context")
	fl.StringVar(&f.kcFromHost, "kubeconfig-from-host", "", "read the kubeconfig (/etc/kubernetes/admin.conf) from the first host matching this pattern over SSH, into memory; API connections go through that host when its server address is not reachable from here (also the inventory's kubeconfig: {from_host: ...})")
	fl.StringVar(&f.resume, "resume", "", "continue a failed, interrupted or killed run: steps it finished are not run again (same playbook, inventory and params, or a refusal saying what changed)")
	fl.BoolVar(&f.breakLock, "break-lock", false, "take over the cluster lock of a run whose heartbeat stopped (the takeover is recorded)")
	fl.BoolVar(&f.noLock, "no-lock", false, "do not take the cluster lock (kube-system/kubeplay-lock); for playbooks that never touch the cluster")
	fl.DurationVar(&f.lockTTL, "lock-ttl", 60*time.Second, "how long the cluster lock outlives its last heartbeat")
	return cmd
}

func defaultStateDir() string {
	if d := os.Getenv("XDG_STATE_HOME"); d != "" {
		return filepath.Join(d, "kubeplay")
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return ".kubeplay"
	}
	return filepath.Join(home, ".local", "state", "kubeplay")
}

func newRunID() string {
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	return time.Now().UTC().Format("20060102T150405Z") + "-" + hex.EncodeToString(b)
}

func runPlaybook(ctx context.Context, f *runFlags, ref string, stdout io.Writer) error {
	if f.rollbackTTL <= 0 || f.lockTTL <= 0 {
		return fmt.Errorf("%w: --rollback-timeout and --lock-ttl must be positive, got %s and %s", failure.ErrValidation, f.rollbackTTL, f.lockTTL)
	}
	if f.output != "text" && f.output != "json" {
		return fmt.Errorf("%w: --output must be text or json, got %q", failure.ErrValidation, f.output)
	}
	becomePW, err := becomePassword(f)
	if err != nil {
		return err
	}
	if err := secret.Check(becomePW.Reveal()); err != nil {
		return fmt.Errorf("%w: become password: %w", failure.ErrValidation, err)
	}
	var prev *runRecord
	var resume *runner.Resume
	if f.resume != "" {
		var err error
		if prev, resume, err = earlierRun(f.stateDir, f.resume); err != nil {
			return err
		}
		if ref == "" {
			ref = prev.Playbook
		}
		if f.inventory == "" {
			f.inventory = prev.Inventory
		}
		if f.limit == "" {
			f.limit = prev.Limit
		}
		if f.tags == nil {
			f.tags = prev.Tags
		}
		if f.skipTags == nil {
			f.skipTags = prev.SkipTags
		}
	}
	pb, err := loadPlaybook(ref)
	if err != nil {
		return err
	}
	inv, err := loadInventory(f.inventory)
	if err != nil {
		return err
	}
	extra, err := parseExtra(f.extra)
	if err != nil {
		return err
	}
	params, vars := splitExtra(pb, extra)
	record, err := newRecord(ref, f.inventory, pb, params, vars, f)
	if err != nil {
		return err
	}
	if prev != nil {
		if diffs := reconcile(prev, record, params, vars); len(diffs) > 0 {
			return refuseResume(f.resume, diffs)
		}
		record.ResumedFrom = f.resume
	}
	// refuse bad params before a run (and its directory) exists
	if _, err := pb.ResolveParams(params); err != nil {
		return fmt.Errorf("%w: %w", failure.ErrValidation, err)
	}
	if f.startAt != "" && !runner.HasStep(pb, f.startAt) {
		return fmt.Errorf("%w: --start-at-step: no step is named %q", failure.ErrValidation, f.startAt)
	}

	connector := ssh.NewConnector(ssh.Options{KnownHosts: f.knownHosts, AcceptNew: f.acceptNew, UseAgent: f.useAgent,
		Passphrase: askPassphrase, BecomePassword: becomePW, SSHConfig: f.sshConfig})
	cl, err := clusterClients(ctx, f, inv, connector)
	if err != nil {
		return err
	}
	defer cl.close()
	kube := cl.kube
	runID := newRunID()
	runDir := filepath.Join(f.stateDir, "runs", runID)
	if err := os.MkdirAll(runDir, 0o700); err != nil {
		return fmt.Errorf("create run directory: %w", err)
	}
	if err := writeRecord(runDir, record); err != nil {
		return fmt.Errorf("record the run: %w", err)
	}
	redactor := secret.NewRedactor()
	redactor.Add(becomePW.Reveal())
	logFile, err := os.OpenFile(filepath.Join(runDir, "log.json"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return fmt.Errorf("open log: %w", err)
	}
	defer logFile.Close()
	log := newLogger(logFile, redactor).With(zap.String("run", runID))
	defer func() { _ = log.Sync() }()
	evFile, err := os.OpenFile(filepath.Join(runDir, "events.jsonl"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return fmt.Errorf("open events: %w", err)
	}
	defer evFile.Close()

	tty := term.IsTerminal(int(os.Stdout.Fd()))
	var view events.Sink = output.NewText(stdout, tty, f.verbose)
	if f.output == "json" {
		view = output.NewJSON(stdout)
	}
	sink := events.Multi{view, output.NewJSON(evFile), logSink{log}}

	// one changing run per cluster; dry runs and runs without a cluster
	// take no lock
	if kube != nil && !f.check && !f.noLock {
		lk, err := takeLock(ctx, kube, runID, f, sink)
		if err != nil {
			// nothing ran: leave no run behind for `kubeplay runs` to list
			_ = os.RemoveAll(runDir)
			return err
		}
		var cancel context.CancelFunc
		ctx, cancel = context.WithCancel(ctx)
		defer cancel()
		go func() {
			select {
			case <-lk.Lost():
				log.Error("cluster lock lost: stopping the run", zap.String("lock", lock.Namespace+"/"+lock.Name))
				sink.Emit(events.Event{Type: events.Lock, Run: runID, Time: time.Now(), Msg: "LOCK lost to another run: stopping"})
				cancel()
			case <-ctx.Done():
			}
		}()
		defer func() {
			rctx, rcancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
			defer rcancel()
			if err := lk.Release(rctx); err != nil {
				log.Warn("release cluster lock", zap.Error(err))
			}
		}()
	}

	start := time.Now()
	recap, runErr := runner.Run(ctx, pb, inv, runner.Options{
		RunID: runID, Forks: f.forks, Check: f.check, Diff: f.diff, Limit: f.limit,
		Tags: f.tags, SkipTags: f.skipTags, StartAtStep: f.startAt,
		Params: params, ExtraVars: vars, Sink: sink, Log: log,
		Local: local.Conn{}, Prompt: newPrompter(f.yes), RollbackTimeout: f.rollbackTTL, Redactor: redactor, Kube: kube, Dynamic: cl.dyn, KubeConfig: cl.rest, Resume: resume,
		Connector: connector,
	})
	if recap != nil && f.output == "text" {
		output.WriteRecap(stdout, recapRows(recap), time.Since(start))
		fmt.Fprintf(stdout, "run %s: events and log in %s\n", runID, runDir)
	}
	return runErr
}

// recapRows is a recap as the PLAY RECAP table prints it.
func recapRows(r *runner.Recap) []output.RecapRow {
	var rows []output.RecapRow
	for _, h := range r.Hosts() {
		rows = append(rows, output.RecapRow(h))
	}
	return rows
}

// takeLock takes the cluster lock for a run, recording a takeover.
func takeLock(ctx context.Context, kube kubernetes.Interface, runID string, f *runFlags, sink events.Sink) (*lock.Lock, error) {
	h := lock.Holder{RunID: runID, PID: os.Getpid(), User: "unknown", Host: "unknown"}
	if u, err := user.Current(); err == nil {
		h.User = u.Username
	}
	if n, err := os.Hostname(); err == nil {
		h.Host = n
	}
	lctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	lk, err := lock.Acquire(lctx, kube, h, lock.Options{TTL: f.lockTTL, Break: f.breakLock, Resuming: f.resume, Gone: processGone(h)})
	if err != nil {
		return nil, fmt.Errorf("%w (dry runs with --check take no lock; --no-lock skips it for playbooks that never touch the cluster)", err)
	}
	msg := "LOCK " + lock.Namespace + "/" + lock.Name + " taken"
	switch {
	case lk.Resumed:
		msg += " over from " + lk.TakenFrom + " (the run this one resumes; it is gone)"
	case lk.TakenFrom != "":
		msg += " over from " + lk.TakenFrom + " (its heartbeat had stopped)"
	}
	sink.Emit(events.Event{Type: events.Lock, Run: runID, Time: time.Now(), Msg: msg})
	return lk, nil
}

// processGone tells, for a lock holder on this machine (user@host as
// this run's holder is), whether its process has ended. On another
// machine it cannot tell.
func processGone(self lock.Holder) func(holder string, pid int) bool {
	return func(holder string, pid int) bool {
		if holder != self.User+"@"+self.Host || pid <= 0 {
			return false
		}
		return errors.Is(syscall.Kill(pid, 0), syscall.ESRCH)
	}
}

// logSink writes every event to the zap log with play/step/host fields.
type logSink struct{ log *zap.Logger }

func (l logSink) Emit(e events.Event) {
	fields := []zap.Field{zap.String("type", string(e.Type)), zap.Int64("seq", e.Seq)}
	add := func(k, v string) {
		if v != "" {
			fields = append(fields, zap.String(k, v))
		}
	}
	add("play", e.Play)
	add("step", e.Step)
	add("host", e.Host)
	add("module", e.Module)
	add("outcome", string(e.Outcome))
	add("msg", e.Msg)
	add("error", e.Error)
	if e.Attempt > 0 {
		fields = append(fields, zap.Int("attempt", e.Attempt))
	}
	if e.Duration > 0 {
		fields = append(fields, zap.Duration("duration", e.Duration))
	}
	l.log.Info("event", fields...)
}

// newLogger builds the per-run JSON log; the redacting core masks secret
// values in messages and string fields as defence in depth.
func newLogger(w io.Writer, r *secret.Redactor) *zap.Logger {
	enc := zapcore.NewJSONEncoder(zap.NewProductionEncoderConfig())
	core := zapcore.NewCore(enc, zapcore.AddSync(w), zapcore.DebugLevel)
	return zap.New(&redactCore{Core: core, r: r})
}

type redactCore struct {
	zapcore.Core
	r *secret.Redactor
}

func (c *redactCore) With(fields []zapcore.Field) zapcore.Core {
	return &redactCore{Core: c.Core.With(c.redact(fields)), r: c.r}
}

func (c *redactCore) Check(e zapcore.Entry, ce *zapcore.CheckedEntry) *zapcore.CheckedEntry {
	if c.Enabled(e.Level) {
		return ce.AddCore(e, c)
	}
	return ce
}

func (c *redactCore) Write(e zapcore.Entry, fields []zapcore.Field) error {
	e.Message = c.r.Redact(e.Message)
	return c.Core.Write(e, c.redact(fields))
}

func (c *redactCore) redact(fields []zapcore.Field) []zapcore.Field {
	out := make([]zapcore.Field, len(fields))
	for i, f := range fields {
		switch f.Type {
		case zapcore.StringType:
			f.String = c.r.Redact(f.String)
		case zapcore.ErrorType, zapcore.StringerType:
			// zap.Error and zap.Stringer render their text only when
			// encoded: render it here, redacted
			if f.Interface != nil {
				f = zap.String(f.Key, c.r.Redact(fmt.Sprint(f.Interface)))
			}
		case zapcore.ByteStringType:
			f = zap.String(f.Key, c.r.Redact(string(f.Interface.([]byte))))
		}
		out[i] = f
	}
	return out
}

// prompter asks on the terminal; with --yes or without a TTY it reports
// that nobody can answer.
type prompter struct{ yes bool }

func newPrompter(yes bool) prompter { return prompter{yes: yes} }

func (p prompter) Confirm(ctx context.Context, q string) (bool, bool, error) {
	if p.yes || !term.IsTerminal(int(os.Stdin.Fd())) {
		return false, false, nil
	}
	fmt.Fprintf(os.Stderr, "%s [y/N] ", q)
	ans := make(chan string, 1)
	go func() {
		line, _ := bufio.NewReader(os.Stdin).ReadString('\n')
		ans <- strings.TrimSpace(strings.ToLower(line))
	}()
	select {
	case <-ctx.Done():
		return false, true, ctx.Err()
	case a := <-ans:
		return a == "y" || a == "yes", true, nil
	}
}

// becomePassword reads sudo's password from --become-password-file, or
// asks for it on the terminal with --ask-become-pass.
func becomePassword(f *runFlags) (secret.String, error) {
	switch {
	case f.becomeFile != "" && f.askBecome:
		return secret.String{}, errors.New("give --ask-become-pass or --become-password-file, not both")
	case f.becomeFile != "":
		b, err := os.ReadFile(f.becomeFile)
		if err != nil {
			return secret.String{}, fmt.Errorf("become password: %w", err)
		}
		return secret.New(strings.TrimRight(string(b), "\r\n")), nil
	case f.askBecome:
		fd := int(os.Stdin.Fd())
		if !term.IsTerminal(fd) {
			return secret.String{}, errors.New("--ask-become-pass needs a terminal (use --become-password-file)")
		}
		fmt.Fprint(os.Stderr, "BECOME password: ")
		defer fmt.Fprintln(os.Stderr)
		b, err := term.ReadPassword(fd)
		if err != nil {
			return secret.String{}, err
		}
		return secret.New(string(b)), nil
	}
	return secret.String{}, nil
}

// askPassphrase prompts for an encrypted key's passphrase on the terminal.
func askPassphrase(path string) ([]byte, error) {
	fd := int(os.Stdin.Fd())
	if !term.IsTerminal(fd) {
		return nil, fmt.Errorf("key %s is encrypted and there is no terminal to ask for its passphrase (use ssh-agent)", path)
	}
	fmt.Fprintf(os.Stderr, "passphrase for %s: ", path)
	defer fmt.Fprintln(os.Stderr)
	return term.ReadPassword(fd)
}

// cluster is the API clients of a run, and how they were made.
type cluster struct {
	kube  kubernetes.Interface
	dyn   dynamic.Interface
	rest  *rest.Config
	close func()
}

// clusterClients builds the API clients: from --kubeconfig, else from a
// host's admin.conf (--kubeconfig-from-host, or the inventory's kubeconfig:
// {from_host: ...}), else from $KUBECONFIG or ~/.kube/config. close closes
// the host connection a tunnelled client needs.
func clusterClients(ctx context.Context, f *runFlags, inv *inventory.Inventory, connector *ssh.Connector) (cluster, error) {
	src := inv.Kubeconfig
	if f.kcFromHost != "" {
		src = &inventory.KubeconfigSource{FromHost: f.kcFromHost}
	}
	if f.kubeconfig != "" || src == nil {
		rc, err := kubeClient(f.kubeconfig, f.kubeContext)
		if err != nil || rc == nil {
			return cluster{close: func() {}}, err
		}
		return clientsFor(rc, func() {})
	}
	hosts, err := inv.Match(src.FromHost)
	if err != nil || len(hosts) == 0 {
		return cluster{}, fmt.Errorf("%w: kubeconfig from_host %q matches no host", failure.ErrValidation, src.FromHost)
	}
	h, _ := inv.Host(hosts[0])
	conn, err := connector.Connect(ctx, h)
	if err != nil {
		return cluster{}, fmt.Errorf("kubeconfig from %s: %w", h.Name, err)
	}
	closeConn := func() {
		if c, ok := conn.(interface{ Close() error }); ok {
			_ = c.Close()
		}
	}
	kh, ok := conn.(kubetransport.Host)
	if !ok {
		closeConn()
		return cluster{}, fmt.Errorf("kubeconfig from %s: the connection cannot read files", h.Name)
	}
	rc, _, err := kubetransport.FromHost(ctx, kh, src.Path, src.Tunnel, 3*time.Second)
	if err != nil {
		closeConn()
		return cluster{}, fmt.Errorf("kubeconfig from %s: %w", h.Name, err)
	}
	return clientsFor(rc, closeConn)
}

// clientsFor builds the typed and dynamic clients of one REST config;
// closeFn runs on failure and becomes the cluster's close.
func clientsFor(rc *rest.Config, closeFn func()) (cluster, error) {
	k, err := kubernetes.NewForConfig(rc)
	if err != nil {
		closeFn()
		return cluster{}, err
	}
	d, err := dynamic.NewForConfig(rc)
	if err != nil {
		closeFn()
		return cluster{}, err
	}
	return cluster{kube: k, dyn: d, rest: rc, close: closeFn}, nil
}

// kubeClient loads a kubeconfig. Without one (no flag, no KUBECONFIG, no
// ~/.kube/config) it returns nil: cluster steps fail with ErrNoCluster, and
// node-only playbooks still run.
func kubeClient(path, context string) (*rest.Config, error) {
	rules := clientcmd.NewDefaultClientConfigLoadingRules()
	if path != "" {
		rules.ExplicitPath = path
	}
	cc := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, &clientcmd.ConfigOverrides{CurrentContext: context})
	rc, err := cc.ClientConfig()
	if err != nil {
		if path == "" && clientcmd.IsEmptyConfig(err) {
			return nil, nil
		}
		return nil, fmt.Errorf("%w: kubeconfig: %w", failure.ErrValidation, err)
	}
	return rc, nil
}
