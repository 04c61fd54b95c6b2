package ticketing

import (
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"sync"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Failpoint, when the environment variable L2AGENT_FAILPOINT is
// "after-open", kills the process with SIGKILL right after a backend created
// a ticket and before the store recorded it. Tests use it to prove that a
// crash there is healed by Find before Open.
const failpointEnv = "L2AGENT_FAILPOINT"

// Deliverer sends one backend's outbox, in order, with retries.
type Deliverer struct {
	Name    string
	backend Ticketer
	store   *Store
	log     *slog.Logger
	metrics *Metrics
	wake    chan struct{}
	mu      sync.Mutex // one delivery at a time

	// Backoff bounds; the server's Retry-After wins when longer.
	MinBackoff, MaxBackoff time.Duration
	sleep                  func(ctx context.Context, d time.Duration) error
}

// NewDeliverer returns a deliverer for backend.
func NewDeliverer(name string, backend Ticketer, store *Store, log *slog.Logger, metrics *Metrics) *Deliverer {
	return &Deliverer{
		Name: name, backend: backend, store: store, log: log.With("backend", name), metrics: metrics,
		wake: make(chan struct{}, 1), MinBackoff: time.Second, MaxBackoff: 5 * time.Minute, sleep: sleepCtx,
	}
}

// Wake tells the deliverer there is work.
func (d *Deliverer) Wake() {
	select {
	case d.wake <- struct{}{}:
	default:
	}
}

// Run delivers until ctx ends. A backend that is down delays only its own
// outbox.
func (d *Deliverer) Run(ctx context.Context) {
	for {
		if _, err := d.drain(ctx, true); err != nil && ctx.Err() == nil {
			d.log.Error("outbox", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-d.wake:
		case <-time.After(time.Minute): // belt and braces: a missed wake-up
		}
	}
}

// Flush delivers what is queued now, trying each op once more without
// waiting for backoff, and returns how many ops remain.
func (d *Deliverer) Flush(ctx context.Context) (int, error) {
	return d.drain(ctx, false)
}

// drain delivers the outbox head by head. With retry, a retryable failure
// is retried after a backoff until ctx ends; without, drain stops there.
func (d *Deliverer) drain(ctx context.Context, retry bool) (int, error) {
	attempt := 0
	for ctx.Err() == nil {
		op, empty, err := d.once(ctx)
		if empty {
			return 0, nil
		}
		if err == nil {
			attempt = 0
			continue
		}
		reason, retryable, after := Classify(err)
		if ctx.Err() != nil {
			break
		}
		if !retryable || !retry {
			return d.store.Pending(d.Name), err
		}
		wait := max(d.backoff(attempt), after)
		attempt++
		d.log.Warn("ticket operation failed; retrying", "key", op.Key, "op", op.Kind, "reason", reason, "err", err, "retry_in", wait.Round(time.Millisecond))
		if err := d.sleep(ctx, wait); err != nil {
			break
		}
	}
	return d.store.Pending(d.Name), ctx.Err()
}

// once delivers the head of the outbox, under the deliverer's lock so that
// Run and Flush never send one op twice. A final failure sets the op aside
// and counts as done.
func (d *Deliverer) once(ctx context.Context) (op Op, empty bool, err error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	defer func() { d.metrics.pending.WithLabelValues(d.Name).Set(float64(d.store.Pending(d.Name))) }()
	op, ok, err := d.store.Head(d.Name)
	if err != nil {
		return op, false, Retryable("store", fmt.Errorf("read outbox: %w", err))
	}
	if !ok {
		return op, true, nil
	}
	start := time.Now()
	ref, err := d.deliver(WithEvent(ctx, Event{Key: op.Key, Seq: op.Event}), op)
	d.metrics.duration.WithLabelValues(d.Name).Observe(time.Since(start).Seconds())
	if err == nil {
		if err := d.store.Done(d.Name, op, ref); err != nil {
			return op, false, Retryable("store", fmt.Errorf("record delivery: %w", err))
		}
		d.metrics.events.WithLabelValues(d.Name, eventName(op.Kind)).Inc()
		d.log.Info("ticket operation delivered", "key", op.Key, "op", op.Kind, "ticket", ref.ID)
		return op, false, nil
	}
	if ctx.Err() != nil {
		return op, false, err
	}
	reason, retryable, _ := Classify(err)
	d.metrics.errors.WithLabelValues(d.Name, reason).Inc()
	if retryable {
		return op, false, err
	}
	d.log.Error("ticket operation failed and will not be retried", "key", op.Key, "op", op.Kind, "reason", reason, "err", err)
	if derr := d.store.Dead(d.Name, op, err.Error()); derr != nil {
		return op, false, Retryable("store", fmt.Errorf("set aside undeliverable op: %w", derr))
	}
	return op, false, nil
}

// backoff is exponential from MinBackoff to MaxBackoff with ±20 % jitter.
func (d *Deliverer) backoff(attempt int) time.Duration {
	b := d.MinBackoff << min(attempt, 20)
	if b > d.MaxBackoff || b <= 0 {
		b = d.MaxBackoff
	}
	return time.Duration(float64(b) * (0.8 + 0.4*rand.Float64()))
}

func eventName(k OpKind) string {
	switch k {
	case OpOpen:
		return "opened"
	case OpEscalate:
		return "escalated"
	case OpResolve:
		return "resolved"
	case OpReopen:
		return "reopened"
	}
	return "commented"
}

// deliver performs one op. An open first looks the key up, so that a ticket
// created just before a crash (and never recorded) is not created twice.
func (d *Deliverer) deliver(ctx context.Context, op Op) (Ref, error) {
	inc, err := d.store.Incident(op.Key)
	if err != nil {
		return Ref{}, err
	}
	var ref Ref
	if inc != nil {
		ref = inc.Refs[d.Name]
	}
	if op.Kind == OpOpen {
		if ref.ID != "" {
			return ref, nil // already open
		}
		found, ok, err := d.backend.Find(ctx, op.Key)
		if err != nil {
			return Ref{}, fmt.Errorf("find %s: %w", op.Key, err)
		}
		if ok && found.ID != op.PrevRef.ID && (inc == nil || found.ID != inc.PrevRefs[d.Name].ID) {
			d.log.Info("ticket for this key already exists; not opening another", "key", op.Key, "ticket", found.ID)
			return found, nil
		}
		ref, err = d.backend.Open(ctx, op.Ticket)
		if err != nil {
			return Ref{}, err
		}
		if os.Getenv(failpointEnv) == "after-open" {
			d.log.Warn("failpoint after-open: killing the process", "ticket", ref.ID)
			syscall.Kill(os.Getpid(), syscall.SIGKILL)
		}
		return ref, nil
	}
	if ref.ID == "" {
		found, ok, err := d.backend.Find(ctx, op.Key)
		if err != nil {
			return Ref{}, fmt.Errorf("find %s: %w", op.Key, err)
		}
		if !ok {
			return Ref{}, Final("no_ticket", fmt.Errorf("%s %s: no ticket for this key in %s", op.Kind, op.Key, d.Name))
		}
		ref = found
	}
	switch op.Kind {
	case OpComment:
		err = d.backend.Comment(ctx, ref, op.Text)
	case OpEscalate:
		err = d.backend.Escalate(ctx, ref, op.Tier, withReason(op))
	case OpResolve:
		err = d.backend.Resolve(ctx, ref, op.Text)
	case OpReopen:
		err = d.backend.Reopen(ctx, ref, op.Text)
	default:
		err = Final("bad_op", fmt.Errorf("unknown op %q", op.Kind))
	}
	return ref, err
}

func withReason(op Op) Ticket {
	t := op.Ticket
	if op.Text != "" {
		t.Body = op.Text + "\n\n" + t.Body
	}
	return t
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// Metrics of ticket delivery.
type Metrics struct {
	events   *prometheus.CounterVec
	errors   *prometheus.CounterVec
	pending  *prometheus.GaugeVec
	duration *prometheus.HistogramVec
}

// NewMetrics registers the ticketing metrics on reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		events: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "l2agent_tickets_total",
			Help: "Ticket operations delivered, by backend and event (opened, commented, escalated, resolved, reopened)."}, []string{"backend", "event"}),
		errors: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "l2agent_ticket_delivery_errors_total",
			Help: "Failed attempts to deliver a ticket operation, by backend and reason."}, []string{"backend", "reason"}),
		pending: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "l2agent_ticket_outbox_pending",
			Help: "Ticket operations waiting in the outbox."}, []string{"backend"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "l2agent_ticket_delivery_duration_seconds",
			Help: "Time of one delivery attempt to a backend.", Buckets: []float64{.01, .05, .1, .25, .5, 1, 2.5, 5, 10, 30}}, []string{"backend"}),
	}
	if reg != nil {
		reg.MustRegister(m.events, m.errors, m.pending, m.duration)
	}
	return m
}
