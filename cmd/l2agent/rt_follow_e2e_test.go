package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/l2agent/l2agent/deploy/testenv"
)

// TestRTTicketFollowsAlert: the real binary against a real Request Tracker
// 5 on a real tmpfs, warn → crit → warn. The subject says what the alert
// says at each step (not "crit" once it is warn again), the escalation to
// L3 carries diagnostics taken when the alert went crit (a directory that
// did not exist at warn), and nothing is de-escalated.
func TestRTTicketFollowsAlert(t *testing.T) {
	needRoot(t)
	rt := testenv.StartRT(t)
	dir := t.TempDir()
	mnt := filepath.Join(dir, "mnt")
	mountTmpfs(t, mnt, "8m", "l2agent-follow")
	startRTAgent(t, rtConfig(t, rt, dir, "^"+mnt+"$"))
	key := diskKey(mnt, "l2agent-follow")

	fillTo(t, mnt, 5000) // ~61 %: warn
	tk := oneTicket(t, rt, key, "opened at warn", func(x testenv.RTTicket) bool { return x.Queue == rt.QueueL2 })
	require.Contains(t, tk.Subject, "(warn ≥ 50.0%)")
	late := filepath.Join(mnt, "spool", "late")
	require.NotContains(t, rt.Messages(t, tk.ID)[0].Content, late)

	require.NoError(t, os.MkdirAll(late, 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(late, "data"), make([]byte, 2700*1024), 0o644)) // ~94 %: crit
	crit := oneTicket(t, rt, key, "crit: escalated to L3, subject says crit", func(x testenv.RTTicket) bool {
		return x.Queue == rt.QueueL3 && strings.Contains(x.Subject, "(crit ≥ 90.0%)")
	})
	require.Equal(t, tk.ID, crit.ID)
	esc := message(t, rt, tk.ID, "l2agent escalated this ticket to L3")
	_, diag, ok := strings.Cut(esc, "\nDiagnostics:\n")
	require.True(t, ok, "the escalation has diagnostics: %s", esc)
	require.Contains(t, diag, late, "taken when it went crit, not at warn")
	crit = rt.Ticket(t, tk.ID) // escalated: moved, then given the L3 priority and owner, then the comment
	require.Greater(t, crit.Priority, tk.Priority)

	require.NoError(t, os.Remove(filepath.Join(late, "data"))) // ~61 %: back to warn
	back := oneTicket(t, rt, key, "back to warn: the subject says warn", func(x testenv.RTTicket) bool {
		return strings.Contains(x.Subject, "(warn ≥ 50.0%)")
	})
	require.Equal(t, tk.ID, back.ID)
	require.NotContains(t, back.Subject, "crit")
	require.Equal(t, rt.QueueL3, back.Queue, "nothing is de-escalated")
	require.Equal(t, crit.Priority, back.Priority)
	require.NotEqual(t, "resolved", back.Status)
	message(t, rt, tk.ID, "Severity crit → warn") // the subject is set first, then the comment
	t.Logf("ticket #%d subject %q", back.ID, back.Subject)
}

// messages are the texts of ticket id's messages that contain s.
func messages(t *testing.T, rt testenv.RT, id int, s string) []string {
	t.Helper()
	var out []string
	for _, m := range rt.Messages(t, id) {
		if strings.Contains(m.Content, s) {
			out = append(out, m.Content)
		}
	}
	return out
}

// message waits for the one message of ticket id that contains s (an
// escalation comments after it moved the ticket).
func message(t *testing.T, rt testenv.RT, id int, s string) string {
	t.Helper()
	var ms []string
	require.Eventually(t, func() bool {
		ms = messages(t, rt, id, s)
		return len(ms) > 0
	}, 60*time.Second, 200*time.Millisecond, "no message with %q", s)
	require.Len(t, ms, 1, "messages with %q", s)
	return ms[0]
}
