package main

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"unicode"

	"github.com/stretchr/testify/require"
)

// TestCheckTableHostileMountName: `l2agent check` on a tmpfs mounted on a
// directory named with a newline, ESC[2J, a space, a CR, an NBSP and a NEL
// prints a table (and diagnostics) with no control character: the
// terminal of whoever runs it is not cleared and no line is forged.
func TestCheckTableHostileMountName(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to mount a tmpfs")
	}
	name := "a b\rc\u00a0d\u0085e\nResolved: all good\x1b[2J"
	mnt := filepath.Join(t.TempDir(), name)
	require.NoError(t, os.Mkdir(mnt, 0o755))
	require.NoError(t, syscall.Mount("tmpfs\n\x1b[2Jdev", mnt, "tmpfs", 0, "size=4m"))
	t.Cleanup(func() { require.NoError(t, syscall.Unmount(mnt, syscall.MNT_DETACH)) })
	require.NoError(t, os.WriteFile(filepath.Join(mnt, "f"+name), make([]byte, 1<<20), 0o644))
	cfg := filepath.Join(t.TempDir(), "c.yaml")
	require.NoError(t, os.WriteFile(cfg, []byte(`checks:
  - name: d
    kind: disk
    disk: {include_mountpoints: ['^`+regexp.QuoteMeta(filepath.Dir(mnt))+`/a b']}
    rules:
      - {metric: disk_size_bytes, warn: 1}
`), 0o600))
	code, out, errs := runCLI("check", "--config", cfg, "d")
	t.Log(out, errs)
	require.Equal(t, 1, code, errs)
	esc := `a b\rc\u00a0d\u0085e\nResolved: all good\x1b[2J`
	require.Contains(t, out, "device=tmpfs\\n\\x1b[2Jdev,fstype=tmpfs,mountpoint="+filepath.Dir(mnt)+"/"+esc)
	for _, l := range strings.Split(out, "\n") {
		require.False(t, strings.HasPrefix(l, "Resolved:"), "forged line %q", l)
		for _, r := range l {
			require.True(t, r == ' ' || unicode.IsPrint(r), "line %q holds %U", l, r)
		}
	}
}
