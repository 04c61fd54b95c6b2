// Package alert is the one alert model of l2agent: the evaluator emits it,
// remediation acts on it, ticketing records it and every backend is fed
// from it. It is a leaf: it imports nothing of the project.
//
// Its JSON is persisted (the ticket store, the remediation audit log) and
// served (/api/v1/status, /api/v1/tickets, webhook and file payloads): the
// field names are an interface to keep.
package alert

import (
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"
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

// Worst returns the more severe of two states, ordered as a Nagios plugin
// would report them: crit > warn > unknown > pending > ok.
func Worst(a, b State) State {
	rank := [...]int{StateOK: 0, StatePending: 1, StateUnknown: 2, StateWarn: 3, StateCrit: 4}
	if rank[b] > rank[a] {
		return b
	}
	return a
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
	Direction  string            `json:"direction,omitempty"`   // "above" or "below"
	Since      time.Time         `json:"since"`                 // when State was entered
	BreachAt   time.Time         `json:"breach_since,omitzero"` // when the current breach began
	Error      string            `json:"error,omitempty"`       // why the state is unknown
	Details    string            `json:"details,omitempty"`     // diagnostics taken when it fired
	RunbookURL string            `json:"runbook_url,omitempty"`
	// ReportOnly, when set, says why the alert files no ticket: its check
	// reports it for dashboards only (a policy the config does not
	// require). Its state and metrics are kept as for any other alert.
	ReportOnly string `json:"report_only,omitempty"`
}

// Clone returns a copy of a that shares no map with it.
func (a Alert) Clone() Alert {
	a.Labels = maps.Clone(a.Labels)
	return a
}

// Transition is one change of state of an alert key, as it travels from
// the evaluator through remediation to the sinks; or, with From equal to
// State (TicketingChange), a change of whether a firing alert is ticketed.
type Transition struct {
	Alert            // the alert after the change
	From   State     `json:"from"`
	At     time.Time `json:"at"`
	Reason string    `json:"reason,omitempty"`
	// Remediation: what was tried when the alert started firing (it did not
	// clear it: a cleared alert's transition never reaches the sinks).
	Attempts          []Attempt `json:"attempts,omitempty"`
	RemediationFailed bool      `json:"remediation_failed,omitempty"`
	// Unreported, on the last transition of a key, says why the check no
	// longer reports it (an unmounted filesystem, a deleted rule). The alert
	// is gone, not fixed: ticketing must not resolve it as if it were.
	Unreported string `json:"unreported,omitempty"`
}

// Starts reports whether t is the start of firing (from not firing to
// warn or crit): the transition that is diagnosed and remediated.
func (t Transition) Starts() bool { return t.State.Firing() && !t.From.Firing() }

// TicketingChange reports whether t changes only whether a firing alert
// files tickets (its ReportOnly turned on or off), not its state.
func (t Transition) TicketingChange() bool { return t.From == t.State }

// Attempt is one remediation tried, for a ticket's "What was tried".
type Attempt struct {
	At      time.Time `json:"at"`
	Action  string    `json:"action"`
	Plan    string    `json:"plan,omitempty"`
	Output  string    `json:"output,omitempty"`
	Result  string    `json:"result"` // "<result>: <text>", result one of remediate's Result* constants
	Success bool      `json:"success"`
}

// Key is the dedup key of an alert: host + check + metric + sorted labels.
// A key with an empty metric stands for the check run itself.
func Key(host, check, metric string, labels map[string]string) string {
	if metric == "" {
		return host + "/" + check
	}
	var arr [8]string // the label names, sorted; most alerts have a few
	names := arr[:0]
	n := len(host) + len(check) + len(metric) + 4
	for k, v := range labels {
		names = append(names, k)
		n += len(k) + len(v) + 4
	}
	slices.Sort(names)
	var b strings.Builder
	b.Grow(n)
	b.WriteString(host)
	b.WriteByte('/')
	b.WriteString(check)
	b.WriteByte('/')
	b.WriteString(metric)
	b.WriteByte('{')
	var q [128]byte
	for i, k := range names {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(k)
		b.WriteByte('=')
		b.Write(strconv.AppendQuote(q[:0], labels[k])) // as fmt's %q
	}
	b.WriteByte('}')
	return b.String()
}

// ParseKey splits a key made by Key into its parts.
func ParseKey(key string) (host, check, metric string, labels map[string]string, err error) {
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
