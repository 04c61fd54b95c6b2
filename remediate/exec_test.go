package remediate_test

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/l2agent/l2agent/internal/testkit"
	"github.com/l2agent/l2agent/remediate"
)

// The real programs, by their default absolute paths, through RunCommand.
func TestRealCommands(t *testing.T) {
	for _, tc := range []struct {
		path, want string
		optional   bool
	}{
		{"/usr/bin/freshclam", "ClamAV", false},
		{"/usr/bin/journalctl", "systemd", true},
	} {
		t.Run(filepath.Base(tc.path), func(t *testing.T) {
			if _, err := os.Stat(tc.path); err != nil {
				if tc.optional {
					t.Skipf("%s not installed", tc.path)
				}
				testkit.RequireCI(t, "%s not installed (deploy/testenv/install.sh antivirus)", tc.path)
			}
			r, err := remediate.RunCommand(context.Background(), tc.path, "--version")
			require.NoError(t, err)
			require.Equal(t, 0, r.ExitCode)
			require.Contains(t, r.Output, tc.want)
			// The same program through a PATH lookup would be found too;
			// l2agent never does one.
			lp, err := exec.LookPath(filepath.Base(tc.path))
			if err == nil {
				t.Logf("%s (PATH would give %s)", tc.path, lp)
			}
		})
	}
	_, err := remediate.RunCommand(context.Background(), "freshclam", "--version")
	require.ErrorContains(t, err, "not an absolute path")
	_, err = remediate.RunCommand(context.Background(), "/nonexistent/freshclam")
	require.Error(t, err)
}

// A file name with shell syntax is only ever passed to unlinkat; argv of
// commands never carries alert data (see TestCommandActions). Here the
// command runner itself: arguments arrive byte for byte.
func TestRunCommandArgvVerbatim(t *testing.T) {
	cmd, argvFile := testkit.StandIn(t, "echo-args", "", 0)
	args := []string{"; rm -rf /", "$(touch /tmp/l2agent-pwned)", `"'`, "`id`", "a\nb", "\xff"}
	_, err := remediate.RunCommand(context.Background(), append([]string{cmd}, args...)...)
	require.NoError(t, err)
	require.Equal(t, append([]string{cmd}, args...), testkit.RecordedArgv(t, argvFile))
	_, err = os.Stat("/tmp/l2agent-pwned")
	require.True(t, os.IsNotExist(err))
}
