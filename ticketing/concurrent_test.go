package ticketing

import (
	"context"
	"errors"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/l2agent/l2agent/internal/testkit"
)

// gated is a recorder that takes n opens at once (ConcurrentOpener) and
// proves it: its opens wait until n of them are in progress together,
// which never happens when they are sent one after the other (they then
// fail, after a guard that only bounds a broken test).
type gated struct {
	*recorder
	n       int
	mu      sync.Mutex
	waiting int
	all     chan struct{}
	failKey string // its first open fails, retryably, once all n are in
}

func newGated(n int) *gated { return &gated{recorder: newRecorder(), n: n, all: make(chan struct{})} }

func (g *gated) OpensAtOnce() int { return g.n }

func (g *gated) Open(ctx context.Context, t Ticket) (Ref, error) {
	g.mu.Lock()
	if g.waiting++; g.waiting == g.n {
		close(g.all)
	}
	g.mu.Unlock()
	select {
	case <-g.all:
	case <-time.After(30 * time.Second):
		return Ref{}, Final("test", errors.New("the opens were not sent at once"))
	}
	g.mu.Lock()
	fail := t.Key == g.failKey
	if fail {
		g.failKey = ""
	}
	g.mu.Unlock()
	if fail {
		return Ref{}, Retryable("network", errors.New("connection reset by peer"))
	}
	return g.recorder.Open(ctx, t)
}

// ticketsOf counts the backend's tickets per key.
func (g *gated) ticketsOf() map[string]int {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.recorder.mu.Lock()
	defer g.recorder.mu.Unlock()
	n := map[string]int{}
	for _, k := range g.tickets {
		n[k]++
	}
	return n
}

func newGatedService(t *testing.T, g *gated) *Service {
	st, err := OpenStore(filepath.Join(t.TempDir(), "l2agent.db"), false, testkit.QuietLogger())
	require.NoError(t, err)
	svc := NewService(testConfig(), st, []string{"rec"}, map[string]Ticketer{"rec": g}, "test", testkit.QuietLogger(), nil)
	t.Cleanup(func() { svc.Stop() })
	return svc
}

// TestOpensAtOnce: the opens of different keys next in the outbox go to a
// ConcurrentOpener at the same time (up to its limit; the fourth after
// them), each is recorded as its key's ticket, and what follows goes to
// the right ticket.
func TestOpensAtOnce(t *testing.T) {
	g := newGated(3)
	svc := newGatedService(t, g)
	at := time.Date(2026, 11, 24, 8, 0, 0, 0, time.UTC)
	keys := []string{"web-7/disk/a", "web-7/disk/b", "web-7/disk/c", "web-7/disk/d"}
	for _, k := range keys {
		require.NoError(t, svc.Manager.Handle(tr(k, "ok", "warn", at)))
	}
	require.Equal(t, 0, svc.Flush(context.Background())["rec"])
	require.Equal(t, map[string]int{keys[0]: 1, keys[1]: 1, keys[2]: 1, keys[3]: 1}, g.ticketsOf())
	for _, k := range keys {
		inc, err := svc.Store.Incident(k)
		require.NoError(t, err)
		require.Equal(t, k, g.tickets[inc.Refs["rec"].ID], "the key's own ticket is recorded")
	}
	g.take()
	require.NoError(t, svc.Manager.Handle(tr(keys[1], "warn", "crit", at.Add(time.Minute))))
	require.Equal(t, 0, svc.Flush(context.Background())["rec"])
	inc, err := svc.Store.Incident(keys[1])
	require.NoError(t, err)
	require.Contains(t, g.take(), "escalate L3 #"+inc.Refs["rec"].ID)
}

// TestOpensAtOnceOneFails: of three opens sent at once, the second fails
// (its answer lost): the first is recorded; the third, created but not
// recorded, is in doubt; the next delivery opens the second again and
// finds the third by its key: one ticket per key.
func TestOpensAtOnceOneFails(t *testing.T) {
	g := newGated(3)
	svc := newGatedService(t, g)
	at := time.Date(2026, 11, 24, 8, 0, 0, 0, time.UTC)
	keys := []string{"web-7/disk/a", "web-7/disk/b", "web-7/disk/c"}
	g.failKey = keys[1]
	for _, k := range keys {
		require.NoError(t, svc.Manager.Handle(tr(k, "ok", "warn", at)))
	}
	require.Equal(t, 2, svc.Flush(context.Background())["rec"], "the second and third wait in the outbox")
	require.Equal(t, map[string]int{keys[0]: 1, keys[2]: 1}, g.ticketsOf())
	c := g.tickets
	var third string
	for id, k := range c {
		if k == keys[2] {
			third = id
		}
	}
	require.Equal(t, 0, svc.Flush(context.Background())["rec"])
	require.Equal(t, map[string]int{keys[0]: 1, keys[1]: 1, keys[2]: 1}, g.ticketsOf(), "one ticket per key")
	inc, err := svc.Store.Incident(keys[2])
	require.NoError(t, err)
	require.Equal(t, third, inc.Refs["rec"].ID, "the third's ticket, found by key")
}
