// Package pkgmgr is what package_cache_clean and security_updates share:
// the package managers they run (apt, dnf, zypper, apk) and their settings
// (which manager, run as which program), each action with its own defaults
// for the common keys.
package pkgmgr

import (
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/l2agent/l2agent/configs"
)

// Manager is one package manager and what the actions run with it.
type Manager struct {
	Name     string
	Command  string   // default absolute path
	Clean    []string // args of package_cache_clean
	Cache    string   // the package cache, to measure what cleaning freed
	Security []string // args of security_updates; nil: not supported
	SecCmd   string   // default program of security_updates, if not Command
}

var managers = []Manager{
	{Name: "apt", Command: "/usr/bin/apt-get", Clean: []string{"clean"}, Cache: "/var/cache/apt/archives",
		SecCmd: "/usr/bin/unattended-upgrade", Security: []string{"-v"}},
	{Name: "dnf", Command: "/usr/bin/dnf", Clean: []string{"clean", "packages"}, Cache: "/var/cache/dnf",
		Security: []string{"upgrade", "--security", "-y"}},
	{Name: "zypper", Command: "/usr/bin/zypper", Clean: []string{"--non-interactive", "clean"}, Cache: "/var/cache/zypp/packages",
		Security: []string{"--non-interactive", "patch", "--category", "security"}},
	{Name: "apk", Command: "/sbin/apk", Clean: []string{"cache", "clean"}, Cache: "/var/cache/apk"},
}

// names lists the managers, as the settings' manager key names them.
func names() []string {
	out := make([]string, len(managers))
	for i, m := range managers {
		out[i] = m.Name
	}
	return out
}

// lookup returns the manager called name.
func lookup(name string) (Manager, bool) {
	i := slices.IndexFunc(managers, func(m Manager) bool { return m.Name == name })
	if i < 0 {
		return Manager{}, false
	}
	return managers[i], true
}

// Find returns the configured manager, or the first one whose program
// exists under root.
func Find(name, root string) (Manager, error) {
	if name != "" {
		if m, ok := lookup(name); ok {
			return m, nil
		}
		return Manager{}, fmt.Errorf("unknown package manager %q", name)
	}
	for _, m := range managers {
		if _, err := os.Stat(JoinRoot(root, m.Command)); err == nil {
			return m, nil
		}
	}
	return Manager{}, errors.New("no package manager found (apt-get, dnf, zypper, apk): set manager and command")
}

// JoinRoot is the absolute path p under root ("" or "/": the host's).
func JoinRoot(root, p string) string {
	if root == "" || root == "/" {
		return p
	}
	return root + p
}

// Policy is what the two actions' settings do differently.
type Policy struct {
	Action            string        // the action's name
	Timeout, Cooldown time.Duration // its defaults
	Window            bool          // it runs only inside a maintenance window
	Security          bool          // it needs the manager's security-only updates
}

// Settings are the own keys of package_cache_clean and security_updates:
// which package manager, run as which program.
type Settings struct {
	// Manager: apt, dnf, zypper or apk; empty: detected.
	Manager string `yaml:"manager"`
	// Command: the manager's program; default that of the manager.
	Command string `yaml:"command"`

	policy Policy
}

// NewSettings returns the empty settings of the action p describes.
func NewSettings(p Policy) *Settings { return &Settings{policy: p} }

// ApplyDefaults implements configs.Options; the program is the detected
// manager's unless set.
func (s *Settings) ApplyDefaults(string) {}

// Validate implements configs.Options.
func (s *Settings) Validate(at string, errf configs.Errorf) {
	action := s.policy.Action
	if s.Manager != "" {
		m, known := lookup(s.Manager)
		switch {
		case !known:
			errf(at+".manager", "remediation action %s: manager %q: want %s", action, s.Manager, strings.Join(names(), ", "))
		case s.policy.Security && m.Security == nil:
			errf(at+".manager", "remediation action %s: %s has no security-only updates", action, s.Manager)
		}
	}
	configs.CheckCommand(errf, at+".command", action, s.Command)
	if s.Command != "" && s.Manager == "" {
		errf(at+".command", "remediation action %s: set manager along with command", action)
	}
}

// DefaultPolicy implements configs.PolicyHook.
func (s *Settings) DefaultPolicy(p *configs.ActionPolicy) {
	if p.Timeout == 0 {
		p.Timeout = configs.Duration(s.policy.Timeout)
	}
	if p.Cooldown == 0 {
		p.Cooldown = configs.Duration(s.policy.Cooldown)
	}
}

// ValidatePolicy implements configs.PolicyHook.
func (s *Settings) ValidatePolicy(at string, errf configs.Errorf, p *configs.ActionPolicy) {
	if s.policy.Window && p.Enabled && p.MaintenanceWindow == "" {
		errf(at+".maintenance_window", "remediation action %s: runs only inside a maintenance window: set maintenance_window (a cron spec)", s.policy.Action)
	}
}
