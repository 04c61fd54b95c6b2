package agent

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/l2agent/l2agent/checks"
	"github.com/l2agent/l2agent/configs"
	"github.com/l2agent/l2agent/internal/alert"
	"github.com/l2agent/l2agent/internal/testkit"
	"github.com/l2agent/l2agent/ticketing"
)

type nopTicketer struct{}

func (nopTicketer) Find(context.Context, string) (ticketing.Ref, bool, error) {
	return ticketing.Ref{}, false, nil
}
func (nopTicketer) Open(context.Context, ticketing.Ticket) (ticketing.Ref, error) {
	return ticketing.Ref{ID: "1"}, nil
}
func (nopTicketer) Comment(context.Context, ticketing.Ref, string) error { return nil }
func (nopTicketer) Escalate(context.Context, ticketing.Ref, ticketing.Tier, ticketing.Ticket) error {
	return nil
}
func (nopTicketer) Resolve(context.Context, ticketing.Ref, string) error { return nil }
func (nopTicketer) Reopen(context.Context, ticketing.Ref, string) error  { return nil }

// BenchmarkTransitions: transitions per second through evaluator → manager
// → outbox: each one decided and its ticket operations synced to disk
// (bbolt, one fsync per batch), while a deliverer sends the outbox to a
// no-op backend. 100 alert keys flip between ok, warn and crit; every flip is
// a transition, and most queue a ticket operation.
func BenchmarkTransitions(b *testing.B) {
	log := testkit.QuietLogger()
	store, err := ticketing.OpenStore(filepath.Join(b.TempDir(), "l2agent.db"), false, log)
	if err != nil {
		b.Fatal(err)
	}
	var cfg configs.Ticketing
	cfg.Flapping.Count = 1 << 30 // measure the plain life cycle, not flap suppression
	cfg.ApplyDefaults(b.TempDir())
	svc := ticketing.NewService(cfg, store, []string{"nop"}, map[string]ticketing.Ticketer{"nop": nopTicketer{}}, "bench", log, nil)
	svc.Start()
	defer svc.Stop()
	a := &Agent{}
	a.tickets.Store(svc)
	sink := ticketSink{a}
	ev := NewEvaluator("bench")
	warn, crit := 0.8, 0.9
	rules := []configs.Rule{{Metric: "disk_used_ratio", Warn: &warn, Crit: &crit}}
	obs := make([]checks.Observation, 100)
	for i := range obs {
		obs[i] = checks.Observation{Metric: "disk_used_ratio", Labels: map[string]string{"mountpoint": fmt.Sprintf("/srv/%d", i)}}
	}
	now := time.Now()
	values := []float64{0.5, 0.85, 0.95}
	b.ResetTimer()
	n := 0
	for round := 0; n < b.N; round++ {
		for i := range obs {
			obs[i].Value = values[round%3]
		}
		now = now.Add(time.Second)
		for _, t := range ev.Evaluate("disk", rules, obs, nil, now) {
			sink.Transition(context.Background(), t)
			n++
		}
	}
	svc.Decided()
	b.StopTimer()
	b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "transitions/s")
}

// BenchmarkDelivery: ticket operations per second delivered from the outbox
// to a no-op backend; each is removed from the outbox in its own synced
// transaction once the backend confirmed it.
func BenchmarkDelivery(b *testing.B) {
	log := testkit.QuietLogger()
	store, err := ticketing.OpenStore(filepath.Join(b.TempDir(), "l2agent.db"), false, log)
	if err != nil {
		b.Fatal(err)
	}
	var cfg configs.Ticketing
	cfg.ApplyDefaults(b.TempDir())
	svc := ticketing.NewService(cfg, store, []string{"nop"}, map[string]ticketing.Ticketer{"nop": nopTicketer{}}, "bench", log, nil)
	defer svc.Stop()
	var as []alert.Transition
	for i := range b.N {
		as = append(as, alert.Transition{Alert: alert.Alert{Key: fmt.Sprintf("k%d", i), State: alert.StateWarn}, From: alert.StateOK, At: time.Now()})
	}
	for i := 0; i < len(as); i += 1000 {
		if err := svc.Manager.HandleBatch(as[i:min(i+1000, len(as))]); err != nil {
			b.Fatal(err)
		}
	}
	b.ResetTimer()
	if left := svc.Flush(context.Background()); left["nop"] != 0 {
		b.Fatal(left)
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "ops/s")
}
