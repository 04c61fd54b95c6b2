package ticketing

import (
	"context"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/l2agent/l2agent/configs"
	"github.com/l2agent/l2agent/internal/alert"
	"github.com/l2agent/l2agent/internal/textfmt"
)

// maxHistory and maxAttempts bound the state history and the remediation
// attempts kept per incident.
const (
	maxHistory  = 20
	maxAttempts = 10
)

// Manager drives the incident life cycle of DESIGN.md. Each decision is
// saved with its ticket operations in one store transaction (the outbox);
// delivery happens elsewhere.
type Manager struct {
	cfg      configs.Ticketing
	store    *Store
	backends []string
	version  string
	log      *slog.Logger
	wake     func() // tells the deliverers there is work
	// KPI, when set, counts incidents by outcome, resolution times and repeats.
	KPI *KPI
	// Diagnostics, when set, takes the diagnostics of an alert key afresh
	// (the agent runs its check's diagnostics on the last observation). Tick
	// calls it before an escalation that no check run caused (an SLA
	// passed), so that the escalated ticket shows the host as it is now.
	// It must return when ctx ends. Set it before Start.
	Diagnostics func(ctx context.Context, key string) (string, error)

	procedures atomic.Pointer[func(check, metric string) string] // SetProcedures

	mu      sync.Mutex // one decision at a time
	counted []func()   // KPI updates of the transaction in progress

	// Tick does nothing before tickUntil while the store has had no write
	// since tickWrites (Store.Writes), read before Tick's last full pass:
	// the incidents are those it saw, and none is due before tickUntil.
	tickWrites uint64
	tickUntil  time.Time
	cfgEpoch   uint64 // reconfigurations so far
	tickPasses int    // passes over the incidents (for tests)
}

// tickMaxSkip bounds how long Tick goes without reading the incidents, even
// when none is due.
const tickMaxSkip = 10 * time.Minute

// NewManager returns a manager queueing for the named backends.
func NewManager(cfg configs.Ticketing, store *Store, backends []string, version string, log *slog.Logger, wake func()) *Manager {
	if wake == nil {
		wake = func() {}
	}
	return &Manager{cfg: cfg, store: store, backends: backends, version: version, log: log, wake: wake}
}

// reconfigure puts a new policy and backends in force; each backend added
// is sent an open for every incident open now, or, when it holds the
// incident's ticket already (it was left out of the config for a while),
// what it missed: see catchUp.
func (m *Manager) reconfigure(cfg configs.Ticketing, backends []string, now time.Time) error {
	m.mu.Lock()
	var added []string
	for _, b := range backends {
		if !slices.Contains(m.backends, b) {
			added = append(added, b)
		}
	}
	m.cfg, m.backends = cfg, backends
	m.tickUntil = time.Time{} // the durations may have changed
	m.cfgEpoch++
	m.mu.Unlock()
	if len(added) == 0 {
		return nil
	}
	incs, err := m.store.Incidents()
	if err != nil {
		return err
	}
	return m.update(func(tx *Txn, queued *int) error {
		for i := range incs {
			inc, err := tx.Incident(incs[i].Key)
			if err != nil {
				return err
			}
			if inc == nil || !inc.Open {
				continue
			}
			var fresh []string
			for _, b := range added {
				if inc.Refs[b].ID == "" {
					fresh = append(fresh, b)
					continue
				}
				ops := m.catchUp(inc, now)
				if err := tx.Save(inc, []string{b}, ops); err != nil {
					return fmt.Errorf("queue the state of %s for %s: %w", inc.Key, b, err)
				}
				*queued += len(ops)
			}
			if len(fresh) == 0 {
				continue
			}
			inc.Events++
			op := Op{Key: inc.Key, Kind: OpOpen, Event: inc.Events, Ticket: m.ticket(inc, now, true), Tier: inc.Tier, Created: now}
			if err := tx.Save(inc, fresh, []Op{op}); err != nil {
				return fmt.Errorf("queue open of %s for %v: %w", inc.Key, fresh, err)
			}
			*queued++
		}
		return nil
	})
}

// catchUp is what a backend added back, which holds inc's ticket from
// before it was left out, is sent instead of an open: the incident as it is
// now, as an escalation to its tier when it is above L2 (the escalations
// made meanwhile were sent to the other backends only), else as a comment.
func (m *Manager) catchUp(inc *Incident, now time.Time) []Op {
	inc.Events++
	t := m.ticket(inc, now, true)
	why := "l2agent reports to this ticket system again (it was left out of the configuration); the incident as it is now:"
	if inc.Tier > L2 {
		return []Op{{Key: inc.Key, Kind: OpEscalate, Event: inc.Events, Ticket: t, Text: fmt.Sprintf("Escalated to %s: %s", inc.Tier, why), Tier: inc.Tier, Created: now}}
	}
	text := why + "\n\n" + t.Body
	t.Body = "" // a comment carries its text only
	return []Op{{Key: inc.Key, Kind: OpComment, Event: inc.Events, Ticket: t, Text: text, Created: now}}
}

func (m *Manager) maxTier() Tier { return maxTier(m.cfg) }

func maxTier(cfg configs.Ticketing) Tier {
	if cfg.VendorTier {
		return L4
	}
	return L3
}

// decision collects the ops of one change of an incident.
type decision struct {
	m   *Manager
	inc *Incident
	now time.Time
	ops []Op
	// shown is what the title and priority depended on when the last op
	// was queued (or the decision began); nil: not known, not compared.
	shown *look
	tx    *Txn   // the store transaction deciding (nil: none read from)
	ended string // the incident ends with this outcome (history.go)
}

// newDecision begins a decision on inc, before anything changes it.
func newDecision(m *Manager, inc *Incident, now time.Time) *decision {
	l := lookOf(inc)
	return &decision{m: m, inc: inc, now: now, shown: &l}
}

func (d *decision) add(kind OpKind, text string, tier Tier) {
	if k := d.m.KPI; k != nil {
		inc, secs := *d.inc, 0.0
		if since := inc.Since; !since.IsZero() {
			secs = d.now.Sub(since).Seconds()
		} else {
			secs = d.now.Sub(inc.Opened).Seconds()
		}
		d.m.counted = append(d.m.counted, func() { k.record(kind, inc, secs) })
	}
	d.inc.Events++
	t := d.m.ticket(d.inc, d.now, kind == OpOpen || kind == OpEscalate) // only these carry the whole text
	now := lookOf(d.inc)
	switch kind {
	case OpOpen, OpEscalate: // these set the title and priority themselves
	case OpReopen:
		t.Retitle = true // back at a new value, perhaps at another severity
	default:
		t.Retitle = d.shown != nil && *d.shown != now
	}
	d.shown = &now
	d.ops = append(d.ops, Op{Key: d.inc.Key, Kind: kind, Event: d.inc.Events, Ticket: t, Text: text, Tier: tier, Created: d.now})
}

func (d *decision) escalate(to Tier, why string) {
	if to <= d.inc.Tier || to > d.m.maxTier() {
		return
	}
	d.inc.Tier, d.inc.TierSince = to, d.now
	d.add(OpEscalate, fmt.Sprintf("Escalated to %s: %s", to, why), to)
}

func (m *Manager) ticket(inc *Incident, now time.Time, withBody bool) Ticket {
	body := ""
	if withBody {
		inc.Procedure = m.procedure(inc)
		body = Body(inc, now, m.version)
	}
	return Ticket{
		Key: inc.Key, Title: Title(inc), Body: body,
		Host: inc.Host, Check: inc.Check, Metric: inc.Metric, Labels: maps.Clone(inc.Labels),
		Severity: inc.Severity.String(), Tier: inc.Tier, RunbookURL: inc.RunbookURL, Flapping: inc.Flapping,
		Past: inc.past,
	}
}

func (m *Manager) commit(tx *Txn, d *decision, queued *int) error {
	if err := tx.Save(d.inc, m.backends, d.ops); err != nil {
		return fmt.Errorf("save incident %s: %w", d.inc.Key, err)
	}
	if err := m.remember(tx, d); err != nil {
		return err
	}
	for _, op := range d.ops {
		m.log.Debug("ticket operation queued", "key", d.inc.Key, "op", op.Kind, "tier", d.inc.Tier.String())
	}
	*queued += len(d.ops)
	return nil
}

// update runs fn in one store transaction and wakes the deliverers if it
// queued anything.
func (m *Manager) update(fn func(tx *Txn, queued *int) error) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	queued := 0
	m.counted = m.counted[:0]
	if err := m.store.Update(func(tx *Txn) error { return fn(tx, &queued) }); err != nil {
		return err
	}
	for _, c := range m.counted { // only what was committed is counted
		c()
	}
	if queued > 0 {
		m.wake()
	}
	return nil
}

// Handle applies one alert transition.
func (m *Manager) Handle(t alert.Transition) error { return m.HandleBatch([]alert.Transition{t}) }

// HandleBatch applies transitions in order, in one store transaction (one
// fsync for all). An error rolls the whole batch back.
func (m *Manager) HandleBatch(ts []alert.Transition) error {
	return m.update(func(tx *Txn, queued *int) error {
		for i := range ts {
			if err := m.handle(tx, &ts[i], queued); err != nil {
				return err
			}
		}
		return nil
	})
}

// newIncident is the stored record of an alert that starts firing.
func newIncident(a alert.Alert) *Incident {
	return &Incident{Key: a.Key, Host: a.Host, Check: a.Check, Metric: a.Metric, Labels: maps.Clone(a.Labels)}
}

func (m *Manager) handle(tx *Txn, a *alert.Transition, queued *int) error {
	inc, err := tx.Incident(a.Key)
	if err != nil {
		return err
	}
	if a.ReportOnly != "" && a.Unreported == "" && a.State.Firing() {
		// Reported for dashboards only: no ticket, and an open one is closed.
		if inc == nil || !inc.Open {
			return nil
		}
		d := newDecision(m, inc, a.At)
		d.tx = tx
		m.record(inc, a)
		m.reportOnly(d, a.Alert)
		return m.commit(tx, d, queued)
	}
	if inc == nil {
		if !a.State.Firing() {
			return nil // nothing open and nothing to open
		}
		inc = newIncident(a.Alert)
	}
	d := newDecision(m, inc, a.At)
	d.tx = tx
	m.record(inc, a)
	switch {
	case a.Unreported != "":
		m.unreported(d, a.Unreported)
	case a.State.Firing():
		m.firing(d, a)
	case a.State == alert.StateOK:
		inc.Unreported, inc.UnreportedWhy = time.Time{}, ""
		if inc.Open && inc.OKSince.IsZero() {
			inc.OKSince = a.At
			if m.flapping(inc, a.At) && !inc.Flapping {
				inc.Flapping = true
				d.add(OpComment, fmt.Sprintf("Flapping: %d state changes within %s. This ticket stays open until the alert settles.", len(prune(inc.Changes, a.At, m.cfg.Flapping.Window.D())), m.cfg.Flapping.Window.D()), 0)
			}
		}
	case a.State == alert.StateUnknown:
		if inc.Open && !inc.Unknown {
			inc.Unknown = true
			d.add(OpComment, "The check is failing, so the current value is unknown: "+a.Error, 0)
		}
	}
	return m.commit(tx, d, queued)
}

// record copies what a transition says into the incident: its history, the
// latest value, diagnostics, runbook, remediation attempts and the changes
// that count towards flapping.
func (m *Manager) record(inc *Incident, a *alert.Transition) {
	inc.History = append(inc.History, HistoryEntry{At: a.At, From: a.From, To: a.State, Value: a.Value, Reason: a.Reason})
	if len(inc.History) > maxHistory {
		inc.History = inc.History[len(inc.History)-maxHistory:]
	}
	if a.State != alert.StateUnknown && a.State != alert.StatePending {
		inc.Value = a.Value
	}
	if a.Details != "" {
		inc.Details = a.Details
	}
	if a.RunbookURL != "" {
		inc.RunbookURL = a.RunbookURL
	}
	if len(a.Attempts) > 0 {
		inc.Attempts = append(inc.Attempts, a.Attempts...)
		if len(inc.Attempts) > maxAttempts {
			inc.Attempts = inc.Attempts[len(inc.Attempts)-maxAttempts:]
		}
	}
	if a.RemediationFailed {
		inc.Failures++
	}

	// Flapping: count firing↔ok changes in the window.
	if a.Starts() && a.From != alert.StateUnknown || a.State == alert.StateOK && a.From.Firing() {
		inc.Changes = append(prune(inc.Changes, a.At, m.cfg.Flapping.Window.D()), a.At)
	}
}

// flapping reports whether the incident changed state often enough within
// the flapping window before now.
func (m *Manager) flapping(inc *Incident, now time.Time) bool {
	return len(prune(inc.Changes, now, m.cfg.Flapping.Window.D())) >= m.cfg.Flapping.Count
}

// firing decides what a transition to warn or crit does to the ticket:
// open, reopen, comment, escalate.
func (m *Manager) firing(d *decision, a *alert.Transition) {
	inc := d.inc
	flapNow := m.flapping(inc, a.At)
	inc.Threshold, inc.Direction = a.Threshold, a.Direction
	if !a.BreachAt.IsZero() {
		inc.Since = a.BreachAt
	}
	prevSev := inc.Severity
	inc.Severity = a.State
	inc.Unknown = false
	back := !inc.Unreported.IsZero()
	inc.Unreported, inc.UnreportedWhy = time.Time{}, ""
	switch {
	case !inc.Open && inc.Opened.IsZero(), !inc.Open && a.At.Sub(inc.Resolved) > m.cfg.ReopenWindow.D():
		// A new problem, or one back after the reopen window: a new ticket,
		// linking the previous one if there was one.
		if len(inc.Refs) > 0 {
			inc.PrevRefs, inc.Refs = inc.Refs, nil
		}
		inc.Open, inc.Opened, inc.Tier, inc.TierSince = true, a.At, L2, a.At
		inc.OKSince, inc.Resolved, inc.Reopens, inc.Flapping = time.Time{}, time.Time{}, nil, false
		inc.Changes = []time.Time{a.At}
		m.recall(d)
		d.add(OpOpen, "", L2)
	case !inc.Open:
		// Back within the reopen window: the same ticket.
		inc.Open, inc.Opened, inc.OKSince = true, a.At, time.Time{}
		inc.Reopens = append(prune(inc.Reopens, a.At, m.cfg.Recurrence.Window.D()), a.At)
		text := fmt.Sprintf("Reopened: %s is %s again (%s), %s after it was resolved.", inc.Metric, a.State, textfmt.TicketField(a.Reason), textfmt.Duration(a.At.Sub(inc.Resolved)))
		if a.Starts() && strings.TrimSpace(a.Details) != "" { // taken as it started firing again
			text += "\n\nDiagnostics now:\n" + indent(a.Details, "  ")
		}
		m.recall(d)
		text += pastText(inc.past)
		d.add(OpReopen, text, inc.Tier)
		if n := len(inc.Reopens); n >= m.cfg.Recurrence.Count {
			d.escalate(inc.Tier+1, fmt.Sprintf("it recurred %d times within %s", n, m.cfg.Recurrence.Window.D()))
		}
	default:
		wasOK := !inc.OKSince.IsZero()
		inc.OKSince = time.Time{}
		switch {
		case flapNow && !inc.Flapping:
			inc.Flapping = true
			d.add(OpComment, fmt.Sprintf("Flapping: %d state changes within %s. This ticket stays open and will not be resolved or reopened until the alert settles.", len(prune(inc.Changes, a.At, m.cfg.Flapping.Window.D())), m.cfg.Flapping.Window.D()), 0)
		case prevSev != a.State:
			d.add(OpComment, fmt.Sprintf("Severity %s → %s: %s", prevSev, a.State, textfmt.TicketField(a.Reason)), 0)
		case wasOK && !inc.Flapping:
			d.add(OpComment, fmt.Sprintf("Firing again before it was resolved: %s", textfmt.TicketField(a.Reason)), 0)
		case back:
			d.add(OpComment, fmt.Sprintf("Reported again, still %s: %s", a.State, textfmt.TicketField(a.Reason)), 0)
		}
	}
	m.escalateIfFixNotHolding(d, a)
	m.noteSkipped(d, a)
	if a.State == alert.StateCrit && *m.cfg.EscalateOnCrit && inc.Tier < L3 {
		d.escalate(L3, "the alert is crit")
	}
	if a.RemediationFailed && inc.Failures >= m.cfg.RemediationFailures {
		d.escalate(inc.Tier+1, fmt.Sprintf("remediation failed %d times", inc.Failures))
	}
}

// Tick applies the rules that depend on time alone: resolving incidents ok
// for resolve_after, clearing the flapping mark of an alert that settled
// while firing, and escalating tickets open past their SLA, with
// diagnostics taken afresh (Diagnostics) outside the store transaction.
//
// A pass reads every incident; when the last pass found none due before a
// time (nextDue) and the store has not been written since, Tick returns at
// once until then (at most tickMaxSkip): an agent whose incidents wait for
// hours costs nothing every interval.
func (m *Manager) Tick(ctx context.Context, now time.Time) error {
	writes := m.store.Writes()
	m.mu.Lock()
	skip, cfg, epoch := now.Before(m.idleUntilLocked(writes)), m.cfg, m.cfgEpoch
	if !skip {
		m.tickPasses++
	}
	m.mu.Unlock()
	if skip {
		return nil
	}
	incs, err := m.store.Incidents()
	if err != nil {
		return err
	}
	fresh := m.freshDiagnostics(ctx, incs, now)
	err = m.update(func(tx *Txn, queued *int) error {
		for i := range incs {
			// The incident may have changed since the read above.
			if cur, err := tx.Incident(incs[i].Key); err != nil || cur == nil {
				continue
			} else {
				incs[i] = *cur
			}
			if err := m.tick(tx, &incs[i], now, fresh[incs[i].Key], queued); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	until := now.Add(tickMaxSkip)
	for i := range incs {
		if due, ok := nextDue(cfg, &incs[i]); ok && due.Before(until) {
			until = due
		}
	}
	m.mu.Lock()
	if m.cfgEpoch == epoch { // else the durations changed meanwhile: pass again next time
		m.tickWrites, m.tickUntil = writes, until
	}
	m.mu.Unlock()
	return nil
}

// idleUntil is the time before which Tick would return at once, as long
// as the store is not written; zero when the next Tick must pass.
func (m *Manager) idleUntil() time.Time {
	writes := m.store.Writes()
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.idleUntilLocked(writes)
}

// idleUntilLocked is idleUntil for a store write count read before; m.mu
// is held. Tick skips on it, and the clock sleeps on it.
func (m *Manager) idleUntilLocked(writes uint64) time.Time {
	if writes != m.tickWrites {
		return time.Time{}
	}
	return m.tickUntil
}

// nextDue is the earliest time at which tick may act on inc as it is now
// (ok false: never, until a transition changes it). A flapping incident is
// due at every tick (when it settles depends on its changes).
func nextDue(cfg configs.Ticketing, inc *Incident) (time.Time, bool) {
	switch {
	case inc.Open && inc.Flapping:
		return time.Time{}, true
	case inc.Open && !inc.OKSince.IsZero():
		return inc.OKSince.Add(cfg.ResolveAfter.D()), true
	case inc.Open && !inc.Unreported.IsZero():
		return inc.Unreported.Add(cfg.Unreported.CloseAfter.D()), !cfg.Unreported.KeepOpen
	case inc.Open:
		sla, ok := slaOf(cfg, inc)
		return inc.TierSince.Add(sla), ok
	case !inc.Resolved.IsZero():
		return inc.Resolved.Add(max(cfg.ReopenWindow.D(), cfg.Recurrence.Window.D()) + time.Nanosecond), true
	}
	return time.Time{}, false
}

func (m *Manager) tick(tx *Txn, inc *Incident, now time.Time, fresh *diagnosis, queued *int) error {
	d := newDecision(m, inc, now)
	changed := m.settled(d)
	switch {
	case inc.Open && !inc.OKSince.IsZero() && now.Sub(inc.OKSince) >= m.cfg.ResolveAfter.D():
		if inc.Flapping {
			if m.flapping(inc, now) {
				return nil // still flapping: no churn
			}
			inc.Flapping = false
		}
		inc.Open, inc.Resolved, inc.Unknown = false, now, false
		d.ended = EndCleared
		d.add(OpResolve, fmt.Sprintf("Resolved: %s has been back within its threshold for %s (value now %s).", inc.Metric, textfmt.Duration(now.Sub(inc.OKSince)), textfmt.FormatValue(inc.Metric, inc.Value)), 0)
		changed = true
	case inc.Open && !inc.Unreported.IsZero():
		if m.cfg.Unreported.KeepOpen || now.Sub(inc.Unreported) < m.cfg.Unreported.CloseAfter.D() {
			return nil
		}
		inc.Open, inc.Resolved, inc.Unknown, inc.OKSince = false, now, false, time.Time{}
		d.ended = EndUnreported
		d.add(OpResolve, fmt.Sprintf("Closed without a fix: %s has not been evaluated for %s (%s). It was not verified as fixed; if the problem is still there, it opens a ticket again when it is reported.", inc.Metric, textfmt.Duration(now.Sub(inc.Unreported)), textfmt.TicketField(inc.UnreportedWhy)), 0)
		changed = true
	default:
		if sla, due := slaDue(m.cfg, inc, now); due {
			why := fmt.Sprintf("open at %s for %s, past the %s SLA of %s", inc.Tier, textfmt.Duration(now.Sub(inc.TierSince).Round(time.Minute)), inc.Severity, textfmt.Duration(sla))
			d.escalate(inc.Tier+1, why+fresh.apply(inc))
			changed = true
		} else if !inc.Open && !inc.Resolved.IsZero() && now.Sub(inc.Resolved) > max(m.cfg.ReopenWindow.D(), m.cfg.Recurrence.Window.D()) {
			return tx.Delete(inc.Key)
		}
	}
	if changed {
		return m.commit(tx, d, queued)
	}
	return nil
}

// slaDue reports whether inc, open and firing, has been at its tier longer
// than the SLA of its severity, and can go up a tier.
func slaDue(cfg configs.Ticketing, inc *Incident, now time.Time) (time.Duration, bool) {
	sla, ok := slaOf(cfg, inc)
	return sla, ok && now.Sub(inc.TierSince) >= sla
}

// slaOf is the SLA inc is held to at its tier (ok false: none, as it is
// not open and firing, or at the last tier).
func slaOf(cfg configs.Ticketing, inc *Incident) (sla time.Duration, ok bool) {
	if !inc.Open || !inc.OKSince.IsZero() || !inc.Unreported.IsZero() || inc.Tier >= maxTier(cfg) {
		return 0, false
	}
	if inc.Severity == alert.StateCrit {
		return cfg.SLA.Crit.D(), true
	}
	return cfg.SLA.Warn.D(), true
}

// prune keeps the times within window before now.
func prune(ts []time.Time, now time.Time, window time.Duration) []time.Time {
	out := ts[:0:0]
	for _, t := range ts {
		if now.Sub(t) < window {
			out = append(out, t)
		}
	}
	return out
}
