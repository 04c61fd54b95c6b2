package mfa

import (
	"fmt"
	"net/netip"
	"path/filepath"
	"slices"
	"strings"

	"github.com/l2agent/l2agent/configs"
)

// Controls are the controls the mfa check can evaluate, in report order.
var Controls = []string{"sshd", "pam", "sudo", "enrolment"}

// DefaultModules are the PAM modules that count as a second factor.
var DefaultModules = []string{"pam_google_authenticator", "pam_oath", "pam_u2f", "pam_yubico", "pam_duo", "pam_radius_auth"}

// DefaultOptionalArgs are PAM module arguments that let a user without an
// enrolled factor through (google-authenticator and yubico nullok, u2f nouserok).
var DefaultOptionalArgs = []string{"nullok", "nouserok"}

// DefaultPAMModuleDirs are where PAM looks for modules named without a path,
// on Debian (multiarch) and on RPM-based systems. Entries may be globs.
var DefaultPAMModuleDirs = []string{
	"/lib/*-linux-gnu/security", "/usr/lib/*-linux-gnu/security",
	"/lib/security", "/usr/lib/security", "/lib64/security", "/usr/lib64/security",
}

// Options configure the mfa check: whether every interactive login (sshd)
// and privilege escalation (sudo) needs a second factor, and whether the
// members of the admin groups have one enrolled. Paths other than the sshd
// ones are read under paths.rootfs.
type Options struct {
	// Required makes two-factor authentication a policy of this host: a
	// control that lets one factor in, an unenrolled admin, sshd accepting
	// passwords or root files a ticket. Left false, these series keep their
	// metrics and alert states but file no ticket. sshd accepting empty
	// passwords (no factor at all) is a finding either way.
	Required bool `yaml:"required"`
	// Scope is whose logins are judged: "all" (every connection sshd
	// accepts) or "groups" (only members of Groups, ProbeUsers, and root
	// where root may log in).
	Scope string `yaml:"scope"`
	// Controls to evaluate: sshd, pam (the sshd PAM stack), sudo (the sudo
	// PAM stack), enrolment.
	Controls []string `yaml:"controls"`
	// Groups whose members must have a second factor (and whose members are
	// probed with sshd -T -C). Groups missing from the group file are skipped.
	Groups []string `yaml:"groups"`
	// Modules are the PAM modules that count as a second factor, by name
	// without .so.
	Modules []string `yaml:"modules"`
	// OptionalArgs are module arguments that make an MFA module let users
	// without a factor through.
	OptionalArgs []string     `yaml:"optional_args"`
	SSHD         SSHDOptions  `yaml:"sshd"`
	PAM          PAMOptions   `yaml:"pam"`
	Accounts     Accounts     `yaml:"accounts"`
	Enrolment    EnrolOptions `yaml:"enrolment"`
}

// SSHDOptions say how to get sshd's effective configuration.
type SSHDOptions struct {
	// Binary is the sshd to run as `sshd -T`. When it does not exist, sshd
	// is taken as not installed and its control is not reported.
	Binary string `yaml:"binary"`
	// Config is the sshd_config passed with -f and parsed for file:line.
	Config string `yaml:"config"`
	// Args are added to every sshd -T call, e.g. ["-h", "/path/to/hostkey"].
	Args []string `yaml:"args"`
	// SecondFactorMethods are the authentication methods that count as the
	// second factor; keyboard-interactive counts only through PAM with an
	// MFA module.
	SecondFactorMethods []string `yaml:"second_factor_methods"`
	// ProbeUsers are probed with sshd -T -C besides the group members.
	ProbeUsers []string `yaml:"probe_users"`
	// ProbeAddress is the client address of probes that do not target a
	// Match Address block: a connection from elsewhere.
	ProbeAddress string `yaml:"probe_address"`
}

// PAMOptions say where the PAM configuration and modules are.
type PAMOptions struct {
	Dir         string   `yaml:"dir"`          // the service files, /etc/pam.d
	SSHDService string   `yaml:"sshd_service"` // control pam
	SudoService string   `yaml:"sudo_service"` // control sudo
	ModuleDirs  []string `yaml:"module_dirs"`  // searched for modules named without a path; globs allowed
}

// Accounts name the user and group databases.
type Accounts struct {
	Passwd string `yaml:"passwd"`
	Group  string `yaml:"group"`
}

// EnrolOptions configure the enrolment control.
type EnrolOptions struct {
	// Modules whose factor files are checked; a user is enrolled with a
	// factor for any of them. Empty: the MFA modules of the sshd and sudo
	// PAM stacks, or pam_google_authenticator when they have none.
	Modules []string `yaml:"modules"`
}

// Scopes are the values of Options.Scope.
var Scopes = []string{ScopeAll, ScopeGroups}

const (
	// ScopeAll judges every connection sshd accepts (the default).
	ScopeAll = "all"
	// ScopeGroups judges only the policy users: the members of the groups,
	// the probe users, and root where root may log in.
	ScopeGroups = "groups"
)

// ApplyDefaults implements configs.Options: it fills what the config left out.
func (o *Options) ApplyDefaults(string) {
	mfaOrString(&o.Scope, ScopeAll)
	if o.Controls == nil {
		o.Controls = slices.Clone(Controls)
	}
	if o.Groups == nil {
		o.Groups = []string{"sudo", "wheel", "admin"}
	}
	if o.Modules == nil {
		o.Modules = slices.Clone(DefaultModules)
	}
	if o.OptionalArgs == nil {
		o.OptionalArgs = slices.Clone(DefaultOptionalArgs)
	}
	s := &o.SSHD
	mfaOrString(&s.Binary, "/usr/sbin/sshd")
	mfaOrString(&s.Config, "/etc/ssh/sshd_config")
	if s.SecondFactorMethods == nil {
		s.SecondFactorMethods = []string{"keyboard-interactive"}
	}
	mfaOrString(&s.ProbeAddress, "192.0.2.1")
	p := &o.PAM
	mfaOrString(&p.Dir, "/etc/pam.d")
	mfaOrString(&p.SSHDService, "sshd")
	mfaOrString(&p.SudoService, "sudo")
	if p.ModuleDirs == nil {
		p.ModuleDirs = slices.Clone(DefaultPAMModuleDirs)
	}
	mfaOrString(&o.Accounts.Passwd, "/etc/passwd")
	mfaOrString(&o.Accounts.Group, "/etc/group")
}

func mfaOrString(s *string, def string) {
	if *s == "" {
		*s = def
	}
}

// validate reports bad values; path is the position of the block, e.g.
// "checks[2].mfa"; errf(path+".field", format, args...) places an error.
func (o *Options) Validate(path string, errf configs.Errorf) {
	if !slices.Contains(Scopes, o.Scope) {
		errf(path+".scope", "mfa scope %q: want one of %s", o.Scope, strings.Join(Scopes, ", "))
	}
	seen := map[string]bool{}
	for i, c := range o.Controls {
		p := fmt.Sprintf("%s.controls[%d]", path, i)
		switch {
		case !slices.Contains(Controls, c):
			errf(p, "mfa control %q: want one of %s", c, strings.Join(Controls, ", "))
		case seen[c]:
			errf(p, "mfa control %q listed twice", c)
		}
		seen[c] = true
	}
	names := func(field string, list []string, what string) {
		for i, s := range list {
			if strings.TrimSpace(s) == "" || strings.ContainsAny(s, " \t:/") {
				errf(fmt.Sprintf("%s.%s[%d]", path, field, i), "%s %q: want a plain name", what, s)
			}
		}
	}
	names("groups", o.Groups, "group")
	names("modules", o.Modules, "PAM module")
	names("optional_args", o.OptionalArgs, "module argument")
	names("sshd.second_factor_methods", o.SSHD.SecondFactorMethods, "authentication method")
	names("sshd.probe_users", o.SSHD.ProbeUsers, "user")
	names("enrolment.modules", o.Enrolment.Modules, "PAM module")
	for i, m := range o.Enrolment.Modules {
		if !slices.Contains(EnrolModules, strings.TrimSuffix(m, ".so")) {
			errf(fmt.Sprintf("%s.enrolment.modules[%d]", path, i), "enrolment module %q: factor files are known for %s only", m, strings.Join(EnrolModules, ", "))
		}
	}
	for _, f := range []struct{ field, v string }{
		{"sshd.binary", o.SSHD.Binary}, {"sshd.config", o.SSHD.Config}, {"pam.dir", o.PAM.Dir},
		{"accounts.passwd", o.Accounts.Passwd}, {"accounts.group", o.Accounts.Group},
	} {
		if !filepath.IsAbs(f.v) {
			errf(path+"."+f.field, "%s %q: must be an absolute path", f.field, f.v)
		}
	}
	for i, d := range o.PAM.ModuleDirs {
		if !filepath.IsAbs(d) {
			errf(fmt.Sprintf("%s.pam.module_dirs[%d]", path, i), "module dir %q: must be an absolute path", d)
		} else if _, err := filepath.Match(d, d); err != nil {
			errf(fmt.Sprintf("%s.pam.module_dirs[%d]", path, i), "module dir %q: bad glob: %v", d, err)
		}
	}
	for _, f := range []struct{ field, v string }{{"pam.sshd_service", o.PAM.SSHDService}, {"pam.sudo_service", o.PAM.SudoService}} {
		if strings.Contains(f.v, "/") {
			errf(path+"."+f.field, "%s %q: want a service name, a file in pam.dir", f.field, f.v)
		}
	}
	if _, err := netip.ParseAddr(o.SSHD.ProbeAddress); err != nil {
		errf(path+".sshd.probe_address", "sshd.probe_address %q: want an IP address", o.SSHD.ProbeAddress)
	}
}

// EnrolModules are the modules whose enrolment the check can see on the
// host; the others (duo, radius) keep their factors on a server.
var EnrolModules = []string{"pam_google_authenticator", "pam_oath", "pam_u2f", "pam_yubico"}

// WithDefaults returns a copy of o with the defaults filled in, for checks
// built without going through Load (tests, the CLI's ad hoc checks).
func (o Options) WithDefaults() Options {
	o.ApplyDefaults("")
	return o
}
