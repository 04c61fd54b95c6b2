package ticketing

import (
	"context"
	"errors"
	"net/http"
	"path/filepath"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"

	"github.com/l2agent/l2agent/configs"
	"github.com/l2agent/l2agent/internal/rest"
	"github.com/l2agent/l2agent/internal/testkit"
)

// updater is a recorder whose tickets keep a title (an Updater, as RT):
// "update #ID" in the calls, the titles it was given in titles.
type updater struct {
	*recorder
	titles  []string
	failN   int
	failErr error
}

func (u *updater) Update(_ context.Context, ref Ref, t Ticket) error {
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.failN > 0 {
		u.failN--
		return u.failErr
	}
	u.calls = append(u.calls, "update #"+ref.ID)
	u.titles = append(u.titles, t.Title)
	return nil
}

func (u *updater) lastTitle() string {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.titles[len(u.titles)-1]
}

// newUpdateHarness is newHarness with a backend that keeps titles.
func newUpdateHarness(t *testing.T, cfg configs.Ticketing) (*harness, *updater) {
	st, err := OpenStore(filepath.Join(t.TempDir(), "l2agent.db"), false, testkit.QuietLogger())
	require.NoError(t, err)
	u := &updater{recorder: newRecorder()}
	svc := NewService(cfg, st, []string{"rec"}, map[string]Ticketer{"rec": u}, "test", testkit.QuietLogger(), nil)
	t.Cleanup(func() { svc.Stop() })
	return &harness{t: t, svc: svc, rec: u.recorder, t0: time.Date(2026, 11, 24, 8, 0, 0, 0, time.UTC), key: `web-7/disk/disk_used_ratio{mountpoint="/var"}`}, u
}

// queued returns the ops waiting in the outbox, in order.
func (h *harness) queued() []Op {
	h.t.Helper()
	var ops []Op
	var after uint64
	for {
		op, ok, err := h.svc.Store.Next("rec", after)
		require.NoError(h.t, err)
		if !ok {
			return ops
		}
		ops = append(ops, op)
		after = op.Seq
	}
}

// handle decides a transition without delivering it and returns the ops
// it queued.
func (h *harness) handle(at time.Duration, from, to string, v float64) []Op {
	h.t.Helper()
	require.Empty(h.t, h.queued())
	require.NoError(h.t, h.svc.Manager.Handle(h.transition(at, from, to, v)))
	return h.queued()
}

const (
	titleWarn = "[l2agent] web-7: disk /var disk_used_ratio 85.0% (warn ≥ 80.0%)"
	titleCrit = "[l2agent] web-7: disk /var disk_used_ratio 95.0% (crit ≥ 90.0%)"
)

// TestTitleFollowsSeverity: warn → crit and crit → warn queue a comment
// whose ticket has the new title and says it changed; the backend that
// keeps titles is updated before the comment.
func TestTitleFollowsSeverity(t *testing.T) {
	h, u := newUpdateHarness(t, testConfig())
	require.Equal(t, "open #1 L2", h.step(0, "ok", "warn", 0.85))

	ops := h.handle(time.Minute, "warn", "crit", 0.95)
	require.Len(t, ops, 2)
	require.Equal(t, OpComment, ops[0].Kind)
	require.True(t, ops[0].Ticket.Retitle)
	require.Equal(t, titleCrit, ops[0].Ticket.Title)
	require.Equal(t, OpEscalate, ops[1].Kind)
	require.False(t, ops[1].Ticket.Retitle, "an escalation sets the title itself")
	require.Equal(t, "update #1, comment #1, escalate L3 #1", h.flush())
	require.Equal(t, titleCrit, u.lastTitle())

	ops = h.handle(2*time.Minute, "crit", "warn", 0.85)
	require.Len(t, ops, 1)
	require.Equal(t, "Severity crit → warn: test", ops[0].Text)
	require.True(t, ops[0].Ticket.Retitle)
	require.Equal(t, titleWarn, ops[0].Ticket.Title, "no longer says crit")
	require.Equal(t, L3, ops[0].Ticket.Tier, "nothing is de-escalated")
	require.Equal(t, "update #1, comment #1", h.flush())
	require.Equal(t, titleWarn, u.lastTitle())

	// Comments that change neither the severity nor the mark leave the title.
	require.Equal(t, "", h.step(3*time.Minute, "warn", "ok", 0.5))
	ops = h.handle(4*time.Minute, "ok", "warn", 0.86)
	require.Len(t, ops, 1)
	require.False(t, ops[0].Ticket.Retitle)
	require.Equal(t, "comment #1", h.flush())
}

// TestTitleFollowsFlapping: the flapping mark reaches the title when it is
// set (on a change to ok: the title still quotes the value it fired
// with), and leaves it when the alert settles, while firing or at the
// resolve.
func TestTitleFollowsFlapping(t *testing.T) {
	h, u := newUpdateHarness(t, testConfig()) // 4 changes within 1h
	require.Equal(t, "open #1 L2", h.step(0, "ok", "warn", 0.85))
	require.Equal(t, "", h.step(time.Minute, "warn", "ok", 0.5))
	require.Equal(t, "comment #1", h.step(2*time.Minute, "ok", "warn", 0.85))
	ops := h.handle(3*time.Minute, "warn", "ok", 0.5)
	require.Len(t, ops, 1)
	require.Contains(t, ops[0].Text, "Flapping:")
	require.True(t, ops[0].Ticket.Retitle)
	require.Equal(t, titleWarn+" [flapping]", ops[0].Ticket.Title, "the value it fired with, not 50.0%")
	require.Equal(t, "update #1, comment #1", h.flush())
	require.Equal(t, titleWarn+" [flapping]", u.lastTitle())

	// Firing again and staying: once fewer than 4 changes are left in the
	// window, the mark goes, with a comment.
	require.Equal(t, "", h.step(4*time.Minute, "ok", "warn", 0.85), "no churn while flapping")
	require.Equal(t, "", h.tick(30*time.Minute), "still 5 changes within the hour")
	ops = h.tickQueued(62 * time.Minute)
	require.Len(t, ops, 1)
	require.Contains(t, ops[0].Text, "No longer flapping")
	require.True(t, ops[0].Ticket.Retitle)
	require.Equal(t, titleWarn, ops[0].Ticket.Title)
	require.Equal(t, "update #1, comment #1", h.flush())
	require.Equal(t, "", h.tick(63*time.Minute), "said once")

	// Not flapping any more: an ok resolves after resolve_after as usual.
	require.Equal(t, "", h.step(64*time.Minute, "warn", "ok", 0.5))
	require.Equal(t, "resolve #1", h.tick(80*time.Minute))
}

// TestFlappingClearedAtResolve: an alert that settles back to ok loses the
// mark with its resolve.
func TestFlappingClearedAtResolve(t *testing.T) {
	h, u := newUpdateHarness(t, testConfig())
	require.Equal(t, "open #1 L2", h.step(0, "ok", "warn", 0.85))
	require.Equal(t, "", h.step(time.Minute, "warn", "ok", 0.5))
	require.Equal(t, "comment #1", h.step(2*time.Minute, "ok", "warn", 0.85))
	require.Equal(t, "update #1, comment #1", h.step(3*time.Minute, "warn", "ok", 0.5))
	require.Equal(t, "", h.tick(30*time.Minute))
	ops := h.tickQueued(70 * time.Minute)
	require.Len(t, ops, 1)
	require.Equal(t, OpResolve, ops[0].Kind)
	require.True(t, ops[0].Ticket.Retitle)
	require.Equal(t, "update #1, resolve #1", h.flush())
	require.Equal(t, titleWarn, u.lastTitle(), "no mark, and the value it fired with")
}

// TestReopenRetitlesWithFreshDiagnostics: a reopen sets the title of the
// new breach (here at warn after crit) and its text carries the
// diagnostics the transition brought (taken as it started firing again).
func TestReopenRetitlesWithFreshDiagnostics(t *testing.T) {
	h, u := newUpdateHarness(t, testConfig())
	require.Equal(t, "open #1 L2, escalate L3 #1", h.step(0, "ok", "crit", 0.95))
	require.Equal(t, "", h.step(time.Minute, "crit", "ok", 0.5))
	require.Equal(t, "resolve #1", h.tick(20*time.Minute))

	a := h.transition(time.Hour, "ok", "warn", 0.85)
	a.Details = "Largest directories under /var:\n  4.9 GiB  /var/log"
	require.NoError(t, h.svc.Manager.Handle(a))
	ops := h.queued()
	require.Len(t, ops, 1)
	require.Equal(t, OpReopen, ops[0].Kind)
	require.True(t, ops[0].Ticket.Retitle)
	require.Equal(t, titleWarn, ops[0].Ticket.Title, "no longer the crit title")
	require.Contains(t, ops[0].Text, "Reopened: disk_used_ratio is warn again")
	require.Contains(t, ops[0].Text, "\n\nDiagnostics now:\n  Largest directories under /var:\n    4.9 GiB  /var/log\n")
	require.Equal(t, "update #1, reopen #1", h.flush())
	require.Equal(t, titleWarn, u.lastTitle())
}

// TestSLAEscalationTakesFreshDiagnostics: an escalation by SLA asks for
// diagnostics afresh and carries them; when they cannot be taken, it says
// so and shows the older ones.
func TestSLAEscalationTakesFreshDiagnostics(t *testing.T) {
	cfg := testConfig()
	cfg.VendorTier = true
	h, _ := newUpdateHarness(t, cfg)
	var asked []string
	fail := false
	h.svc.Manager.Diagnostics = func(ctx context.Context, key string) (string, error) {
		require.NoError(t, ctx.Err())
		asked = append(asked, key)
		if fail {
			return "", errors.New("check \"disk\" is not running")
		}
		return "Largest directories under /var (at the escalation):\n  7.9 GiB  /var/log/journal", nil
	}
	a := h.transition(0, "ok", "warn", 0.85)
	a.Details = "Largest directories under /var (when it fired):\n  1.0 GiB  /var/log"
	require.NoError(t, h.svc.Manager.Handle(a))
	require.Equal(t, "open #1 L2", h.flush())

	require.Equal(t, "", h.tick(7*time.Hour))
	require.Empty(t, asked, "no diagnostics until an escalation is due")
	ops := h.tickQueued(8 * time.Hour)
	require.Equal(t, []string{h.key}, asked)
	require.Len(t, ops, 1)
	require.Equal(t, OpEscalate, ops[0].Kind)
	require.Contains(t, ops[0].Ticket.Body, "(at the escalation)")
	require.Contains(t, ops[0].Ticket.Body, "/var/log/journal")
	require.NotContains(t, ops[0].Ticket.Body, "(when it fired)")
	require.Equal(t, "escalate L3 #1", h.flush())

	fail = true
	ops = h.tickQueued(16 * time.Hour)
	require.Len(t, ops, 1)
	require.Contains(t, ops[0].Text, `diagnostics could not be taken again: check "disk" is not running; those below are older`)
	require.Contains(t, ops[0].Ticket.Body, "(at the escalation)", "the last ones taken")
	require.Equal(t, "escalate L4 #1", h.flush())
}

// tickQueued runs Tick at t0+at without delivering and returns the ops
// it queued.
func (h *harness) tickQueued(at time.Duration) []Op {
	h.t.Helper()
	require.Empty(h.t, h.queued())
	require.NoError(h.t, h.svc.Manager.Tick(context.Background(), h.t0.Add(at)))
	return h.queued()
}

// TestRetitleFailures: a title the system refuses (final) is logged and
// counted and the comment still goes; a retryable failure retries the
// whole op, the comment once.
func TestRetitleFailures(t *testing.T) {
	h, u := newUpdateHarness(t, testConfig())
	d := h.svc.Deliverers()[0]
	d.sleep = func(context.Context, time.Duration) error { return nil }
	require.Equal(t, "open #1 L2", h.step(0, "ok", "warn", 0.85))

	u.failN, u.failErr = 1, rest.CheckStatus("update", http.StatusForbidden, nil, []byte("Permission Denied"))
	require.Equal(t, "comment #1, escalate L3 #1", h.step(time.Minute, "warn", "crit", 0.95), "the comment goes without the title")
	require.Equal(t, 1.0, testutil.ToFloat64(d.metrics.errors.WithLabelValues("rec", "http_4xx")))

	u.failN, u.failErr = 2, Retryable("network", errors.New("connection refused"))
	require.NoError(t, h.svc.Manager.Handle(h.transition(2*time.Minute, "crit", "warn", 0.85)))
	left, err := d.drain(context.Background(), true)
	require.NoError(t, err)
	require.Equal(t, 0, left)
	require.Equal(t, "update #1, comment #1", h.rec.take(), "retried until the title is set, then the comment, once")
	require.Equal(t, titleWarn, u.lastTitle())
}
