package fsutil

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestFingerprint: the sum changes with every change the fingerprint is
// meant to see, and only then.
func TestFingerprint(t *testing.T) {
	dir := t.TempDir()
	conf := filepath.Join(dir, "conf")
	require.NoError(t, os.MkdirAll(filepath.Join(dir, "d"), 0o755))
	require.NoError(t, os.WriteFile(conf, []byte("a\n"), 0o644))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "d", "1"), []byte("x"), 0o644))
	sum := func() uint64 {
		f := NewFingerprint()
		f.String("sshd -T")
		f.File(conf)
		f.File(filepath.Join(dir, "absent"))
		f.Tree(filepath.Join(dir, "d"), true, nil)
		s, ok := f.Sum()
		require.True(t, ok)
		return s
	}
	seen := map[uint64]string{}
	step := func(what string, change func()) {
		t.Helper()
		change()
		s := sum()
		require.Equal(t, s, sum(), "%s: the same files, the same sum", what)
		prev, dup := seen[s]
		require.False(t, dup, "%s: the sum of %q again", what, prev)
		seen[s] = what
	}
	step("start", func() {})
	step("rewritten, same size", func() {
		require.NoError(t, os.WriteFile(conf, []byte("b\n"), 0o644))
		require.NoError(t, os.Chtimes(conf, time.Now(), time.Now().Add(time.Hour)))
	})
	step("grown", func() { require.NoError(t, os.WriteFile(conf, []byte("bb\n"), 0o644)) })
	step("replaced by a rename", func() {
		fi, _ := os.Stat(conf)
		tmp := filepath.Join(dir, "tmp")
		require.NoError(t, os.WriteFile(tmp, []byte("bb\n"), 0o644))
		require.NoError(t, os.Chtimes(tmp, fi.ModTime(), fi.ModTime()))
		require.NoError(t, os.Rename(tmp, conf))
	})
	step("mode", func() { require.NoError(t, os.Chmod(conf, 0o600)) })
	step("missing file appears", func() { require.NoError(t, os.WriteFile(filepath.Join(dir, "absent"), nil, 0o644)) })
	step("file added to the tree", func() { require.NoError(t, os.WriteFile(filepath.Join(dir, "d", "2"), nil, 0o644)) })
	step("symlink in the tree", func() { require.NoError(t, os.Symlink("/etc", filepath.Join(dir, "d", "3"))) })
	step("symlink retargeted", func() {
		require.NoError(t, os.Remove(filepath.Join(dir, "d", "3")))
		require.NoError(t, os.Symlink("/usr", filepath.Join(dir, "d", "3")))
	})

	f := NewFingerprint()
	f.File(filepath.Join(conf, "below-a-file")) // ENOTDIR: cannot be seen
	_, ok := f.Sum()
	require.False(t, ok)
}
