package ticketing

import (
	"fmt"
	"slices"
	"time"

	"github.com/l2agent/l2agent/internal/alert"
	"github.com/l2agent/l2agent/internal/textfmt"
)

// unreported records that the incident's alert is no longer evaluated: one
// comment saying so and what the policy will do. It is never resolved as
// fixed; Tick closes it after unreported.close_after unless keep_open.
func (m *Manager) unreported(d *decision, why string) {
	inc := d.inc
	if !inc.Open || !inc.Unreported.IsZero() {
		return
	}
	inc.Unreported, inc.UnreportedWhy, inc.OKSince = d.now, why, time.Time{}
	policy := fmt.Sprintf("This ticket is closed in %s unless it is reported again; it was not verified as fixed.", m.cfg.Unreported.CloseAfter.D())
	if m.cfg.Unreported.KeepOpen {
		policy = "This ticket stays open until a person closes it (ticketing.unreported.keep_open)."
	}
	d.add(OpComment, fmt.Sprintf("No longer reported: %s. The last value was %s (%s). %s", textfmt.TicketField(why), textfmt.FormatValue(inc.Metric, inc.Value), inc.Severity, policy), 0)
}

// reportOnly closes the open incident of an alert that still fires but
// that its check reports for dashboards only from now on (a policy the
// config no longer requires): one comment saying so, never as fixed. If the
// config requires it again, the alert is ticketed again (reopened within
// reopen_window).
func (m *Manager) reportOnly(d *decision, a alert.Alert) {
	inc := d.inc
	if !inc.Open {
		return
	}
	inc.Open, inc.Resolved, inc.Unknown, inc.OKSince = false, d.now, false, time.Time{}
	// Kept, as when an unreported incident is closed: closed without a fix,
	// so not a resolution in the KPIs.
	inc.Unreported, inc.UnreportedWhy = d.now, a.ReportOnly
	d.ended = EndReportOnly
	d.add(OpResolve, fmt.Sprintf("Closed without a fix: %s is still %s (value %s), but from now on it is reported for dashboards only and files no ticket: %s. It was not verified as fixed.", inc.Metric, a.State, textfmt.FormatValue(inc.Metric, a.Value), a.ReportOnly), 0)
}

// Reconcile squares the open incidents of check with the alerts its first
// successful run after a start or reload saw (alerts: every alert of the
// check the evaluator holds). An incident whose alert is ok starts its
// resolve_after (its clearing may have been lost in a crash, or happened
// while the agent was stopped); one still firing gets nothing new, unless
// its check reports it for dashboards only now (closed, see reportOnly);
// one the run did not report is unreported.
func (m *Manager) Reconcile(check string, alerts []alert.Alert, now time.Time) error {
	byKey := make(map[string]alert.Alert, len(alerts))
	for _, a := range alerts {
		byKey[a.Key] = a
	}
	return m.eachOpen(func(inc *Incident) bool { return inc.Check == check }, now, func(d *decision) {
		a, ok := byKey[d.inc.Key]
		switch {
		case !ok:
			m.unreported(d, "the check's first run after a start or reload did not report this series")
		case a.ReportOnly != "" && a.State.Firing():
			m.reportOnly(d, a)
		case a.State == alert.StateOK && d.inc.OKSince.IsZero():
			d.inc.OKSince, d.inc.Unreported, d.inc.UnreportedWhy = now, time.Time{}, ""
			d.inc.Value = a.Value
			d.inc.History = append(d.inc.History, HistoryEntry{At: now, From: d.inc.Severity, To: alert.StateOK, Value: a.Value, Reason: "ok at the first run after a start or reload"})
		}
	})
}

// ReconcileChecks marks unreported the open incidents of every check that is
// no longer configured (removed or disabled).
func (m *Manager) ReconcileChecks(checks []string, now time.Time) error {
	return m.eachOpen(func(inc *Incident) bool { return !slices.Contains(checks, inc.Check) }, now, func(d *decision) {
		m.unreported(d, fmt.Sprintf("the check %q is no longer in the config", d.inc.Check))
	})
}

// eachOpen runs fn on a decision for every open incident that match selects,
// in one store transaction.
func (m *Manager) eachOpen(match func(*Incident) bool, now time.Time, fn func(d *decision)) error {
	incs, err := m.store.Incidents()
	if err != nil {
		return err
	}
	return m.update(func(tx *Txn, queued *int) error {
		for i := range incs {
			if !incs[i].Open || !match(&incs[i]) {
				continue
			}
			inc, err := tx.Incident(incs[i].Key)
			if err != nil {
				return err
			}
			if inc == nil || !inc.Open {
				continue
			}
			d := &decision{m: m, inc: inc, now: now}
			fn(d)
			if err := m.commit(tx, d, queued); err != nil {
				return err
			}
		}
		return nil
	})
}
