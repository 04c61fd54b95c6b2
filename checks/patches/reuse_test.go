package patches

import (
	"github.com/l2agent/l2agent/internal/fsutil"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestFingerprintTree: what a tool writes while it only reads (the rpmdb's
// -shm, a lock, a pid file, a directory's modification time, zypper's
// @System solv cache) leaves the sum as it was; a changed, added or removed
// input changes it.
func TestFingerprintTree(t *testing.T) {
	t.Parallel()
	root := t.TempDir()
	write := func(name, content string) {
		t.Helper()
		p := filepath.Join(root, name)
		require.NoError(t, os.MkdirAll(filepath.Dir(p), 0o755))
		require.NoError(t, os.WriteFile(p, []byte(content), 0o644))
	}
	write("rpmdb/rpmdb.sqlite", "db")
	write("rpmdb/rpmdb.sqlite-shm", "shm")
	write("cache/l2a/repodata/repomd.xml", "<repomd/>")
	write("cache/solv/@System/solv", "s")
	sum := func() uint64 {
		t.Helper()
		f := fsutil.NewFingerprint("dnf", "-C")
		f.Tree(filepath.Join(root, "rpmdb"), false, zypperScratch)
		f.Tree(filepath.Join(root, "cache"), false, zypperScratch)
		f.Tree(filepath.Join(root, "missing"), false, zypperScratch)
		sum, ok := f.Sum()
		require.True(t, ok, "a missing root is no error")
		return sum
	}
	s0 := sum()
	later := time.Now().Add(time.Minute)
	write("rpmdb/rpmdb.sqlite-shm", "shm, read again")
	write("rpmdb/.rpm.lock", "")
	write("cache/zypp.pid", "1")
	write("cache/solv/@System/solv", "rebuilt")
	require.NoError(t, os.Chtimes(filepath.Join(root, "cache"), later, later))
	require.Equal(t, s0, sum(), "only the tools' own scratch changed")

	write("cache/l2a/repodata/repomd.xml", "<repomd></repomd>")
	s1 := sum()
	require.NotEqual(t, s0, s1, "new metadata")
	write("rpmdb/rpmdb.sqlite-wal", "a transaction")
	s2 := sum()
	require.NotEqual(t, s1, s2, "a write to the rpm database")
	require.NoError(t, os.Remove(filepath.Join(root, "rpmdb/rpmdb.sqlite-wal")))
	require.NotEqual(t, s2, sum(), "a file removed")
	write("missing/x", "")
	require.NotEqual(t, s1, sum(), "a root that appears")

	f := fsutil.NewFingerprint("dnf", "-q")
	f.Tree(filepath.Join(root, "rpmdb"), false, zypperScratch)
	g := fsutil.NewFingerprint("dnf", "-C")
	g.Tree(filepath.Join(root, "rpmdb"), false, zypperScratch)
	fs, _ := f.Sum()
	gs, _ := g.Sum()
	require.NotEqual(t, fs, gs, "other arguments, another key")
}

func TestIniMain(t *testing.T) {
	t.Parallel()
	f := filepath.Join(t.TempDir(), "dnf.conf")
	require.NoError(t, os.WriteFile(f, []byte("# c\n[main]\ncachedir = /srv/cache/dnf\nreposdir=/srv/repos, /etc/yum.repos.d relative\n#cachedir=/x\n[l2a]\ncachedir=/not/main\n"), 0o644))
	m := iniMain(f)
	require.Equal(t, "/srv/cache/dnf", m["cachedir"])
	require.Equal(t, []string{"/srv/repos", "/etc/yum.repos.d"}, absPaths(m["reposdir"]))
	require.Empty(t, iniMain(filepath.Join(t.TempDir(), "none")))
}
