// Package mfa is the mfa check (kind "mfa"): whether every interactive
// login (sshd and its PAM stack) and privilege escalation (sudo) needs a
// second factor that cannot be skipped, and whether every member of the
// admin groups has one enrolled. It only reads: sshd -T, PAM files, the user
// and group files and the users' factor files. It registers itself from
// init(); checks/all links it in.
package mfa

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/l2agent/l2agent/checks"
	"github.com/l2agent/l2agent/configs"
	"github.com/l2agent/l2agent/internal/fsutil"
	"github.com/l2agent/l2agent/internal/textfmt"
)

func init() {
	checks.Register("mfa", newMFACheck, func() configs.Options { return &Options{} },
		checks.MetricInfo{Name: "mfa_compliant", Help: "1 if the control requires a second factor that cannot be skipped, else 0: sshd (effective sshd config), pam (sshd PAM auth stack), sudo (sudo PAM auth stack), enrolment (every member of the admin groups has a factor). Absent when the control does not apply (sshd or sudo not installed)."},
		checks.MetricInfo{Name: "mfa_users_unenrolled", Help: "Members of the group without an enrolled second factor for the MFA module(s) in use."},
		checks.MetricInfo{Name: "mfa_sshd_permit_root_login", Help: "1 if sshd lets root log in (PermitRootLogin other than no) for some connection judged (mfa.scope), else 0."},
		checks.MetricInfo{Name: "mfa_sshd_password_authentication", Help: "1 if sshd accepts passwords (PasswordAuthentication yes) for some connection judged (mfa.scope), else 0."},
		checks.MetricInfo{Name: "mfa_sshd_permit_empty_passwords", Help: "1 if sshd accepts empty passwords (PermitEmptyPasswords yes) for some connection probed, else 0."},
	)
}

// mfaCheck reports whether every interactive login and privilege escalation
// needs a second factor. It only reads: sshd -T, PAM files, the user and
// group files and the users' factor files.
type mfaCheck struct {
	name string
	env  checks.Env
	opts Options
	// run executes a command given as argv (sshd -T); a field so that tests
	// can count or fake calls.
	run func(ctx context.Context, argv []string) ([]byte, error)
	now func() time.Time

	mu   sync.Mutex
	memo *sshdMemo // the last plain sshd -T (sshdPlain)
}

func newMFACheck(c configs.Check, env checks.Env) (checks.Check, error) {
	o := *c.Options.(*Options)
	root := env.CommandRoot()
	run := func(ctx context.Context, argv []string) ([]byte, error) { return mfaCommand(ctx, root, argv) }
	return &mfaCheck{name: c.Name, env: env, opts: o.WithDefaults(), run: run, now: time.Now}, nil
}

// Name implements Check.
func (c *mfaCheck) Name() string { return c.name }

// mfaFinding is one reason a control is not compliant.
type mfaFinding struct {
	Where string // file:line, or file when no line sets the value
	Text  string // the line as written, or the effective setting
	Rule  string // the rule it breaks
	Who   string // the connections or users it concerns, or the PAM path
}

func (c *mfaCheck) rootfs() string {
	if c.env.Paths.Rootfs == "" {
		return "/"
	}
	return c.env.Paths.Rootfs
}

// path puts an absolute host path under the rootfs, following the host's
// symbolic links inside it.
func (c *mfaCheck) path(p string) string { return fsutil.InRoot(c.rootfs(), p) }

// sshdPath is where the agent finds sshd.binary and sshd.config: as they are,
// since sshd runs in the agent's own root, unless sshd runs chrooted into the
// rootfs (paths.chroot): then they are the host's, under the rootfs.
func (c *mfaCheck) sshdPath(p string) string {
	if c.env.CommandRoot() == "" {
		return p
	}
	return c.path(p)
}

// sshdConfigReader reads sshd.config where sshd reads it (sshdPath), naming
// its files as sshd does.
func (c *mfaCheck) sshdConfigReader() sshdConfigReader {
	if c.env.CommandRoot() == "" {
		return sshdConfigReader{}
	}
	root := c.rootfs()
	return sshdConfigReader{
		open: func(name string) (io.ReadCloser, error) { return os.Open(c.path(name)) },
		glob: func(pattern string) ([]string, error) {
			files, err := filepath.Glob(c.path(pattern))
			for i, f := range files {
				if rel, err := filepath.Rel(root, f); err == nil {
					files[i] = filepath.Join("/", rel)
				}
			}
			return files, err
		},
	}
}

func (c *mfaCheck) exists(p string) (bool, error) {
	_, err := os.Stat(p)
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	return err == nil, err
}

// Run implements Check. A control that cannot be evaluated (sshd -T fails, a
// PAM file cannot be read) fails the run, so that its state is unknown
// rather than a guess.
func (c *mfaCheck) Run(ctx context.Context) ([]checks.Observation, error) {
	o := c.opts
	want := func(ctl string) bool { return slices.Contains(o.Controls, ctl) }
	var acc *mfaAccounts
	if want("sshd") || want("enrolment") {
		var err error
		if acc, err = readMFAAccounts(c.path(o.Accounts.Passwd), c.path(o.Accounts.Group)); err != nil {
			return nil, err
		}
	}
	sshdInstalled, err := c.exists(c.sshdPath(o.SSHD.Binary))
	if err != nil {
		return nil, fmt.Errorf("sshd binary: %w", err)
	}
	sudoInstalled := false
	for _, p := range []string{"/usr/bin/sudo", "/bin/sudo", "/usr/local/bin/sudo"} {
		if ok, _ := c.exists(c.path(p)); ok {
			sudoInstalled = true
		}
	}
	loader := newPAMLoader(c.path(o.PAM.Dir), c.rootfs(), o.PAM.ModuleDirs, o.Modules, o.OptionalArgs)
	var sshdPAM, sudoPAM *pamVerdict
	if want("sshd") || want("pam") || want("enrolment") {
		if sshdPAM, err = c.pamService(loader, o.PAM.SSHDService, sshdInstalled); err != nil {
			return nil, err
		}
	}
	if want("sudo") || want("enrolment") {
		if sudoPAM, err = c.pamService(loader, o.PAM.SudoService, sudoInstalled); err != nil {
			return nil, err
		}
	}

	var obs []checks.Observation
	if want("sshd") && sshdInstalled {
		r, err := c.evalSSHD(ctx, acc, sshdPAM, want("pam") && sshdPAM != nil)
		if err != nil {
			return nil, err
		}
		obs = append(obs, r.observations()...)
	}
	if want("pam") && sshdPAM != nil {
		obs = append(obs, pamObservation("pam", sshdPAM))
	}
	if want("sudo") && sudoPAM != nil {
		obs = append(obs, pamObservation("sudo", sudoPAM))
	}
	if want("enrolment") {
		eo, err := c.evalEnrolment(ctx, acc, sshdPAM, sudoPAM)
		if err != nil {
			return nil, err
		}
		obs = append(obs, eo...)
	}
	return c.policy(obs), nil
}

// notRequired is why a finding of the check files no ticket while
// two-factor authentication is not required.
const notRequired = "two-factor authentication is not required by the config (mfa: {required: false}): its findings are reported, not ticketed"

// alwaysFinding are the series that are findings whatever the policy: an
// sshd that lets an empty password in asks for no factor at all.
var alwaysFinding = []string{"mfa_sshd_permit_empty_passwords"}

// policy marks obs report-only unless the config requires two-factor
// authentication.
func (c *mfaCheck) policy(obs []checks.Observation) []checks.Observation {
	if c.opts.Required {
		return obs
	}
	for i := range obs {
		if !slices.Contains(alwaysFinding, obs[i].Metric) {
			obs[i].ReportOnly = notRequired
		}
	}
	return obs
}

// pamService evaluates the auth stack of a PAM service; nil when the service
// has no file and its program is not installed.
func (c *mfaCheck) pamService(l *pamLoader, service string, installed bool) (*pamVerdict, error) {
	own, err := c.exists(l.path(service))
	if err != nil {
		return nil, fmt.Errorf("PAM service %s: %w", service, err)
	}
	if !own && !installed {
		c.env.Log().Debug("PAM service not present, control skipped", "check", c.name, "service", service)
		return nil, nil
	}
	st, err := l.authStack(service)
	if errors.Is(err, errPAMServiceMissing) {
		st = &pamStack{Service: service, File: l.path(service), Notes: []string{err.Error() + ": PAM refuses every authentication"}}
	} else if err != nil {
		return nil, fmt.Errorf("PAM service %s: %w", service, err)
	}
	v := evalPAMStack(st, c.opts.Modules)
	return &v, nil
}

func pamObservation(control string, v *pamVerdict) checks.Observation {
	var head string
	if v.Compliant {
		var mods []string
		for _, e := range v.MFA {
			mods = append(mods, fmt.Sprintf("%s (%s, %s)", e.Name, pamControlOf(e), e.where()))
		}
		head = fmt.Sprintf("%s: compliant: the auth stack of PAM service %s (%s) requires %s", control, v.Stack.Service, v.Stack.File, strings.Join(mods, " and "))
	} else if len(v.Lockout) > 0 {
		head = fmt.Sprintf("%s: NOT compliant: %s through PAM service %s (%s): the stack requires a module that is not on disk", control, lockoutRule, v.Stack.Service, v.Stack.File)
	} else {
		head = fmt.Sprintf("%s: NOT compliant: the auth stack of PAM service %s (%s) lets users in without a second factor", control, v.Stack.Service, v.Stack.File)
	}
	return checks.Observation{
		Metric: "mfa_compliant", Labels: map[string]string{"control": control}, Value: checks.BoolValue(v.Compliant),
		Details: formatMFA(head, v.Findings, v.Stack.Notes),
	}
}

// formatMFA renders findings for a ticket, bounded by MaxDetails.
func formatMFA(head string, findings []mfaFinding, notes []string) string {
	var b strings.Builder
	b.WriteString(head)
	b.WriteByte('\n')
	for _, f := range findings {
		fmt.Fprintf(&b, "- %s: %s\n  rule: %s\n", f.Where, f.Text, f.Rule)
		if f.Who != "" {
			fmt.Fprintf(&b, "  %s\n", f.Who)
		}
	}
	for _, n := range notes {
		fmt.Fprintf(&b, "note: %s\n", n)
	}
	return textfmt.Truncate(b.String(), checks.MaxDetails)
}

// mfaList joins at most n items, saying how many more there are.
func mfaList(items []string, n int) string {
	if len(items) <= n {
		return strings.Join(items, "; ")
	}
	return strings.Join(items[:n], "; ") + fmt.Sprintf("; and %d more", len(items)-n)
}

// evalEnrolment checks that every member of the groups has a factor. A
// member whose factor files cannot be read safely counts as without one.
func (c *mfaCheck) evalEnrolment(ctx context.Context, acc *mfaAccounts, stacks ...*pamVerdict) ([]checks.Observation, error) {
	o := c.opts
	modules, args := c.enrolModules(stacks)
	if len(modules) == 0 {
		return nil, nil
	}
	factors := make([]mfaFactor, len(modules))
	for i, m := range modules {
		m = strings.TrimSuffix(m, ".so")
		factors[i] = mfaFactor{module: m, args: args[m], rootfs: c.rootfs(), acc: acc}
	}

	var obs []checks.Observation
	var all []mfaFinding
	checked := 0
	for _, g := range o.Groups {
		if acc.groups[g] == nil {
			continue
		}
		missing, n, unknown, err := c.unenrolled(ctx, acc, g, factors)
		if err != nil {
			return nil, err
		}
		checked += n
		head := fmt.Sprintf("group %s: %d member(s) without a second factor for %s", g, len(missing), strings.Join(modules, " or "))
		if unknown > 0 {
			head += fmt.Sprintf(" (%d of them unknown: their factor files cannot be read safely)", unknown)
		}
		obs = append(obs, checks.Observation{
			Metric: "mfa_users_unenrolled", Labels: map[string]string{"group": g}, Value: float64(len(missing)),
			Details: formatMFA(head, missing, nil),
		})
		for _, f := range missing {
			if !slices.ContainsFunc(all, func(x mfaFinding) bool { return x.Where == f.Where && x.Text == f.Text && x.Rule == f.Rule }) {
				all = append(all, f)
			}
		}
	}
	head := fmt.Sprintf("enrolment: compliant: all %d member(s) of %s have a second factor for %s", checked, strings.Join(o.Groups, ", "), strings.Join(modules, " or "))
	if len(all) > 0 {
		head = fmt.Sprintf("enrolment: NOT compliant: %d user(s) of %s without a second factor for %s", len(all), strings.Join(o.Groups, ", "), strings.Join(modules, " or "))
	}
	obs = append([]checks.Observation{{
		Metric: "mfa_compliant", Labels: map[string]string{"control": "enrolment"}, Value: checks.BoolValue(len(all) == 0),
		Details: formatMFA(head, all, nil),
	}}, obs...)
	return obs, nil
}

// enrolModules returns the modules whose enrolment to check, and the
// arguments of each module's first line in the PAM stacks: the configured
// modules, else those of the stacks whose enrolment the check can see, else
// pam_google_authenticator when the stacks have no MFA module. It returns no
// modules when those of the stacks all keep their factors on a server.
func (c *mfaCheck) enrolModules(stacks []*pamVerdict) (modules []string, args map[string][]string) {
	args = map[string][]string{}
	var inStacks []string
	for _, v := range stacks {
		if v == nil {
			continue
		}
		for _, e := range v.MFA {
			if _, ok := args[e.Name]; !ok {
				args[e.Name] = e.Args
				inStacks = append(inStacks, e.Name)
			}
		}
	}
	if len(c.opts.Enrolment.Modules) > 0 {
		return c.opts.Enrolment.Modules, args
	}
	for _, m := range inStacks {
		if slices.Contains(EnrolModules, m) {
			modules = append(modules, m)
		}
	}
	switch {
	case len(modules) > 0:
		return modules, args
	case len(inStacks) > 0:
		c.env.Log().Debug("MFA modules keep factors on a server; enrolment not checked", "check", c.name, "modules", inStacks)
		return nil, args
	}
	return []string{"pam_google_authenticator"}, args
}

// unenrolled returns the members of group g without an account or without
// any of the factors, how many members with an account it checked, and how
// many of the missing are unknown: a factor file that cannot be read safely
// (a link, a FIFO, too big, too slow) enrols nobody.
func (c *mfaCheck) unenrolled(ctx context.Context, acc *mfaAccounts, g string, factors []mfaFactor) (missing []mfaFinding, checked, unknown int, err error) {
	o := c.opts
	for _, name := range acc.membersOf(g) {
		u := acc.users[name]
		if u == nil {
			missing = append(missing, mfaFinding{Where: acc.memberWhere(name, g), Text: name + ", member of group " + g, Rule: "a member of the group needs an account in " + o.Accounts.Passwd + " and a second factor", Who: "no account"})
			continue
		}
		checked++
		state, whys, err := anyEnrolled(ctx, u, factors)
		if err != nil {
			return nil, 0, 0, fmt.Errorf("enrolment of %s: %w", name, err)
		}
		who := strings.Join(whys, "; ")
		switch state {
		case enrolYes:
			continue
		case enrolUnknown:
			unknown++
			who = "enrolment unknown, counted as not enrolled: " + who
			c.env.Log().Warn("factor files of a group member cannot be read safely; counted as not enrolled",
				"check", c.name, "user", name, "group", g, "reason", who)
		}
		missing = append(missing, mfaFinding{Where: acc.memberWhere(name, g), Text: name + ", member of group " + g,
			Rule: "members of " + strings.Join(o.Groups, ", ") + " need a second factor enrolled", Who: who})
	}
	return missing, checked, unknown, nil
}

// anyEnrolled tells whether u has enrolled one of the factors, trying them
// in order; whys says, per module tried, why not. Without an enrolled
// factor, one that is unknown makes the user unknown.
func anyEnrolled(ctx context.Context, u *mfaAccount, factors []mfaFactor) (state enrolState, whys []string, err error) {
	for _, f := range factors {
		s, why, err := f.enrolled(ctx, u)
		if err != nil {
			return enrolNo, nil, err
		}
		if s == enrolYes {
			return enrolYes, nil, nil
		}
		if s == enrolUnknown {
			state = enrolUnknown
		}
		whys = append(whys, f.module+": "+why)
	}
	return state, whys, nil
}
