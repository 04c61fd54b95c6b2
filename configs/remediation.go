package configs

import (
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

// Remediation configures the guarded auto-remediations: which alert runs
// which action (rules) and what each action may do (actions). Every action
// is off until enabled, and a global dry_run turns them all into plans.
type Remediation struct {
	// DryRun: plan and audit only, for every action.
	DryRun bool `yaml:"dry_run"`
	// MaxRuns is the overall rate limit: at most Count runs of any action
	// within Window.
	MaxRuns RateLimit `yaml:"max_runs"`
	// Actions: the policy per action name (see ActionKinds).
	Actions ActionPolicies `yaml:"actions"`
	// Rules: which alert runs which action; the first matching rule wins.
	Rules []RemediationRule `yaml:"rules"`
	// Helper: where the actions run. "auto" (or empty): through the
	// privileged remediation helper at DefaultHelperSocket when that socket
	// exists (the packaged systemd units), else in the agent's own process;
	// "off": always in-process; an absolute path: always through the helper
	// listening there.
	Helper string `yaml:"helper"`
}

// DefaultHelperSocket is where the packaged l2agent-remediate.socket listens.
const DefaultHelperSocket = "/run/l2agent-remediate.sock"

// HelperSocket resolves Helper: the socket to send the actions to, or ""
// to run them in-process. exists reports whether a path exists (os.Stat in
// the agent; tests stub it).
func (r Remediation) HelperSocket(exists func(string) bool) string {
	switch r.Helper {
	case "off":
		return ""
	case "", "auto":
		if exists(DefaultHelperSocket) {
			return DefaultHelperSocket
		}
		return ""
	}
	return r.Helper
}

// RateLimit is at most Count runs within Window. Count 0 means no runs.
type RateLimit struct {
	Count  int      `yaml:"count"`
	Window Duration `yaml:"window"`
}

// ActionPolicy is what one action may do and how often: the keys every
// action has, and the action's own settings (allowlists, command…) beside
// them in the same block.
type ActionPolicy struct {
	Enabled  bool      `yaml:"enabled"`  // off by default for every action
	DryRun   bool      `yaml:"dry_run"`  // plan and audit only
	Cooldown Duration  `yaml:"cooldown"` // per alert key
	MaxRuns  RateLimit `yaml:"max_runs"` // per action
	Timeout  Duration  `yaml:"timeout"`
	// MaintenanceWindow: a cron spec of when the window opens; the action
	// then runs only within MaintenanceDuration after an opening. Empty:
	// any time (an action may require one).
	MaintenanceWindow   string   `yaml:"maintenance_window"`
	MaintenanceDuration Duration `yaml:"maintenance_duration"`
	// Verify: re-run the check after applying; success only when the alert
	// clears. Default true.
	Verify *bool `yaml:"verify"`

	// Settings: the action's own keys, of the type its unit registered in
	// ActionKinds (e.g. allow_paths for disk_cleanup); never nil after loading.
	Settings Options `yaml:"-"`
	// Params (`params:`): defaults for the rules of this action and for
	// manual runs; nil for an action that takes none.
	Params Params `yaml:"-"`
}

// RemediationRule maps an alert to an action.
type RemediationRule struct {
	Check  string            `yaml:"check"`  // check name; required
	Metric string            `yaml:"metric"` // empty: any metric of the check
	Labels map[string]string `yaml:"labels"` // exact match; empty matches all
	// State: "crit" runs only on crit; "warn" or empty on warn and crit.
	State  string `yaml:"state"`
	Action string `yaml:"action"`
	// Params (`params:`) override the action's params; of the action's type.
	Params Params `yaml:"-"`
}

// PolicyHook is implemented by an action's settings when the action has
// its own defaults for the common keys (a longer timeout) or conditions on
// them (a maintenance window it requires).
type PolicyHook interface {
	DefaultPolicy(p *ActionPolicy)
	ValidatePolicy(path string, errf Errorf, p *ActionPolicy)
}

// VerifyEnabled reports whether the action re-runs the check (default yes).
func (p ActionPolicy) VerifyEnabled() bool { return p.Verify == nil || *p.Verify }

// InMaintenanceWindow reports whether t is inside the window; true when the
// policy has none. A bad spec is never inside.
func (p ActionPolicy) InMaintenanceWindow(t time.Time) bool {
	if p.MaintenanceWindow == "" {
		return true
	}
	s, err := ParseSchedule(p.MaintenanceWindow)
	if err != nil {
		return false
	}
	d := p.MaintenanceDuration.D()
	// The first opening after t-d is at or before t exactly when t lies
	// within d of an opening.
	return !s.Next(t.Add(-d).Add(-time.Nanosecond)).After(t)
}

// applyDefaults fills what the config left out; stateDir is the agent's.
func (r *Remediation) applyDefaults(stateDir string) {
	if r.MaxRuns == (RateLimit{}) {
		r.MaxRuns = RateLimit{Count: 10, Window: Duration(time.Hour)}
	}
	if r.MaxRuns.Window == 0 {
		r.MaxRuns.Window = Duration(time.Hour)
	}
	if r.Actions == nil {
		r.Actions = map[string]ActionPolicy{}
	}
	for _, name := range ActionKinds.Names() {
		p := r.Actions[name] // zero value: disabled
		if p.Settings == nil {
			p.Settings = ActionKinds.NewOptions(name)
		}
		p.Settings.ApplyDefaults(stateDir)
		if h, ok := p.Settings.(PolicyHook); ok {
			h.DefaultPolicy(&p)
		}
		if p.Cooldown == 0 {
			p.Cooldown = Duration(30 * time.Minute)
		}
		if p.MaxRuns == (RateLimit{}) {
			p.MaxRuns = RateLimit{Count: 3, Window: Duration(time.Hour)}
		}
		if p.MaxRuns.Window == 0 {
			p.MaxRuns.Window = Duration(time.Hour)
		}
		if p.Timeout == 0 {
			p.Timeout = Duration(2 * time.Minute)
		}
		if p.MaintenanceWindow != "" && p.MaintenanceDuration == 0 {
			p.MaintenanceDuration = Duration(time.Hour)
		}
		r.Actions[name] = p
	}
}

// validate reports bad values; errf(path, format, args...) places an error
// at the position of path, e.g. "remediation.actions.disk_cleanup.allow_paths[1]".
func (r *Remediation) validate(errf Errorf) {
	const base = "remediation"
	checkRate(errf, base+".max_runs", r.MaxRuns)
	if h := r.Helper; h != "" && h != "auto" && h != "off" && !CleanAbs(h) {
		errf(base+".helper", "remediation.helper %q: want auto, off or the clean absolute path of the helper's socket", h)
	}
	for _, name := range sortedMapKeys(r.Actions) {
		p := r.Actions[name]
		ab := base + ".actions." + name
		if _, known := ActionKinds.Lookup(name); !known {
			errf(ab, "unknown remediation action %q (known: %s)", name, strings.Join(ActionKinds.Names(), ", "))
			continue
		}
		checkRate(errf, ab+".max_runs", p.MaxRuns)
		if p.Timeout <= 0 {
			errf(ab+".timeout", "remediation action %s: timeout must be positive", name)
		}
		if p.MaintenanceWindow != "" {
			if _, err := ParseSchedule(p.MaintenanceWindow); err != nil {
				errf(ab+".maintenance_window", "remediation action %s: bad maintenance_window %q: %v", name, p.MaintenanceWindow, err)
			}
		} else if p.MaintenanceDuration != 0 {
			errf(ab+".maintenance_duration", "remediation action %s: maintenance_duration without maintenance_window", name)
		}
		p.Settings.Validate(ab, errf)
		if h, ok := p.Settings.(PolicyHook); ok {
			h.ValidatePolicy(ab, errf, &p)
		}
		if p.Params != nil {
			p.Params.Validate(ab+".params", errf, p.Settings)
		}
	}
	for i, rule := range r.Rules {
		rb := fmt.Sprintf("%s.rules[%d]", base, i)
		if rule.Check == "" {
			errf(rb, "remediation rule: check is required (the name of the check whose alert runs the action)")
		}
		if rule.State != "" && rule.State != "warn" && rule.State != "crit" {
			errf(rb+".state", "remediation rule: state %q: want warn or crit", rule.State)
		}
		if _, known := ActionKinds.Lookup(rule.Action); !known {
			errf(rb+".action", "remediation rule: unknown action %q (known: %s)", rule.Action, strings.Join(ActionKinds.Names(), ", "))
			continue
		}
		p := r.Actions[rule.Action]
		if rule.Params != nil {
			rule.Params.Validate(rb+".params", errf, p.Settings)
		}
		if eff := MergeParams(p.Params, rule.Params); eff != nil {
			eff.Complete(rb+".params", errf, p.Settings)
		}
	}
}

// CheckCommand reports at path a command that is not a clean absolute path
// (an action's command allowlist of one).
func CheckCommand(errf Errorf, path, name, command string) {
	if command != "" && !CleanAbs(command) {
		errf(path, "remediation action %s: command %q: must be a clean absolute path", name, command)
	}
}

// CleanAbs reports whether p is a clean absolute path.
func CleanAbs(p string) bool { return filepath.IsAbs(p) && filepath.Clean(p) == p }

func checkRate(errf Errorf, at string, r RateLimit) {
	if r.Count < 0 {
		errf(at+".count", "%s: count must not be negative", at)
	}
	if r.Window <= 0 {
		errf(at+".window", "%s: window must be positive", at)
	}
}

// UnderAny reports whether p is one of dirs or inside one of them.
func UnderAny(p string, dirs []string) bool {
	for _, d := range dirs {
		if p == d || strings.HasPrefix(p, strings.TrimSuffix(d, "/")+"/") {
			return true
		}
	}
	return false
}

func sortedMapKeys[V any](m map[string]V) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	slices.Sort(ks)
	return ks
}
