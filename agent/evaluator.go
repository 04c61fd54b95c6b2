package agent

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/l2agent/l2agent/checks"
	"github.com/l2agent/l2agent/configs"
	"github.com/l2agent/l2agent/internal/alert"
	"github.com/l2agent/l2agent/internal/textfmt"
)

// entry is the evaluator's record of one alert key: the alert and what
// the next evaluation needs.
type entry struct {
	alert.Alert
	rule       *configs.Rule
	prevFiring alert.State // the firing state held before an unknown, to resume it
}

// Evaluator applies rules to observations and keeps a state per alert key.
// It is safe for concurrent use; checks are evaluated independently.
type Evaluator struct {
	host string
	// IgnoreFor fires at once, without waiting for a rule's `for` (one-shot runs).
	IgnoreFor bool

	mu     sync.RWMutex
	alerts map[string]*entry
}

// NewEvaluator returns an evaluator for host.
func NewEvaluator(host string) *Evaluator {
	return &Evaluator{host: host, alerts: map[string]*entry{}}
}

// Alerts returns a copy of every alert, sorted by key.
func (e *Evaluator) Alerts() []alert.Alert {
	e.mu.RLock()
	defer e.mu.RUnlock()
	out := make([]alert.Alert, 0, len(e.alerts))
	for _, a := range e.alerts {
		out = append(out, a.Clone())
	}
	slices.SortFunc(out, func(a, b alert.Alert) int { return strings.Compare(a.Key, b.Key) })
	return out
}

// Alert returns the alert of key.
func (e *Evaluator) Alert(key string) (alert.Alert, bool) {
	e.mu.RLock()
	defer e.mu.RUnlock()
	a, ok := e.alerts[key]
	if !ok {
		return alert.Alert{}, false
	}
	return a.Clone(), true
}

// SetDetails attaches diagnostics to an alert (after it fired).
func (e *Evaluator) SetDetails(key, details string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if a, ok := e.alerts[key]; ok {
		a.Details = details
	}
}

// Forget drops every alert of a check (it was removed from the config).
func (e *Evaluator) Forget(check string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	for k, a := range e.alerts {
		if a.Check == check {
			delete(e.alerts, k)
		}
	}
}

// Evaluate applies rules to the result of one run of check at now and
// returns the transitions it caused. runErr != nil (failure, timeout, panic)
// makes every alert of the check unknown.
func (e *Evaluator) Evaluate(check string, rules []configs.Rule, obs []checks.Observation, runErr error, now time.Time) []alert.Transition {
	e.mu.Lock()
	defer e.mu.Unlock()
	var out []alert.Transition
	emit := func(a *entry, from alert.State, reason string) {
		out = append(out, alert.Transition{Alert: a.Clone(), From: from, At: now, Reason: reason})
	}

	runKey := alert.Key(e.host, check, "", nil)
	run := e.alerts[runKey]
	if run == nil {
		run = &entry{Alert: alert.Alert{Key: runKey, Host: e.host, Check: check, State: alert.StateOK, Since: now}}
		e.alerts[runKey] = run
	}

	if runErr != nil {
		msg := runErr.Error()
		for _, a := range append([]*entry{run}, e.sortedAlerts(check)...) {
			if a.State == alert.StateUnknown {
				a.Error = msg
				continue
			}
			from := a.State
			if from.Firing() {
				a.prevFiring = from
			} else {
				a.prevFiring = alert.StateOK
			}
			a.State, a.Since, a.Error = alert.StateUnknown, now, msg
			emit(a, from, "check failed: "+msg)
		}
		return out
	}

	if run.State != alert.StateOK {
		from := run.State
		run.State, run.Since, run.Error = alert.StateOK, now, ""
		emit(run, from, "check ran again")
	}

	seen := map[string]bool{runKey: true}
	for _, o := range obs {
		r := matchRule(rules, o)
		if r == nil {
			continue
		}
		key := alert.Key(e.host, check, o.Metric, o.Labels)
		if seen[key] {
			continue // a check must not report one series twice; keep the first
		}
		seen[key] = true
		a := e.alerts[key]
		if a == nil {
			a = &entry{Alert: alert.Alert{Key: key, Host: e.host, Check: check, Metric: o.Metric, Labels: maps.Clone(o.Labels), State: alert.StateOK, Since: now}}
			e.alerts[key] = a
		}
		wasReportOnly := a.ReportOnly != ""
		a.rule, a.Value, a.Direction, a.RunbookURL, a.ReportOnly = r, o.Value, directionOf(r), r.RunbookURL, o.ReportOnly
		n := len(out)
		e.step(a, now, emit)
		if len(out) == n && a.State.Firing() && wasReportOnly != (a.ReportOnly != "") {
			emit(a, a.State, ticketingReason(a.ReportOnly))
		}
	}

	// Series the check no longer reports (an unmounted filesystem) are gone.
	for _, a := range e.sortedAlerts(check) {
		if seen[a.Key] {
			continue
		}
		if a.State != alert.StateOK {
			from := a.State
			a.State, a.Since = alert.StateOK, now
			emit(a, from, "series no longer reported")
			out[len(out)-1].Unreported = unreportedWhy(a, obs)
		}
		delete(e.alerts, a.Key)
	}
	return out
}

// ticketingReason is the reason of a transition that changes only whether
// a firing alert is ticketed: its check reports it for dashboards only from
// now on (why), or no longer does.
func ticketingReason(why string) string {
	if why != "" {
		return "report only from now on, no ticket: " + why
	}
	return "ticketed from now on: the config requires it"
}

// unreportedWhy says why the run left out a's series: the check did not
// report it, or no rule matches it any more.
func unreportedWhy(a *entry, obs []checks.Observation) string {
	for _, o := range obs {
		if o.Metric == a.Metric && maps.Equal(o.Labels, a.Labels) {
			return "no rule of the check matches this series any more"
		}
	}
	return "the check no longer reports this series"
}

func (e *Evaluator) sortedAlerts(check string) []*entry {
	var as []*entry
	for _, a := range e.alerts {
		if a.Check == check && a.Metric != "" {
			as = append(as, a)
		}
	}
	slices.SortFunc(as, func(a, b *entry) int { return strings.Compare(a.Key, b.Key) })
	return as
}

func matchRule(rules []configs.Rule, o checks.Observation) *configs.Rule {
	// The most specific matching rule wins: the one naming the most labels.
	var best *configs.Rule
	for i := range rules {
		r := &rules[i]
		if r.Metric != o.Metric || !r.Matches(o.Labels) {
			continue
		}
		if best == nil || len(r.Labels) > len(best.Labels) {
			best = r
		}
	}
	return best
}

func directionOf(r *configs.Rule) string {
	if r.Above() {
		return "above"
	}
	return "below"
}

// severity is the level the value calls for, given the severity held now
// (hysteresis: a held level is left only once the value is `clear` past it).
func severity(r *configs.Rule, v float64, held alert.State) (alert.State, float64) {
	breaches := func(th float64) bool {
		if r.Above() {
			return v >= th
		}
		return v <= th
	}
	holds := func(th float64) bool {
		if r.Above() {
			return v >= th-r.Clear
		}
		return v <= th+r.Clear
	}
	if r.Crit != nil && (breaches(*r.Crit) || (held == alert.StateCrit && holds(*r.Crit))) {
		return alert.StateCrit, *r.Crit
	}
	if r.Warn != nil && (breaches(*r.Warn) || (held >= alert.StateWarn && held <= alert.StateCrit && holds(*r.Warn))) {
		return alert.StateWarn, *r.Warn
	}
	return alert.StateOK, 0
}

func (e *Evaluator) step(a *entry, now time.Time, emit func(*entry, alert.State, string)) {
	held := a.State
	switch a.State {
	case alert.StatePending:
		held = a.Severity
	case alert.StateUnknown:
		held = a.prevFiring
	}
	sev, th := severity(a.rule, a.Value, held)
	a.Error = ""
	from := a.State
	set := func(s alert.State, reason string) {
		a.State, a.Since = s, now
		emit(a, from, reason)
	}
	desc := func() string {
		return fmt.Sprintf("%s %s %s %s threshold %s", a.Metric, textfmt.FormatValue(a.Metric, a.Value), map[bool]string{true: "≥", false: "≤"}[a.rule.Above()], sev, textfmt.FormatValue(a.Metric, th))
	}

	if sev == alert.StateOK {
		a.Threshold, a.Severity, a.BreachAt = 0, alert.StateOK, time.Time{}
		if from != alert.StateOK {
			set(alert.StateOK, "value back within threshold")
		}
		return
	}
	a.Threshold, a.Severity = th, sev
	switch from {
	case alert.StateWarn, alert.StateCrit:
		if sev != from {
			set(sev, desc())
		}
	case alert.StateUnknown:
		if a.prevFiring.Firing() {
			set(sev, desc())
			return
		}
		a.BreachAt = now
		e.startBreach(a, now, set, desc)
	case alert.StatePending:
		if now.Sub(a.BreachAt) >= a.rule.For.D() || e.IgnoreFor {
			set(sev, desc()+" for "+textfmt.Duration(now.Sub(a.BreachAt)))
		}
	default: // ok
		a.BreachAt = now
		e.startBreach(a, now, set, desc)
	}
}

func (e *Evaluator) startBreach(a *entry, now time.Time, set func(alert.State, string), desc func() string) {
	if a.rule.For <= 0 || e.IgnoreFor {
		set(a.Severity, desc())
		return
	}
	set(alert.StatePending, desc()+fmt.Sprintf(", pending for %s", a.rule.For.D()))
}

// RuleFor is the rule of rules that judges observation o (the one naming
// the most labels among those that match), or nil.
func RuleFor(rules []configs.Rule, o checks.Observation) *configs.Rule { return matchRule(rules, o) }
