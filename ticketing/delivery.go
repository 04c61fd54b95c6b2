package ticketing

import (
	"cmp"
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/l2agent/l2agent/internal/ctxutil"
)

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
	// afterOpen, set only by tests, runs right after the backend created a
	// ticket and before the store records it: where a crash is healed by
	// Find before Open.
	afterOpen func(Ref)

	// applier is the backend when it can say whether an op is already in a
	// ticket (applied.go); the ops of the outbox up to unsure may have been
	// applied without the store recording it, and are looked up before
	// they are sent. unsureKnown: the head of the outbox was read.
	applier     Applier
	unsure      uint64
	unsureKnown bool

	// Settle is how long an op may still be in progress in the ticket
	// system after its answer was cut off (a crash, a stop or reload, a
	// timeout): the backend's timeout. An op in doubt that a lookup does
	// not find within that time of its sending is looked up once more
	// before it is sent again. sendingAt is when the last send whose answer
	// may be missing began (also in the store, for the next run), waitUntil
	// the end of its settling time as seen when the group began.
	Settle    time.Duration
	sendingAt time.Time
	waitUntil time.Time
}

// NewDeliverer returns a deliverer for backend.
func NewDeliverer(name string, backend Ticketer, store *Store, log *slog.Logger, metrics *Metrics) *Deliverer {
	d := &Deliverer{
		Name: name, backend: backend, store: store, log: log.With("backend", name), metrics: metrics,
		wake: make(chan struct{}, 1), MinBackoff: time.Second, MaxBackoff: 5 * time.Minute, sleep: ctxutil.Sleep,
		Settle: 15 * time.Second,
	}
	if d.applier, _ = backend.(Applier); d.applier != nil {
		// Now, before anything new is queued; else at the first delivery.
		_ = d.findUnsure()
		d.sendingAt, _ = store.sendingSince(name)
	}
	return d
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

// Deliveries are recorded in groups: up to groupMax ops, or what was
// delivered within groupTime, are removed from the outbox in one synced
// transaction. A crash can thus leave at most one group delivered but not
// recorded, at the head of the outbox: after a start, an open there is
// found by key, and any other op there is looked up in its ticket before
// it is sent again when the backend can say (Applier: RT, Jira,
// ServiceNow). The webhook, PagerDuty and Alertmanager drop a resent op by
// its key; the file backend may write its line twice.
const (
	groupMax  = 64
	groupTime = 100 * time.Millisecond
)

// drain delivers the outbox in order. With retry, a retryable failure is
// retried after a backoff until ctx ends; without, drain stops there.
func (d *Deliverer) drain(ctx context.Context, retry bool) (int, error) {
	attempt := 0
	for ctx.Err() == nil {
		n, op, err := d.group(ctx)
		if err == nil {
			if n == 0 {
				return 0, nil
			}
			attempt = 0
			continue
		}
		reason, _, after := Classify(err)
		if ctx.Err() != nil {
			break
		}
		if !retry {
			return d.store.Pending(d.Name), err
		}
		wait := max(d.backoff(attempt), after)
		attempt++
		d.log.Error("ticket operation failed; retrying", "key", op.Key, "op", op.Kind, "reason", reason, "err", err, "attempt", attempt, "retry_in", wait.Round(time.Millisecond))
		if err := d.sleep(ctx, wait); err != nil {
			break
		}
	}
	return d.store.Pending(d.Name), ctx.Err()
}

// group delivers a group of ops from the head of the outbox and records
// them. It returns how many it recorded, and the op and retryable error that
// stopped it early, if any. It holds the deliverer's lock, so that Run and
// Flush never send one op twice. A final failure sets the op aside.
func (d *Deliverer) group(ctx context.Context) (int, Op, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.applier != nil && !d.unsureKnown {
		if err := d.findUnsure(); err != nil {
			return 0, Op{}, Retryable("store", err)
		}
	}
	d.waitUntil = d.settleBy(time.Now())
	var outs []Outcome
	refs := map[string]Ref{} // tickets opened in this group, not yet recorded
	var after uint64
	var stop error
	var stopOp Op
	dead := false // an op was set aside in this group
	start := time.Now()
	for len(outs) < groupMax && (len(outs) == 0 || time.Since(start) < groupTime) {
		op, ok, err := d.store.Next(d.Name, after)
		if err != nil {
			stop = Retryable("store", fmt.Errorf("read outbox: %w", err))
			break
		}
		if !ok {
			break
		}
		out, err := d.attempt(ctx, op, refs)
		if err != nil {
			stop, stopOp = err, op
			break
		}
		dead = dead || out.Dead != ""
		outs = append(outs, out)
		after = op.Seq
	}
	// Every answer of the group came back: nothing of it is in progress.
	settled := d.applier != nil && !d.sendingAt.IsZero() && (stop == nil || !mayBeInProgress(stop))
	if len(outs) > 0 || settled {
		if err := d.store.commit(d.Name, outs, settled); err != nil {
			// Delivered, not recorded: looked up before they are sent again.
			d.unsure = max(d.unsure, after)
			return 0, stopOp, Retryable("store", fmt.Errorf("record deliveries: %w", err))
		}
		if settled {
			d.sendingAt = time.Time{}
		}
	}
	if ctx.Err() == nil { // a stop or reload is no failure
		d.metrics.up.WithLabelValues(d.Name).Set(boolGauge(stop == nil && !dead))
	}
	return len(outs), stopOp, stop
}

// attempt delivers op once and returns its outcome (delivered, found
// already applied, or set aside after a final failure), or the retryable
// error that stops the group. An op whose failed attempt may have reached
// the backend is looked up before it is sent again.
func (d *Deliverer) attempt(ctx context.Context, op Op, refs map[string]Ref) (Outcome, error) {
	t0 := time.Now()
	ref, applied, err := d.deliver(WithEvent(ctx, Event{Key: op.Key, Seq: op.Event, Past: op.Ticket.Past}), op, refs)
	took := time.Since(t0)
	d.metrics.duration.WithLabelValues(d.Name).Observe(took.Seconds())
	if err != nil {
		reason, retryable, _ := Classify(err)
		if ctx.Err() == nil {
			d.metrics.errors.WithLabelValues(d.Name, reason).Inc()
		}
		if retryable || ctx.Err() != nil {
			if maybeApplied(err) {
				d.unsure = max(d.unsure, op.Seq)
			}
			return Outcome{}, err
		}
		d.log.Error("ticket operation failed and will not be retried", "key", op.Key, "op", op.Kind, "reason", reason, "err", err)
		return Outcome{Op: op, Dead: err.Error()}, nil
	}
	if ref.ID != "" {
		refs[op.Key] = ref
	}
	d.metrics.events.WithLabelValues(d.Name, eventName(op.Kind)).Inc()
	if applied {
		d.log.Info("ticket operation already in the ticket (sent before a crash or a lost answer); not sent again", "key", op.Key, "op", op.Kind, "ticket", ref.ID, "event", op.Event)
	} else {
		d.log.Info("ticket operation delivered", "key", op.Key, "op", op.Kind, "ticket", ref.ID, "duration", took.Round(time.Millisecond))
	}
	return Outcome{Op: op, Ref: ref}, nil
}

// backoff is exponential from MinBackoff to MaxBackoff with ±20 % jitter.
func (d *Deliverer) backoff(attempt int) time.Duration {
	b := d.MinBackoff << min(attempt, 20)
	if b > d.MaxBackoff || b <= 0 {
		b = d.MaxBackoff
	}
	return time.Duration(float64(b) * (0.8 + 0.4*rand.Float64()))
}

func boolGauge(b bool) float64 {
	if b {
		return 1
	}
	return 0
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

// deliver performs one op, and says whether it found the op already
// applied instead. An open first looks the key up, so that a ticket
// created just before a crash (and never recorded) is not created twice;
// any other op that may have been applied unrecorded is looked up in the
// ticket when the backend can say (Applier).
func (d *Deliverer) deliver(ctx context.Context, op Op, opened map[string]Ref) (Ref, bool, error) {
	inc, err := d.store.Incident(op.Key)
	if err != nil {
		return Ref{}, false, err
	}
	ref := opened[op.Key]
	if op.Kind == OpOpen {
		// A ticket of this key seen earlier in the group (a resolve
		// delivered with this open) is the previous ticket, not this one.
		ref = Ref{}
	}
	if ref.ID == "" && inc != nil {
		ref = inc.Refs[d.Name]
	}
	if op.Kind == OpOpen {
		ref, err := d.open(ctx, op, inc, ref)
		return ref, false, err
	}
	if ref.ID == "" {
		found, ok, err := d.backend.Find(ctx, op.Key)
		if err != nil {
			return Ref{}, false, fmt.Errorf("find %s: %w", op.Key, err)
		}
		if !ok {
			return Ref{}, false, Final("no_ticket", fmt.Errorf("%s %s: no ticket for this key in %s", op.Kind, op.Key, d.Name))
		}
		ref = found
	}
	if d.applier != nil && op.Seq <= d.unsure {
		applied, err := d.alreadyApplied(ctx, ref, op)
		if err == nil && !applied && d.settling(ctx, op) {
			applied, err = d.alreadyApplied(ctx, ref, op)
		}
		if err != nil || applied || ctx.Err() != nil {
			return ref, applied, cmp.Or(err, ctx.Err())
		}
	}
	if err := d.markSending(); err != nil {
		return ref, false, err
	}
	return ref, false, d.send(ctx, ref, op)
}

// settleBy is when the last send whose answer may be missing can no longer
// be in progress in the ticket system (zero: none may be). It is never
// further than Settle from now, whatever the clock did meanwhile.
func (d *Deliverer) settleBy(now time.Time) time.Time {
	if d.sendingAt.IsZero() {
		return time.Time{}
	}
	limit := now.Add(groupTime + d.Settle)
	if t := d.sendingAt.Add(groupTime + d.Settle); t.Before(limit) {
		return t
	}
	return limit
}

// settling waits, when op is in doubt and was not found, until an attempt
// that may have sent it can no longer be in progress in the ticket system
// (a request cut off by a crash, stop or reload goes on there): it reports
// whether it waited, and op is then looked up again.
func (d *Deliverer) settling(ctx context.Context, op Op) bool {
	wait := time.Until(d.waitUntil)
	if wait <= 0 {
		return false
	}
	d.log.Info("ticket operation not found in the ticket system yet; an earlier attempt may still be in progress there, looking again before sending it", "key", op.Key, "op", op.Kind, "event", op.Event, "wait", wait.Round(time.Millisecond))
	d.waitUntil = time.Time{}
	return d.sleep(ctx, wait) == nil
}

// markSending records, before a send to an Applier, when the send begins:
// at most once per groupTime, so that every send whose answer may be
// missing began within groupTime of the time recorded.
func (d *Deliverer) markSending() error {
	if d.applier == nil || time.Since(d.sendingAt) < groupTime {
		return nil
	}
	now := time.Now()
	if err := d.store.markSending(d.Name, now); err != nil {
		return Retryable("store", err)
	}
	d.sendingAt = now
	return nil
}

// open files the ticket of op, unless the incident has one (ref) or the
// backend has one for the key that is not the key's previous ticket.
func (d *Deliverer) open(ctx context.Context, op Op, inc *Incident, ref Ref) (Ref, error) {
	if ref.ID != "" {
		return ref, nil // already open
	}
	found, ok, err := d.backend.Find(ctx, op.Key)
	if err != nil {
		return Ref{}, fmt.Errorf("find %s: %w", op.Key, err)
	}
	if !ok && d.applier != nil && op.Seq <= d.unsure && d.settling(ctx, op) {
		// A create cut off may still be in progress: look again.
		if found, ok, err = d.backend.Find(ctx, op.Key); err != nil {
			return Ref{}, fmt.Errorf("find %s: %w", op.Key, err)
		}
	}
	if ctx.Err() != nil {
		return Ref{}, ctx.Err()
	}
	// The key's previous ticket (resolved, past the reopen window) is not this one.
	if ok && (inc == nil || found.ID != inc.PrevRefs[d.Name].ID) {
		return d.takeBack(ctx, op, found)
	}
	if err := d.markSending(); err != nil {
		return Ref{}, err
	}
	ref, err = d.backend.Open(ctx, op.Ticket)
	if err != nil {
		return Ref{}, err
	}
	if d.afterOpen != nil {
		d.afterOpen(ref)
	}
	return ref, nil
}

// takeBack makes found, the key's ticket that Find returned, the ticket of
// op's incident instead of opening another. It is brought to the
// incident's state first: reopened, with the new incident's text, when it
// is resolved (else the problem would be back in a ticket that stays
// resolved), and escalated when the incident is above L2 (a ticket opened
// before the escalations, e.g. by an open that waited while its backend
// was out of the config). Both are safe to repeat after a cut-off: the
// next Find sees the ticket open, and an escalation to the same tier
// moves nothing. An open in doubt (its group may have been sent before a
// crash) takes the ticket as it is: it may be this incident's own, changed
// by later operations of the group, which are looked up and replayed.
func (d *Deliverer) takeBack(ctx context.Context, op Op, found Ref) (Ref, error) {
	resolved := found.Resolved
	found.Resolved = false
	if inDoubt := d.applier != nil && op.Seq <= d.unsure; inDoubt || !resolved && op.Tier <= L2 {
		d.log.Info("ticket for this key already exists; not opening another", "key", op.Key, "ticket", found.ID)
		return found, nil
	}
	if err := d.markSending(); err != nil {
		return Ref{}, err
	}
	if resolved {
		text := "The problem is back; l2agent takes this resolved ticket back instead of opening another.\n\n" + op.Ticket.Title + "\n\n" + op.Ticket.Body
		if err := d.backend.Reopen(ctx, found, text); err != nil {
			return Ref{}, fmt.Errorf("reopen %s, found resolved for %s: %w", found.Label(), op.Key, err)
		}
		d.log.Info("ticket for this key found resolved; reopened it instead of opening another", "key", op.Key, "ticket", found.ID)
	}
	if op.Tier > L2 {
		t := op.Ticket
		if !resolved { // a reopen above carried the text already
			t.Body = fmt.Sprintf("Escalated to %s: l2agent takes this ticket of the key as the incident's, which is at %s.\n\n%s", op.Tier, op.Tier, t.Body)
		} else {
			t.Body = fmt.Sprintf("Escalated to %s: the incident is at %s.", op.Tier, op.Tier)
		}
		if err := d.backend.Escalate(ctx, found, op.Tier, t); err != nil {
			return Ref{}, fmt.Errorf("escalate %s, found for %s, to %s: %w", found.Label(), op.Key, op.Tier, err)
		}
		d.log.Info("ticket for this key found; escalated it to the incident's tier", "key", op.Key, "ticket", found.ID, "tier", op.Tier.String())
	}
	return found, nil
}

// send performs an op other than open on ticket ref, after bringing its
// title and priority up to date (retitle). For an Applier, the text it adds
// ends with the op's marker, so that it can be found again.
func (d *Deliverer) send(ctx context.Context, ref Ref, op Op) error {
	if err := d.retitle(ctx, ref, op); err != nil {
		return err
	}
	text := op.Text
	if d.applier != nil {
		text = withMarker(text, op)
	}
	switch op.Kind {
	case OpComment:
		return d.backend.Comment(ctx, ref, text)
	case OpEscalate:
		t := withReason(op)
		if d.applier != nil {
			t.Body = withMarker(t.Body, op)
		}
		return d.backend.Escalate(ctx, ref, op.Tier, t)
	case OpResolve:
		return d.backend.Resolve(ctx, ref, text)
	case OpReopen:
		return d.backend.Reopen(ctx, ref, text)
	}
	return Final("bad_op", fmt.Errorf("unknown op %q", op.Kind))
}

func withReason(op Op) Ticket {
	t := op.Ticket
	if op.Text != "" {
		t.Body = op.Text + "\n\n" + t.Body
	}
	return t
}

// Metrics of ticket delivery. One set serves every service a daemon builds
// over its life (reloads).
type Metrics struct {
	events   *prometheus.CounterVec
	errors   *prometheus.CounterVec
	up       *prometheus.GaugeVec
	duration *prometheus.HistogramVec
	svc      atomic.Pointer[Service] // in force, for l2agent_tickets_open
}

// NewMetrics registers the ticketing metrics on reg (nil: not registered).
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		events: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "l2agent_tickets_total",
			Help: "Ticket operations delivered, by backend and event (opened, commented, escalated, resolved, reopened)."}, []string{"backend", "event"}),
		errors: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "l2agent_ticket_delivery_errors_total",
			Help: "Failed attempts to deliver a ticket operation, by backend and reason."}, []string{"backend", "reason"}),
		up: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "l2agent_ticketing_up",
			Help: "Whether ticketing to a backend works (1): its last delivery attempt succeeded or it had nothing to send; 0 when the attempt failed or the ticket store cannot be used."}, []string{"backend"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "l2agent_ticket_delivery_duration_seconds",
			Help: "Time of one delivery attempt to a backend.", Buckets: []float64{.01, .05, .1, .25, .5, 1, 2.5, 5, 10, 30}}, []string{"backend"}),
	}
	if reg != nil {
		reg.MustRegister(m.events, m.errors, m.up, m.duration, openCollector{m}, deadCollector{m}, pendingCollector{m})
	}
	return m
}

// SetDown marks backends down: ticketing cannot work for them (the store
// could not be opened).
func (m *Metrics) SetDown(backends []string) {
	for _, b := range backends {
		m.up.WithLabelValues(b).Set(0)
	}
}

// forget drops the up gauge of a backend removed from the config; its
// pending count stays while its operations stay in the outbox.
func (m *Metrics) forget(backend string) {
	m.up.DeleteLabelValues(backend)
}

var descPending = prometheus.NewDesc("l2agent_ticket_outbox_pending",
	"Ticket operations waiting in the outbox.", []string{"backend"}, nil)

// pendingCollector counts the outboxes at each scrape, so that an op is
// seen waiting from the moment it is queued, not from its backend's next
// delivery attempt (which may be a backoff away): every backend in force (0
// when nothing waits) and any other whose outbox still holds ops.
type pendingCollector struct{ m *Metrics }

func (c pendingCollector) Describe(ch chan<- *prometheus.Desc) { ch <- descPending }

func (c pendingCollector) Collect(ch chan<- prometheus.Metric) {
	s := c.m.svc.Load()
	if s == nil {
		return
	}
	counts, err := s.Store.PendingAll()
	if err != nil {
		ch <- prometheus.NewInvalidMetric(descPending, err)
		return
	}
	collectByBackend(ch, descPending, s, counts)
}

// collectByBackend sends one gauge of desc per backend: every backend in
// force (0 when counts has none) and any other with a count above 0.
func collectByBackend(ch chan<- prometheus.Metric, desc *prometheus.Desc, s *Service, counts map[string]int) {
	for be, n := range counts {
		if n == 0 {
			delete(counts, be)
		}
	}
	for _, d := range s.Deliverers() {
		counts[d.Name] += 0
	}
	for be, n := range counts {
		ch <- prometheus.MustNewConstMetric(desc, prometheus.GaugeValue, float64(n), be)
	}
}
