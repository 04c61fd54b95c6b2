package fsutil

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestInRoot(t *testing.T) {
	t.Parallel()
	root := t.TempDir()
	for _, d := range []string{"run/clamav", "usr/lib/security", "etc"} {
		require.NoError(t, os.MkdirAll(filepath.Join(root, d), 0o755))
	}
	for link, target := range map[string]string{
		"var/run":       "/run",             // absolute: Debian's /var/run
		"lib":           "usr/lib",          // relative: merged /usr
		"etc/escape":    "../../../../../x", // climbs above the root
		"etc/loop":      "/etc/loop",        // a loop
		"etc/dangling":  "/nowhere/file",
		"etc/twice":     "/var/run",           // a link to a link
		"etc/dotdot":    "/usr/lib/../../run", // .. inside a target
		"etc/same-root": "/",
	} {
		require.NoError(t, os.MkdirAll(filepath.Dir(filepath.Join(root, link)), 0o755))
		require.NoError(t, os.Symlink(target, filepath.Join(root, link)))
	}
	for p, want := range map[string]string{
		"/var/run/clamav/clamd.ctl": "/run/clamav/clamd.ctl",
		"/lib/security/pam_oath.so": "/usr/lib/security/pam_oath.so",
		"/etc/escape":               "/x",
		"/etc/loop":                 "/etc/loop",
		"/etc/dangling":             "/nowhere/file",
		"/etc/twice/clamav":         "/run/clamav",
		"/etc/dotdot/clamav":        "/run/clamav",
		"/etc/same-root/etc":        "/etc",
		"/../../etc/./passwd":       "/etc/passwd",
		"/missing/var/run":          "/missing/var/run",
		"/":                         "/",
	} {
		require.Equal(t, filepath.Join(root, want), InRoot(root, p), p)
		require.Equal(t, filepath.Join(root, want), InRoot(root+"/", p), p)
	}
	require.Equal(t, "/var/run/x", InRoot("/", "/var/run/x"), "the host's own root: as written")
	require.Equal(t, "/etc/passwd", InRoot("", "/etc//passwd"))
}
