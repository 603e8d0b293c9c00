package etcdsnap

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"filippo.io/age"
)

// SealedSuffix ends the name of an encrypted snapshot.
const SealedSuffix = ".age"

// ErrWrongKey is returned when a sealed snapshot does not open with the
// key given.
var ErrWrongKey = errors.New("the key does not open this snapshot")

// Seal encrypts a verified snapshot at rest with a passphrase (age, scrypt)
// into path+".age", written atomically, and removes the plaintext. It
// returns the sealed file's path.
func Seal(path, passphrase string) (string, error) {
	r, err := age.NewScryptRecipient(passphrase)
	if err != nil {
		return "", fmt.Errorf("seal %s: %w", path, err)
	}
	in, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer in.Close()
	dst := path + SealedSuffix
	tmp, err := os.CreateTemp(filepath.Dir(path), filepath.Base(dst)+".part-*")
	if err != nil {
		return "", err
	}
	defer os.Remove(tmp.Name()) // no-op after the rename
	w, err := age.Encrypt(tmp, r)
	if err == nil {
		_, err = io.Copy(w, in)
	}
	if err == nil {
		err = w.Close()
	}
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), dst)
	}
	if err != nil {
		return "", fmt.Errorf("seal %s: %w", path, err)
	}
	return dst, os.Remove(path)
}

// Unseal decrypts a sealed snapshot into a 0600 file in dir and returns its
// path; the caller removes it. A path without the sealed suffix is returned
// as it is.
func Unseal(path, passphrase, dir string) (string, error) {
	if !strings.HasSuffix(path, SealedSuffix) {
		return path, nil
	}
	if passphrase == "" {
		return "", fmt.Errorf("%s is encrypted: give its key", path)
	}
	id, err := age.NewScryptIdentity(passphrase)
	if err != nil {
		return "", err
	}
	in, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer in.Close()
	r, err := age.Decrypt(in, id)
	if err != nil {
		var nm *age.NoIdentityMatchError
		if errors.As(err, &nm) {
			return "", fmt.Errorf("%s: %w", path, ErrWrongKey)
		}
		return "", fmt.Errorf("open %s: %w", path, err)
	}
	out, err := os.CreateTemp(dir, "unsealed-*.db")
	if err != nil {
		return "", err
	}
	if _, err = io.Copy(out, r); err == nil {
		err = out.Close()
	} else {
		out.Close()
	}
	if err != nil {
		os.Remove(out.Name())
		return "", fmt.Errorf("open %s: %w", path, err)
	}
	return out.Name(), nil
}
