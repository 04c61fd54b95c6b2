package antivirus

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/l2agent/l2agent/checks"
	"github.com/l2agent/l2agent/configs"
)

// TestThroughRootfs: a host mounted at a rootfs is read through its own
// symbolic links (Debian's clamd socket is under /var/run → /run), and with
// paths.chroot its programs (mdatp) are looked for under the rootfs, where
// they will run.
func TestThroughRootfs(t *testing.T) {
	t.Parallel()
	root := t.TempDir()
	for p, body := range map[string]string{
		"etc/clamav/clamd.conf": "LocalSocket /var/run/clamav/clamd.ctl\n",
		"usr/bin/mdatp":         "",
	} {
		require.NoError(t, os.MkdirAll(filepath.Join(root, filepath.Dir(p)), 0o755))
		require.NoError(t, os.WriteFile(filepath.Join(root, p), []byte(body), 0o755))
	}
	require.NoError(t, os.MkdirAll(filepath.Join(root, "run/clamav"), 0o755))
	require.NoError(t, os.MkdirAll(filepath.Join(root, "var"), 0o755))
	require.NoError(t, os.Symlink("/run", filepath.Join(root, "var/run")))

	newCheck := func(chroot bool) *antivirusCheck {
		c, err := checks.New(configs.Check{Name: "av", Kind: "antivirus", Options: &Options{}},
			checks.Env{Paths: configs.Paths{Rootfs: root, Chroot: chroot}})
		require.NoError(t, err)
		return c.(*antivirusCheck)
	}
	c := newCheck(true)
	network, addr := c.clamdSocket(map[string]string{"LocalSocket": "/var/run/clamav/clamd.ctl"})
	require.Equal(t, "unix", network)
	require.Equal(t, filepath.Join(root, "run/clamav/clamd.ctl"), addr, "the host's /run, not the container's")
	require.Equal(t, []string{"clamav", "mdatp"}, c.engines(), "mdatp under the rootfs runs there")

	if _, err := os.Stat("/usr/bin/mdatp"); err == nil {
		t.Skip("this machine has its own /usr/bin/mdatp")
	}
	require.Equal(t, []string{"clamav"}, newCheck(false).engines(), "not chrooted: the agent's own /usr/bin/mdatp would run, and there is none")
}
