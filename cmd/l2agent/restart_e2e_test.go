package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/l2agent/l2agent/deploy/testenv"
)

// TestRestartAcrossClear: an alert fires and its RT ticket opens; the agent
// stops (gracefully, or killed with its alert state lost); the filesystem is
// freed while it is down; started again, the ticket is resolved within
// resolve_after and one check interval — by the saved alert state in the
// first case, by reconciling the open incident with the check's first run in
// the second.
func TestRestartAcrossClear(t *testing.T) {
	needRoot(t)
	rt := testenv.StartRT(t)
	for _, tc := range []struct {
		name string
		stop func(t *testing.T, a *rtAgent, dir string)
	}{
		{"graceful", func(t *testing.T, a *rtAgent, _ string) {
			require.NoError(t, a.cmd.Process.Signal(syscall.SIGTERM))
			a.wait(t)
		}},
		{"kill-9-state-lost", func(t *testing.T, a *rtAgent, dir string) {
			require.NoError(t, a.cmd.Process.Kill())
			a.wait(t)
			require.NoError(t, os.Remove(filepath.Join(dir, "alerts.json")), "the alert state is saved")
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			mnt := filepath.Join(dir, "mnt")
			device := "l2agent-restart-" + tc.name
			mountTmpfs(t, mnt, "8m", device)
			cfg := rtConfig(t, rt, dir, "^"+mnt+"$")
			key := diskKey(mnt, device)

			a := startRTAgent(t, cfg)
			fillTo(t, mnt, 5000)
			tk := oneTicket(t, rt, key, "opened", func(x testenv.RTTicket) bool { return x.Status == "new" || x.Status == "open" })
			waitOutboxEmpty(t, a.url, "rt")
			tc.stop(t, a, dir)

			require.NoError(t, os.Remove(filepath.Join(mnt, "spool", "app", "data")))
			b := startRTAgent(t, cfg)
			waitHTTP(t, b.url+"/-/ready")
			started := time.Now()
			res := oneTicket(t, rt, key, "resolved after the restart", func(x testenv.RTTicket) bool { return x.Status == "resolved" })
			require.Equal(t, tk.ID, res.ID)
			// resolve_after 2 s + one 1 s check interval + the 500 ms tick,
			// with room for RT's answer on a loaded machine.
			require.Less(t, time.Since(started), 30*time.Second)
			for _, m := range rt.Messages(t, tk.ID) {
				require.NotContains(t, m.Content, "No longer reported", "an ok series is not unreported")
			}
		})
	}
}

// TestUnmountIsNotAFix: a firing filesystem that is unmounted gets one
// comment saying it is no longer reported, and its ticket is not resolved as
// fixed; unreported.close_after then closes it with a comment saying so.
func TestUnmountIsNotAFix(t *testing.T) {
	needRoot(t)
	rt := testenv.StartRT(t)
	dir := t.TempDir()
	mnt := filepath.Join(dir, "mnt")
	mountTmpfs(t, mnt, "8m", "l2agent-unmount")
	cfg := rtConfig(t, rt, dir, "^"+mnt+"$")
	b, err := os.ReadFile(cfg)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(cfg, []byte(strings.Replace(string(b), "  resolve_after: 2s\n", "  resolve_after: 2s\n  unreported: {close_after: 6s}\n", 1)), 0o600))
	key := diskKey(mnt, "l2agent-unmount")

	a := startRTAgent(t, cfg)
	fillTo(t, mnt, 5000)
	tk := oneTicket(t, rt, key, "opened", func(x testenv.RTTicket) bool { return true })
	out, err := exec.Command("umount", mnt).CombinedOutput()
	require.NoError(t, err, "%s", out)
	unmounted := time.Now()

	require.Eventually(t, func() bool {
		return strings.Count(messagesText(t, rt, tk.ID), "No longer reported") == 1
	}, 30*time.Second, 200*time.Millisecond, "one comment says the filesystem is no longer reported")
	cur := rt.Ticket(t, tk.ID)
	require.NotEqual(t, "resolved", cur.Status, "an unmounted filesystem is not a fix")

	res := oneTicket(t, rt, key, "closed by the unreported policy", func(x testenv.RTTicket) bool { return x.Status == "resolved" })
	require.GreaterOrEqual(t, time.Since(unmounted), 6*time.Second, "not before close_after")
	text := messagesText(t, rt, res.ID)
	require.Contains(t, text, "Closed without a fix")
	require.NotContains(t, text, "back within its threshold")
	require.Equal(t, 1, strings.Count(text, "No longer reported"))
	_ = a
}

func messagesText(t *testing.T, rt testenv.RT, id int) string {
	var b strings.Builder
	for _, m := range rt.Messages(t, id) {
		b.WriteString(m.Content)
		b.WriteByte('\n')
	}
	return b.String()
}

func waitOutboxEmpty(t *testing.T, url, backend string) {
	t.Helper()
	require.Eventually(t, func() bool {
		return strings.Contains(metricsText(t, url), `l2agent_ticket_outbox_pending{backend="`+backend+`"} 0`)
	}, 30*time.Second, 100*time.Millisecond, "outbox of %s delivered", backend)
}

// wait waits for the agent process to exit (it was signalled or killed).
func (a *rtAgent) wait(t *testing.T) {
	t.Helper()
	select {
	case err := <-a.done:
		a.done <- err // for the cleanup
	case <-time.After(10 * time.Second):
		t.Fatal("agent did not exit")
	}
}
