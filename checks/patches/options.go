package patches

import (
	"fmt"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/l2agent/l2agent/configs"
)

// Backends are the package managers the patches check can read;
// "auto" picks one from <rootfs>/etc/os-release.
var Backends = []string{"auto", "apt", "dnf", "yum", "zypper", "apk"}

// DefaultAptSecurityPattern matches the sources apt-get prints for a
// candidate from a security archive: Debian's "Debian-Security:12/stable-security",
// Ubuntu's "Ubuntu:22.04/jammy-security", ESM's "…/jammy-apps-security".
const DefaultAptSecurityPattern = `(?i)security`

// Options configure the patches check.
type Options struct {
	// Backend is auto (from <rootfs>/etc/os-release ID and ID_LIKE), apt,
	// dnf, yum, zypper or apk.
	Backend string `yaml:"backend"`
	// StateDir keeps when each pending security update was first seen
	// (patches-<check>.json), so that the waiting time survives restarts.
	StateDir string `yaml:"state_dir"`
	// MaxPackages bounds the packages listed in diagnostics.
	MaxPackages int `yaml:"max_packages"`
	// CommandTimeout bounds each package-manager command (the check's own
	// timeout still applies).
	CommandTimeout configs.Duration `yaml:"command_timeout"`

	Apt    AptOptions    `yaml:"apt"`
	Dnf    DnfOptions    `yaml:"dnf"`
	Zypper ZypperOptions `yaml:"zypper"`
	Apk    ApkOptions    `yaml:"apk"`
}

// AptOptions configure the apt backend (Debian, Ubuntu).
type AptOptions struct {
	AptGet    string `yaml:"apt_get"`    // default apt-get
	AptConfig string `yaml:"apt_config"` // default apt-config
	AptCache  string `yaml:"apt_cache"`  // default apt-cache
	// Options are passed as `-o KEY=VALUE` to every apt command, e.g.
	// "Dir::State::status=/srv/dpkg/status" or "Dir=/host".
	Options []string `yaml:"options"`
	// Upgrade is the simulated operation: dist-upgrade (default; counts
	// upgrades that need new packages, such as a new kernel ABI) or upgrade.
	Upgrade string `yaml:"upgrade"`
	// SecurityPattern is a regular expression matched against each source
	// apt-get prints for a candidate ("Label:Version/Archive").
	SecurityPattern string `yaml:"security_pattern"`
	// RebootRequiredFile is the flag file update-notifier and the packages'
	// postinst scripts create; its .pkgs twin lists the packages.
	RebootRequiredFile string `yaml:"reboot_required_file"`
}

// DnfOptions configure the dnf/yum backend (RHEL, Fedora, Rocky, Alma).
type DnfOptions struct {
	// Command is dnf or yum; default dnf when found on PATH, else yum.
	Command string `yaml:"command"`
	// NeedsRestarting is the argv that answers "is a reboot needed" with
	// exit code 1; default needs-restarting -r, or <command> needs-restarting -r.
	NeedsRestarting []string `yaml:"needs_restarting"`
	Rpm             string   `yaml:"rpm"` // default rpm
}

// ZypperOptions configure the zypper backend (SUSE).
type ZypperOptions struct {
	Command          string `yaml:"command"`            // default zypper
	RebootNeededFile string `yaml:"reboot_needed_file"` // default /run/reboot-needed
}

// ApkOptions configure the apk backend (Alpine).
type ApkOptions struct {
	Command string `yaml:"command"` // default apk
}

// MoveStateDir implements configs.StateDirMover: a state dir left at the
// agent's follows it.
func (o *Options) MoveStateDir(from, to string) {
	if o.StateDir == from {
		o.StateDir = to
	}
}

// WithDefaults returns o with every field left out set to its default.
func (o Options) WithDefaults() Options {
	def := func(s *string, v string) {
		if *s == "" {
			*s = v
		}
	}
	def(&o.Backend, "auto")
	def(&o.StateDir, configs.DefaultStateDir)
	if o.MaxPackages == 0 {
		o.MaxPackages = 50
	}
	if o.CommandTimeout == 0 {
		o.CommandTimeout = configs.Duration(2 * time.Minute)
	}
	def(&o.Apt.AptGet, "apt-get")
	def(&o.Apt.AptConfig, "apt-config")
	def(&o.Apt.AptCache, "apt-cache")
	def(&o.Apt.Upgrade, "dist-upgrade")
	def(&o.Apt.SecurityPattern, DefaultAptSecurityPattern)
	def(&o.Apt.RebootRequiredFile, "/var/run/reboot-required")
	def(&o.Dnf.Rpm, "rpm")
	def(&o.Zypper.Command, "zypper")
	def(&o.Zypper.RebootNeededFile, "/run/reboot-needed")
	def(&o.Apk.Command, "apk")
	o.Apt.Options = slices.Clone(o.Apt.Options)
	o.Dnf.NeedsRestarting = slices.Clone(o.Dnf.NeedsRestarting)
	return o
}

// ApplyDefaults implements configs.Options: it fills what the config left
// out; the state dir is the agent's unless the check has its own.
func (o *Options) ApplyDefaults(stateDir string) {
	if o.StateDir == "" {
		o.StateDir = stateDir
	}
	*o = o.WithDefaults()
}

// validate reports bad values; path is the position of the block, e.g.
// "checks[2].patches"; errf(path+".field", format, args...) places an error.
func (o *Options) Validate(path string, errf configs.Errorf) {
	if !slices.Contains(Backends, o.Backend) {
		errf(path+".backend", "patches backend %q: want one of %s", o.Backend, strings.Join(Backends, ", "))
	}
	if !filepath.IsAbs(o.StateDir) {
		errf(path+".state_dir", "patches state_dir %q: must be an absolute path", o.StateDir)
	}
	if o.MaxPackages < 0 {
		errf(path+".max_packages", "patches max_packages must not be negative")
	}
	if o.CommandTimeout < 0 {
		errf(path+".command_timeout", "patches command_timeout must not be negative")
	}
	if o.Apt.Upgrade != "upgrade" && o.Apt.Upgrade != "dist-upgrade" {
		errf(path+".apt.upgrade", "apt upgrade %q: want upgrade or dist-upgrade", o.Apt.Upgrade)
	}
	if _, err := regexp.Compile(o.Apt.SecurityPattern); err != nil {
		errf(path+".apt.security_pattern", "apt security_pattern: bad regular expression: %v", err)
	}
	for i, opt := range o.Apt.Options {
		if k, _, ok := strings.Cut(opt, "="); !ok || k == "" || strings.HasPrefix(opt, "-") || strings.ContainsAny(k, " \t") {
			errf(fmt.Sprintf("%s.apt.options[%d]", path, i), "apt option %q: want KEY=VALUE, as after apt's -o (e.g. Dir::State::status=/srv/status)", opt)
		}
	}
	for _, f := range []struct{ key, v string }{
		{"apt.apt_get", o.Apt.AptGet}, {"apt.apt_config", o.Apt.AptConfig}, {"apt.apt_cache", o.Apt.AptCache}, {"dnf.rpm", o.Dnf.Rpm},
		{"zypper.command", o.Zypper.Command}, {"apk.command", o.Apk.Command},
	} {
		if strings.TrimSpace(f.v) == "" {
			errf(path+"."+f.key, "patches %s must not be empty", f.key)
		}
	}
	if len(o.Dnf.NeedsRestarting) > 0 && o.Dnf.NeedsRestarting[0] == "" {
		errf(path+".dnf.needs_restarting", "dnf needs_restarting: the first element is the program and must not be empty")
	}
	for _, f := range []struct{ key, v string }{{"apt.reboot_required_file", o.Apt.RebootRequiredFile}, {"zypper.reboot_needed_file", o.Zypper.RebootNeededFile}} {
		if !filepath.IsAbs(f.v) {
			errf(path+"."+f.key, "patches %s %q: must be an absolute path", f.key, f.v)
		}
	}
}
