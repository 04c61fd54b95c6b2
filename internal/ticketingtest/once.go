package ticketingtest

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/l2agent/l2agent/configs"
	"github.com/l2agent/l2agent/internal/alert"
	"github.com/l2agent/l2agent/internal/testkit"
	"github.com/l2agent/l2agent/ticketing"
)

// Recorded is what a fake ticket system holds, read from its own records
// (not through the backend's code): for ExactlyOnce.
type Recorded interface {
	// Tickets counts the tickets filed for the alert key.
	Tickets(key string) int
	// Texts are the texts added to ticket r since it was opened (comments,
	// work notes, the notes of status changes), oldest first.
	Texts(r ticketing.Ref) []string
}

// ExactlyOnce checks that no crash and no lost answer doubles a ticket
// operation of backend, an Applier talking to the fake sys. An incident
// lives its whole life (opened; warn → crit: a comment and the escalation
// to L3; resolved; reopened; warn → crit again: a comment with the same
// text as the first), queued at once and delivered in one group. For each
// of its six operations in turn, the agent
//
//   - crash: dies (a panic out of the deliverer) right after the backend
//     applied the operation, before the store recorded the group, and is
//     started again from its store;
//   - lost answer: gets a timeout although the backend applied it, and
//     tries again;
//
// then delivers the rest. sys must then hold one ticket for the key and
// each operation once: one text with its marker, and no other.
func ExactlyOnce(t *testing.T, backend ticketing.Ticketer, sys Recorded) {
	t.Helper()
	ap, ok := backend.(ticketing.Applier)
	require.True(t, ok, "the backend can say whether an operation is applied (ticketing.Applier)")
	for _, lose := range []bool{false, true} {
		for n := 1; n <= 6; n++ {
			name := fmt.Sprintf("crash-%d", n)
			if lose {
				name = fmt.Sprintf("lost-answer-%d", n)
			}
			t.Run(name, func(t *testing.T) {
				be := &dying{Ticketer: backend, ap: ap}
				a := startAgent(t, be)
				key := fmt.Sprintf(`web-7/disk/disk_used_ratio{mountpoint="/srv/%s"}`, name)
				life(t, a.svc.Manager, key)
				ops := a.outbox(t)
				require.Len(t, ops, 6)
				be.n, be.lose = n, lose
				if lose {
					a.svc.Flush(context.Background())
				} else {
					require.PanicsWithValue(t, errCrash, func() { a.svc.Flush(context.Background()) })
					a.restart(t)
				}
				require.Equal(t, 0, a.svc.Flush(context.Background())[backendName], "all delivered")

				require.Equal(t, 1, sys.Tickets(key), "one ticket for the key")
				inc, err := a.svc.Store.Incident(key)
				require.NoError(t, err)
				texts := sys.Texts(inc.Refs[backendName])
				for _, op := range ops[1:] {
					n := 0
					for _, x := range texts {
						if ticketing.HasMarker(x, op) {
							n++
						}
					}
					require.Equal(t, 1, n, "%s (event %d) once in the ticket; its texts:\n%s", op.Kind, op.Event, strings.Join(texts, "\n---\n"))
				}
				require.Len(t, texts, len(ops)-1, "no other text")
			})
		}
	}
}

const backendName = "fake"

var errCrash = errors.New("crash")

// dying is the backend under test, dying (a panic) or losing its answer
// right after the n-th call that changed a ticket succeeded.
type dying struct {
	ticketing.Ticketer
	ap   ticketing.Applier
	n    int
	lose bool
}

func (d *dying) after(err error) error {
	if err != nil || d.n <= 0 {
		return err
	}
	if d.n--; d.n > 0 {
		return nil
	}
	if d.lose {
		return ticketing.Retryable("timeout", errors.New("the answer was lost"))
	}
	panic(errCrash)
}

func (d *dying) Open(ctx context.Context, t ticketing.Ticket) (ticketing.Ref, error) {
	ref, err := d.Ticketer.Open(ctx, t)
	return ref, d.after(err)
}

func (d *dying) Comment(ctx context.Context, r ticketing.Ref, text string) error {
	return d.after(d.Ticketer.Comment(ctx, r, text))
}

func (d *dying) Escalate(ctx context.Context, r ticketing.Ref, tier ticketing.Tier, t ticketing.Ticket) error {
	return d.after(d.Ticketer.Escalate(ctx, r, tier, t))
}

func (d *dying) Resolve(ctx context.Context, r ticketing.Ref, text string) error {
	return d.after(d.Ticketer.Resolve(ctx, r, text))
}

func (d *dying) Reopen(ctx context.Context, r ticketing.Ref, text string) error {
	return d.after(d.Ticketer.Reopen(ctx, r, text))
}

func (d *dying) Applied(ctx context.Context, r ticketing.Ref, op ticketing.Op) (bool, error) {
	return d.ap.Applied(ctx, r, op)
}

// agent is the ticketing service over a store in its own directory.
type agent struct {
	dir string
	be  ticketing.Ticketer
	svc *ticketing.Service
}

func startAgent(t *testing.T, be ticketing.Ticketer) *agent {
	a := &agent{dir: t.TempDir(), be: be}
	a.start(t)
	t.Cleanup(func() { a.svc.Stop() })
	return a
}

func (a *agent) start(t *testing.T) {
	log := testkit.QuietLogger()
	st, err := ticketing.OpenStore(filepath.Join(a.dir, "l2agent.db"), false, log)
	require.NoError(t, err)
	var cfg configs.Ticketing
	cfg.ApplyDefaults(a.dir)
	a.svc = ticketing.NewService(cfg, st, []string{backendName}, map[string]ticketing.Ticketer{backendName: a.be}, "test", log, nil)
	for _, d := range a.svc.Deliverers() {
		// A fake answers at once: a send cut off cannot be in progress for long.
		d.Settle = 10 * time.Millisecond
	}
}

// restart starts the service again from its store, as after a kill -9.
func (a *agent) restart(t *testing.T) {
	require.NoError(t, a.svc.Stop())
	a.start(t)
}

func (a *agent) outbox(t *testing.T) []ticketing.Op {
	var ops []ticketing.Op
	for after := uint64(0); ; {
		op, ok, err := a.svc.Store.Next(backendName, after)
		require.NoError(t, err)
		if !ok {
			return ops
		}
		ops, after = append(ops, op), op.Seq
	}
}

// life queues an incident's life with the default policy (resolve_after
// 15m, reopen_window 24h).
func life(t *testing.T, m *ticketing.Manager, key string) {
	t0 := time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC)
	tr := func(at time.Duration, from, to alert.State, v float64) alert.Transition {
		return alert.Transition{Alert: alert.Alert{
			Key: key, Host: "web-7", Check: "disk", Metric: "disk_used_ratio", Labels: map[string]string{"mountpoint": "/srv"},
			State: to, Value: v, Threshold: map[alert.State]float64{alert.StateWarn: 0.8, alert.StateCrit: 0.9}[to], BreachAt: t0,
		}, From: from, At: t0.Add(at), Reason: fmt.Sprintf("disk_used_ratio %.0f%%", v*100)}
	}
	require.NoError(t, m.HandleBatch([]alert.Transition{
		tr(0, alert.StateOK, alert.StateWarn, 0.85),
		tr(time.Minute, alert.StateWarn, alert.StateCrit, 0.95),
		tr(2*time.Minute, alert.StateCrit, alert.StateOK, 0.1),
	}))
	require.NoError(t, m.Tick(context.Background(), t0.Add(20*time.Minute)))
	require.NoError(t, m.HandleBatch([]alert.Transition{
		tr(30*time.Minute, alert.StateOK, alert.StateWarn, 0.85),
		tr(31*time.Minute, alert.StateWarn, alert.StateCrit, 0.95),
	}))
}
