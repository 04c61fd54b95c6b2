package configs

import (
	"fmt"
	"path"
	"path/filepath"
	"regexp"
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
	// Actions: the policy per action name (see RemediationActions).
	Actions map[string]ActionPolicy `yaml:"actions"`
	// Rules: which alert runs which action; the first matching rule wins.
	Rules []RemediationRule `yaml:"rules"`
}

// RateLimit is at most Count runs within Window. Count 0 means no runs.
type RateLimit struct {
	Count  int      `yaml:"count"`
	Window Duration `yaml:"window"`
}

// ActionPolicy is what one action may do and how often.
type ActionPolicy struct {
	Enabled bool `yaml:"enabled"` // off by default for every action
	DryRun  bool `yaml:"dry_run"` // plan and audit only
	// Allowlists. AllowPaths: directories disk_cleanup may delete in;
	// AllowUnits: systemd units service_restart may restart; AllowConfigs:
	// logrotate configs that may be forced.
	AllowPaths   []string `yaml:"allow_paths"`
	AllowUnits   []string `yaml:"allow_units"`
	AllowConfigs []string `yaml:"allow_configs"`
	// Command: the absolute path of the one program the action runs (the
	// command allowlist); default per action, e.g. /usr/bin/journalctl.
	Command string `yaml:"command"`
	// Manager: the package manager of package_cache_clean and
	// security_updates (apt, dnf, zypper, apk); empty: detected.
	Manager  string    `yaml:"manager"`
	Cooldown Duration  `yaml:"cooldown"` // per alert key
	MaxRuns  RateLimit `yaml:"max_runs"` // per action
	Timeout  Duration  `yaml:"timeout"`
	// MaintenanceWindow: a cron spec of when the window opens; the action
	// then runs only within MaintenanceDuration after an opening. Empty:
	// any time (security_updates requires one).
	MaintenanceWindow   string   `yaml:"maintenance_window"`
	MaintenanceDuration Duration `yaml:"maintenance_duration"`
	// Verify: re-run the check after applying; success only when the alert
	// clears. Default true.
	Verify *bool `yaml:"verify"`
	// Params: defaults for the rules of this action and for manual runs.
	Params RemediationParams `yaml:"params"`
}

// RemediationRule maps an alert to an action.
type RemediationRule struct {
	Check  string            `yaml:"check"`  // check name; required
	Metric string            `yaml:"metric"` // empty: any metric of the check
	Labels map[string]string `yaml:"labels"` // exact match; empty matches all
	// State: "crit" runs only on crit; "warn" or empty on warn and crit.
	State  string            `yaml:"state"`
	Action string            `yaml:"action"`
	Params RemediationParams `yaml:"params"` // override the action's params
}

// RemediationParams are the parameters of an action; which apply depends on
// the action (see RemediationParamsOf).
type RemediationParams struct {
	Paths      []string `yaml:"paths"`       // disk_cleanup: directories inside allow_paths; default: allow_paths
	Globs      []string `yaml:"globs"`       // disk_cleanup: file name patterns
	OlderThan  Duration `yaml:"older_than"`  // disk_cleanup: minimum age (mtime)
	Unit       string   `yaml:"unit"`        // service_restart: one of allow_units
	Config     string   `yaml:"config"`      // logrotate: one of allow_configs
	VacuumSize string   `yaml:"vacuum_size"` // journal_vacuum: e.g. 500M
	VacuumTime Duration `yaml:"vacuum_time"` // journal_vacuum: e.g. 30d
}

// RemediationActions are the known action names.
var RemediationActions = []string{
	"disk_cleanup", "journal_vacuum", "package_cache_clean", "logrotate",
	"service_restart", "antivirus_update", "security_updates",
}

// RemediationParamsOf lists the params each action takes.
var RemediationParamsOf = map[string][]string{
	"disk_cleanup":        {"paths", "globs", "older_than"},
	"journal_vacuum":      {"vacuum_size", "vacuum_time"},
	"package_cache_clean": {},
	"logrotate":           {"config"},
	"service_restart":     {"unit"},
	"antivirus_update":    {},
	"security_updates":    {},
}

// PackageManagers are the managers of package_cache_clean and
// security_updates.
var PackageManagers = []string{"apt", "dnf", "zypper", "apk"}

// DefaultRemediationCommands are the default programs of the actions that
// run one fixed program.
var DefaultRemediationCommands = map[string]string{
	"journal_vacuum":   "/usr/bin/journalctl",
	"logrotate":        "/usr/sbin/logrotate",
	"service_restart":  "/usr/bin/systemctl",
	"antivirus_update": "/usr/bin/freshclam",
}

var defaultActionTimeouts = map[string]time.Duration{
	"disk_cleanup":        2 * time.Minute,
	"journal_vacuum":      2 * time.Minute,
	"package_cache_clean": 5 * time.Minute,
	"logrotate":           2 * time.Minute,
	"service_restart":     2 * time.Minute,
	"antivirus_update":    10 * time.Minute,
	"security_updates":    time.Hour,
}

// MergeParams returns base with the fields set in over replaced.
func MergeParams(base, over RemediationParams) RemediationParams {
	if over.Paths != nil {
		base.Paths = over.Paths
	}
	if over.Globs != nil {
		base.Globs = over.Globs
	}
	if over.OlderThan != 0 {
		base.OlderThan = over.OlderThan
	}
	if over.Unit != "" {
		base.Unit = over.Unit
	}
	if over.Config != "" {
		base.Config = over.Config
	}
	if over.VacuumSize != "" {
		base.VacuumSize = over.VacuumSize
	}
	if over.VacuumTime != 0 {
		base.VacuumTime = over.VacuumTime
	}
	return base
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
	for _, name := range RemediationActions {
		p := r.Actions[name] // zero value: disabled
		if p.Command == "" {
			p.Command = DefaultRemediationCommands[name]
		}
		if p.Cooldown == 0 {
			p.Cooldown = Duration(30 * time.Minute)
			if name == "security_updates" {
				p.Cooldown = Duration(24 * time.Hour)
			}
		}
		if p.MaxRuns == (RateLimit{}) {
			p.MaxRuns = RateLimit{Count: 3, Window: Duration(time.Hour)}
		}
		if p.MaxRuns.Window == 0 {
			p.MaxRuns.Window = Duration(time.Hour)
		}
		if p.Timeout == 0 {
			p.Timeout = Duration(defaultActionTimeouts[name])
		}
		if p.MaintenanceWindow != "" && p.MaintenanceDuration == 0 {
			p.MaintenanceDuration = Duration(time.Hour)
		}
		r.Actions[name] = p
	}
}

var (
	unitRe       = regexp.MustCompile(`^[A-Za-z0-9:_.@\\-]+\.(service|socket|timer|target|path|mount)$`)
	vacuumSizeRe = regexp.MustCompile(`^[0-9]+[KMGT]?$`)
)

// validate reports bad values; errf(path, format, args...) places an error
// at the position of path, e.g. "remediation.actions.disk_cleanup.allow_paths[1]".
func (r *Remediation) validate(errf func(path, format string, args ...any)) {
	const base = "remediation"
	checkRate(errf, base+".max_runs", r.MaxRuns)
	for _, name := range sortedMapKeys(r.Actions) {
		p := r.Actions[name]
		ab := base + ".actions." + name
		takes, known := RemediationParamsOf[name]
		if !known {
			errf(ab, "unknown remediation action %q (known: %s)", name, strings.Join(RemediationActions, ", "))
			continue
		}
		for _, l := range []struct {
			key, action string
			n           int
		}{{"allow_paths", "disk_cleanup", len(p.AllowPaths)}, {"allow_units", "service_restart", len(p.AllowUnits)}, {"allow_configs", "logrotate", len(p.AllowConfigs)}} {
			if l.n > 0 && name != l.action {
				errf(ab+"."+l.key, "remediation action %s: %s applies only to %s", name, l.key, l.action)
			}
		}
		for i, d := range p.AllowPaths {
			pp := fmt.Sprintf("%s.allow_paths[%d]", ab, i)
			switch {
			case !filepath.IsAbs(d) || filepath.Clean(d) != d:
				errf(pp, "remediation action %s: allow_paths %q: must be a clean absolute path", name, d)
			case d == "/":
				errf(pp, "remediation action %s: allow_paths must not be /", name)
			}
		}
		for i, u := range p.AllowUnits {
			if !unitRe.MatchString(u) {
				errf(fmt.Sprintf("%s.allow_units[%d]", ab, i), "remediation action %s: %q is not a systemd unit name such as clamav-daemon.service", name, u)
			}
		}
		for i, c := range p.AllowConfigs {
			if !filepath.IsAbs(c) || filepath.Clean(c) != c {
				errf(fmt.Sprintf("%s.allow_configs[%d]", ab, i), "remediation action %s: allow_configs %q: must be a clean absolute path", name, c)
			}
		}
		if p.Command != "" && (!filepath.IsAbs(p.Command) || filepath.Clean(p.Command) != p.Command) {
			errf(ab+".command", "remediation action %s: command %q: must be a clean absolute path", name, p.Command)
		}
		if p.Manager != "" {
			if name != "package_cache_clean" && name != "security_updates" {
				errf(ab+".manager", "remediation action %s: manager applies only to package_cache_clean and security_updates", name)
			} else if !slices.Contains(PackageManagers, p.Manager) {
				errf(ab+".manager", "remediation action %s: manager %q: want %s", name, p.Manager, strings.Join(PackageManagers, ", "))
			} else if name == "security_updates" && p.Manager == "apk" {
				errf(ab+".manager", "remediation action security_updates: apk has no security-only updates")
			}
		}
		if p.Command != "" && (name == "package_cache_clean" || name == "security_updates") && p.Manager == "" {
			errf(ab+".command", "remediation action %s: set manager along with command", name)
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
		if name == "security_updates" && p.Enabled && p.MaintenanceWindow == "" {
			errf(ab+".maintenance_window", "remediation action security_updates: runs only inside a maintenance window: set maintenance_window (a cron spec)")
		}
		validateParams(errf, ab+".params", name, takes, p, p.Params, p.Params, false)
	}
	for i, rule := range r.Rules {
		rb := fmt.Sprintf("%s.rules[%d]", base, i)
		if rule.Check == "" {
			errf(rb, "remediation rule: check is required (the name of the check whose alert runs the action)")
		}
		if rule.State != "" && rule.State != "warn" && rule.State != "crit" {
			errf(rb+".state", "remediation rule: state %q: want warn or crit", rule.State)
		}
		takes, known := RemediationParamsOf[rule.Action]
		if !known {
			errf(rb+".action", "remediation rule: unknown action %q (known: %s)", rule.Action, strings.Join(RemediationActions, ", "))
			continue
		}
		p := r.Actions[rule.Action]
		validateParams(errf, rb+".params", rule.Action, takes, p, rule.Params, MergeParams(p.Params, rule.Params), true)
	}
}

// validateParams checks own (as written at path) and the effective params
// eff of an action with policy p; complete: eff must be enough to run.
func validateParams(errf func(path, format string, args ...any), at, name string, takes []string, p ActionPolicy, own, eff RemediationParams, complete bool) {
	set := map[string]bool{
		"paths": own.Paths != nil, "globs": own.Globs != nil, "older_than": own.OlderThan != 0,
		"unit": own.Unit != "", "config": own.Config != "", "vacuum_size": own.VacuumSize != "", "vacuum_time": own.VacuumTime != 0,
	}
	for _, k := range sortedMapKeys(set) {
		if set[k] && !slices.Contains(takes, k) {
			if len(takes) == 0 {
				errf(at+"."+k, "remediation action %s takes no params (%s does not apply)", name, k)
			} else {
				errf(at+"."+k, "remediation action %s: param %s does not apply (it takes: %s)", name, k, strings.Join(takes, ", "))
			}
		}
	}
	applies := func(k string) bool { return slices.Contains(takes, k) }
	if !applies("paths") {
		own.Paths = nil
	}
	for i, d := range own.Paths {
		pp := fmt.Sprintf("%s.paths[%d]", at, i)
		if !filepath.IsAbs(d) || filepath.Clean(d) != d {
			errf(pp, "remediation action %s: path %q: must be a clean absolute path", name, d)
		} else if !underAny(d, p.AllowPaths) {
			errf(pp, "remediation action %s: path %q is outside allow_paths (%s)", name, d, strings.Join(p.AllowPaths, ", "))
		}
	}
	if !applies("globs") {
		own.Globs = nil
	}
	for i, g := range own.Globs {
		if _, err := path.Match(g, ""); err != nil || g == "" || strings.Contains(g, "/") {
			errf(fmt.Sprintf("%s.globs[%d]", at, i), "remediation action %s: glob %q: want a file name pattern such as *.gz (no /)", name, g)
		}
	}
	if own.Unit != "" && applies("unit") && !slices.Contains(p.AllowUnits, own.Unit) {
		errf(at+".unit", "remediation action %s: unit %q is not in allow_units", name, own.Unit)
	}
	if own.Config != "" && applies("config") && !slices.Contains(p.AllowConfigs, own.Config) {
		errf(at+".config", "remediation action %s: config %q is not in allow_configs", name, own.Config)
	}
	if own.VacuumSize != "" && applies("vacuum_size") && !vacuumSizeRe.MatchString(own.VacuumSize) {
		errf(at+".vacuum_size", "remediation action %s: vacuum_size %q: want a size such as 500M or 2G", name, own.VacuumSize)
	}
	if !complete {
		return
	}
	switch name {
	case "disk_cleanup":
		if len(eff.Paths) == 0 && len(p.AllowPaths) == 0 {
			errf(at, "remediation action disk_cleanup: no paths (set params.paths or the action's allow_paths)")
		}
		if len(eff.Globs) == 0 {
			errf(at, "remediation action disk_cleanup: globs are required (e.g. [\"*.gz\"])")
		}
		if eff.OlderThan <= 0 {
			errf(at, "remediation action disk_cleanup: older_than is required (e.g. 7d)")
		}
	case "journal_vacuum":
		if eff.VacuumSize == "" && eff.VacuumTime == 0 {
			errf(at, "remediation action journal_vacuum: set vacuum_size, vacuum_time or both")
		}
	case "service_restart":
		if eff.Unit == "" {
			errf(at, "remediation action service_restart: unit is required")
		}
	case "logrotate":
		if eff.Config == "" {
			errf(at, "remediation action logrotate: config is required")
		}
	}
}

func checkRate(errf func(path, format string, args ...any), at string, r RateLimit) {
	if r.Count < 0 {
		errf(at+".count", "%s: count must not be negative", at)
	}
	if r.Window <= 0 {
		errf(at+".window", "%s: window must be positive", at)
	}
}

// underAny reports whether p is one of dirs or inside one of them.
func underAny(p string, dirs []string) bool {
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
