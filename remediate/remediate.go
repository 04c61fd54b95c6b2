// Package remediate runs guarded fixes for firing alerts: an Action plans
// what it would do and applies the plan; the Engine decides, per the
// configured policy (enabled, dry-run, allowlists, cooldown, rate limits,
// maintenance window, timeout), whether it may run, verifies that the alert
// cleared, audits every decision and reports what was tried.
package remediate

import (
	"context"
	"time"
)

// Alert is what a firing alert gives the engine.
type Alert struct {
	Key    string            `json:"key"`
	Host   string            `json:"host,omitempty"`
	Check  string            `json:"check"`
	Metric string            `json:"metric,omitempty"`
	Labels map[string]string `json:"labels,omitempty"`
	State  string            `json:"state,omitempty"` // "warn" or "crit"
	Value  float64           `json:"value"`
}

// Action is one kind of fix. Plan must not change the host.
type Action interface {
	Name() string
	Plan(ctx context.Context, a Alert) (Plan, error)
	Apply(ctx context.Context, p Plan) (Outcome, error)
}

// Plan is what an action would do.
type Plan struct {
	Action string
	Text   string // human readable: what would be done, e.g. the files with sizes
	Data   any    // what Apply needs; action specific
}

// Outcome is what applying a plan did.
type Outcome struct {
	Success        bool   // the action itself succeeded (before verification)
	Result         string // one line, e.g. "deleted 12 files, freed 1.2 GiB"
	Output         string // excerpt of the command output, bounded by MaxOutput
	FreedBytes     int64
	RebootRequired bool // security_updates: /var/run/reboot-required exists afterwards
}

// Attempt is what was tried, for a ticket's "What was tried" section. Its
// fields are those of ticketing.Attempt, so ticketing.Attempt(a) converts.
type Attempt struct {
	At      time.Time `json:"at"`
	Action  string    `json:"action"`
	Plan    string    `json:"plan,omitempty"`
	Output  string    `json:"output,omitempty"`
	Result  string    `json:"result"` // "<result>: <text>", result one of the Result* constants
	Success bool      `json:"success"`
}

// Results: the result label of l2agent_remediation_runs_total and of the
// audit log.
const (
	ResultSuccess          = "success"            // applied and the alert cleared
	ResultFailed           = "failed"             // plan or apply failed
	ResultNotVerified      = "not_verified"       // applied, the alert did not clear
	ResultDryRun           = "dry_run"            // planned only
	ResultSkippedCooldown  = "skipped_cooldown"   // ran for this alert key too recently
	ResultSkippedRateLimit = "skipped_rate_limit" // per action or overall limit reached
	ResultNotAllowed       = "not_allowed"        // disabled, unknown or outside the allowlist
	ResultTimeout          = "timeout"            // killed at its timeout
	ResultSkippedWindow    = "skipped_window"     // outside the maintenance window
)

// Results lists every result label.
var Results = []string{ResultSuccess, ResultFailed, ResultNotVerified, ResultDryRun, ResultSkippedCooldown,
	ResultSkippedRateLimit, ResultNotAllowed, ResultTimeout, ResultSkippedWindow}

// ran reports whether a result means the action was applied.
func ran(result string) bool {
	switch result {
	case ResultSuccess, ResultFailed, ResultNotVerified, ResultTimeout:
		return true
	}
	return false
}

// MaxOutput bounds the output excerpt of an attempt.
const MaxOutput = 2048

// MaxPlanText bounds the plan text of an attempt.
const MaxPlanText = 4096
