// Package remediate runs guarded fixes for firing alerts: an Action plans
// what it would do and applies the plan; the Engine decides, per the
// configured policy (enabled, dry-run, allowlists, cooldown, rate limits,
// maintenance window, timeout), whether it may run, checks that the action
// measured the effect its plan expected, verifies that the alert cleared,
// audits every decision and reports what was tried.
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
	"fmt"
	"time"

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
	// Expect states the effect applying the plan should have and that Apply
	// measures, e.g. "space freed in /var/cache/apt/archives" or
	// "clamav-daemon.service active". A plan that states one succeeds only
	// when its Outcome reports the effect measured (see Outcome.Effect).
	Expect string
	Data   any // what Apply needs; action specific
}

// Outcome is what applying a plan did.
type Outcome struct {
	Success        bool   // the action itself succeeded (before verification)
	Result         string // one line, e.g. "deleted 12 files, freed 1.2 GiB"
	Output         string // excerpt of the command output, bounded by MaxOutput
	FreedBytes     int64
	RebootRequired bool // security_updates: /var/run/reboot-required exists afterwards
	// Effect is the plan's expected effect as Apply measured it, e.g.
	// "freed 96.0 MiB in /var/cache/apt/archives (96.0 MiB → 0 B)"; empty
	// when it did not show.
	Effect string
	// NoEffect says why the expected effect did not show although the
	// action ran without error, e.g. "read-only file system (…)",
	// "nothing to free (…)", "unit still inactive (…)". The engine counts
	// such a run as failed, whatever the program's exit status.
	NoEffect string
}

// applyFailure tells whether an applied action failed, and how: killed at
// its timeout, an error or an unsuccessful outcome, or no effect (the
// outcome says why, or the plan expected an effect the outcome did not
// measure). The engine counts a run without effect as failed, whatever the
// program's exit status. The in-process engine and the remediation helper
// both judge a run with it.
func applyFailure(p Plan, o Outcome, err error, timedOut bool, timeout time.Duration) (result, reason string, failed bool) {
	switch {
	case timedOut:
		return ResultTimeout, fmt.Sprintf("killed at its timeout of %s", timeout), true
	case err != nil:
		return ResultFailed, err.Error(), true
	case !o.Success:
		return ResultFailed, "", true
	case o.NoEffect != "":
		return ResultFailed, "no effect: " + o.NoEffect, true
	case p.Expect != "" && o.Effect == "":
		return ResultFailed, "no effect: the effect (" + p.Expect + ") was not measured", true
	}
	return "", "", false
}

// Results: the result label of l2agent_remediation_runs_total and of the
// audit log.
const (
	ResultSuccess          = "success"            // applied and the alert cleared
	ResultFailed           = "failed"             // plan or apply failed, or applying had no effect
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
