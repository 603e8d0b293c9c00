// Package etcdsnap saves etcd snapshots from a live cluster and verifies
// snapshot files the way `etcdutl snapshot status` does: the sha256 etcd
// appends to the stream, bbolt's own consistency check, and the hash,
// revision and key count over every bucket.
package etcdsnap

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	bolt "go.etcd.io/bbolt"
	"go.etcd.io/etcd/etcdutl/v3/snapshot"
	"go.uber.org/zap"
)

// ErrCorrupt marks a snapshot file that fails verification.
var ErrCorrupt = errors.New("etcd snapshot corrupt")

// Status describes a verified snapshot file.
type Status struct {
	Path     string `json:"path"`
	Size     int64  `json:"size"`     // bytes on disk
	Hash     uint32 `json:"hash"`     // crc32 (Castagnoli) over all buckets, as etcdutl prints
	Revision int64  `json:"revision"` // highest main revision in the key bucket
	Keys     int    `json:"keys"`     // total entries over all buckets, as etcdutl counts
	SHA256   string `json:"sha256"`   // of the whole file
	// Integrity is the check of etcd's appended sha256: "ok", or "absent"
	// for a db file copied from a data dir (no appended hash).
	Integrity string `json:"integrity"`
}

// Snapshotter streams a snapshot (clientv3.Maintenance).
type Snapshotter interface {
	Snapshot(ctx context.Context) (io.ReadCloser, error)
}

// Save streams a snapshot into path atomically: a temporary file in the
// same directory, fsynced, renamed, and the directory fsynced. The file is
// verified before it takes the final name.
func Save(ctx context.Context, s Snapshotter, path string) (Status, error) {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return Status{}, err
	}
	rc, err := s.Snapshot(ctx)
	if err != nil {
		return Status{}, fmt.Errorf("start snapshot: %w", err)
	}
	defer rc.Close()
	tmp, err := os.CreateTemp(dir, filepath.Base(path)+".part-*")
	if err != nil {
		return Status{}, err
	}
	defer os.Remove(tmp.Name()) // no-op after the rename
	if _, err := io.Copy(tmp, rc); err != nil {
		tmp.Close()
		return Status{}, fmt.Errorf("receive snapshot: %w", err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return Status{}, err
	}
	if err := tmp.Close(); err != nil {
		return Status{}, err
	}
	st, err := Verify(tmp.Name())
	if err != nil {
		return Status{}, err
	}
	if st.Integrity != "ok" {
		return Status{}, fmt.Errorf("%w: the stream carried no sha256 trailer", ErrCorrupt)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return Status{}, err
	}
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync()
		d.Close()
	}
	st.Path = path
	return st, nil
}

// Verify checks a snapshot file and reports its status.
func Verify(path string) (Status, error) {
	st := Status{Path: path}
	b, err := os.ReadFile(path)
	if err != nil {
		return st, err
	}
	st.Size = int64(len(b))
	sum := sha256.Sum256(b)
	st.SHA256 = hex.EncodeToString(sum[:])
	st.Integrity = "absent"
	// bbolt files are whole pages; etcd appends a 32-byte sha256 of the db
	if len(b) >= sha256.Size && len(b)%512 == sha256.Size {
		body, trailer := b[:len(b)-sha256.Size], b[len(b)-sha256.Size:]
		got := sha256.Sum256(body)
		if !bytes.Equal(got[:], trailer) {
			return st, fmt.Errorf("%w: %s: appended sha256 does not match the content", ErrCorrupt, path)
		}
		st.Integrity = "ok"
	}
	db, err := bolt.Open(path, 0o400, &bolt.Options{ReadOnly: true, Timeout: time.Second})
	if err != nil {
		return st, fmt.Errorf("%w: %s: %v", ErrCorrupt, path, err)
	}
	defer db.Close()
	h := crc32.New(crc32.MakeTable(crc32.Castagnoli))
	err = db.View(func(tx *bolt.Tx) error {
		var problems []string
		for e := range tx.Check() {
			problems = append(problems, e.Error())
		}
		if len(problems) > 0 {
			sort.Strings(problems)
			return fmt.Errorf("%w: %s: %s", ErrCorrupt, path, strings.Join(problems, "; "))
		}
		c := tx.Cursor()
		for name, _ := c.First(); name != nil; name, _ = c.Next() {
			bk := tx.Bucket(name)
			h.Write(name)
			isKey := string(name) == "key"
			if err := bk.ForEach(func(k, v []byte) error {
				h.Write(k)
				h.Write(v)
				if isKey && len(k) >= 8 {
					st.Revision = int64(binary.BigEndian.Uint64(k[:8]))
				}
				st.Keys++
				return nil
			}); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return st, err
	}
	st.Hash = h.Sum32()
	return st, nil
}

// Prune keeps the newest keep files of dir whose names start with prefix
// and end with ".db", removing the others (and their sidecar files). It
// returns the removed paths.
func Prune(dir, prefix string, keep int) ([]string, error) {
	if keep <= 0 {
		return nil, nil
	}
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	type snap struct {
		path string
		mod  time.Time
	}
	var snaps []snap
	for _, e := range ents {
		n := e.Name()
		if e.IsDir() || !strings.HasPrefix(n, prefix) || !strings.HasSuffix(n, ".db") && !strings.HasSuffix(n, ".db"+SealedSuffix) {
			continue
		}
		info, err := e.Info()
		if err != nil {
			continue
		}
		snaps = append(snaps, snap{filepath.Join(dir, n), info.ModTime()})
	}
	sort.Slice(snaps, func(i, j int) bool {
		if snaps[i].mod.Equal(snaps[j].mod) {
			return snaps[i].path > snaps[j].path
		}
		return snaps[i].mod.After(snaps[j].mod)
	})
	var removed []string
	for _, s := range snaps[min(keep, len(snaps)):] {
		if err := os.Remove(s.path); err != nil {
			return removed, err
		}
		base := strings.TrimSuffix(s.path, SealedSuffix)
		_ = os.Remove(base + ".json")
		_ = os.Remove(s.path + ".sha256")
		removed = append(removed, s.path)
	}
	return removed, nil
}

// RestoreOptions describe the member a snapshot is restored for.
type RestoreOptions struct {
	Name     string   // the member's name
	DataDir  string   // a new data directory (it must not exist)
	PeerURLs []string // the member's peer URLs
	// InitialCluster is name=peerURL,... of every member being restored
	// (default: this member alone).
	InitialCluster string
	// Token is a new initial cluster token, so the restored cluster never
	// talks to members of the old one.
	Token string
	// RevisionBump raises the revision (and marks it compacted) so that
	// watchers never see it go back, as the docs recommend.
	RevisionBump uint64
}

// Restore verifies the snapshot and restores it into a new data directory
// with etcd's own restore code.
func Restore(snapPath string, o RestoreOptions, log *zap.Logger) error {
	if _, err := Verify(snapPath); err != nil {
		return fmt.Errorf("refusing to restore an unverified snapshot: %w", err)
	}
	if o.Name == "" || o.DataDir == "" || len(o.PeerURLs) == 0 || o.Token == "" {
		return errors.New("restore needs a name, a data dir, peer URLs and a new cluster token")
	}
	if _, err := os.Stat(o.DataDir); err == nil {
		return fmt.Errorf("data dir %s exists; restore into a new one", o.DataDir)
	}
	if o.InitialCluster == "" {
		o.InitialCluster = o.Name + "=" + o.PeerURLs[0]
	}
	if log == nil {
		log = zap.NewNop()
	}
	err := snapshot.NewV3(log).Restore(snapshot.RestoreConfig{
		SnapshotPath: snapPath, Name: o.Name, OutputDataDir: o.DataDir, PeerURLs: o.PeerURLs,
		InitialCluster: o.InitialCluster, InitialClusterToken: o.Token,
		RevisionBump: o.RevisionBump, MarkCompacted: o.RevisionBump > 0,
	})
	if err != nil {
		return fmt.Errorf("restore %s: %w", snapPath, err)
	}
	return nil
}
