package ticketing

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/l2agent/l2agent/configs"
	"github.com/l2agent/l2agent/internal/alert"
)

type eventKey struct{}

// Event identifies one ticket operation: the alert key and the incident's
// event number. Backends without a lookup (webhooks) send it as an
// idempotency key so that a retried operation is recognised.
type Event struct {
	Key string
	Seq uint64
	// Past: this problem's history, on a reopen (for backends that send
	// structured fields; the text carries it too).
	Past *Past
}

// IdempotencyKey is "KEY#SEQ".
func (e Event) IdempotencyKey() string { return fmt.Sprintf("%s#%d", e.Key, e.Seq) }

// WithEvent returns ctx carrying the event being delivered.
func WithEvent(ctx context.Context, e Event) context.Context {
	return context.WithValue(ctx, eventKey{}, e)
}

// EventFrom returns the event being delivered, if any.
func EventFrom(ctx context.Context) (Event, bool) {
	e, ok := ctx.Value(eventKey{}).(Event)
	return e, ok
}

// Service is the ticketing part of the daemon: manager, store and one
// deliverer per backend. Reconfigure changes its backends and policy
// without a restart; the outbox stays in the store.
type Service struct {
	Manager *Manager
	Store   *Store
	log     *slog.Logger
	metrics *Metrics
	queue   chan *alert.Transition // transitions waiting for the manager (pointers: the buffer stays small)
	// undecided counts transitions queued and not yet committed.
	undecided pendingCount

	mu         sync.RWMutex // guards deliverers and tick
	deliverers []*Deliverer
	tick       time.Duration

	cancel     context.CancelFunc
	wg         sync.WaitGroup
	clockWakes atomic.Uint64 // times the clock ran Tick (for tests)

	storeErr atomic.Pointer[string] // the last decision the store could not record; nil after a success

	openStale atomic.Bool // the counts of open tickets must be read again
	openMu    sync.Mutex
	openCount map[Tier]int
}

// maxBatch bounds the transitions decided in one store transaction.
const maxBatch = 1000

// NewService builds the service over an open store; names orders backends.
// metrics may be shared by the services a daemon builds over its life
// (reloads); nil makes unregistered ones.
func NewService(cfg configs.Ticketing, store *Store, names []string, backends map[string]Ticketer, version string, log *slog.Logger, metrics *Metrics) *Service {
	if metrics == nil {
		metrics = NewMetrics(nil)
	}
	s := &Service{Store: store, log: log, metrics: metrics, queue: make(chan *alert.Transition, 4*maxBatch), tick: cfg.Interval.D()}
	s.deliverers = s.newDeliverers(cfg, names, backends)
	s.Manager = NewManager(cfg, store, names, version, log, s.wakeAll)
	s.openStale.Store(true)
	metrics.svc.Store(s)
	return s
}

func (s *Service) newDeliverers(cfg configs.Ticketing, names []string, backends map[string]Ticketer) []*Deliverer {
	var ds []*Deliverer
	for _, n := range names {
		d := NewDeliverer(n, backends[n], s.Store, s.log, s.metrics)
		for _, b := range cfg.Backends {
			if b.Name == n && b.Timeout > 0 {
				d.Settle = b.Timeout.D()
			}
		}
		ds = append(ds, d)
	}
	return ds
}

// wakeAll tells every deliverer there is work: every open, escalation,
// resolve and reopen queues an op.
func (s *Service) wakeAll() {
	s.openStale.Store(true)
	for _, d := range s.Deliverers() {
		d.Wake()
	}
}

// Deliverers are the deliverers of the backends in force.
func (s *Service) Deliverers() []*Deliverer {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return slices.Clone(s.deliverers)
}

// Start runs the deliverers (resuming the outbox left by a previous run)
// and the clock of time-based rules.
func (s *Service) Start() {
	ctx, cancel := context.WithCancel(context.Background())
	s.cancel = cancel
	s.mu.RLock()
	ds, tick := s.deliverers, s.tick
	s.mu.RUnlock()
	for _, d := range ds {
		s.wg.Add(1)
		go func() { defer s.wg.Done(); d.Run(ctx) }()
		d.Wake()
	}
	s.wg.Add(1)
	go func() { defer s.wg.Done(); s.decide(ctx) }()
	s.wg.Add(1)
	go func() { defer s.wg.Done(); s.clock(ctx, tick) }()
}

// clock runs the manager's Tick on a grid of tick intervals from its start,
// but only at the instants where Tick would act: the first one at or after
// the time the manager said nothing is due before (Manager.idleUntil), and
// the first one after any write to the store. A Tick at the other instants
// would return at once; the agent is not woken for it.
func (s *Service) clock(ctx context.Context, tick time.Duration) {
	origin := time.Now()
	// atOrAfter is the first grid instant at or after t, and after origin.
	atOrAfter := func(t time.Time) time.Time {
		d := t.Sub(origin)
		if d <= 0 {
			return origin.Add(tick)
		}
		return origin.Add((d + tick - 1) / tick * tick)
	}
	next := origin.Add(tick)
	t := time.NewTimer(tick)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-s.Store.Changed():
			if g := atOrAfter(time.Now().Add(time.Nanosecond)); g.Before(next) {
				next = g
				t.Reset(time.Until(next))
			}
		case now := <-t.C:
			s.clockWakes.Add(1)
			if err := s.Manager.Tick(ctx, now); err != nil {
				s.log.Error("ticket rules", "err", err)
			}
			after := now.Add(time.Nanosecond)
			if until := s.Manager.idleUntil(); until.After(after) {
				after = until
			}
			next = atOrAfter(after)
			t.Reset(time.Until(next))
		}
	}
}

// halt stops the goroutines of Start: the transitions queued are decided
// first; an op being delivered is cancelled and stays in the outbox.
func (s *Service) halt() {
	if s.cancel != nil {
		s.cancel()
	}
	s.wg.Wait()
	for _, d := range s.Deliverers() {
		if c, ok := d.backend.(interface{ Close() error }); ok {
			c.Close() // e.g. the Alertmanager backend's resend loop
		}
	}
}

// Reconfigure puts a new policy and new backends in force without a
// restart. A backend added is sent an open for every incident open now (it
// finds an existing ticket by key first); a backend removed keeps its
// pending operations in the store, delivered if it comes back.
func (s *Service) Reconfigure(cfg configs.Ticketing, names []string, backends map[string]Ticketer, now time.Time) error {
	s.halt()
	old := s.Deliverers()
	s.mu.Lock()
	s.deliverers, s.tick = s.newDeliverers(cfg, names, backends), cfg.Interval.D()
	s.mu.Unlock()
	for _, d := range old {
		if !slices.Contains(names, d.Name) {
			if n := s.Store.Pending(d.Name); n > 0 {
				s.log.Warn("ticket backend removed with operations pending; they are kept and delivered if it comes back", "backend", d.Name, "pending", n)
			}
			s.metrics.forget(d.Name)
		}
	}
	err := s.Manager.reconfigure(cfg, names, now)
	s.Start()
	return err
}

// Err says why the store could not record the last decision; nil once a
// decision is recorded again.
func (s *Service) Err() error {
	if p := s.storeErr.Load(); p != nil {
		return errors.New(*p)
	}
	return nil
}

// Handle queues one alert transition for the manager. Transitions that
// arrive together are decided in one store transaction: one fsync for a
// burst, not one per transition.
func (s *Service) Handle(t alert.Transition) {
	s.undecided.Add(1)
	s.queue <- &t
}

// Reconcile squares the open incidents of check with the alerts of its
// first run after a start or reload (see Manager.Reconcile), after every
// transition handed to Handle before it is decided.
func (s *Service) Reconcile(check string, alerts []alert.Alert, now time.Time) {
	s.Decided()
	if err := s.Manager.Reconcile(check, alerts, now); err != nil {
		s.log.Error("ticketing: open incidents not reconciled", "check", check, "err", err)
	}
}

// ReconcileChecks marks unreported the open incidents of checks no longer
// in the config.
func (s *Service) ReconcileChecks(checks []string, now time.Time) {
	s.Decided()
	if err := s.Manager.ReconcileChecks(checks, now); err != nil {
		s.log.Error("ticketing: incidents of removed checks not reconciled", "err", err)
	}
}

// Decided waits until every transition handed to Handle so far is decided
// and its ticket operations are on disk in the outbox.
func (s *Service) Decided() { s.undecided.Wait() }

// pendingCount is a count of transitions queued and not yet decided that
// one can wait to reach zero. (A sync.WaitGroup may not be added to from
// zero while another goroutine waits on it, and checks run concurrently:
// one check's reconciliation waits while another's transitions arrive.)
type pendingCount struct {
	mu   sync.Mutex
	n    int
	zero *sync.Cond
}

func (p *pendingCount) cond() *sync.Cond { // p.mu held
	if p.zero == nil {
		p.zero = sync.NewCond(&p.mu)
	}
	return p.zero
}

// Add adds d (negative when decided) to the count.
func (p *pendingCount) Add(d int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.n += d; p.n <= 0 {
		p.n = 0
		p.cond().Broadcast()
	}
}

// Wait returns once the count is zero.
func (p *pendingCount) Wait() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for p.n > 0 {
		p.cond().Wait()
	}
}

// decide applies queued transitions in batches until ctx ends, then the
// ones still queued.
func (s *Service) decide(ctx context.Context) {
	for {
		select {
		case a := <-s.queue:
			s.apply(a)
		case <-ctx.Done():
			for {
				select {
				case a := <-s.queue:
					s.apply(a)
				default:
					return
				}
			}
		}
	}
}

func (s *Service) apply(first *alert.Transition) {
	batch := []alert.Transition{*first}
	for len(batch) < maxBatch {
		select {
		case a := <-s.queue:
			batch = append(batch, *a)
			continue
		default:
		}
		break
	}
	if err := s.Manager.HandleBatch(batch); err != nil {
		s.log.Error("ticketing: transitions not recorded", "transitions", len(batch), "err", err)
		msg := "ticket store: " + err.Error()
		s.storeErr.Store(&msg)
	} else {
		s.storeErr.Store(nil)
	}
	s.undecided.Add(-len(batch))
}

// Flush delivers every outbox now and returns what remains per backend.
func (s *Service) Flush(ctx context.Context) map[string]int {
	out := map[string]int{}
	for _, d := range s.Deliverers() {
		n, err := d.Flush(ctx)
		if err != nil {
			s.log.Warn("flush", "backend", d.Name, "err", err)
		}
		out[d.Name] = n
	}
	return out
}

// Stop stops delivery and closes the store. Queued ops stay in the outbox.
func (s *Service) Stop() error {
	s.halt()
	s.metrics.svc.CompareAndSwap(s, nil)
	return s.Store.Close()
}

var descOpen = prometheus.NewDesc("l2agent_tickets_open", "Open tickets, by backend and tier.", []string{"backend", "tier"}, nil)

// openCollector exposes the open tickets of the service in force.
type openCollector struct{ m *Metrics }

func (c openCollector) Describe(ch chan<- *prometheus.Desc) { ch <- descOpen }

func (c openCollector) Collect(ch chan<- prometheus.Metric) {
	s := c.m.svc.Load()
	if s == nil {
		return
	}
	counts, err := s.openTickets()
	if err != nil {
		ch <- prometheus.NewInvalidMetric(descOpen, err)
		return
	}
	for _, d := range s.Deliverers() {
		for _, tier := range []Tier{L2, L3, L4} {
			if n, ok := counts[tier]; ok || tier != L4 {
				ch <- prometheus.MustNewConstMetric(descOpen, prometheus.GaugeValue, float64(n), d.Name, tier.String())
			}
		}
	}
}

// openTickets counts open incidents per tier. The store is read only after
// the manager changed something, not on every scrape.
func (s *Service) openTickets() (map[Tier]int, error) {
	s.openMu.Lock()
	defer s.openMu.Unlock()
	if !s.openStale.Swap(false) && s.openCount != nil {
		return s.openCount, nil
	}
	incs, err := s.Store.Incidents()
	if err != nil {
		s.openStale.Store(true)
		return nil, err
	}
	counts := map[Tier]int{}
	for _, inc := range incs {
		if inc.Open {
			counts[inc.Tier]++
		}
	}
	s.openCount = counts
	return counts, nil
}
