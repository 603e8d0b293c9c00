package etcdsnap

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
)

// makeDB writes a bbolt file shaped like etcd's backend: revisions in the
// key bucket, and a meta bucket.
func makeDB(t *testing.T, revs ...int64) []byte {
	t.Helper()
	p := filepath.Join(t.TempDir(), "db")
	db, err := bolt.Open(p, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	err = db.Update(func(tx *bolt.Tx) error {
		kb, _ := tx.CreateBucket([]byte("key"))
		for _, r := range revs {
			k := make([]byte, 17)
			binary.BigEndian.PutUint64(k, uint64(r))
			k[8] = '_'
			if err := kb.Put(k, []byte("value")); err != nil {
				return err
			}
		}
		mb, _ := tx.CreateBucket([]byte("meta"))
		return mb.Put([]byte("consistent_index"), []byte{0, 0, 0, 0, 0, 0, 0, 9})
	})
	if err != nil {
		t.Fatal(err)
	}
	db.Close()
	b, _ := os.ReadFile(p)
	return b
}

// withTrailer appends the sha256 etcd's Snapshot RPC sends last.
func withTrailer(b []byte) []byte {
	s := sha256.Sum256(b)
	return append(append([]byte{}, b...), s[:]...)
}

type fakeSnap struct{ b []byte }

func (f fakeSnap) Snapshot(context.Context) (io.ReadCloser, error) {
	return io.NopCloser(bytes.NewReader(f.b)), nil
}

func TestSaveVerifies(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "s.db")
	st, err := Save(context.Background(), fakeSnap{withTrailer(makeDB(t, 3, 7, 5))}, p)
	if err != nil {
		t.Fatal(err)
	}
	if st.Revision != 7 || st.Keys != 4 || st.Integrity != "ok" || st.Hash == 0 || st.Path != p {
		t.Fatalf("status %+v", st)
	}
	// same content, same hash; different content, different hash
	again, _ := Save(context.Background(), fakeSnap{withTrailer(makeDB(t, 3, 7, 5))}, filepath.Join(dir, "t.db"))
	other, _ := Save(context.Background(), fakeSnap{withTrailer(makeDB(t, 3, 8))}, filepath.Join(dir, "u.db"))
	if again.Hash != st.Hash || other.Hash == st.Hash || other.Revision != 8 {
		t.Fatalf("hashes: %d %d %d", st.Hash, again.Hash, other.Hash)
	}
	left, _ := filepath.Glob(filepath.Join(dir, "*.part-*"))
	if len(left) != 0 {
		t.Fatalf("temporary files left: %v", left)
	}
}

func TestSaveRefusesAStreamWithoutItsHash(t *testing.T) {
	p := filepath.Join(t.TempDir(), "s.db")
	if _, err := Save(context.Background(), fakeSnap{makeDB(t, 1)}, p); err == nil {
		t.Fatal("a stream without the sha256 trailer must be refused")
	}
	if _, err := os.Stat(p); !os.IsNotExist(err) {
		t.Fatalf("refused snapshot must not take the final name: %v", err)
	}
}

func TestVerifyDetectsCorruption(t *testing.T) {
	b := withTrailer(makeDB(t, 1, 2))
	b[4096+100] ^= 0x55
	p := filepath.Join(t.TempDir(), "bad.db")
	os.WriteFile(p, b, 0o600)
	if _, err := Verify(p); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("want ErrCorrupt, got %v", err)
	}
	// a plain db file (copied from a data dir) has no trailer: verified by bbolt alone
	p2 := filepath.Join(t.TempDir(), "plain.db")
	os.WriteFile(p2, makeDB(t, 4), 0o600)
	st, err := Verify(p2)
	if err != nil || st.Integrity != "absent" || st.Revision != 4 {
		t.Fatalf("plain db: %+v %v", st, err)
	}
}

func TestPruneKeepsNewest(t *testing.T) {
	dir := t.TempDir()
	base := time.Now().Add(-time.Hour)
	for i, n := range []string{"x-1.db", "x-2.db", "x-3.db", "other.db", "x-4.txt"} {
		p := filepath.Join(dir, n)
		os.WriteFile(p, nil, 0o600)
		os.WriteFile(p+".json", nil, 0o600)
		os.Chtimes(p, base.Add(time.Duration(i)*time.Minute), base.Add(time.Duration(i)*time.Minute))
	}
	removed, err := Prune(dir, "x-", 2)
	if err != nil || len(removed) != 1 || filepath.Base(removed[0]) != "x-1.db" {
		t.Fatalf("removed %v, %v", removed, err)
	}
	for _, n := range []string{"x-1.db", "x-1.db.json"} {
		if _, err := os.Stat(filepath.Join(dir, n)); !os.IsNotExist(err) {
			t.Fatalf("%s should be gone", n)
		}
	}
	for _, n := range []string{"x-2.db", "x-3.db", "other.db", "x-4.txt"} {
		if _, err := os.Stat(filepath.Join(dir, n)); err != nil {
			t.Fatalf("%s should stay", n)
		}
	}
}

// A sealed snapshot holds no plaintext, opens only with its key, opens to
// the very snapshot that was sealed, and counts for retention.
func TestSealUnseal(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "snap-1.db")
	st, err := Save(context.Background(), fakeSnap{withTrailer(makeDB(t, 3, 7))}, p)
	if err != nil {
		t.Fatal(err)
	}
	plain, _ := os.ReadFile(p)
	sealed, err := Seal(p, "correct horse battery staple")
	if err != nil {
		t.Fatal(err)
	}
	if sealed != p+SealedSuffix {
		t.Fatalf("sealed as %s", sealed)
	}
	if _, err := os.Stat(p); !os.IsNotExist(err) {
		t.Fatalf("the plaintext must be gone: %v", err)
	}
	b, _ := os.ReadFile(sealed)
	if bytes.Contains(b, plain[:512]) || bytes.Contains(b, []byte("consistent_index")) {
		t.Fatal("the sealed file holds plaintext")
	}
	if _, err := Unseal(sealed, "wrong", t.TempDir()); !errors.Is(err, ErrWrongKey) {
		t.Fatalf("wrong key: %v", err)
	}
	if _, err := Unseal(sealed, "", t.TempDir()); err == nil {
		t.Fatal("no key: want an error")
	}
	out, err := Unseal(sealed, "correct horse battery staple", t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	back, _ := os.ReadFile(out)
	if !bytes.Equal(back, plain) {
		t.Fatal("unsealed content differs")
	}
	if st2, err := Verify(out); err != nil || st2.Hash != st.Hash {
		t.Fatalf("unsealed snapshot: %+v %v", st2, err)
	}
	if same, _ := Unseal(filepath.Join(dir, "x.db"), "", dir); same != filepath.Join(dir, "x.db") {
		t.Fatal("an unsealed path is returned as it is")
	}
	time.Sleep(10 * time.Millisecond)
	if _, err := Save(context.Background(), fakeSnap{withTrailer(makeDB(t, 9))}, filepath.Join(dir, "snap-2.db")); err != nil {
		t.Fatal(err)
	}
	removed, err := Prune(dir, "snap-", 1)
	if err != nil || len(removed) != 1 || removed[0] != sealed {
		t.Fatalf("retention counts sealed snapshots: %v %v", removed, err)
	}
}
