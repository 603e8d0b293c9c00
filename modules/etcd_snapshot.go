package modules

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/kubeplay/kubeplay/etcdsnap"
	"github.com/kubeplay/kubeplay/secret"
)

// EtcdSnapshot saves a verified etcd snapshot onto the runner machine.
type EtcdSnapshot struct{}

// EtcdSnapshotParams are etcd-snapshot's parameters.
type EtcdSnapshotParams struct {
	EtcdClientParams `yaml:",inline"`
	Dir              string `yaml:"dir" runner:"path" doc:"directory on the runner machine for the snapshot (created 0700; ~ is the runner's home)"`
	Prefix           string `yaml:"prefix" default:"etcd-snapshot" doc:"file name prefix; files are PREFIX-RUNID-HOST-TIME.db"`
	Keep             int    `yaml:"keep" doc:"after saving, keep only the newest N snapshots with this prefix in dir (0 keeps all)"`
	// EncryptionKey seals the snapshot at rest.
	EncryptionKey secret.String `yaml:"encryption_key" doc:"a passphrase (secret): the verified snapshot is encrypted with age (scrypt) into NAME.db.age and the plaintext removed; etcd-restore and etcd-member-replace take the same key"`
}

var prefixRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]*$`)

// Validate checks the parameters.
func (p *EtcdSnapshotParams) Validate() error {
	if p.Dir == "" {
		return errors.New("dir is required")
	}
	if !prefixRE.MatchString(p.Prefix) {
		return fmt.Errorf("prefix %q: letters, digits, '.', '_' and '-' only", p.Prefix)
	}
	if p.Keep < 0 {
		return errors.New("keep must be 0 or more")
	}
	return p.EtcdClientParams.validate()
}

func (EtcdSnapshot) Name() string { return "etcd-snapshot" }
func (EtcdSnapshot) Doc() string {
	return "Stream an etcd snapshot through the host (a control-plane node) into dir on the runner machine, atomically, and verify it as etcdutl snapshot status does (etcd's appended sha256, bbolt consistency, hash, revision, key count). Writes a .json sidecar with the status and a .sha256 file (sha256sum -c format), and keeps the newest keep snapshots. Register exposes path, sha256, revision, keys, hash and size."
}
func (EtcdSnapshot) NewParams() Params { return &EtcdSnapshotParams{} }

func (p *EtcdSnapshotParams) dir() (string, error) { return runnerPath(p.Dir) }

// connect resolves the directory and opens the client.
func (p *EtcdSnapshotParams) connect(ctx context.Context, t *Target) (string, *clientv3.Client, error) {
	dir, err := p.dir()
	if err != nil {
		return "", nil, err
	}
	cli, err := p.open(ctx, t)
	if err != nil {
		return "", nil, fmt.Errorf("etcd snapshot: %w", err)
	}
	return dir, cli, nil
}

// Check proves etcd is reachable and names the file it would write.
func (EtcdSnapshot) Check(ctx context.Context, t *Target, p Params) (Result, error) {
	dir, cli, err := p.(*EtcdSnapshotParams).connect(ctx, t)
	if err != nil {
		return Result{}, err
	}
	defer cli.Close()
	ep := cli.Endpoints()[0]
	st, err := cli.Status(ctx, ep)
	if err != nil {
		return Result{}, fmt.Errorf("etcd snapshot: status of %s: %w", ep, err)
	}
	return Result{Changed: true, Msg: fmt.Sprintf("would save a snapshot of about %d bytes into %s", st.DbSize, dir)}, nil
}

// Run saves and verifies the snapshot.
func (EtcdSnapshot) Run(ctx context.Context, t *Target, p Params) (Result, error) {
	sp := p.(*EtcdSnapshotParams)
	dir, cli, err := sp.connect(ctx, t)
	if err != nil {
		return Result{}, err
	}
	defer cli.Close()
	name := fmt.Sprintf("%s-%s-%s-%s.db", sp.Prefix, safeName(t.RunID), safeName(t.Host.Name), t.Clock.Now().UTC().Format("20060102T150405.000Z"))
	path := filepath.Join(dir, name)
	st, err := etcdsnap.Save(ctx, cli, path)
	if err != nil {
		return Result{}, fmt.Errorf("etcd snapshot to %s: %w", path, err)
	}
	side, _ := json.MarshalIndent(map[string]any{"status": st, "host": t.Host.Name, "run_id": t.RunID, "taken_at": t.Clock.Now().UTC(),
		"encrypted": sp.EncryptionKey.Reveal() != ""}, "", "  ")
	if err := os.WriteFile(path+".json", side, 0o600); err != nil {
		return Result{}, fmt.Errorf("etcd snapshot sidecar: %w", err)
	}
	stored, sum := path, st.SHA256
	if key := sp.EncryptionKey.Reveal(); key != "" {
		if stored, err = etcdsnap.Seal(path, key); err == nil {
			sum, err = fileSHA256(stored)
		}
		if err != nil {
			return Result{}, fmt.Errorf("etcd snapshot encryption: %w", err)
		}
	}
	// sha256sum -c format, so the file can be checked wherever it is copied
	if err := os.WriteFile(stored+".sha256", []byte(sum+"  "+filepath.Base(stored)+"\n"), 0o600); err != nil {
		return Result{}, fmt.Errorf("etcd snapshot checksum file: %w", err)
	}
	data := asData(st)
	data["path"], data["encrypted"], data["stored_sha256"] = stored, stored != path, sum
	path = stored
	removed, err := etcdsnap.Prune(dir, sp.Prefix+"-", sp.Keep)
	data["removed"] = removed
	if err != nil {
		return Result{Changed: true, Data: data}, fmt.Errorf("etcd snapshot retention in %s: %w", dir, err)
	}
	msg := fmt.Sprintf("saved %s (%d bytes, revision %d, %d keys, hash %d)", path, st.Size, st.Revision, st.Keys, st.Hash)
	if len(removed) > 0 {
		msg += fmt.Sprintf("; removed %d old snapshot(s)", len(removed))
	}
	res := Result{Changed: true, Msg: msg, Data: data}
	if stored == path && sp.EncryptionKey.Reveal() == "" {
		res.Warnings = []string{plaintextSnapshot(path)}
	}
	return res, nil
}

// plaintextSnapshot is the warning of a snapshot kept unencrypted.
func plaintextSnapshot(path string) string {
	return fmt.Sprintf("etcd snapshot %s is plaintext: it holds every Secret of the cluster; keep it where only admins read it, or give encryption_key", path)
}

// safeName keeps a value usable inside a file name.
func safeName(s string) string {
	if s == "" {
		return "none"
	}
	return strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '.' || r == '-' || r == '_' {
			return r
		}
		return '_'
	}, s)
}

// fileSHA256 is the hex sha256 of a file of the runner.
func fileSHA256(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// openSnapshot verifies a snapshot of the runner, decrypting it first into
// dir when it is sealed. It returns the plaintext's path (in dir when it was
// sealed: the caller removes dir) and its status.
func openSnapshot(path string, key secret.String, dir string) (string, etcdsnap.Status, error) {
	p, err := runnerPath(path)
	if err != nil {
		return "", etcdsnap.Status{}, err
	}
	plain, err := etcdsnap.Unseal(p, key.Reveal(), dir)
	if err != nil {
		return "", etcdsnap.Status{}, err
	}
	st, err := etcdsnap.Verify(plain)
	if err != nil {
		return "", st, fmt.Errorf("snapshot %s does not verify: %w", p, err)
	}
	return plain, st, nil
}
