package modules_test

import (
	"context"
	"errors"
	"github.com/kubeplay/kubeplay/internal/ytree"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kubeplay/kubeplay/modules"
)

// fakeYum puts yum and rpm stand-ins first on PATH. They keep a package
// database in files: available versions per package (oldest first, as yum
// lists them) and the installed version; every yum call is logged.
func fakeYum(t *testing.T, exclude string) (db string) {
	t.Helper()
	dir := t.TempDir()
	db = filepath.Join(dir, "db")
	os.MkdirAll(filepath.Join(db, "installed"), 0o755)
	os.WriteFile(filepath.Join(db, "available"), []byte("kubeadm 1.36.3-150500.1.1\nkubeadm 1.37.1-150500.1.1\nkubeadm 1.37.2-150500.1.1\nkubelet 1.37.2-150500.1.1\n"), 0o644)
	os.WriteFile(filepath.Join(db, "installed", "kubeadm"), []byte("1.36.3-150500.1.1"), 0o644)
	os.WriteFile(filepath.Join(db, "exclude"), []byte(exclude), 0o644)
	yum := `#!/bin/sh
db=` + db + `
echo "$*" >> $db/log
case "$1" in
makecache) exit 0;;
list)
  pkg=$(eval echo \${$#})
  found=0
  while read -r n v; do
    if [ "$n" = "$pkg" ]; then echo "$n.x86_64  $v  kubernetes"; found=1; fi
  done < $db/available
  [ $found = 1 ] || { echo "Error: No matching Packages to list" >&2; exit 1; }
  ;;
install)
  case "$*" in *--disableexcludes=kubernetes*) ;; *) echo "excluded" >&2; exit 1;; esac
  shift
  for a in "$@"; do
    case "$a" in -*) continue;; esac
    n=${a%%-[0-9]*}; v=${a#"$n"-}
    grep -qx "$n $v" $db/available || { echo "No package $a available." >&2; exit 1; }
    printf %s "$v" > $db/installed/$n
  done;;
esac`
	rpm := `#!/bin/sh
db=` + db + `
pkg=$(eval echo \${$#})
[ -f $db/installed/$pkg ] || { echo "package $pkg is not installed"; exit 1; }
cat $db/installed/$pkg`
	bin := filepath.Join(dir, "bin")
	os.MkdirAll(bin, 0o755)
	os.WriteFile(filepath.Join(bin, "yum"), []byte(yum), 0o755)
	os.WriteFile(filepath.Join(bin, "rpm"), []byte(rpm), 0o755)
	// the repository's exclude= line is read from /etc/yum.repos.d, which
	// the test cannot own: the stand-in cat answers for it
	cat := `#!/bin/sh
case "$*" in */etc/yum.repos.d/*) echo "exclude=$(cat ` + filepath.Join(db, "exclude") + `)";; *) exec /bin/cat "$@";; esac`
	os.WriteFile(filepath.Join(bin, "cat"), []byte(cat), 0o755)
	t.Setenv("PATH", bin+":"+os.Getenv("PATH"))
	return db
}

func aptPin(t *testing.T, pkgs map[string]string, hold bool, check bool) (modules.Result, error) {
	t.Helper()
	p := &modules.AptPinParams{Packages: pkgs, Manager: "yum"}
	ytree.FillDefaults(p)
	p.Hold = hold
	if err := p.Validate(); err != nil {
		t.Fatal(err)
	}
	if check {
		return modules.AptPin{}.Check(context.Background(), target(true), p)
	}
	return modules.AptPin{}.Run(context.Background(), target(false), p)
}

func TestAptPinYumPath(t *testing.T) {
	db := fakeYum(t, "kubelet kubeadm kubectl cri-tools kubernetes-cni")
	installed := func() string { b, _ := os.ReadFile(filepath.Join(db, "installed", "kubeadm")); return string(b) }

	r, err := aptPin(t, map[string]string{"kubeadm": "1.37.*"}, true, true)
	if err != nil || !r.Changed || !strings.Contains(r.Msg, "kubeadm 1.36.3-150500.1.1 → 1.37.2-150500.1.1") {
		t.Fatalf("check: %+v %v", r, err)
	}
	if installed() != "1.36.3-150500.1.1" {
		t.Fatal("check installed something")
	}
	r, err = aptPin(t, map[string]string{"kubeadm": "1.37.*"}, true, false)
	if err != nil || !r.Changed {
		t.Fatalf("run: %+v %v", r, err)
	}
	if installed() != "1.37.2-150500.1.1" {
		t.Fatalf("installed %s, want the newest 1.37 patch", installed())
	}
	log, _ := os.ReadFile(filepath.Join(db, "log"))
	if !strings.Contains(string(log), "install -y --disableexcludes=kubernetes kubeadm-1.37.2-150500.1.1") {
		t.Fatalf("yum calls:\n%s", log)
	}
	if r, err = aptPin(t, map[string]string{"kubeadm": "1.37.*"}, true, false); err != nil || r.Changed {
		t.Fatalf("second run: %+v %v", r, err)
	}
	if _, err = aptPin(t, map[string]string{"kubeadm": "1.38.*"}, true, false); !errors.Is(err, modules.ErrNoSuchVersion) {
		t.Fatalf("a version no repository has: %v", err)
	}
}

func TestAptPinYumRefusesUnheldPackages(t *testing.T) {
	db := fakeYum(t, "cri-tools")
	_, err := aptPin(t, map[string]string{"kubeadm": "1.37.2-*"}, true, false)
	if err == nil || !strings.Contains(err.Error(), "kubeadm is not excluded") {
		t.Fatalf("want a refusal naming the missing exclude: %v", err)
	}
	if log, _ := os.ReadFile(filepath.Join(db, "log")); strings.Contains(string(log), "install") {
		t.Fatal("it installed before refusing")
	}
	if r, err := aptPin(t, map[string]string{"kubeadm": "1.37.2-*"}, false, false); err != nil || !r.Changed {
		t.Fatalf("hold: false: %+v %v", r, err)
	}
}
