package ticketing

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
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

// bodies is a recorder that also keeps what each open and reopen said.
type bodies struct {
	*recorder
	mu        sync.Mutex
	texts     []string
	pasts     []*Past
	escalated string // the text of the last escalation
}

func (b *bodies) Escalate(ctx context.Context, r Ref, tier Tier, t Ticket) error {
	b.mu.Lock()
	b.escalated = t.Body
	b.mu.Unlock()
	return b.recorder.Escalate(ctx, r, tier, t)
}

func (b *bodies) Open(ctx context.Context, t Ticket) (Ref, error) {
	b.mu.Lock()
	b.texts, b.pasts = append(b.texts, t.Body), append(b.pasts, t.Past)
	b.mu.Unlock()
	return b.recorder.Open(ctx, t)
}

func (b *bodies) Reopen(ctx context.Context, r Ref, text string) error {
	b.mu.Lock()
	b.texts = append(b.texts, text)
	b.mu.Unlock()
	return b.recorder.Reopen(ctx, r, text)
}

func (b *bodies) last() (string, *Past) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.texts[len(b.texts)-1], b.pasts[len(b.pasts)-1]
}

func newBodiesHarness(t *testing.T, cfg configs.Ticketing) (*harness, *bodies) {
	st := openTestStore(t, filepath.Join(t.TempDir(), "l2agent.db"))
	be := &bodies{recorder: newRecorder()}
	svc := NewService(cfg, st, []string{"rec"}, map[string]Ticketer{"rec": be}, "test", testkit.QuietLogger(), nil)
	t.Cleanup(func() { svc.Stop() })
	return &harness{t: t, svc: svc, rec: be.recorder, t0: time.Date(2026, 11, 24, 8, 0, 0, 0, time.UTC)}, be
}

// mount is the transition of the disk alert of mountpoint mp.
func (h *harness) mount(mp string, at time.Duration, from, to string, v float64) alert.Transition {
	a := h.transition(at, from, to, v)
	a.Labels = map[string]string{"mountpoint": mp}
	a.Key = alert.Key("web-7", "disk", "disk_used_ratio", a.Labels)
	a.BreachAt = h.t0.Add(at)
	return a
}

// episode fires the alert of mp at t0+at, clears it 10 minutes later and
// resolves it after resolve_after.
func (h *harness) episode(mp string, at time.Duration) string {
	h.t.Helper()
	calls := h.send(h.mount(mp, at, "ok", "warn", 0.85))
	calls += ", " + h.send(h.mount(mp, at+10*time.Minute, "warn", "ok", 0.5))
	return calls + ", " + h.tick(at+30*time.Minute)
}

func TestHistoryInNewTickets(t *testing.T) {
	cfg := testConfig()
	cfg.ReopenWindow = configs.Duration(time.Hour)
	h, be := newBodiesHarness(t, cfg)
	require.Equal(t, "open #1 L2, , resolve #1", h.episode("/var", 0))
	text, past := be.last()
	require.NotContains(t, text, "This happened before", "no history: no section")
	require.Nil(t, past)

	require.Equal(t, "open #2 L2, , resolve #2", h.episode("/var", 48*time.Hour))
	require.Equal(t, "open #3 L2, , resolve #3", h.episode("/srv", 50*time.Hour))
	require.Equal(t, "open #4 L2, , resolve #4", h.episode("/var", 60*24*time.Hour))

	text, past = be.last()
	require.Contains(t, text, "\nThis happened before (UTC):\n"+
		"  This alert: 0 time(s) in 30 days, 2 in 90 days. Last:\n"+
		"    2026-11-26 08:00  10m      cleared                      rec #2\n"+
		"    2026-11-24 08:00  10m      cleared                      rec #1\n"+
		"  Same check, other mount: 0 time(s) in 30 days, 1 in 90 days. Last:\n"+
		"    2026-11-26 10:00  10m      cleared                      /srv  rec #3\n")
	require.NotNil(t, past)
	require.Len(t, past.SameKey, 2)
	require.Equal(t, Ref{ID: "2"}, past.SameKey[0].Tickets["rec"])
	require.Equal(t, 600.0, past.SameKey[0].DurationSeconds)
	require.Equal(t, EndCleared, past.SameKey[0].Outcome)
	require.Equal(t, 2, past.Last90d)
	require.Equal(t, 1, past.OtherLast90d)
	require.Equal(t, "/srv", past.Other[0].Labels["mountpoint"])

	hist, err := h.svc.Store.History(testkit.QuietLogger())
	require.NoError(t, err)
	require.Len(t, hist, 4)
	require.Equal(t, "4", hist[3].Refs["rec"].ID)
	require.Equal(t, alert.StateWarn, hist[3].Severity)
}

// A reopened ticket carries the history too, in the reopen comment, with
// the episode before it (the same ticket) and what fixed it.
func TestHistoryInReopen(t *testing.T) {
	h, be := newBodiesHarness(t, testConfig())
	first := h.mount("/var", 0, "ok", "warn", 0.85)
	first.Attempts = []alert.Attempt{{At: h.t0, Action: "disk_cleanup", Result: "failed: still 85%"}}
	require.Equal(t, "open #1 L2", h.send(first))
	require.Equal(t, "", h.send(h.mount("/var", 10*time.Minute, "warn", "ok", 0.5)))
	require.Equal(t, "resolve #1", h.tick(30*time.Minute))
	require.Equal(t, "reopen #1", h.send(h.mount("/var", time.Hour, "ok", "warn", 0.85)))
	text, _ := be.last()
	require.Contains(t, text, "This alert: 1 time(s) in 30 days, 1 in 90 days.")
	require.Contains(t, text, "rec #1")
	hist, err := h.svc.Store.History(nil)
	require.NoError(t, err)
	require.Equal(t, []PastAttempt{{At: h.t0, Action: "disk_cleanup", Result: "failed: still 85%"}}, hist[0].Attempts)
}

func TestLastFixShown(t *testing.T) {
	at := time.Date(2026, 11, 1, 8, 0, 0, 0, time.UTC)
	hist := []PastIncident{{Key: "k", Host: "h", Check: "disk", Metric: "m", Began: at, Ended: at.Add(time.Hour), Outcome: EndFixed, FixedBy: "disk_cleanup",
		Attempts: []PastAttempt{{At: at, Action: "disk_cleanup", Result: "ok: freed 2 GiB", Success: true}}}}
	p := pastFor(hist, &Incident{Key: "k", Host: "h", Check: "disk", Metric: "m"}, 3, at.Add(24*time.Hour))
	require.Equal(t, &PastFix{At: at, Action: "disk_cleanup", Result: "ok: freed 2 GiB"}, p.LastFix)
	require.Contains(t, pastText(p), "  What fixed it last time: disk_cleanup, 2026-11-01 08:00 (ok: freed 2 GiB)\n")
	require.Contains(t, pastText(p), "fixed by an action")
	require.Nil(t, pastFor(hist, &Incident{Key: "k2", Host: "h", Check: "cpu", Metric: "m"}, 3, at), "another check: nothing")
}

// past is a record of key that ended at at.
func past(key string, at time.Time) PastIncident {
	return PastIncident{Key: key, Host: "web-7", Check: "disk", Metric: "disk_used_ratio", Began: at.Add(-time.Hour), Ended: at, Outcome: EndCleared}
}

func openTestStore(t *testing.T, path string) *Store {
	st, err := OpenStore(path, false, testkit.QuietLogger())
	require.NoError(t, err)
	return st
}

func keysEnded(t *testing.T, st *Store) []string {
	hist, err := st.History(nil)
	require.NoError(t, err)
	var out []string
	for _, p := range hist {
		out = append(out, fmt.Sprintf("%s@%d", p.Key, p.Ended.Hour()))
	}
	return out
}

// Past the caps, the oldest records go first: those of the key past
// max_per_key, then the oldest of all past max_total; past keep, any.
func TestHistoryBounded(t *testing.T) {
	st := openTestStore(t, filepath.Join(t.TempDir(), "l2agent.db"))
	defer st.Close()
	cfg := configs.History{Keep: configs.Duration(30 * 24 * time.Hour), MaxPerKey: 3, MaxTotal: 5}
	t0 := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	for i := range 5 {
		at := t0.Add(time.Duration(i) * time.Hour)
		require.NoError(t, st.AddPast(past("a", at), cfg, at))
	}
	require.Equal(t, []string{"a@2", "a@3", "a@4"}, keysEnded(t, st), "max_per_key: the 2 oldest of a went")
	for i := 5; i < 9; i++ {
		at := t0.Add(time.Duration(i) * time.Hour)
		require.NoError(t, st.AddPast(past("b", at), cfg, at))
	}
	require.Equal(t, []string{"a@3", "a@4", "b@6", "b@7", "b@8"}, keysEnded(t, st), "max_per_key 3 dropped b@5, max_total 5 a@2")
	require.NoError(t, st.AddPast(past("c", t0.Add(9*time.Hour)), cfg, t0.Add(9*time.Hour)))
	require.Equal(t, []string{"a@4", "b@6", "b@7", "b@8", "c@9"}, keysEnded(t, st), "max_total: the oldest of all went")
	late := t0.Add(30*24*time.Hour + 5*time.Hour)
	require.NoError(t, st.AddPast(past("d", late), cfg, late))
	require.Equal(t, []string{"b@6", "b@7", "b@8", "c@9", "d@5"}, keysEnded(t, st), "keep: ended more than 30d ago went")
}

// The history is in the store file: it survives closing and reopening the
// store (a restart, an upgrade that keeps state_dir), and a read-only open
// (`tickets history` with no agent running) reads it.
func TestHistorySurvivesReopen(t *testing.T) {
	path := filepath.Join(t.TempDir(), "l2agent.db")
	st := openTestStore(t, path)
	cfg := configs.History{MaxPerKey: 3, MaxTotal: 5}
	at := time.Date(2026, 11, 1, 7, 0, 0, 0, time.UTC)
	require.NoError(t, st.AddPast(past("a", at), cfg, at))
	require.NoError(t, st.Close())
	ro, err := OpenStore(path, true, testkit.QuietLogger())
	require.NoError(t, err)
	require.Equal(t, []string{"a@7"}, keysEnded(t, ro))
	require.NoError(t, ro.Close())
	st = openTestStore(t, path)
	defer st.Close()
	require.Equal(t, []string{"a@7"}, keysEnded(t, st))
}

// A record that cannot be read is skipped with a log line; tickets go on,
// with the records that can be read.
func TestHistoryCorruptRecordSkipped(t *testing.T) {
	cfg := testConfig()
	cfg.ReopenWindow = configs.Duration(time.Hour)
	h, be := newBodiesHarness(t, cfg)
	var logs bytes.Buffer
	h.svc.Manager.log = slog.New(slog.NewTextHandler(&logs, nil))
	require.Equal(t, "open #1 L2, , resolve #1", h.episode("/var", 0))
	require.NoError(t, h.svc.Store.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketHistory)
		seq, _ := b.NextSequence()
		return b.Put(seqKey(seq), []byte(`{"key": "web-7/disk`))
	}))
	require.Equal(t, "open #2 L2, , resolve #2", h.episode("/var", 48*time.Hour))
	require.Contains(t, logs.String(), "incident history: skipping a record that cannot be read")
	text, _ := be.last()
	require.Contains(t, text, "This alert: 1 time(s) in 30 days, 1 in 90 days.")
	hist, err := h.svc.Store.History(nil)
	require.NoError(t, err)
	require.Len(t, hist, 2, "the corrupt record is skipped, the others read")
}

// A resolve and the next incident's open (past the reopen window) that wait
// in one outbox group (the backend was down, or the resolve was in doubt
// after a restart) file a new ticket, not the resolved one.
func TestResolveThenNewOpenInOneGroup(t *testing.T) {
	cfg := testConfig()
	cfg.ReopenWindow = configs.Duration(time.Minute)
	h, _ := newBodiesHarness(t, cfg)
	require.Equal(t, "open #1 L2", h.send(h.mount("/var", 0, "ok", "warn", 0.85)))
	require.NoError(t, h.svc.Manager.Handle(h.mount("/var", time.Minute, "warn", "ok", 0.5)))
	require.NoError(t, h.svc.Manager.Tick(context.Background(), h.t0.Add(20*time.Minute)))
	require.NoError(t, h.svc.Manager.Handle(h.mount("/var", time.Hour, "ok", "warn", 0.85)))
	require.Equal(t, "resolve #1, open #2 L2", h.flush())
	inc := h.incident2(alert.Key("web-7", "disk", "disk_used_ratio", map[string]string{"mountpoint": "/var"}))
	require.Equal(t, "2", inc.Refs["rec"].ID)
	require.Equal(t, "1", inc.PrevRefs["rec"].ID)
}

// An incident that ended while its open waited in the outbox (the backend
// was down all along) gets its ticket in the history once the open is
// delivered.
func TestHistoryRefAfterOutage(t *testing.T) {
	cfg := testConfig()
	cfg.ReopenWindow = configs.Duration(time.Hour)
	h, be := newBodiesHarness(t, cfg)
	be.failN, be.failErr = 1000, Retryable("http_503", fmt.Errorf("down"))
	require.NoError(t, h.svc.Manager.Handle(h.mount("/var", 0, "ok", "warn", 0.85)))
	require.NoError(t, h.svc.Manager.Handle(h.mount("/var", 10*time.Minute, "warn", "ok", 0.5)))
	require.NoError(t, h.svc.Manager.Tick(context.Background(), h.t0.Add(30*time.Minute)))
	hist, err := h.svc.Store.History(nil)
	require.NoError(t, err)
	require.Len(t, hist, 1)
	require.Empty(t, hist[0].Refs, "not delivered yet")
	be.failN = 0
	require.Equal(t, "open #1 L2, resolve #1", h.flush())
	hist, err = h.svc.Store.History(nil)
	require.NoError(t, err)
	require.Equal(t, map[string]Ref{"rec": {ID: "1"}}, hist[0].Refs)
}

// A past ticket is named as people name it: a ServiceNow incident by its
// number, not its sys_id; others by #ID.
func TestPastEntryNamesTickets(t *testing.T) {
	var b strings.Builder
	writePastEntry(&b, PastEntry{
		Began: time.Date(2026, 11, 24, 8, 0, 0, 0, time.UTC), DurationSeconds: 600, Outcome: EndCleared,
		Tickets: map[string]Ref{
			"rt":   {ID: "42", URL: "https://rt.example/Ticket/Display.html?id=42"},
			"snow": {ID: "a1b2c3d4e5f60718293a4b5c6d7e8f90", Name: "INC0010001", URL: "https://x.service-now.com/nav_to.do"},
		},
	})
	require.Equal(t, "    2026-11-24 08:00  10m      cleared                      rt #42 https://rt.example/Ticket/Display.html?id=42  snow INC0010001 https://x.service-now.com/nav_to.do\n", b.String())
	require.NotContains(t, b.String(), "a1b2c3d4")
}
