package ticketing

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/l2agent/l2agent/internal/alert"
	"github.com/l2agent/l2agent/internal/rest"
	"github.com/l2agent/l2agent/internal/testkit"
)

func TestRetryHonoursRetryAfterAndBackoff(t *testing.T) {
	h := newHarness(t, testConfig())
	d := h.svc.Deliverers()[0]
	var waits []time.Duration
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	d.sleep = func(_ context.Context, w time.Duration) error { waits = append(waits, w); return nil }
	h.rec.failN = 2
	h.rec.failErr = rest.CheckStatus("open", http.StatusTooManyRequests, http.Header{"Retry-After": {"7"}}, []byte("slow down"))
	require.NoError(t, h.svc.Manager.Handle(tr(h.key, "ok", "warn", h.t0)))
	left, err := d.drain(ctx, true)
	require.NoError(t, err)
	require.Equal(t, 0, left)
	require.Equal(t, []time.Duration{7 * time.Second, 7 * time.Second}, waits, "Retry-After wins over a shorter backoff")
	require.Equal(t, "open #1 L2", h.rec.take(), "delivered once, after the retries")
}

func TestFinalErrorIsNotRetried(t *testing.T) {
	h := newHarness(t, testConfig())
	d := h.svc.Deliverers()[0]
	d.sleep = func(context.Context, time.Duration) error { t.Fatal("a 400 must not be retried"); return nil }
	h.rec.failN = 1
	h.rec.failErr = rest.CheckStatus("open", http.StatusBadRequest, nil, []byte(`{"message":"Queue not found"}`))
	require.NoError(t, h.svc.Manager.Handle(tr(h.key, "ok", "warn", h.t0)))
	left, err := d.drain(context.Background(), true)
	require.NoError(t, err)
	require.Equal(t, 0, left, "set aside, so later ops are not blocked")
	require.Equal(t, "", h.rec.take())
}

func TestOutageKeepsOpsUntilDelivered(t *testing.T) {
	h := newHarness(t, testConfig())
	h.rec.failN = 1000
	h.rec.failErr = Retryable("network", errors.New("connection refused"))
	require.NoError(t, h.svc.Manager.Handle(tr(h.key, "ok", "warn", h.t0)))
	left := h.svc.Flush(context.Background())
	require.Equal(t, 1, left["rec"], "the op waits in the outbox")
	require.Equal(t, 1, h.svc.Store.Pending("rec"))
	h.rec.failN = 0
	left = h.svc.Flush(context.Background())
	require.Equal(t, 0, left["rec"])
	require.Equal(t, "open #1 L2", h.rec.take())
	require.Equal(t, "", h.flush(), "delivered once")
}

// TestCrashBetweenOpenAndRecord: the backend has the ticket but the store
// never recorded it (a crash); the replayed open finds it instead of opening.
func TestCrashBetweenOpenAndRecord(t *testing.T) {
	h := newHarness(t, testConfig())
	_, err := h.rec.Open(context.Background(), Ticket{Key: h.key, Tier: L2}) // "created before the crash"
	require.NoError(t, err)
	h.rec.take()
	require.NoError(t, h.svc.Manager.Handle(tr(h.key, "ok", "warn", h.t0)))
	require.Equal(t, "", h.flush(), "no second ticket")
	inc, err := h.svc.Store.Incident(h.key)
	require.NoError(t, err)
	require.Equal(t, "1", inc.Refs["rec"].ID, "the found ticket is recorded")
	require.Equal(t, "comment #1, escalate L3 #1", h.step(time.Minute, "warn", "crit", 0.95))
}

// TestFoundResolvedIsReopened: the key's ticket that Find returns is
// resolved (a backend takes one back within its reuse_resolved, after the
// store forgot the incident): the new incident reopens it, with its text,
// instead of attaching to a ticket that stays resolved.
func TestFoundResolvedIsReopened(t *testing.T) {
	h := newHarness(t, testConfig())
	ref, err := h.rec.Open(context.Background(), Ticket{Key: h.key, Tier: L2}) // an earlier incident's, store forgotten
	require.NoError(t, err)
	require.NoError(t, h.rec.Resolve(context.Background(), ref, "done"))
	h.rec.take()
	require.Equal(t, "reopen #1", h.step(0, "ok", "warn", 0.85), "reopened, not opened again nor taken as it is")
	require.Equal(t, "open", h.rec.status["1"])
	inc, err := h.svc.Store.Incident(h.key)
	require.NoError(t, err)
	require.Equal(t, Ref{ID: "1"}, inc.Refs["rec"], "recorded, without the transient Resolved")
	require.Equal(t, "comment #1, escalate L3 #1", h.step(time.Minute, "warn", "crit", 0.95))

	// an open ticket found is taken as it is
	h2 := newHarness(t, testConfig())
	_, err = h2.rec.Open(context.Background(), Ticket{Key: h2.key, Tier: L2})
	require.NoError(t, err)
	h2.rec.take()
	require.Equal(t, "", h2.step(0, "ok", "warn", 0.85))
}

// TestCrashAfterOpen: the process dies (here: a panic from the test hook)
// right after the backend created the ticket and before the store recorded
// it; after a restart the open is replayed, finds the ticket by key and
// records it instead of opening a second one.
func TestCrashAfterOpen(t *testing.T) {
	dir := t.TempDir()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	st, err := OpenStore(filepath.Join(dir, "l2agent.db"), false, log)
	require.NoError(t, err)
	rec := newRecorder()
	svc := NewService(testConfig(), st, []string{"rec"}, map[string]Ticketer{"rec": rec}, "test", log, nil)
	svc.Deliverers()[0].afterOpen = func(Ref) { panic("crash") }
	require.NoError(t, svc.Manager.Handle(tr("k", "ok", "warn", time.Now())))
	require.PanicsWithValue(t, "crash", func() { svc.Deliverers()[0].drain(context.Background(), true) })
	require.NoError(t, svc.Stop())
	require.Equal(t, "open #1 L2", rec.take(), "the backend has the ticket")

	st, err = OpenStore(filepath.Join(dir, "l2agent.db"), false, log)
	require.NoError(t, err)
	svc = NewService(testConfig(), st, []string{"rec"}, map[string]Ticketer{"rec": rec}, "test", log, nil)
	defer svc.Stop()
	require.Equal(t, 1, st.Pending("rec"), "the open is still in the outbox")
	require.Equal(t, 0, svc.Flush(context.Background())["rec"])
	require.Equal(t, "", rec.take(), "no second ticket")
	inc, err := st.Incident("k")
	require.NoError(t, err)
	require.Equal(t, "1", inc.Refs["rec"].ID, "the found ticket is recorded")
}

func TestOutboxSurvivesRestart(t *testing.T) {
	dir := t.TempDir()
	log := testkit.QuietLogger()
	st, err := OpenStore(filepath.Join(dir, "l2agent.db"), false, log)
	require.NoError(t, err)
	rec := newRecorder()
	svc := NewService(testConfig(), st, []string{"rec"}, map[string]Ticketer{"rec": rec}, "test", log, nil)
	require.NoError(t, svc.Manager.Handle(tr("k", "ok", "crit", time.Now())))
	require.NoError(t, svc.Stop())

	st, err = OpenStore(filepath.Join(dir, "l2agent.db"), false, log)
	require.NoError(t, err)
	svc = NewService(testConfig(), st, []string{"rec"}, map[string]Ticketer{"rec": rec}, "test", log, nil)
	defer svc.Stop()
	require.Equal(t, 2, st.Pending("rec"))
	require.Equal(t, 0, svc.Flush(context.Background())["rec"])
	require.Equal(t, "open #1 L2, escalate L3 #1", rec.take(), "resumed in order")
}

func TestCorruptStoreIsMovedAside(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "l2agent.db")
	junk := []byte(strings.Repeat("not a bbolt file ", 1000))
	require.NoError(t, os.WriteFile(p, junk, 0o600))
	st, err := OpenStore(p, false, testkit.QuietLogger())
	require.NoError(t, err)
	defer st.Close()
	matches, _ := filepath.Glob(p + ".corrupt-*")
	require.Len(t, matches, 1, "the unreadable file is kept aside")
	kept, err := os.ReadFile(matches[0])
	require.NoError(t, err)
	require.Equal(t, junk, kept, "never emptied")
}

func TestStoreLockedIsClear(t *testing.T) {
	p := filepath.Join(t.TempDir(), "l2agent.db")
	st, err := OpenStore(p, false, testkit.QuietLogger())
	require.NoError(t, err)
	defer st.Close()
	_, err = OpenStore(p, true, testkit.QuietLogger())
	require.ErrorIs(t, err, ErrStoreLocked)
}

func TestRenderBounded(t *testing.T) {
	inc := &Incident{Key: "k", Host: "web-7", Check: "disk", Metric: "disk_used_ratio", Labels: map[string]string{"mountpoint": "/var"},
		Severity: alert.StateCrit, Tier: L3, Value: 0.934, Threshold: 0.9, Details: strings.Repeat("x ", 20000)}
	require.Equal(t, "[l2agent] web-7: disk /var disk_used_ratio 93.4% (crit ≥ 90.0%)", Title(inc))
	b := Body(inc, time.Now(), "v1")
	require.LessOrEqual(t, len(b), MaxBody)
	require.Contains(t, b, "truncated")
}
