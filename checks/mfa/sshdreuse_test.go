package mfa

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestMFASSHDReuse: with real sshd, a run reuses the last plain sshd -T
// while the config, its includes, the binary and the host keys are
// unchanged, and runs sshd again, seeing the change, when one of them
// changed or the answer is a day old.
func TestMFASSHDReuse(t *testing.T) {
	sshd, hostKey := mfaSSHDEnv(t)
	dir := t.TempDir()
	mfaWriteFiles(t, dir, map[string]string{
		"sshd_config":      "Include " + dir + "/conf.d/*.conf\nPasswordAuthentication no\n",
		"conf.d/10-a.conf": "# nothing yet\n",
		"pam.d/sshd":       "auth required pam_unix.so\n",
	})
	opts := Options{Controls: []string{"sshd"}, SSHD: SSHDOptions{Binary: sshd, Config: filepath.Join(dir, "sshd_config"), Args: []string{"-h", hostKey}},
		PAM: PAMOptions{Dir: filepath.Join(dir, "pam.d")}}
	c := newMFA(t, opts)
	plainRuns := 0
	run := c.run
	c.run = func(ctx context.Context, argv []string) ([]byte, error) {
		if !slices.Contains(argv, "-C") {
			plainRuns++
		}
		return run(ctx, argv)
	}
	now := time.Now()
	c.now = func() time.Time { return now }
	password := func() float64 {
		t.Helper()
		obs, err := c.Run(context.Background())
		require.NoError(t, err)
		return mfaObs(t, obs, "mfa_sshd_password_authentication", "").Value
	}
	step := func(what string, wantRuns int, wantPassword float64) {
		t.Helper()
		require.Equal(t, wantPassword, password(), what)
		require.Equal(t, wantRuns, plainRuns, "%s: plain sshd -T runs", what)
	}

	step("first run", 1, 0)
	step("nothing changed: reused", 1, 0)
	mfaWriteFiles(t, dir, map[string]string{"conf.d/10-a.conf": "# nothing yet\n# still nothing\n"})
	step("an included file changed", 2, 0)
	mfaWriteFiles(t, dir, map[string]string{"conf.d/05-b.conf": "PasswordAuthentication yes\n"})
	step("a file added where Include looks: sshd sees it first", 3, 1)
	step("reused again", 3, 1)
	require.NoError(t, os.Remove(hostKey))
	out, err := exec.Command("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", hostKey).CombinedOutput()
	require.NoError(t, err, "%s", out)
	step("a host key made anew", 4, 1)
	now = now.Add(sshdReuseMax)
	step("a day later", 5, 1)
	step("reused", 5, 1)

	// A refused config is never reused: the fix is seen at once.
	mfaWriteFiles(t, dir, map[string]string{"conf.d/05-b.conf": "PasswordAuthentication maybe\n"})
	obs, err := c.Run(context.Background())
	require.NoError(t, err)
	require.Equal(t, 0.0, mfaObs(t, obs, "mfa_compliant", "sshd").Value)
	require.Equal(t, 6, plainRuns)
	_, err = c.Run(context.Background())
	require.NoError(t, err)
	require.Equal(t, 7, plainRuns, "a refusal is asked again")
}
