package ticketing

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/l2agent/l2agent/internal/alert"
)

// reconcile runs Manager.Reconcile of the harness's check at t0+at with the
// alerts given, delivers, and returns the calls made.
func (h *harness) reconcile(at time.Duration, alerts ...alert.Alert) string {
	h.t.Helper()
	require.NoError(h.t, h.svc.Manager.Reconcile("disk", alerts, h.t0.Add(at)))
	return h.flush()
}

func (h *harness) alert(s alert.State, v float64) alert.Alert {
	return alert.Alert{Key: h.key, Host: "web-7", Check: "disk", Metric: "disk_used_ratio", State: s, Value: v}
}

func (h *harness) incident() *Incident {
	h.t.Helper()
	inc, err := h.svc.Store.Incident(h.key)
	require.NoError(h.t, err)
	return inc
}

// An incident left open while its alert cleared during a stop (or whose
// clearing was lost in a crash) resolves after resolve_after from the
// reconciliation; one still firing gets nothing.
func TestReconcileOKResolves(t *testing.T) {
	h := newHarness(t, testConfig())
	require.Equal(t, "open #1 L2", h.step(0, "ok", "warn", 0.85))
	require.Equal(t, "", h.reconcile(time.Hour, h.alert(alert.StateWarn, 0.86)), "still firing: nothing new")
	require.True(t, h.incident().OKSince.IsZero())

	require.Equal(t, "", h.reconcile(2*time.Hour, h.alert(alert.StateOK, 0.5)))
	require.Equal(t, h.t0.Add(2*time.Hour), h.incident().OKSince, "resolve_after starts at the reconciliation")
	require.Equal(t, "", h.tick(2*time.Hour+10*time.Minute))
	require.Equal(t, "resolve #1", h.tick(2*time.Hour+15*time.Minute))
	require.Equal(t, "", h.reconcile(3*time.Hour), "a resolved incident is left alone")
}

// An alert no longer reported gets one comment and is never resolved as
// fixed; close_after closes it with a comment saying so, not as a resolution.
func TestUnreportedPolicy(t *testing.T) {
	h := newHarness(t, testConfig())
	require.Equal(t, "open #1 L2", h.step(0, "ok", "warn", 0.85))
	gone := tr(h.key, "warn", "ok", h.t0.Add(time.Minute))
	gone.Host, gone.Check, gone.Metric, gone.Unreported = "web-7", "disk", "disk_used_ratio", "the check no longer reports this series"
	require.NoError(t, h.svc.Manager.Handle(gone))
	require.Equal(t, "comment #1", h.flush(), "one comment, no resolve")
	require.Equal(t, "", h.tick(time.Hour), "ok for resolve_after does not apply: it is not ok, it is gone")
	require.Equal(t, "", h.reconcile(2*time.Hour), "said once")
	require.Equal(t, "", h.tick(24*time.Hour), "not before close_after (24h)")
	require.Equal(t, "resolve #1", h.tick(25*time.Hour))
	inc := h.incident()
	require.False(t, inc.Open)
	require.Equal(t, "the check no longer reports this series", inc.UnreportedWhy)

	// Reported again within the reopen window: the same ticket, reopened.
	require.Equal(t, "reopen #1", h.step(26*time.Hour, "ok", "warn", 0.85))
	require.True(t, h.incident().Unreported.IsZero())
}

// keep_open leaves the ticket to a person; coming back firing says so once.
func TestUnreportedKeepOpenAndBack(t *testing.T) {
	cfg := testConfig()
	cfg.Unreported.KeepOpen = true
	h := newHarness(t, cfg)
	require.Equal(t, "open #1 L2", h.step(0, "ok", "warn", 0.85))
	require.Equal(t, "comment #1", h.reconcile(time.Hour), "the first run after a start did not report it")
	require.Equal(t, "", h.tick(30*24*time.Hour), "kept open")
	require.Equal(t, "comment #1", h.step(31*24*time.Hour, "ok", "warn", 0.86), "reported again")
	require.True(t, h.incident().Open)
	require.True(t, h.incident().Unreported.IsZero())
}

// The incidents of a check removed from the config are unreported; those of
// configured checks are not touched.
func TestReconcileChecks(t *testing.T) {
	h := newHarness(t, testConfig())
	require.Equal(t, "open #1 L2", h.step(0, "ok", "warn", 0.85))
	require.NoError(t, h.svc.Manager.ReconcileChecks([]string{"disk", "memory"}, h.t0.Add(time.Minute)))
	require.Equal(t, "", h.flush())
	require.NoError(t, h.svc.Manager.ReconcileChecks([]string{"memory"}, h.t0.Add(2*time.Minute)))
	require.Equal(t, "comment #1", h.flush())
	require.Contains(t, h.incident().UnreportedWhy, `"disk" is no longer in the config`)
}

// A backend added by a reload gets an open for the incident open now; one
// removed keeps its pending operations, reported by PendingAll, and
// delivers them when it comes back, without opening a second ticket.
func TestReconfigureBackends(t *testing.T) {
	h := newHarness(t, testConfig())
	require.Equal(t, "open #1 L2", h.step(0, "ok", "warn", 0.85))

	b := newRecorder()
	b.failN, b.failErr = 1<<30, Retryable("network", errors.New("connection refused")) // down
	cfg := testConfig()
	require.NoError(t, h.svc.Reconfigure(cfg, []string{"rec", "b"}, map[string]Ticketer{"rec": h.rec, "b": b}, h.t0.Add(time.Minute)))
	left := h.svc.Flush(context.Background())
	require.Equal(t, 1, left["b"], "b was down: its open waits")

	require.NoError(t, h.svc.Reconfigure(cfg, []string{"rec"}, map[string]Ticketer{"rec": h.rec}, h.t0.Add(2*time.Minute)))
	pending, err := h.svc.Store.PendingAll()
	require.NoError(t, err)
	require.Equal(t, map[string]int{"rec": 0, "b": 1}, pending, "a removed backend's operations are kept")
	require.Equal(t, "comment #1", h.step(3*time.Minute, "warn", "crit", 0.95)[:len("comment #1")])

	b.mu.Lock()
	b.failN = 0 // back up
	b.mu.Unlock()
	require.NoError(t, h.svc.Reconfigure(cfg, []string{"rec", "b"}, map[string]Ticketer{"rec": h.rec, "b": b}, h.t0.Add(4*time.Minute)))
	require.Eventually(t, func() bool { return h.svc.Flush(context.Background())["b"] == 0 }, 10*time.Second, 10*time.Millisecond)
	require.Equal(t, "open #1 L2, escalate L3 #1", b.take(), "one open: the one kept (queued at L2); the reload's open (at L3) finds the ticket and escalates it")
	require.Equal(t, L3, b.tier["1"], "b's ticket is at the incident's tier")

	// b left out again and added back: its ticket is known; it is sent what
	// it missed (the escalation to L3 made meanwhile), not an open.
	require.NoError(t, h.svc.Reconfigure(cfg, []string{"rec"}, map[string]Ticketer{"rec": h.rec}, h.t0.Add(5*time.Minute)))
	require.NoError(t, h.svc.Reconfigure(cfg, []string{"rec", "b"}, map[string]Ticketer{"rec": h.rec, "b": b}, h.t0.Add(6*time.Minute)))
	require.Equal(t, 0, h.svc.Flush(context.Background())["b"])
	require.Equal(t, "escalate L3 #1", b.take(), "the incident as it is now, on the ticket it has")
}
