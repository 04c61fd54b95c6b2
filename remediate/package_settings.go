package remediate

import (
	"slices"
	"strings"
	"time"

	"github.com/l2agent/l2agent/configs"
)

func init() {
	Register("package_cache_clean", func(s configs.Options, _ configs.Params, ev Env) (Action, error) {
		o := s.(*PackageSettings)
		return &packageCacheClean{manager: o.Manager, command: o.Command, root: ev.Root}, nil
	}, func() configs.Options {
		return &PackageSettings{action: "package_cache_clean", timeout: 5 * time.Minute, cooldown: 30 * time.Minute}
	}, nil)
	Register("security_updates", func(s configs.Options, _ configs.Params, ev Env) (Action, error) {
		o := s.(*PackageSettings)
		return &securityUpdates{manager: o.Manager, command: o.Command, root: ev.Root}, nil
	}, func() configs.Options {
		return &PackageSettings{action: "security_updates", timeout: time.Hour, cooldown: 24 * time.Hour, window: true}
	}, nil)
}

// PackageManagers are the managers of package_cache_clean and
// security_updates.
var PackageManagers = []string{"apt", "dnf", "zypper", "apk"}

// PackageSettings are the own keys of package_cache_clean and
// security_updates: which package manager, run as which program.
type PackageSettings struct {
	// Manager: apt, dnf, zypper or apk; empty: detected.
	Manager string `yaml:"manager"`
	// Command: the manager's program; default that of the manager.
	Command string `yaml:"command"`

	action            string
	timeout, cooldown time.Duration
	window            bool // runs only inside a maintenance window
}

// ApplyDefaults implements configs.Options; the program is the detected
// manager's unless set.
func (s *PackageSettings) ApplyDefaults(string) {}

// Validate implements configs.Options.
func (s *PackageSettings) Validate(at string, errf configs.Errorf) {
	if s.Manager != "" {
		switch {
		case !slices.Contains(PackageManagers, s.Manager):
			errf(at+".manager", "remediation action %s: manager %q: want %s", s.action, s.Manager, strings.Join(PackageManagers, ", "))
		case s.action == "security_updates" && s.Manager == "apk":
			errf(at+".manager", "remediation action security_updates: apk has no security-only updates")
		}
	}
	configs.CheckCommand(errf, at+".command", s.action, s.Command)
	if s.Command != "" && s.Manager == "" {
		errf(at+".command", "remediation action %s: set manager along with command", s.action)
	}
}

// DefaultPolicy implements configs.PolicyHook.
func (s *PackageSettings) DefaultPolicy(p *configs.ActionPolicy) {
	if p.Timeout == 0 {
		p.Timeout = configs.Duration(s.timeout)
	}
	if p.Cooldown == 0 {
		p.Cooldown = configs.Duration(s.cooldown)
	}
}

// ValidatePolicy implements configs.PolicyHook.
func (s *PackageSettings) ValidatePolicy(at string, errf configs.Errorf, p *configs.ActionPolicy) {
	if s.window && p.Enabled && p.MaintenanceWindow == "" {
		errf(at+".maintenance_window", "remediation action %s: runs only inside a maintenance window: set maintenance_window (a cron spec)", s.action)
	}
}
