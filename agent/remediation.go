package agent

import (
	"context"
	"errors"

	"github.com/l2agent/l2agent/internal/alert"
	"github.com/l2agent/l2agent/remediate"
	"github.com/l2agent/l2agent/ticketing"
)

// Remediation is the remediation engine, nil when it could not be set up.
func (a *Agent) Remediation() *remediate.Engine { return a.remediation.Load() }

// remediateStage is the pipeline stage that remediates every alert that
// starts firing and has a remediation rule, and verifies the fix by running
// the check again through verify. It decides what the run sends on: an
// alert verified as fixed sends only the verifying run's transitions (it
// was auto-remediated: no ticket; the audit log has it); otherwise the
// transition, with what was tried, then the verifying run's transitions.
func (a *Agent) remediateStage(verify pipeline) stage {
	return func(ctx context.Context, cr *checkRun) bool {
		e := a.remediation.Load()
		for i := range cr.ts {
			t := &cr.ts[i]
			if e == nil || !t.Starts() {
				cr.send = append(cr.send, *t)
				continue
			}
			fixed, verified := a.remediate(ctx, e, verify, cr.r, t)
			if !fixed {
				cr.send = append(cr.send, *t)
			}
			cr.send = append(cr.send, verified...)
		}
		return true
	}
}

// remediate runs the rule matching t, if any, and records what was tried in
// t. fixed is true when the alert cleared; verified are the transitions of
// the verifying runs.
func (a *Agent) remediate(ctx context.Context, e *remediate.Engine, verify pipeline, r *runner, t *alert.Transition) (fixed bool, verified []alert.Transition) {
	action, ok := e.Rule(t.Alert)
	if !ok {
		return false, nil
	}
	if a.skipFailing(t, action) {
		return false, nil
	}
	check := func(ctx context.Context) (bool, error) {
		verified = append(verified, verify.run(ctx, r).ts...)
		cur, ok := a.eval.Alert(t.Key)
		if !ok {
			return true, nil // the series is gone
		}
		if cur.State == alert.StateUnknown {
			return false, errors.New("the check failed when run again: " + cur.Error)
		}
		return !cur.State.Firing() && cur.State != alert.StatePending, nil
	}
	at, attempted := e.Remediate(ctx, t.Alert, check)
	if at.Action == "" {
		return false, verified
	}
	if at.Success && a.fixNotHolding(t, at) {
		t.Attempts = append(t.Attempts, at) // ticketed, escalated at once to L3
		return false, verified
	}
	if at.Success {
		a.kpi.Incidents.WithLabelValues(t.Check, ticketing.OutcomeAutoRemediated).Inc()
		a.log.Info("auto-remediated: no ticket", "key", t.Key, "action", at.Action, "result", at.Result)
		return true, verified
	}
	t.Attempts = append(t.Attempts, at)
	t.RemediationFailed = attempted
	return false, verified
}
