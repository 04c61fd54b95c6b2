package agent

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/l2agent/l2agent/checks"
	"github.com/l2agent/l2agent/configs"
	"github.com/l2agent/l2agent/internal/textfmt"
	"github.com/l2agent/l2agent/ticketing"
)

// State is the state of one alert key.
type State int

// Alert states. The numeric values of OK..Crit are those of the
// l2agent_alert_state metric; Unknown is exported as -1.
const (
	StateOK State = iota
	StatePending
	StateWarn
	StateCrit
	StateUnknown
)

var stateNames = [...]string{"ok", "pending", "warn", "crit", "unknown"}

func (s State) String() string {
	if s < 0 || int(s) >= len(stateNames) {
		return fmt.Sprintf("State(%d)", int(s))
	}
	return stateNames[s]
}

// MarshalText writes the state name (for JSON).
func (s State) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// UnmarshalText reads a state name.
func (s *State) UnmarshalText(b []byte) error {
	for i, n := range stateNames {
		if n == string(b) {
			*s = State(i)
			return nil
		}
	}
	return fmt.Errorf("unknown alert state %q", b)
}

// MetricValue is the value of l2agent_alert_state for s.
func (s State) MetricValue() float64 {
	if s == StateUnknown {
		return -1
	}
	return float64(s)
}

// Firing reports whether s is warn or crit.
func (s State) Firing() bool { return s == StateWarn || s == StateCrit }

// AlertKey is the dedup key of an alert: host + check + metric + sorted labels.
// A key with an empty metric stands for the check run itself.
func AlertKey(host, check, metric string, labels map[string]string) string {
	var b strings.Builder
	b.WriteString(host)
	b.WriteByte('/')
	b.WriteString(check)
	if metric == "" {
		return b.String()
	}
	b.WriteByte('/')
	b.WriteString(metric)
	b.WriteByte('{')
	for i, k := range slices.Sorted(maps.Keys(labels)) {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, "%s=%q", k, labels[k])
	}
	b.WriteByte('}')
	return b.String()
}

// Alert is the evaluated state of one alert key.
type Alert struct {
	Key        string            `json:"key"`
	Host       string            `json:"host"`
	Check      string            `json:"check"`
	Metric     string            `json:"metric,omitempty"`
	Labels     map[string]string `json:"labels,omitempty"`
	State      State             `json:"state"`
	Severity   State             `json:"severity"` // for pending: the severity it would fire at
	Value      float64           `json:"value"`
	Threshold  float64           `json:"threshold,omitempty"`
	Direction  string            `json:"direction,omitempty"`
	Since      time.Time         `json:"since"`                 // when State was entered
	BreachAt   time.Time         `json:"breach_since,omitzero"` // when the current breach began
	Error      string            `json:"error,omitempty"`       // why the state is unknown
	Details    string            `json:"details,omitempty"`     // diagnostics taken when it fired
	RunbookURL string            `json:"runbook_url,omitempty"`

	rule       *configs.Rule
	prevFiring State // the firing state held before an unknown, to resume it
}

// Transition is one change of state of an alert key.
type Transition struct {
	Alert            // the alert after the change
	From   State     `json:"from"`
	At     time.Time `json:"at"`
	Reason string    `json:"reason,omitempty"`
	// Remediation: what was tried when the alert started firing (it did not
	// clear it: a cleared alert's transition never reaches the sinks).
	Attempts          []ticketing.Attempt `json:"attempts,omitempty"`
	RemediationFailed bool                `json:"remediation_failed,omitempty"`
}

// Sink receives every transition. Ticketing and remediation plug in here.
type Sink interface {
	Transition(ctx context.Context, t Transition)
}

// Evaluator applies rules to observations and keeps a state per alert key.
// It is safe for concurrent use; checks are evaluated independently.
type Evaluator struct {
	host string
	// IgnoreFor fires at once, without waiting for a rule's `for` (one-shot runs).
	IgnoreFor bool

	mu     sync.RWMutex
	alerts map[string]*Alert
}

// NewEvaluator returns an evaluator for host.
func NewEvaluator(host string) *Evaluator {
	return &Evaluator{host: host, alerts: map[string]*Alert{}}
}

// Alerts returns a copy of every alert, sorted by key.
func (e *Evaluator) Alerts() []Alert {
	e.mu.RLock()
	defer e.mu.RUnlock()
	out := make([]Alert, 0, len(e.alerts))
	for _, a := range e.alerts {
		out = append(out, a.clone())
	}
	slices.SortFunc(out, func(a, b Alert) int { return strings.Compare(a.Key, b.Key) })
	return out
}

// Alert returns the alert of key.
func (e *Evaluator) Alert(key string) (Alert, bool) {
	e.mu.RLock()
	defer e.mu.RUnlock()
	a, ok := e.alerts[key]
	if !ok {
		return Alert{}, false
	}
	return a.clone(), true
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

func (a *Alert) clone() Alert {
	c := *a
	c.Labels = maps.Clone(a.Labels)
	return c
}

// Evaluate applies rules to the result of one run of check at now and
// returns the transitions it caused. runErr != nil (failure, timeout, panic)
// makes every alert of the check unknown.
func (e *Evaluator) Evaluate(check string, rules []configs.Rule, obs []checks.Observation, runErr error, now time.Time) []Transition {
	e.mu.Lock()
	defer e.mu.Unlock()
	var out []Transition
	emit := func(a *Alert, from State, reason string) {
		out = append(out, Transition{Alert: a.clone(), From: from, At: now, Reason: reason})
	}

	runKey := AlertKey(e.host, check, "", nil)
	run := e.alerts[runKey]
	if run == nil {
		run = &Alert{Key: runKey, Host: e.host, Check: check, State: StateOK, Since: now}
		e.alerts[runKey] = run
	}

	if runErr != nil {
		msg := runErr.Error()
		for _, a := range append([]*Alert{run}, e.sortedAlerts(check)...) {
			if a.State == StateUnknown {
				a.Error = msg
				continue
			}
			from := a.State
			if from.Firing() {
				a.prevFiring = from
			} else {
				a.prevFiring = StateOK
			}
			a.State, a.Since, a.Error = StateUnknown, now, msg
			emit(a, from, "check failed: "+msg)
		}
		return out
	}

	if run.State != StateOK {
		from := run.State
		run.State, run.Since, run.Error = StateOK, now, ""
		emit(run, from, "check ran again")
	}

	seen := map[string]bool{runKey: true}
	for _, o := range obs {
		r := matchRule(rules, o)
		if r == nil {
			continue
		}
		key := AlertKey(e.host, check, o.Metric, o.Labels)
		if seen[key] {
			continue // a check must not report one series twice; keep the first
		}
		seen[key] = true
		a := e.alerts[key]
		if a == nil {
			a = &Alert{Key: key, Host: e.host, Check: check, Metric: o.Metric, Labels: maps.Clone(o.Labels), State: StateOK, Since: now}
			e.alerts[key] = a
		}
		a.rule, a.Value, a.Direction, a.RunbookURL = r, o.Value, directionOf(r), r.RunbookURL
		e.step(a, now, emit)
	}

	// Series the check no longer reports (an unmounted filesystem) are gone.
	for _, a := range e.sortedAlerts(check) {
		if seen[a.Key] {
			continue
		}
		if a.State != StateOK {
			from := a.State
			a.State, a.Since = StateOK, now
			emit(a, from, "series no longer reported")
		}
		delete(e.alerts, a.Key)
	}
	return out
}

func (e *Evaluator) sortedAlerts(check string) []*Alert {
	var as []*Alert
	for _, a := range e.alerts {
		if a.Check == check && a.Metric != "" {
			as = append(as, a)
		}
	}
	slices.SortFunc(as, func(a, b *Alert) int { return strings.Compare(a.Key, b.Key) })
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
func severity(r *configs.Rule, v float64, held State) (State, float64) {
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
	if r.Crit != nil && (breaches(*r.Crit) || (held == StateCrit && holds(*r.Crit))) {
		return StateCrit, *r.Crit
	}
	if r.Warn != nil && (breaches(*r.Warn) || (held >= StateWarn && held <= StateCrit && holds(*r.Warn))) {
		return StateWarn, *r.Warn
	}
	return StateOK, 0
}

func (e *Evaluator) step(a *Alert, now time.Time, emit func(*Alert, State, string)) {
	held := a.State
	switch a.State {
	case StatePending:
		held = a.Severity
	case StateUnknown:
		held = a.prevFiring
	}
	sev, th := severity(a.rule, a.Value, held)
	a.Error = ""
	from := a.State
	set := func(s State, reason string) {
		a.State, a.Since = s, now
		emit(a, from, reason)
	}
	desc := func() string {
		return fmt.Sprintf("%s %s %s %s threshold %s", a.Metric, textfmt.FormatValue(a.Metric, a.Value), map[bool]string{true: "≥", false: "≤"}[a.rule.Above()], sev, textfmt.FormatValue(a.Metric, th))
	}

	if sev == StateOK {
		a.Threshold, a.Severity, a.BreachAt = 0, StateOK, time.Time{}
		if from != StateOK {
			set(StateOK, "value back within threshold")
		}
		return
	}
	a.Threshold, a.Severity = th, sev
	switch from {
	case StateWarn, StateCrit:
		if sev != from {
			set(sev, desc())
		}
	case StateUnknown:
		if a.prevFiring.Firing() {
			set(sev, desc())
			return
		}
		a.BreachAt = now
		e.startBreach(a, now, set, desc)
	case StatePending:
		if now.Sub(a.BreachAt) >= a.rule.For.D() || e.IgnoreFor {
			set(sev, desc()+fmt.Sprintf(" for %s", now.Sub(a.BreachAt).Round(time.Second)))
		}
	default: // ok
		a.BreachAt = now
		e.startBreach(a, now, set, desc)
	}
}

func (e *Evaluator) startBreach(a *Alert, now time.Time, set func(State, string), desc func() string) {
	if a.rule.For <= 0 || e.IgnoreFor {
		set(a.Severity, desc())
		return
	}
	set(StatePending, desc()+fmt.Sprintf(", pending for %s", a.rule.For.D()))
}

// ParseAlertKey splits a key made by AlertKey into its parts.
func ParseAlertKey(key string) (host, check, metric string, labels map[string]string, err error) {
	host, rest, ok := strings.Cut(key, "/")
	if !ok || host == "" {
		return "", "", "", nil, fmt.Errorf("alert key %q: want host/check[/metric{labels}]", key)
	}
	check, rest, ok = strings.Cut(rest, "/")
	if !ok {
		return host, check, "", nil, nil // the check run itself
	}
	metric, rest, ok = strings.Cut(rest, "{")
	if !ok || !strings.HasSuffix(rest, "}") || metric == "" {
		return "", "", "", nil, fmt.Errorf("alert key %q: want host/check/metric{labels}", key)
	}
	rest = strings.TrimSuffix(rest, "}")
	labels = map[string]string{}
	for rest != "" {
		name, after, ok := strings.Cut(rest, "=")
		if !ok || name == "" {
			return "", "", "", nil, fmt.Errorf("alert key %q: bad labels", key)
		}
		q, err := strconv.QuotedPrefix(after)
		if err != nil {
			return "", "", "", nil, fmt.Errorf("alert key %q: label %s: %w", key, name, err)
		}
		labels[name], _ = strconv.Unquote(q)
		rest = strings.TrimPrefix(after[len(q):], ",")
	}
	return host, check, metric, labels, nil
}
