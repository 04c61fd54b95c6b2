package ticketing

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/l2agent/l2agent/internal/rest"
	"github.com/l2agent/l2agent/internal/testkit"
)

// applierRec is a recorder that keeps the text each operation adds to a
// ticket and says whether an op is in a ticket by its marker, as RT, Jira
// and ServiceNow do. It can die (panic) or lose its answer right after it
// applied an operation: what a crash or a timeout does between "applied by
// the backend" and "recorded in the store".
type applierRec struct {
	*recorder
	mu      sync.Mutex
	texts   map[string][]string // ticket → the texts added, in order
	lookups []string            // ops looked up, "kind event"
	// After this many more applied calls (when > 0): die, or answer with
	// a timeout although applied.
	crashAfter, loseAfter int
	lookupErr             error // Applied fails with it
}

func newApplierRec() *applierRec {
	return &applierRec{recorder: newRecorder(), texts: map[string][]string{}}
}

// applied runs after the backend applied a call: it records text and may
// crash or lose the answer.
func (a *applierRec) applied(ref Ref, text string, err error) error {
	if err != nil {
		return err
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	a.texts[ref.ID] = append(a.texts[ref.ID], text)
	return a.after()
}

func (a *applierRec) after() error {
	if a.crashAfter > 0 {
		if a.crashAfter--; a.crashAfter == 0 {
			panic("crash")
		}
	}
	if a.loseAfter > 0 {
		if a.loseAfter--; a.loseAfter == 0 {
			return rest.TransportError(context.Background(), fmt.Errorf("read answer: %w", errTimeout{}))
		}
	}
	return nil
}

type errTimeout struct{}

func (errTimeout) Error() string { return "i/o timeout" }
func (errTimeout) Timeout() bool { return true }
func (errTimeout) Temporary() bool {
	return true
}

func (a *applierRec) Open(ctx context.Context, t Ticket) (Ref, error) {
	ref, err := a.recorder.Open(ctx, t)
	if err != nil {
		return ref, err
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	return ref, a.after()
}

func (a *applierRec) Comment(ctx context.Context, ref Ref, text string) error {
	return a.applied(ref, text, a.recorder.Comment(ctx, ref, text))
}

func (a *applierRec) Escalate(ctx context.Context, ref Ref, tier Tier, t Ticket) error {
	return a.applied(ref, t.Body, a.recorder.Escalate(ctx, ref, tier, t))
}

func (a *applierRec) Resolve(ctx context.Context, ref Ref, text string) error {
	return a.applied(ref, text, a.recorder.Resolve(ctx, ref, text))
}

func (a *applierRec) Reopen(ctx context.Context, ref Ref, text string) error {
	return a.applied(ref, text, a.recorder.Reopen(ctx, ref, text))
}

func (a *applierRec) Applied(_ context.Context, ref Ref, op Op) (bool, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.lookups = append(a.lookups, fmt.Sprintf("%s %d", op.Kind, op.Event))
	if a.lookupErr != nil {
		return false, a.lookupErr
	}
	for _, t := range a.texts[ref.ID] {
		if HasMarker(t, op) {
			return true, nil
		}
	}
	return false, nil
}

// marked counts the texts of ticket id that carry op's marker.
func (a *applierRec) marked(id string, op Op) int {
	a.mu.Lock()
	defer a.mu.Unlock()
	n := 0
	for _, t := range a.texts[id] {
		if HasMarker(t, op) {
			n++
		}
	}
	return n
}

func (a *applierRec) takeLookups() string {
	a.mu.Lock()
	defer a.mu.Unlock()
	s := strings.Join(a.lookups, ", ")
	a.lookups = nil
	return s
}

// onceEnv is a store in a directory and a service over it, restarted at
// will as a crashed agent is.
type onceEnv struct {
	t   *testing.T
	dir string
	be  Ticketer
	svc *Service
	// waits are the waits of the deliverers (settling, no backoff in
	// Flush); onWait, when set, runs at each, as time passing would.
	waits  []time.Duration
	onWait func()
}

func newOnceEnv(t *testing.T, be Ticketer) *onceEnv {
	e := &onceEnv{t: t, dir: t.TempDir(), be: be}
	e.start()
	t.Cleanup(func() { e.svc.Stop() })
	return e
}

func (e *onceEnv) start() {
	st, err := OpenStore(filepath.Join(e.dir, "l2agent.db"), false, testkit.QuietLogger())
	require.NoError(e.t, err)
	e.svc = NewService(testConfig(), st, []string{"rec"}, map[string]Ticketer{"rec": e.be}, "test", testkit.QuietLogger(), nil)
	for _, d := range e.svc.Deliverers() {
		d.sleep = func(ctx context.Context, wait time.Duration) error {
			e.waits = append(e.waits, wait)
			if e.onWait != nil {
				e.onWait()
			}
			return ctx.Err()
		}
	}
}

// crash delivers until the backend dies, then starts the service again
// from the store, as after a kill -9.
func (e *onceEnv) crash() {
	require.PanicsWithValue(e.t, "crash", func() { e.svc.Flush(context.Background()) })
	require.NoError(e.t, e.svc.Stop())
	e.start()
}

// queueLife queues an incident's whole life: open; warn → crit (a comment
// and the escalation to L3); resolved; reopened; warn → crit again (a
// comment with the same text as the first).
func queueLife(t *testing.T, m *Manager, key string, t0 time.Time) {
	require.NoError(t, m.Handle(tr(key, "ok", "warn", t0)))
	require.NoError(t, m.Handle(tr(key, "warn", "crit", t0.Add(time.Minute))))
	require.NoError(t, m.Handle(tr(key, "crit", "ok", t0.Add(2*time.Minute))))
	require.NoError(t, m.Tick(context.Background(), t0.Add(20*time.Minute)))
	require.NoError(t, m.Handle(tr(key, "ok", "warn", t0.Add(30*time.Minute))))
	require.NoError(t, m.Handle(tr(key, "warn", "crit", t0.Add(31*time.Minute))))
}

func outbox(t *testing.T, st *Store, backend string) []Op {
	var ops []Op
	for after := uint64(0); ; {
		op, ok, err := st.Next(backend, after)
		require.NoError(t, err)
		if !ok {
			return ops
		}
		ops, after = append(ops, op), op.Seq
	}
}

// TestCrashAfterAppliedNoDuplicates: the agent dies right after the backend
// applied each operation of an incident's life in turn, before the store
// recorded the group; restarted, it delivers the rest and the ticket holds
// every operation exactly once.
func TestCrashAfterAppliedNoDuplicates(t *testing.T) {
	t0 := time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC)
	for n := 1; n <= 6; n++ {
		t.Run(fmt.Sprint("crash after call ", n), func(t *testing.T) {
			be := newApplierRec()
			e := newOnceEnv(t, be)
			queueLife(t, e.svc.Manager, "k", t0)
			ops := outbox(t, e.svc.Store, "rec")
			require.Equal(t, []OpKind{OpOpen, OpComment, OpEscalate, OpResolve, OpReopen, OpComment}, kinds(ops))
			be.crashAfter = n
			e.crash()
			require.Equal(t, 6, e.svc.Store.Pending("rec"), "the whole group is delivered again")
			require.Equal(t, 0, e.svc.Flush(context.Background())["rec"])
			require.Len(t, be.tickets, 1, "one ticket")
			for _, op := range ops[1:] {
				require.Equal(t, 1, be.marked("1", op), "%s %d is in the ticket once", op.Kind, op.Event)
			}
			require.Len(t, be.texts["1"], 5, "nothing else")
			lookups := []string{"comment 2", "escalate 3", "resolve 4", "reopen 5", "comment 6"}
			if n < len(ops) { // the first op not found is looked up again once its send cannot be in progress
				lookups = slices.Insert(lookups, n-1, lookups[n-1])
				require.Len(t, e.waits, 1)
			} else {
				require.Empty(t, e.waits)
			}
			require.Equal(t, strings.Join(lookups, ", "), be.takeLookups(),
				"after the start, the ops at the head of the outbox are looked up, the open is found by key")
			require.Equal(t, "open", be.status["1"], "reopened last")
			require.Equal(t, L3, be.tier["1"])
		})
	}
}

func kinds(ops []Op) []OpKind {
	var ks []OpKind
	for _, op := range ops {
		ks = append(ks, op.Kind)
	}
	return ks
}

// TestOnlyTheHeadIsLookedUp: after a start, only the first group of the
// outbox can have been sent by the previous run; the ops behind it are
// sent without a lookup.
func TestOnlyTheHeadIsLookedUp(t *testing.T) {
	be := newApplierRec()
	e := newOnceEnv(t, be)
	ref, err := be.recorder.Open(context.Background(), Ticket{Key: "k"})
	require.NoError(t, err)
	be.take()
	t0 := time.Now()
	var ops []Op
	for i := 1; i <= groupMax+6; i++ {
		ops = append(ops, Op{Key: "k", Kind: OpComment, Event: uint64(i), Text: fmt.Sprint("comment ", i), Created: t0})
	}
	require.NoError(t, e.svc.Store.Save(&Incident{Key: "k", Open: true, Refs: map[string]Ref{"rec": ref}}, []string{"rec"}, ops))
	be.crashAfter = 3
	e.crash()
	require.Equal(t, 0, e.svc.Flush(context.Background())["rec"])
	var want []string
	for i := 1; i <= groupMax; i++ {
		want = append(want, fmt.Sprint("comment ", i))
		if i == 4 { // not found: looked up again once its send cannot be in progress
			want = append(want, fmt.Sprint("comment ", i))
		}
	}
	require.Equal(t, strings.Join(want, ", "), be.takeLookups())
	for _, op := range ops {
		require.Equal(t, 1, be.marked(ref.ID, op), "comment %d", op.Event)
	}
	require.Len(t, be.texts[ref.ID], len(ops))
}

// TestFailureMaybeApplied: a failed attempt that may have reached the
// backend (a lost answer, a 5xx) is looked up before it is sent again; one
// that cannot have (429, connection refused) is sent again at once.
func TestFailureMaybeApplied(t *testing.T) {
	refused := rest.TransportError(context.Background(), fmt.Errorf("dial: %w", &net.OpError{Op: "dial", Net: "tcp", Err: errors.New("connection refused")}))
	for _, tc := range []struct {
		name   string
		set    func(*applierRec)
		lookup string
	}{
		{"answer lost after applied", func(a *applierRec) { a.loseAfter = 1 }, "comment 2"},
		{"5xx", func(a *applierRec) { a.failN, a.failErr = 1, rest.CheckStatus("c", http.StatusBadGateway, nil, nil) }, "comment 2"},
		{"429", func(a *applierRec) {
			a.failN, a.failErr = 1, rest.CheckStatus("c", http.StatusTooManyRequests, nil, nil)
		}, ""},
		{"connection refused", func(a *applierRec) { a.failN, a.failErr = 1, refused }, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			be := newApplierRec()
			e := newOnceEnv(t, be)
			t0 := time.Now()
			require.NoError(t, e.svc.Manager.Handle(tr("k", "ok", "warn", t0)))
			require.Equal(t, 0, e.svc.Flush(context.Background())["rec"])
			require.NoError(t, e.svc.Manager.Handle(tr("k", "warn", "crit", t0.Add(time.Minute)))) // comment, escalate
			ops := outbox(t, e.svc.Store, "rec")
			tc.set(be)
			require.Equal(t, 2, e.svc.Flush(context.Background())["rec"], "the comment failed: both wait")
			require.Equal(t, 0, e.svc.Flush(context.Background())["rec"])
			require.Equal(t, tc.lookup, be.takeLookups())
			for _, op := range ops {
				require.Equal(t, 1, be.marked("1", op), "%s once", op.Kind)
			}
		})
	}
	require.True(t, maybeApplied(context.Canceled), "a request cancelled in flight may have been applied")
	require.True(t, maybeApplied(Retryable("timeout", errors.New("x"))))
	require.False(t, maybeApplied(Retryable("store", errors.New("x"))))
	require.False(t, maybeApplied(&net.DNSError{Err: "no such host", Name: "rt.example.com"}))
}

// TestLookupErrors: a lookup that fails retryably is tried again later; one
// that cannot succeed (no right to read the comments) lets the op go out
// again: shown twice rather than lost.
func TestLookupErrors(t *testing.T) {
	t0 := time.Now()
	be := newApplierRec()
	e := newOnceEnv(t, be)
	queueLife(t, e.svc.Manager, "k", t0)
	ops := outbox(t, e.svc.Store, "rec")
	be.crashAfter = 2 // after the first comment
	e.crash()

	be.lookupErr = Retryable("http_5xx", errors.New("RT is busy"))
	require.Equal(t, 5, e.svc.Flush(context.Background())["rec"], "the open is recorded, the comment waits")
	require.Equal(t, 1, be.marked("1", ops[1]))
	be.lookupErr = Final("http_4xx", errors.New("HTTP 403: ACL restricts the record retrieval"))
	require.Equal(t, 0, e.svc.Flush(context.Background())["rec"])
	require.Equal(t, 2, be.marked("1", ops[1]), "sent again: the backend could not tell")
	for _, op := range ops[2:] {
		require.Equal(t, 1, be.marked("1", op), "%s %d", op.Kind, op.Event)
	}
}

// textRec records the texts it is sent; it cannot look them up.
type textRec struct {
	*recorder
	texts []string
}

func (r *textRec) Comment(ctx context.Context, ref Ref, text string) error {
	r.texts = append(r.texts, text)
	return r.recorder.Comment(ctx, ref, text)
}

// TestNoMarkerWithoutApplier: a backend that cannot look an op up gets the
// text as the manager wrote it.
func TestNoMarkerWithoutApplier(t *testing.T) {
	be := &textRec{recorder: newRecorder()}
	e := newOnceEnv(t, be)
	t0 := time.Now()
	require.NoError(t, e.svc.Manager.Handle(tr("k", "ok", "warn", t0)))
	require.NoError(t, e.svc.Manager.Handle(tr("k", "warn", "crit", t0.Add(time.Minute))))
	ops := outbox(t, e.svc.Store, "rec")
	require.Equal(t, 0, e.svc.Flush(context.Background())["rec"])
	require.Equal(t, []string{ops[1].Text}, be.texts)
	require.NotContains(t, be.texts[0], "l2agent event")
}

func TestMarker(t *testing.T) {
	t0 := time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC)
	op := Op{Key: "web-7/disk/disk_used_ratio", Event: 12, Created: t0}
	m := Marker(op)
	require.Regexp(t, `^l2agent event 12 \([0-9a-f]{8}\)$`, m)
	require.Equal(t, m, Marker(op), "stable")
	for name, other := range map[string]Op{
		"event":   {Key: op.Key, Event: 1, Created: t0},
		"key":     {Key: op.Key + "x", Event: 12, Created: t0},
		"created": {Key: op.Key, Event: 12, Created: t0.Add(time.Nanosecond)},
	} {
		require.NotEqual(t, m, Marker(other), name)
		require.False(t, HasMarker(withMarker("text", op), other), name)
	}
	require.True(t, HasMarker(withMarker("Severity warn → crit\n", op), op))
	require.Equal(t, "Severity warn → crit\n\n"+m, withMarker("Severity warn → crit\n", op))
	require.False(t, HasMarker(withMarker("x", Op{Key: op.Key, Event: 1, Created: t0}), Op{Key: op.Key, Event: 12, Created: t0}))
}

// TestRefusedIsNotInDoubt: a connection the real HTTP client could not make
// (the server is down) is no doubt: sent again without a lookup.
func TestRefusedIsNotInDoubt(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	srv.Close()
	c := rest.New(rest.Config{BaseURL: srv.URL})
	err := c.Do(context.Background(), "comment", rest.Request{Method: http.MethodPost, Path: "/comment", Body: map[string]string{}}, nil)
	require.Error(t, err)
	require.False(t, maybeApplied(err), "%v", err)
}

// cutApplier is an applierRec whose comments can be cut off: the request
// hangs until the agent gives up on it (a stop, reload or kill), and the
// ticket system applies it later, as RT goes on with a request whose
// client has gone.
type cutApplier struct {
	*applierRec
	cut     bool
	hanging chan struct{} // closed when a comment hangs
	late    []func()      // comments the ticket system has yet to apply
}

func (c *cutApplier) Comment(ctx context.Context, ref Ref, text string) error {
	if !c.cut {
		return c.applierRec.Comment(ctx, ref, text)
	}
	c.cut = false
	close(c.hanging)
	<-ctx.Done()
	c.late = append(c.late, func() { _ = c.applierRec.Comment(context.Background(), ref, text) })
	return rest.TransportError(ctx, ctx.Err())
}

func (c *cutApplier) finish() {
	for _, f := range c.late {
		f()
	}
	c.late = nil
}

// TestCutOffSendStillInProgress: a comment whose request a stop (or
// reload, or kill) cut off is applied by the ticket system only after the
// next run first looks for it. The next run waits until that request can
// no longer be in progress (the backend's timeout), looks again and finds
// it: the comment is in the ticket once. Without a send cut off, nothing
// waits.
func TestCutOffSendStillInProgress(t *testing.T) {
	be := &cutApplier{applierRec: newApplierRec(), hanging: make(chan struct{})}
	e := newOnceEnv(t, be)
	t0 := time.Now()
	require.NoError(t, e.svc.Manager.Handle(tr("k", "ok", "warn", t0)))
	require.Equal(t, 0, e.svc.Flush(context.Background())["rec"])
	require.NoError(t, e.svc.Manager.Handle(tr("k", "warn", "crit", t0.Add(time.Minute)))) // comment, escalate
	ops := outbox(t, e.svc.Store, "rec")
	require.Equal(t, []OpKind{OpComment, OpEscalate}, kinds(ops))

	be.cut = true
	ctx, stop := context.WithCancel(context.Background())
	go func() { <-be.hanging; stop() }()
	require.Equal(t, 2, e.svc.Flush(ctx)["rec"], "the comment was cut off: both wait")
	require.NoError(t, e.svc.Stop())
	require.Empty(t, be.takeLookups())

	e.start() // the next run (or the deliverer after a reload)
	e.onWait = be.finish
	require.Equal(t, 0, e.svc.Flush(context.Background())["rec"])
	require.Equal(t, "comment 2, comment 2, escalate 3", be.takeLookups(), "not found, waited, found; the escalation was never sent")
	require.Len(t, e.waits, 1)
	require.InDelta(t, (groupTime + 15*time.Second).Seconds(), e.waits[0].Seconds(), 1, "until the cut-off request can no longer be in progress")
	for _, op := range ops {
		require.Equal(t, 1, be.marked("1", op), "%s once", op.Kind)
	}

	// Every answer came back: the next run has nothing to wait for.
	require.NoError(t, e.svc.Stop())
	e.start()
	e.waits = nil
	require.NoError(t, e.svc.Manager.Handle(tr("k", "crit", "ok", t0.Add(2*time.Minute))))
	require.NoError(t, e.svc.Manager.Handle(tr("k", "ok", "crit", t0.Add(3*time.Minute))))
	require.Equal(t, 0, e.svc.Flush(context.Background())["rec"])
	require.Empty(t, e.waits)
}
