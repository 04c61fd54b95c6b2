package agent

import (
	"context"
	"errors"

	"github.com/l2agent/l2agent/remediate"
	"github.com/l2agent/l2agent/ticketing"
)

// Remediation is the remediation engine, nil when it could not be set up.
func (a *Agent) Remediation() *remediate.Engine { return a.remediation.Load() }

// remediate runs the remediation rule matching a transition to firing, if
// any, and verifies it by running the check again. fixed is true when the
// alert cleared: the incident was auto-remediated and no ticket is filed
// (the audit log has it). Otherwise what was tried goes into the
// transition, and so into the ticket's "What was tried". verified are the
// transitions of the verifying run, for the sinks after t.
func (a *Agent) remediate(ctx context.Context, r *runner, t *Transition) (fixed bool, verified []Transition) {
	alert := remediate.Alert{Key: t.Key, Host: t.Host, Check: t.Check, Metric: t.Metric, Labels: t.Labels, State: t.State.String(), Value: t.Value}
	e := a.remediation.Load()
	if _, ok := e.Rule(alert); !ok {
		return false, nil
	}
	verify := func(ctx context.Context) (bool, error) {
		verified = append(verified, a.runCheck(ctx, r, false)...)
		cur, ok := a.eval.Alert(t.Key)
		if !ok {
			return true, nil // the series is gone
		}
		if cur.State == StateUnknown {
			return false, errors.New("the check failed when run again: " + cur.Error)
		}
		return !cur.State.Firing() && cur.State != StatePending, nil
	}
	at, attempted := e.Remediate(ctx, alert, verify)
	if at.Action == "" {
		return false, verified
	}
	if at.Success {
		a.kpi.Incidents.WithLabelValues(t.Check, ticketing.OutcomeAutoRemediated).Inc()
		a.log.Info("auto-remediated: no ticket", "key", t.Key, "action", at.Action, "result", at.Result)
		return true, verified
	}
	t.Attempts = append(t.Attempts, ticketing.Attempt(at))
	t.RemediationFailed = attempted
	return false, verified
}
