package ticketing

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	bolt "go.etcd.io/bbolt"

	"github.com/l2agent/l2agent/configs"
	"github.com/l2agent/l2agent/internal/alert"
	"github.com/l2agent/l2agent/internal/testkit"
)

// recorder is a Ticketer that records every call, keyed like a real system.
type recorder struct {
	mu      sync.Mutex
	calls   []string
	tickets map[string]string // id → key
	status  map[string]string
	tier    map[string]Tier
	failN   int   // fail this many next calls
	failErr error // with this error
}

func newRecorder() *recorder {
	return &recorder{tickets: map[string]string{}, status: map[string]string{}, tier: map[string]Tier{}}
}

func (r *recorder) fail() error {
	if r.failN > 0 {
		r.failN--
		return r.failErr
	}
	return nil
}

func (r *recorder) Find(_ context.Context, key string) (Ref, bool, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	best := 0
	for id, k := range r.tickets {
		var n int
		fmt.Sscan(id, &n)
		if k == key && n > best {
			best = n
		}
	}
	if best == 0 {
		return Ref{}, false, nil
	}
	id := fmt.Sprint(best)
	return Ref{ID: id, Resolved: r.status[id] == "resolved"}, true, nil
}

func (r *recorder) Open(_ context.Context, t Ticket) (Ref, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if err := r.fail(); err != nil {
		return Ref{}, err
	}
	id := fmt.Sprint(len(r.tickets) + 1)
	r.tickets[id], r.status[id], r.tier[id] = t.Key, "open", t.Tier
	r.calls = append(r.calls, "open #"+id+" "+t.Tier.String())
	return Ref{ID: id}, nil
}

func (r *recorder) do(call string, ref Ref, f func()) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if err := r.fail(); err != nil {
		return err
	}
	r.calls = append(r.calls, call+" #"+ref.ID)
	if f != nil {
		f()
	}
	return nil
}

func (r *recorder) Comment(_ context.Context, ref Ref, text string) error {
	return r.do("comment", ref, nil)
}
func (r *recorder) Escalate(_ context.Context, ref Ref, tier Tier, _ Ticket) error {
	return r.do("escalate "+tier.String(), ref, func() { r.tier[ref.ID] = tier })
}
func (r *recorder) Resolve(_ context.Context, ref Ref, _ string) error {
	return r.do("resolve", ref, func() { r.status[ref.ID] = "resolved" })
}
func (r *recorder) Reopen(_ context.Context, ref Ref, _ string) error {
	return r.do("reopen", ref, func() { r.status[ref.ID] = "open" })
}

func (r *recorder) take() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	s := strings.Join(r.calls, ", ")
	r.calls = nil
	return s
}

func testConfig() configs.Ticketing {
	var c configs.Ticketing
	c.Flapping = configs.Recurrence{Count: 4, Window: configs.Duration(time.Hour)}
	c.Recurrence = configs.Recurrence{Count: 2, Window: configs.Duration(24 * time.Hour)}
	c.ApplyDefaults("")
	return c
}

type harness struct {
	t   *testing.T
	svc *Service
	rec *recorder
	t0  time.Time
	key string
}

func newHarness(t *testing.T, cfg configs.Ticketing) *harness {
	st, err := OpenStore(filepath.Join(t.TempDir(), "l2agent.db"), false, testkit.QuietLogger())
	require.NoError(t, err)
	rec := newRecorder()
	svc := NewService(cfg, st, []string{"rec"}, map[string]Ticketer{"rec": rec}, "test", testkit.QuietLogger(), nil)
	t.Cleanup(func() { svc.Stop() })
	return &harness{t: t, svc: svc, rec: rec, t0: time.Date(2026, 11, 24, 8, 0, 0, 0, time.UTC), key: `web-7/disk/disk_used_ratio{mountpoint="/var"}`}
}

// tr is the transition of key from one state to another, named.
func tr(key, from, to string, at time.Time) alert.Transition {
	var f, t alert.State
	if err := errors.Join(f.UnmarshalText([]byte(from)), t.UnmarshalText([]byte(to))); err != nil {
		panic(err)
	}
	return alert.Transition{Alert: alert.Alert{Key: key, State: t}, From: f, At: at}
}

// transition is the harness key's transition at t0+at, as the evaluator
// makes it.
func (h *harness) transition(at time.Duration, from, to string, v float64) alert.Transition {
	a := tr(h.key, from, to, h.t0.Add(at))
	a.Host, a.Check, a.Metric, a.Labels = "web-7", "disk", "disk_used_ratio", map[string]string{"mountpoint": "/var"}
	a.Value, a.Threshold, a.BreachAt, a.Reason = v, map[string]float64{"warn": 0.8, "crit": 0.9}[to], h.t0, "test"
	return a
}

// step feeds a transition at t0+at, delivers, and returns the calls made.
func (h *harness) step(at time.Duration, from, to string, v float64) string {
	h.t.Helper()
	return h.send(h.transition(at, from, to, v))
}

// send feeds a, delivers, and returns the calls made.
func (h *harness) send(a alert.Transition) string {
	h.t.Helper()
	require.NoError(h.t, h.svc.Manager.Handle(a))
	return h.flush()
}

func (h *harness) tick(at time.Duration) string {
	h.t.Helper()
	require.NoError(h.t, h.svc.Manager.Tick(context.Background(), h.t0.Add(at)))
	return h.flush()
}

func (h *harness) flush() string {
	h.t.Helper()
	left := h.svc.Flush(context.Background())
	require.Equal(h.t, 0, left["rec"])
	return h.rec.take()
}

func TestLifeCycle(t *testing.T) {
	h := newHarness(t, testConfig())
	require.Equal(t, "", h.step(0, "ok", "pending", 0.85), "pending files nothing")
	require.Equal(t, "open #1 L2", h.step(time.Minute, "pending", "warn", 0.85))
	require.Equal(t, "", h.step(2*time.Minute, "warn", "warn", 0.86), "no change, no noise")
	require.Equal(t, "comment #1, escalate L3 #1", h.step(3*time.Minute, "warn", "crit", 0.95), "crit: comment and escalate")
	require.Equal(t, "comment #1", h.step(4*time.Minute, "crit", "warn", 0.85), "back to warn: comment, no de-escalation")
	require.Equal(t, "", h.step(5*time.Minute, "warn", "ok", 0.5))
	require.Equal(t, "", h.tick(10*time.Minute), "not yet ok for resolve_after (15m)")
	require.Equal(t, "resolve #1", h.tick(21*time.Minute))
	require.Equal(t, "", h.tick(22*time.Minute), "resolved once")
	// Recurs within reopen_window: the same ticket.
	require.Equal(t, "reopen #1", h.step(time.Hour, "ok", "warn", 0.85))
	require.Equal(t, "", h.step(time.Hour+time.Minute, "warn", "ok", 0.5))
	require.Equal(t, "resolve #1", h.tick(time.Hour+20*time.Minute))
	// Recurs again: recurrence count (2) reached → escalate (already L3 → L4 not enabled: nothing).
	require.Equal(t, "reopen #1", h.step(2*time.Hour, "ok", "warn", 0.85))
	require.Equal(t, "", h.step(2*time.Hour+time.Minute, "warn", "ok", 0.5))
	require.Equal(t, "resolve #1", h.tick(2*time.Hour+20*time.Minute))
	// After the reopen window: a new ticket that links the previous one.
	require.Equal(t, "open #2 L2", h.step(30*time.Hour, "ok", "warn", 0.85))
	inc, err := h.svc.Store.Incident(h.key)
	require.NoError(t, err)
	require.Equal(t, "1", inc.PrevRefs["rec"].ID)
	require.Equal(t, "2", inc.Refs["rec"].ID)
	require.Contains(t, Body(inc, h.t0.Add(30*time.Hour), "test"), "Previous ticket:  #1 (rec)")
}

func TestRecurrenceEscalates(t *testing.T) {
	cfg := testConfig()
	cfg.EscalateOnCrit = new(bool)
	h := newHarness(t, cfg)
	require.Equal(t, "open #1 L2", h.step(0, "ok", "warn", 0.85))
	for i := 1; i <= 2; i++ {
		at := time.Duration(i) * time.Hour
		require.Equal(t, "", h.step(at, "warn", "ok", 0.5))
		require.Equal(t, "resolve #1", h.tick(at+16*time.Minute))
		want := "reopen #1"
		if i == 2 {
			want += ", escalate L3 #1"
		}
		require.Equal(t, want, h.step(at+30*time.Minute, "ok", "warn", 0.85), "recurrence %d", i)
	}
}

func TestCritOpensThenEscalates(t *testing.T) {
	h := newHarness(t, testConfig())
	require.Equal(t, "open #1 L2, escalate L3 #1", h.step(0, "pending", "crit", 0.95))
}

func TestSLAEscalation(t *testing.T) {
	cfg := testConfig()
	cfg.VendorTier = true
	h := newHarness(t, cfg)
	require.Equal(t, "open #1 L2", h.step(0, "ok", "warn", 0.85))
	require.Equal(t, "", h.tick(7*time.Hour))
	require.Equal(t, "escalate L3 #1", h.tick(8*time.Hour), "warn SLA 8h")
	require.Equal(t, "", h.tick(15*time.Hour))
	require.Equal(t, "escalate L4 #1", h.tick(16*time.Hour), "8h more at L3: vendor tier")
	require.Equal(t, "", h.tick(30*time.Hour), "no tier past L4")
}

func TestFlapping(t *testing.T) {
	h := newHarness(t, testConfig()) // 4 changes within 1h
	require.Equal(t, "open #1 L2", h.step(0, "ok", "warn", 0.85))
	require.Equal(t, "", h.step(time.Minute, "warn", "ok", 0.5))
	require.Equal(t, "comment #1", h.step(2*time.Minute, "ok", "warn", 0.85), "fired again before resolved")
	require.Equal(t, "comment #1", h.step(3*time.Minute, "warn", "ok", 0.5), "4th change: marked flapping")
	inc, _ := h.svc.Store.Incident(h.key)
	require.True(t, inc.Flapping)
	require.Contains(t, Title(inc), "[flapping]")
	require.Equal(t, "", h.step(4*time.Minute, "ok", "warn", 0.85), "no churn while flapping")
	require.Equal(t, "", h.step(5*time.Minute, "warn", "ok", 0.5))
	require.Equal(t, "", h.tick(30*time.Minute), "ok 25m but still flapping within the window: no resolve")
	require.Equal(t, "resolve #1", h.tick(70*time.Minute), "settled: resolved once")
	inc, _ = h.svc.Store.Incident(h.key)
	require.False(t, inc.Flapping)
}

func TestUnknownCommentsOnce(t *testing.T) {
	h := newHarness(t, testConfig())
	require.Equal(t, "open #1 L2", h.step(0, "ok", "warn", 0.85))
	require.Equal(t, "comment #1", h.step(time.Minute, "warn", "unknown", 0))
	require.Equal(t, "", h.step(2*time.Minute, "unknown", "unknown", 0))
	require.Equal(t, "", h.step(3*time.Minute, "unknown", "warn", 0.85), "resumes silently")
}

func TestNothingForOKOrPendingOnly(t *testing.T) {
	h := newHarness(t, testConfig())
	require.Equal(t, "", h.step(0, "ok", "pending", 0.85))
	require.Equal(t, "", h.step(time.Minute, "pending", "ok", 0.5))
	require.Equal(t, "", h.tick(time.Hour))
	incs, err := h.svc.Store.Incidents()
	require.NoError(t, err)
	require.Empty(t, incs)
}

// Remediation reaches the manager as the pipeline sends it: on the
// transition that starts firing, with what was tried, and RemediationFailed
// when the action ran and did not clear the alert.
func TestRemediationFailuresEscalate(t *testing.T) {
	cfg := testConfig()
	cfg.RemediationFailures = 2
	cfg.Flapping.Count = 10
	h := newHarness(t, cfg)
	starts := func(at time.Duration, ran bool, result string) alert.Transition {
		a := h.transition(at, "ok", "warn", 0.85)
		a.Attempts = []alert.Attempt{{At: a.At, Action: "disk_cleanup", Result: result}}
		a.RemediationFailed = ran
		return a
	}
	require.Equal(t, "open #1 L2", h.send(starts(0, true, "not_verified: freed 0 B")), "1st failure: the ticket, at L2")
	require.Equal(t, "", h.step(time.Minute, "warn", "ok", 0.5))
	require.Equal(t, "comment #1", h.send(starts(2*time.Minute, false, "skipped_cooldown: ran 1m ago")), "an action that did not run is no failure")
	require.Equal(t, "", h.step(3*time.Minute, "warn", "ok", 0.5))
	require.Equal(t, "comment #1, escalate L3 #1", h.send(starts(4*time.Minute, true, "failed: exit status 1")), "2nd failure: remediation_failures reached")

	inc, err := h.svc.Store.Incident(h.key)
	require.NoError(t, err)
	require.Equal(t, 2, inc.Failures)
	require.Equal(t, L3, inc.Tier)
	body := Body(inc, h.t0.Add(5*time.Minute), "test")
	for _, want := range []string{"disk_cleanup: not_verified: freed 0 B", "disk_cleanup: skipped_cooldown: ran 1m ago", "disk_cleanup: failed: exit status 1"} {
		require.Contains(t, body, want)
	}
}

// TestTickWritesOnlyChanges: a tick that changes no incident commits no
// transaction (no write, no fsync of the store every interval); one that
// resolves an incident does.
func TestTickWritesOnlyChanges(t *testing.T) {
	h := newHarness(t, testConfig())
	txid := func() int {
		var id int
		require.NoError(t, h.svc.Store.db.View(func(tx *bolt.Tx) error { id = tx.ID(); return nil }))
		return id
	}
	require.Equal(t, "open #1 L2", h.step(0, "ok", "warn", 0.85))
	before := txid()
	for i := range 5 {
		require.Equal(t, "", h.tick(time.Duration(i+1)*time.Minute), "an open incident, nothing due")
	}
	require.Equal(t, before, txid(), "no commit")
	require.Equal(t, "", h.step(6*time.Minute, "warn", "ok", 0.5))
	before = txid()
	require.Equal(t, "resolve #1", h.tick(time.Hour))
	require.Greater(t, txid(), before, "the resolve was committed")
}

// passes is how many times Tick read the incidents.
func (h *harness) passes() int {
	m := h.svc.Manager
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.tickPasses
}

// TestTickSkipsUntilDue: once a tick has read the incidents and found none
// due before a time, later ticks read nothing until then, unless the store
// was written or the policy changed meanwhile; what falls due is acted on
// at the same tick as without the skip.
func TestTickSkipsUntilDue(t *testing.T) {
	cfg := testConfig()
	const resolveAfter = 8 * time.Minute // within tickMaxSkip of the tick before
	cfg.ResolveAfter = configs.Duration(resolveAfter)
	h := newHarness(t, cfg)
	require.Equal(t, "open #1 L2", h.step(0, "ok", "warn", 0.85))
	require.Equal(t, "", h.tick(time.Minute))
	require.Equal(t, 1, h.passes())
	require.Equal(t, "", h.tick(2*time.Minute))
	require.Equal(t, "", h.tick(3*time.Minute))
	require.Equal(t, 1, h.passes(), "an open incident whose SLA is hours away is not read again")

	require.Equal(t, "", h.step(4*time.Minute, "warn", "ok", 0.5)) // a write: the next tick reads
	require.Equal(t, "", h.tick(5*time.Minute))
	require.Equal(t, 2, h.passes())
	require.Equal(t, "", h.tick(4*time.Minute+resolveAfter-time.Second))
	require.Equal(t, 2, h.passes(), "not due yet")
	require.Equal(t, "resolve #1", h.tick(4*time.Minute+resolveAfter), "due exactly then")
	require.Equal(t, 3, h.passes())
}

// TestTickBoundedSkip: with nothing due at all, a tick still reads the
// incidents every tickMaxSkip.
func TestTickBoundedSkip(t *testing.T) {
	h := newHarness(t, testConfig())
	require.Equal(t, "open #1 L2", h.step(0, "ok", "warn", 0.85))
	h.tick(time.Minute)
	h.tick(time.Minute + tickMaxSkip - time.Second)
	require.Equal(t, 1, h.passes())
	h.tick(time.Minute + tickMaxSkip)
	require.Equal(t, 2, h.passes())
}

// TestTickAfterReconfigure: a shorter resolve_after applies at the next
// tick, not after the time the old one gave.
func TestTickAfterReconfigure(t *testing.T) {
	h := newHarness(t, testConfig())
	require.Equal(t, "open #1 L2", h.step(0, "ok", "warn", 0.85))
	require.Equal(t, "", h.step(time.Minute, "warn", "ok", 0.5))
	require.Equal(t, "", h.tick(2*time.Minute))
	cfg := testConfig()
	cfg.ResolveAfter = configs.Duration(2 * time.Minute)
	require.Greater(t, testConfig().ResolveAfter.D(), 3*time.Minute, "the test needs a longer default")
	require.NoError(t, h.svc.Reconfigure(cfg, []string{"rec"}, map[string]Ticketer{"rec": h.rec}, h.t0.Add(2*time.Minute)))
	require.Equal(t, "resolve #1", h.tick(3*time.Minute))
}

// TestClockWakesWhenDue: the service's clock runs Tick only where it would
// act. With nothing due it stays asleep (the old ticker woke every
// interval); a write wakes it at the next interval, and an incident that
// becomes due (resolve_after) is resolved at the first interval after that,
// not before.
func TestClockWakesWhenDue(t *testing.T) {
	const interval = 20 * time.Millisecond
	cfg := testConfig()
	cfg.Interval = configs.Duration(interval)
	cfg.ResolveAfter = configs.Duration(300 * time.Millisecond)
	h := newHarness(t, cfg)
	h.svc.Start()
	require.Eventually(t, func() bool { return h.svc.clockWakes.Load() == 1 }, 5*time.Second, time.Millisecond, "the first interval")
	require.Eventually(t, func() bool { return h.svc.Manager.idleUntil().After(time.Now()) }, 5*time.Second, time.Millisecond)

	time.Sleep(25 * interval) // time passing, not a wait for an outcome: nothing may happen in it
	require.EqualValues(t, 1, h.svc.clockWakes.Load(), "no incident, no write: no wake-up in 25 intervals")

	open := h.transition(0, "ok", "warn", 0.85)
	open.At = time.Now()
	require.NoError(t, h.svc.Manager.Handle(open))
	require.Eventually(t, func() bool { return h.svc.clockWakes.Load() >= 2 }, 5*time.Second, time.Millisecond, "a write wakes the clock")

	ok := h.transition(0, "warn", "ok", 0.5)
	ok.At = time.Now()
	require.NoError(t, h.svc.Manager.Handle(ok))
	due := ok.At.Add(cfg.ResolveAfter.D())
	var inc *Incident
	require.Eventually(t, func() bool {
		var err error
		inc, err = h.svc.Store.Incident(h.key)
		return err == nil && inc != nil && !inc.Resolved.IsZero()
	}, 10*time.Second, 5*time.Millisecond, "resolved once due")
	require.False(t, inc.Resolved.Before(due), "resolved at %s, due at %s", inc.Resolved, due)
	wakes := h.svc.clockWakes.Load()
	t.Logf("clock wake-ups: %d over %s at a %s interval", wakes, time.Since(ok.At)+25*interval, interval)
}
