package ticketing

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/l2agent/l2agent/internal/alert"
	"github.com/l2agent/l2agent/internal/textfmt"
)

// Tickets follow the alert: the title and priority a backend keeps change
// with the severity, the flapping mark and a reopen (Ticket.Retitle,
// Updater), and an escalation carries diagnostics taken when it happens.

// look is what a ticket's title and priority depend on, beside the value
// the title quotes.
type look struct {
	severity alert.State
	flapping bool
	tier     Tier
}

func lookOf(inc *Incident) look {
	return look{severity: inc.Severity, flapping: inc.Flapping, tier: inc.Tier}
}

// retitle brings the title and priority of the ticket up to date before a
// comment, reopen or resolve that changed them (op.Ticket.Retitle), when
// the backend keeps them (Updater). A retryable failure stops the op, to
// be retried whole (Update changes only what differs, so a retry is safe);
// a final one (the system refuses the change) is logged and counted, and
// the op goes on: its comment matters more than the title.
func (d *Deliverer) retitle(ctx context.Context, ref Ref, op Op) error {
	u, ok := d.backend.(Updater)
	if !ok || !op.Ticket.Retitle || op.Ticket.Title == "" {
		return nil
	}
	switch op.Kind {
	case OpComment, OpReopen, OpResolve:
	default:
		return nil
	}
	err := u.Update(ctx, ref, op.Ticket)
	if err == nil {
		return nil
	}
	reason, retry, _ := Classify(err)
	if retry || ctx.Err() != nil {
		return fmt.Errorf("update the title and priority of %s: %w", ref.ID, err)
	}
	d.metrics.errors.WithLabelValues(d.Name, reason).Inc()
	d.log.Error("ticket title and priority not updated; delivering the operation without", "key", op.Key, "op", op.Kind, "ticket", ref.ID, "reason", reason, "err", err)
	return nil
}

// settled clears the flapping mark of an incident whose alert kept firing
// and changed state less than flapping.count times within the window: the
// title loses "[flapping]" and resolve and reopen work as usual again.
func (m *Manager) settled(d *decision) bool {
	inc := d.inc
	if !inc.Open || !inc.Flapping || !inc.OKSince.IsZero() || !inc.Unreported.IsZero() || m.flapping(inc, d.now) {
		return false
	}
	inc.Flapping = false
	d.add(OpComment, fmt.Sprintf("No longer flapping: fewer than %d state changes within %s. The alert is still %s.", m.cfg.Flapping.Count, m.cfg.Flapping.Window.D(), inc.Severity), 0)
	return true
}

// diagnosis is what Manager.Diagnostics returned for one key.
type diagnosis struct {
	details string
	err     error
}

// apply puts fresh diagnostics in inc before an escalation and returns
// what the escalation's reason must add: nothing, or that the diagnostics
// it shows are older.
func (f *diagnosis) apply(inc *Incident) string {
	switch {
	case f == nil:
		return ""
	case f.err != nil:
		return fmt.Sprintf(" (diagnostics could not be taken again: %s; those below are older)", textfmt.TicketField(f.err.Error()))
	case strings.TrimSpace(f.details) != "":
		inc.Details = f.details
	}
	return ""
}

// maxDiagnoses bounds the diagnostics taken at once by one Tick.
const maxDiagnoses = 4

// freshDiagnostics takes the diagnostics of every incident whose SLA has
// passed (it is about to be escalated), a few at a time, before Tick opens
// its store transaction: diagnostics may take seconds, decisions must not
// wait for them.
func (m *Manager) freshDiagnostics(ctx context.Context, incs []Incident, now time.Time) map[string]*diagnosis {
	take := m.Diagnostics
	if take == nil {
		return nil
	}
	m.mu.Lock()
	cfg := m.cfg
	m.mu.Unlock()
	out := map[string]*diagnosis{}
	var mu sync.Mutex
	var wg sync.WaitGroup
	sem := make(chan struct{}, maxDiagnoses)
	for i := range incs {
		if _, due := slaDue(cfg, &incs[i], now); !due {
			continue
		}
		key := incs[i].Key
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			details, err := take(ctx, key)
			if err != nil {
				m.log.Warn("diagnostics for the escalation not taken; the ticket keeps the older ones", "key", key, "err", err)
			}
			mu.Lock()
			out[key] = &diagnosis{details: details, err: err}
			mu.Unlock()
		}()
	}
	wg.Wait()
	return out
}
