package agent

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"time"

	"github.com/l2agent/l2agent/checks"
	"github.com/l2agent/l2agent/internal/alert"
	"github.com/l2agent/l2agent/internal/progress"
	"github.com/l2agent/l2agent/internal/textfmt"
)

// A check run flows one way through stages:
//
//	execute → evaluate → publish → persist → diagnose → log → remediate+verify
//	→ deliver → reconcile (the first run after a start or reload)
//
// Each stage reads what the stages before it left in the checkRun and adds
// its own; none calls back into an earlier one. compose is the one place
// they are put together. Verifying a remediation runs the check through a
// shorter pipeline (no remediation of the remediation, no delivery: the
// remediation stage hands its transitions on, after the one it handled).

// checkRun is one run of one check on its way through the pipeline.
type checkRun struct {
	r     *runner
	start time.Time
	res   result             // the check's observations or error
	ts    []alert.Transition // what the evaluator made of it
	send  []alert.Transition // what reaches the sinks, in order
}

// A stage is one step of a check run; false ends the run there.
type stage func(ctx context.Context, cr *checkRun) bool

// pipeline is stages run in order.
type pipeline []stage

func (p pipeline) run(ctx context.Context, r *runner) *checkRun {
	cr := &checkRun{r: r}
	for _, s := range p {
		if !s(ctx, cr) {
			break
		}
	}
	return cr
}

// compose builds the pipeline of a check run.
func (a *Agent) compose() pipeline {
	// The verifying run after a remediation: observed, evaluated and logged;
	// neither remediated again nor delivered (the remediation stage hands
	// its transitions on).
	verify := pipeline{a.execute, a.evaluate, a.publish, a.persist, a.diagnose, a.logTransitions}
	return append(slices.Clip(verify), a.remediateStage(verify), a.deliver, a.reconcile)
}

// Sink receives every transition that leaves the pipeline (ticketing).
type Sink interface {
	Transition(ctx context.Context, t alert.Transition)
}

// execute runs the check (bounded by its timeout, skipped when an earlier
// run is still within its own; one past it is abandoned, see runOnce) and records the result for the metrics.
func (a *Agent) execute(ctx context.Context, cr *checkRun) bool {
	r := cr.r
	log := a.log.With("check", r.cfg.Name)
	cr.start = time.Now()
	task := progress.Start(log, "check run") // every run in the log: debug, info from a second
	res, ran := r.runOnce(ctx)
	if !ran {
		task.Forget()
		r.mu.RLock()
		first := !r.firstDone
		r.mu.RUnlock()
		if first { // the run at start overlapped the first scheduled one
			log.Debug("first run still going; this scheduled run is skipped")
		} else {
			log.Warn("check still running from an earlier run, within its timeout; this run is skipped")
		}
		return false
	}
	cr.res = res
	if res.abandoned {
		log.Warn("check run ignored its timeout and is abandoned; the next run starts afresh", "timeout", r.cfg.Timeout.D(), "stuck", r.stuck.Load())
	}
	if res.err != nil {
		task.End("err", res.err)
	} else {
		task.End("observations", len(res.obs))
	}
	d := time.Since(cr.start)
	prevErr := r.lastError()
	r.record(res, cr.start, d)
	if res.err != nil && res.err.Error() != prevErr { // re-log only when it changes
		log.Error("check failed", "err", res.err, "duration", d)
	}
	if res.err == nil && prevErr != "" {
		log.Info("check recovered", "duration", d)
	}
	return true
}

// evaluate applies the check's rules to the result.
func (a *Agent) evaluate(_ context.Context, cr *checkRun) bool {
	cr.ts = a.eval.Evaluate(cr.r.cfg.Name, cr.r.cfg.Rules, cr.res.obs, cr.res.err, time.Now())
	return true
}

// persist saves the evaluator's state when the run changed it, so that a
// restart resumes it.
func (a *Agent) persist(_ context.Context, cr *checkRun) bool {
	if len(cr.ts) > 0 {
		a.saveAlerts()
	}
	return true
}

// publish makes the next scrape see the new observations and states.
func (a *Agent) publish(context.Context, *checkRun) bool {
	a.snap.invalidate()
	return true
}

// diagnose takes diagnostics for every alert that starts firing (a new
// ticket, or a reopen), whose severity rises (warn → crit: an escalation)
// or that is ticketed from now on while it fires, so that the ticket shows
// the host as it is then.
func (a *Agent) diagnose(ctx context.Context, cr *checkRun) bool {
	for i := range cr.ts {
		t := &cr.ts[i]
		if t.Starts() || t.From == alert.StateWarn && t.State == alert.StateCrit || t.TicketingChange() && t.ReportOnly == "" {
			t.Details = a.diagnostics(ctx, cr.r, cr.res.obs, t.Alert)
			a.eval.SetDetails(t.Key, t.Details)
		}
	}
	return true
}

// freshDiagnostics takes the diagnostics of an alert key again, on its
// check's last observation of it, for ticketing (Manager.Diagnostics): an
// escalation that no check run caused (an SLA passed). It is a provider
// ticketing calls, not a stage: the pipeline stays one-way.
func (a *Agent) freshDiagnostics(ctx context.Context, key string) (string, error) {
	al, ok := a.eval.Alert(key)
	if !ok {
		return "", fmt.Errorf("diagnose %s: the alert is not evaluated now", key)
	}
	r, err := a.runningCheck(al.Check)
	if err != nil {
		return "", fmt.Errorf("diagnose %s: %w", key, err)
	}
	r.mu.RLock()
	obs := slices.Clone(r.obs)
	r.mu.RUnlock()
	if !slices.ContainsFunc(obs, func(o checks.Observation) bool { return alert.Key(a.host, al.Check, o.Metric, o.Labels) == key }) {
		return "", fmt.Errorf("diagnose %s: the last run of check %q did not report it", key, al.Check)
	}
	details := a.diagnostics(ctx, r, obs, al)
	a.eval.SetDetails(key, details) // what later transitions of the key carry
	return details, nil
}

// runningCheck is the runner of the check named name. It never waits for
// a.mu: a reload holds it while it stops ticketing, which waits for the
// Tick that called freshDiagnostics.
func (a *Agent) runningCheck(name string) (*runner, error) {
	if !a.mu.TryRLock() {
		return nil, errors.New("the config is being reloaded")
	}
	defer a.mu.RUnlock()
	for _, r := range a.runners {
		if r.cfg.Name == name {
			return r, nil
		}
	}
	return nil, fmt.Errorf("check %q is not running", name)
}

func (a *Agent) diagnostics(ctx context.Context, r *runner, obs []checks.Observation, al alert.Alert) string {
	var o checks.Observation
	for _, x := range obs {
		if alert.Key(a.host, al.Check, x.Metric, x.Labels) == al.Key {
			o = x
			break
		}
	}
	details := o.Details
	d, ok := r.check.(checks.Diagnoser)
	if !ok {
		return details
	}
	dctx, cancel := context.WithTimeout(ctx, a.opts.DiagnoseTimeout)
	defer cancel()
	task := progress.Start(a.log, "diagnostics", "check", r.cfg.Name, "key", al.Key)
	text, err := d.Diagnose(dctx, o)
	task.End()
	if err != nil {
		a.log.Warn("diagnostics failed", "check", r.cfg.Name, "key", al.Key, "err", err)
		text += "\n(diagnostics incomplete: " + err.Error() + ")"
	}
	if details != "" {
		text = details + "\n" + text
	}
	return textfmt.Truncate(text, checks.MaxDetails)
}

// logTransitions logs every transition.
func (a *Agent) logTransitions(_ context.Context, cr *checkRun) bool {
	for _, t := range cr.ts {
		level := slog.LevelInfo
		if t.State.Firing() || t.State == alert.StateUnknown {
			level = slog.LevelWarn
		}
		attrs := []any{"key", t.Key, "from", t.From.String(), "to", t.State.String(), "reason", t.Reason}
		if t.Metric != "" && t.State != alert.StateUnknown {
			attrs = append(attrs, "value", t.Value)
		}
		if t.ReportOnly != "" {
			attrs = append(attrs, "report_only", t.ReportOnly) // why no ticket follows
		}
		msg := "alert state changed"
		if t.TicketingChange() {
			msg, level = "alert ticketing changed", slog.LevelInfo
		}
		a.log.Log(context.Background(), level, msg, attrs...)
	}
	return true
}

// deliver hands what the run sends on to the sinks (ticketing).
func (a *Agent) deliver(ctx context.Context, cr *checkRun) bool {
	for _, t := range cr.send {
		for _, s := range a.opts.Sinks {
			s.Transition(ctx, t)
		}
	}
	return true
}

// Reconciler is a sink that squares what it holds open with the alerts a
// check's first run after a start or reload saw (ticketing).
type Reconciler interface {
	Reconcile(ctx context.Context, check string, alerts []alert.Alert, now time.Time)
}

// reconcile hands the first successful run's alerts of a check to every
// Reconciler: an incident left open while the agent was stopped, or whose
// clearing was lost in a crash, is squared with what the check sees now.
func (a *Agent) reconcile(ctx context.Context, cr *checkRun) bool {
	if cr.res.err != nil || cr.r.reconciled.Load() {
		return true
	}
	var als []alert.Alert
	for _, al := range a.eval.Alerts() {
		if al.Check == cr.r.cfg.Name && al.Metric != "" {
			als = append(als, al)
		}
	}
	for _, s := range a.opts.Sinks {
		if rc, ok := s.(Reconciler); ok {
			rc.Reconcile(ctx, cr.r.cfg.Name, als, time.Now())
		}
	}
	cr.r.reconciled.Store(true)
	return true
}
