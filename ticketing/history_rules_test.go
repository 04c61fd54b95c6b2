package ticketing

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/l2agent/l2agent/configs"
	"github.com/l2agent/l2agent/internal/alert"
)

// fix_not_holding: the count-th verified fix within the window sends the
// alert on, and its ticket goes at once to L3 saying why; the fixes are in
// the history. Off by default.
func TestFixNotHolding(t *testing.T) {
	cfg := testConfig()
	cfg.History.FixNotHolding = configs.Recurrence{Count: 3, Window: configs.Duration(7 * 24 * time.Hour)}
	h, be := newBodiesHarness(t, cfg)
	a := h.mount("/var", 0, "ok", "warn", 0.85)
	fix := func(at time.Duration) alert.Attempt {
		return alert.Attempt{At: h.t0.Add(at), Action: "disk_cleanup", Result: "success: freed 1.2 GiB", Success: true}
	}
	for i, at := range []time.Duration{0, 3 * 24 * time.Hour} {
		send, err := h.svc.Manager.RecordFixed(a.Alert, fix(at), h.t0.Add(at), h.t0.Add(at))
		require.NoError(t, err)
		require.False(t, send, "fix %d holds", i+1)
	}
	send, err := h.svc.Manager.RecordFixed(a.Alert, fix(8*24*time.Hour), h.t0.Add(8*24*time.Hour), h.t0.Add(8*24*time.Hour))
	require.NoError(t, err)
	require.False(t, send, "the first fix is out of the window")
	send, err = h.svc.Manager.RecordFixed(a.Alert, fix(9*24*time.Hour), h.t0.Add(9*24*time.Hour), h.t0.Add(9*24*time.Hour))
	require.NoError(t, err)
	require.True(t, send, "3 fixes within 7d")

	a = h.mount("/var", 9*24*time.Hour, "ok", "warn", 0.85)
	a.Attempts = []alert.Attempt{fix(9 * 24 * time.Hour)}
	require.Equal(t, "open #1 L2, escalate L3 #1", h.send(a))
	inc := h.incident2(a.Key)
	require.Equal(t, L3, inc.Tier)
	text, past := be.last()
	require.Contains(t, text, "This alert: 4 time(s) in 30 days")
	require.Contains(t, text, "What fixed it last time: disk_cleanup")
	require.Equal(t, 4, past.Last30d)
	require.Contains(t, be.escalated, "Escalated to L3: the fix is not holding: disk_cleanup fixed this alert 3 times within 168h0m0s")

	// Off: never sent on.
	off, _ := newBodiesHarness(t, testConfig())
	for i := range 5 {
		send, err := off.svc.Manager.RecordFixed(a.Alert, fix(time.Duration(i)*time.Hour), h.t0, h.t0.Add(time.Duration(i)*time.Hour))
		require.NoError(t, err)
		require.False(t, send)
	}
}

// skip_failing_action: an action whose last N runs on this host failed
// (in the history and the open incidents) is not run again; results that
// say it did not run (held back by the policy) do not count.
func TestFailingAction(t *testing.T) {
	cfg := testConfig()
	cfg.History.SkipFailingAction = 2
	cfg.ReopenWindow = configs.Duration(time.Hour)
	h, _ := newBodiesHarness(t, cfg)
	why, err := h.svc.Manager.FailingAction("disk_cleanup", h.t0.Add(4*time.Hour))
	require.NoError(t, err)
	require.Empty(t, why, "no runs")

	failed := func(mp string, at time.Duration, result string) {
		a := h.mount(mp, at, "ok", "warn", 0.85)
		a.Attempts = []alert.Attempt{{At: h.t0.Add(at), Action: "disk_cleanup", Result: result}}
		a.RemediationFailed = true
		h.send(a)
	}
	failed("/var", 0, "failed: nothing to delete")
	h.send(h.mount("/var", 10*time.Minute, "warn", "ok", 0.5))
	h.tick(30 * time.Minute) // resolved: in the history
	failed("/srv", 2*time.Hour, "skipped_cooldown: ran for this alert recently")
	why, err = h.svc.Manager.FailingAction("disk_cleanup", h.t0.Add(4*time.Hour))
	require.NoError(t, err)
	require.Empty(t, why, "one run failed, the other was held back")

	failed("/srv2", 3*time.Hour, "not_verified: the alert did not clear")
	why, err = h.svc.Manager.FailingAction("disk_cleanup", h.t0.Add(4*time.Hour))
	require.NoError(t, err)
	require.Equal(t, "disk_cleanup failed the last 2 times it ran on this host (the last at 2026-11-24T11:00:00Z: not_verified: the alert did not clear); not run again before 2026-12-01T11:00:00Z (ticketing.history.skip_failing_action, skip_failing_for)", why)
	// skip_failing_for (default 7d) after the last failure it is tried again
	why, err = h.svc.Manager.FailingAction("disk_cleanup", h.t0.Add(3*time.Hour+7*24*time.Hour-time.Second))
	require.NoError(t, err)
	require.NotEmpty(t, why, "still within skip_failing_for")
	why, err = h.svc.Manager.FailingAction("disk_cleanup", h.t0.Add(3*time.Hour+7*24*time.Hour))
	require.NoError(t, err)
	require.Empty(t, why, "skip_failing_for has passed: tried once more")
	why, err = h.svc.Manager.FailingAction("journal_vacuum", h.t0.Add(4*time.Hour))
	require.NoError(t, err)
	require.Empty(t, why, "another action")

	cfg.History.SkipFailingAction = 0
	require.NoError(t, h.svc.Reconfigure(cfg, []string{"rec"}, map[string]Ticketer{"rec": newRecorder()}, h.t0))
	why, err = h.svc.Manager.FailingAction("disk_cleanup", h.t0.Add(4*time.Hour))
	require.NoError(t, err)
	require.Empty(t, why, "off")
}

func (h *harness) incident2(key string) *Incident {
	h.t.Helper()
	inc, err := h.svc.Store.Incident(key)
	require.NoError(h.t, err)
	return inc
}
