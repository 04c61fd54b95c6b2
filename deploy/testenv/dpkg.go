package testenv

import (
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
)

// packageLockFile serialises the tests that install the l2agent package on
// this machine (deploy/packaging's and deploy/ansible's).
const packageLockFile = "/run/lock/l2agent-package-test.lock"

// LockPackageTests takes the package tests' lock (flock, LOCK_EX) until the
// test ends. Call it before anything else that registers a cleanup, so that
// the lock is released after them (after the purge).
func LockPackageTests(t testing.TB) {
	t.Helper()
	f, err := os.OpenFile(packageLockFile, os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
}

// DpkgStatus is dpkg's status of pkg ("install ok installed", …), or ""
// when dpkg never heard of it.
func DpkgStatus(pkg string) string {
	out, err := exec.Command("dpkg-query", "-W", "-f=${Status}", pkg).Output()
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(out))
}

// SkipIfInstalled skips the test when pkg is on this machine already: a
// test never replaces a real installation.
func SkipIfInstalled(t testing.TB, pkg string) {
	t.Helper()
	if st := DpkgStatus(pkg); st != "" && !strings.HasPrefix(st, "unknown ") && !strings.HasSuffix(st, " not-installed") {
		t.Skipf("package %s already on this machine (%q): not replacing it", pkg, st)
	}
}

// RemovePackageUserAfter removes, when t ends, the system user and group
// l2agent that installing the package made (the package keeps them on
// purge, as Debian does; a test host is not to keep them). A user that
// existed before t is left alone.
func RemovePackageUserAfter(t testing.TB) {
	if exec.Command("getent", "passwd", "l2agent").Run() == nil {
		return
	}
	t.Cleanup(func() {
		for _, argv := range [][]string{{"userdel", "l2agent"}, {"groupdel", "l2agent"}} {
			if exec.Command("getent", map[string]string{"userdel": "passwd", "groupdel": "group"}[argv[0]], "l2agent").Run() != nil {
				continue
			}
			if out, err := exec.Command(argv[0], argv[1:]...).CombinedOutput(); err != nil {
				t.Logf("cleanup: %v: %v\n%s", argv, err, out)
			}
		}
	})
}
