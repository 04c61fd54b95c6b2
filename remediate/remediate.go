// Package remediate runs guarded fixes for firing alerts: an Action plans
// what it would do and applies the plan; the Engine decides, per the
// configured policy (enabled, dry-run, allowlists, cooldown, rate limits,
// maintenance window, timeout), whether it may run, verifies that the alert
// cleared, audits every decision and reports what was tried.
//
// Each action is a unit of its own under remediate/<action>/ that
// registers itself from init() (Register); remediate/all links them all.
// This package holds what they have in common: the Action interface and
// its Plan and Outcome, the registry and the Env actions read the host
// through, the engine and its policy, the audit log, and the command
// runner (RunCommand).
package remediate

import (
	"context"

	"github.com/l2agent/l2agent/internal/alert"
)

// Alert is the alert model, as actions take it (an alias, not a copy).
type Alert = alert.Alert

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
