package mfa

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/l2agent/l2agent/checks"
	"github.com/l2agent/l2agent/internal/fsutil"
	"github.com/l2agent/l2agent/internal/textfmt"
)

// sshdResult is the evaluation of sshd over every connection probed.
type sshdResult struct {
	findings []mfaFinding
	notes    []string
	scope    string
	probes   int    // connections judged
	methods  string // AuthenticationMethods of the plain sshd -T, for the compliant summary
	flags    [3]sshdFlag
	// refused: sshd refuses its configuration for every connection; the
	// flags cannot be known.
	refused bool
	// policy are the users judged in scope groups.
	policy map[string]bool
	// pamNote is said once when keyboard-interactive or password relies on
	// a PAM stack that control pam finds not compliant.
	pamNote string

	// While probing: each finding once, with the probes that showed it.
	set findingSet
}

// findingSet keeps each finding once, with the probes that showed it, in
// the order first found.
type findingSet struct {
	merged map[string]*sshdMerged
	order  []string
}

// sshdMerged is one finding and the probes that showed it.
type sshdMerged struct {
	f   mfaFinding
	who []string
}

func (s *findingSet) add(f mfaFinding, who string) {
	if s.merged == nil {
		s.merged = map[string]*sshdMerged{}
	}
	k := f.Where + "\x00" + f.Text + "\x00" + f.Rule
	m := s.merged[k]
	if m == nil {
		m = &sshdMerged{f: f}
		s.merged[k] = m
		s.order = append(s.order, k)
	}
	if !slices.Contains(m.who, who) {
		m.who = append(m.who, who)
	}
}

// list returns the findings, each naming the probes it was seen for.
func (s *findingSet) list() []mfaFinding {
	var out []mfaFinding
	for _, k := range s.order {
		m := s.merged[k]
		f := m.f
		f.Who = "for: " + mfaList(m.who, 5)
		out = append(out, f)
	}
	return out
}

// sshdFlag is a yes/no setting of sshd reported as its own series: 1 when
// some connection judged gets the bad value, with the lines that set it.
type sshdFlag struct {
	metric, keyword string
	head, rule      string // what a bad value means, and the rule it breaks
	bad             func(v string) bool
	// always: judged for every connection, whatever the scope (an empty
	// password is no factor at all).
	always  bool
	value   float64
	first   string // the value of the first connection judged, with its line
	badSeen findingSet
}

func newSSHDResult(scope string) *sshdResult {
	return &sshdResult{scope: scope, flags: [3]sshdFlag{
		{metric: "mfa_sshd_permit_root_login", keyword: "permitrootlogin", bad: func(v string) bool { return v != "no" },
			head: "sshd lets root log in", rule: "root logs in over ssh unless PermitRootLogin is no"},
		{metric: "mfa_sshd_password_authentication", keyword: "passwordauthentication", bad: func(v string) bool { return v == "yes" },
			head: "sshd accepts passwords", rule: "sshd accepts passwords unless PasswordAuthentication is no"},
		{metric: "mfa_sshd_permit_empty_passwords", keyword: "permitemptypasswords", bad: func(v string) bool { return v == "yes" }, always: true,
			head: "sshd accepts empty passwords", rule: "an empty password is no factor at all: PermitEmptyPasswords must be no"},
	}}
}

// observe records what the effective configuration eff of probe p shows:
// its findings and flags when p is judged, and the flags judged for every
// connection.
func (r *sshdResult) observe(cfg *sshdConfig, p sshdProbe, eff map[string][]string, acc *mfaAccounts, judged bool, findings []mfaFinding) {
	if judged {
		r.probes++
		for _, f := range findings {
			r.set.add(f, p.String())
		}
	}
	for i := range r.flags {
		if judged || r.flags[i].always {
			r.flags[i].observe(cfg, p, eff, acc)
		}
	}
}

// observe keeps the value of the first connection, and each line that
// gives a connection the bad value.
func (fl *sshdFlag) observe(cfg *sshdConfig, p sshdProbe, eff map[string][]string, acc *mfaAccounts) {
	v := sshdFirst(eff, fl.keyword, "")
	where, text := sshdWhere(cfg, cfg.source(fl.keyword, p, acc), sshdDisplay[fl.keyword], v)
	if fl.first == "" {
		fl.first = fmt.Sprintf("%s %s for %s (%s: %s)", sshdDisplay[fl.keyword], v, p, where, text)
	}
	if fl.bad(v) {
		fl.value = 1
		fl.badSeen.add(mfaFinding{Where: where, Text: text, Rule: fl.rule}, p.String())
	}
}

func (fl *sshdFlag) details(scope string) string {
	if fl.value == 0 {
		if fl.first == "" {
			return fmt.Sprintf("%s: no connection of a policy user was judged (mfa.scope: %s)", sshdDisplay[fl.keyword], scope)
		}
		return textfmt.Truncate(fl.first, checks.MaxDetails)
	}
	bad := fl.badSeen.list()
	return formatMFA(fl.head, bad, nil)
}

func (r *sshdResult) finish() {
	r.findings = r.set.list()
	if r.pamNote != "" {
		r.notes = append(r.notes, r.pamNote)
	}
}

func (r *sshdResult) observations() []checks.Observation {
	var head string
	lockout := slices.ContainsFunc(r.findings, func(f mfaFinding) bool { return strings.HasPrefix(f.Rule, lockoutRule) })
	switch {
	case r.refused:
		head = "sshd: NOT compliant: " + lockoutRule + ": sshd refuses its configuration"
	case len(r.findings) == 0 && r.probes == 0:
		head = fmt.Sprintf("sshd: compliant: no connection of a policy user to judge (mfa.scope: %s: no member of the groups, and root may not log in)", r.scope)
	case len(r.findings) == 0 && r.scope == ScopeGroups:
		head = fmt.Sprintf("sshd: compliant: every connection of a policy user probed (%d) needs a second factor (mfa.scope: groups)", r.probes)
	case len(r.findings) == 0:
		head = fmt.Sprintf("sshd: compliant: every connection probed (%d) needs a second factor: AuthenticationMethods %s", r.probes, r.methods)
	case lockout:
		head = fmt.Sprintf("sshd: NOT compliant: %d finding(s) in the effective configuration (sshd -T, %d connection(s) judged), %s with some", len(r.findings), r.probes, lockoutRule)
	default:
		head = fmt.Sprintf("sshd: NOT compliant: %d finding(s) in the effective configuration (sshd -T, %d connection(s) judged)", len(r.findings), r.probes)
	}
	obs := []checks.Observation{{
		Metric: "mfa_compliant", Labels: map[string]string{"control": "sshd"}, Value: checks.BoolValue(len(r.findings) == 0),
		Details: formatMFA(head, r.findings, r.notes),
	}}
	if r.refused {
		return obs
	}
	for i := range r.flags {
		f := &r.flags[i]
		obs = append(obs, checks.Observation{Metric: f.metric, Value: f.value, Details: f.details(r.scope)})
	}
	return obs
}

// evalSSHD runs sshd -T for a plain connection and for the probes, and
// checks the effective configuration of every connection judged. pamJudged
// says that control pam reports the sshd PAM stack.
func (c *mfaCheck) evalSSHD(ctx context.Context, acc *mfaAccounts, pam *pamVerdict, pamJudged bool) (*sshdResult, error) {
	r := newSSHDResult(c.opts.Scope)
	read := fsutil.NewFingerprint()
	cfg, err := c.fingerprintingReader(read).read(c.opts.SSHD.Config)
	if err != nil {
		r.notes = append(r.notes, fmt.Sprintf("%v: file:line not available", err))
		cfg = &sshdConfig{Main: c.opts.SSHD.Config}
		read.Spoil()
	}
	plain, err := c.sshdPlain(ctx, read)
	if err != nil {
		if err := r.refusal(cfg, err, sshdProbe{}, acc); err != nil {
			return nil, err
		}
		r.refused = true
		r.finish()
		return r, nil
	}
	r.methods = sshdFirst(plain, "authenticationmethods", "any")
	probes := c.sshdProbes(r, cfg, plain, acc)
	judge := func(p sshdProbe, eff map[string][]string) {
		judged := c.sshdJudged(r, p, eff)
		var fs []mfaFinding
		if judged {
			var viaPAM bool
			fs, viaPAM = c.sshdFindings(cfg, eff, p, acc, pam, pamJudged)
			if viaPAM && pamJudged && pam != nil && !pam.Compliant {
				r.pamNote = fmt.Sprintf("the second factor goes through PAM service %s (%s), which control pam finds not compliant: its finding is there", pam.Stack.Service, pam.Stack.File)
			}
		}
		r.observe(cfg, p, eff, acc, judged, fs)
	}
	judge(sshdProbe{}, plain)
	for _, p := range probes {
		eff, err := c.sshdEffective(ctx, p)
		if err != nil {
			if err := r.refusal(cfg, err, p, acc); err != nil {
				return nil, err
			}
			continue
		}
		judge(p, eff)
	}
	r.finish()
	return r, nil
}

// sshdJudged tells whether the connection p is judged: every one in scope
// all; in scope groups, those of a policy user, root's only where it may
// log in.
func (c *mfaCheck) sshdJudged(r *sshdResult, p sshdProbe, eff map[string][]string) bool {
	if c.opts.Scope != ScopeGroups {
		return true
	}
	if !r.policy[p.User] {
		return false
	}
	return p.User != "root" || sshdFirst(eff, "permitrootlogin", "no") != "no"
}

// sshdRefusalRE finds the line sshd names when it refuses its config:
// "FILE: line N: Bad configuration option: X", "FILE line N: Directive ...".
var sshdRefusalRE = regexp.MustCompile(`(\S+?):? line (\d+): ([^\r\n]+)`)

// errSSHDRefused marks an sshd -T failure that names a line of the config.
var errSSHDRefused = errors.New("sshd refuses its configuration")

// sshdUnsatisfiable is what sshd says, naming no line, when every
// AuthenticationMethods list of the global section names a disabled
// method; sshdDisabledRE finds each such method.
const sshdUnsatisfiable = "AuthenticationMethods cannot be satisfied by enabled authentication methods"

var sshdDisabledRE = regexp.MustCompile(`Disabled method "([^"\n]+)" in AuthenticationMethods list "([^"\n]+)"`)

// refusal records sshd refusing its configuration for probe p as a finding
// citing the line sshd names (for an AuthenticationMethods that cannot be
// satisfied, the AuthenticationMethods line and those that turn its methods
// off); it returns err when sshd failed for another reason.
func (r *sshdResult) refusal(cfg *sshdConfig, err error, p sshdProbe, acc *mfaAccounts) error {
	if !errors.Is(err, errSSHDRefused) {
		return err
	}
	who := "every connection: sshd -T fails"
	if p.spec() != "" {
		who = p.String() + ": sshd -T -C fails"
	}
	msg := err.Error()
	m := sshdRefusalRE.FindStringSubmatch(msg)
	if m == nil && strings.Contains(msg, sshdUnsatisfiable) {
		d := cfg.source("authenticationmethods", p, acc)
		value := ""
		if d != nil {
			value = strings.ToLower(strings.Join(d.Args, " "))
		}
		where, text := sshdWhere(cfg, d, "AuthenticationMethods", value)
		var off []string
		for _, dm := range sshdDisabledRE.FindAllStringSubmatch(msg, -1) {
			opt := sshdMethodOption[strings.SplitN(dm[1], ":", 2)[0]]
			w, t := sshdWhere(cfg, cfg.source(opt, p, acc), sshdDisplay[opt], "no")
			off = append(off, fmt.Sprintf("%q needs what %s: %s turns off", dm[2], w, t))
		}
		r.set.add(mfaFinding{Where: where, Text: text,
			Rule: fmt.Sprintf("%s: sshd refuses its configuration (%s), so sshd does not start or restart with it: %s", lockoutRule, sshdUnsatisfiable, strings.Join(off, "; "))}, who)
		return nil
	}
	if m == nil {
		return err
	}
	n, _ := strconv.Atoi(m[2])
	text := m[3]
	for _, d := range cfg.Directives {
		if d.File == m[1] && d.Line == n {
			text = d.Text
		}
	}
	for _, mt := range cfg.Matches {
		if mt.File == m[1] && mt.Line == n {
			text = mt.Text
		}
	}
	r.set.add(mfaFinding{
		Where: fmt.Sprintf("%s:%d", m[1], n), Text: text,
		Rule: fmt.Sprintf("%s: sshd refuses its configuration (%s), so sshd does not start or restart with it", lockoutRule, m[3]),
	}, who)
	return nil
}

// sshdEffective runs sshd -T for the connection p (the zero probe: no -C)
// and returns the effective configuration. An error naming a line of the
// config wraps errSSHDRefused.
func (c *mfaCheck) sshdEffective(ctx context.Context, p sshdProbe) (map[string][]string, error) {
	o := c.opts.SSHD
	argv := append([]string{o.Binary, "-T", "-f", o.Config}, o.Args...)
	if s := p.spec(); s != "" {
		argv = append(argv, "-C", s)
	}
	out, err := c.run(ctx, argv)
	if err != nil {
		if ctx.Err() == nil && (sshdRefusalRE.MatchString(err.Error()) || strings.Contains(err.Error(), sshdUnsatisfiable)) {
			return nil, fmt.Errorf("sshd effective config: %w: %w", errSSHDRefused, err)
		}
		if os.Geteuid() != 0 {
			err = fmt.Errorf("%w (sshd -T needs root to read the host keys; run as root or leave sshd out of mfa.controls)", err)
		}
		return nil, fmt.Errorf("sshd effective config: %w", err)
	}
	eff, err := parseSSHDT(bytes.NewReader(out))
	if err != nil {
		return nil, fmt.Errorf("sshd effective config: parse %s output: %w", strings.Join(argv, " "), err)
	}
	return eff, nil
}

// sshdProbes returns the connections to probe besides the plain one, for
// the users who matter: the members of the groups, the configured users,
// root if it may log in (in scope groups, root always: a Match block may let
// it in). It sets r.policy, and puts the notes of reading the config, and
// what it left out, in r.
func (c *mfaCheck) sshdProbes(r *sshdResult, cfg *sshdConfig, plain map[string][]string, acc *mfaAccounts) []sshdProbe {
	var users []string
	for _, g := range c.opts.Groups {
		users = append(users, acc.membersOf(g)...)
	}
	users = append(users, c.opts.SSHD.ProbeUsers...)
	if c.opts.Scope == ScopeGroups || sshdFirst(plain, "permitrootlogin", "no") != "no" {
		users = append(users, "root")
	}
	slices.Sort(users)
	users = slices.Compact(users)
	r.policy = map[string]bool{}
	for _, u := range users {
		r.policy[u] = true
	}
	var probes []sshdProbe
	if len(cfg.Matches) > 0 || len(cfg.Notes) > 0 || c.opts.Scope == ScopeGroups {
		probes = cfg.probes(users, c.opts.SSHD.ProbeAddress, acc)
	}
	r.notes = append(r.notes, cfg.Notes...)
	if len(probes) > sshdMaxProbes {
		r.notes = append(r.notes, fmt.Sprintf("%d connections to probe, only the first %d were", len(probes), sshdMaxProbes))
		probes = probes[:sshdMaxProbes]
	}
	return probes
}

// sshdDisplay is how sshd_config(5) spells the keywords the check reports.
var sshdDisplay = map[string]string{
	"authenticationmethods":        "AuthenticationMethods",
	"permitrootlogin":              "PermitRootLogin",
	"passwordauthentication":       "PasswordAuthentication",
	"permitemptypasswords":         "PermitEmptyPasswords",
	"usepam":                       "UsePAM",
	"kbdinteractiveauthentication": "KbdInteractiveAuthentication",
	"pubkeyauthentication":         "PubkeyAuthentication",
	"hostbasedauthentication":      "HostbasedAuthentication",
	"gssapiauthentication":         "GSSAPIAuthentication",
}

func sshdFirst(eff map[string][]string, kw, def string) string {
	if v := eff[kw]; len(v) > 0 {
		return strings.ToLower(v[0])
	}
	return def
}

// sshdWhere names the line that set a value: file:line, with the Match
// block it is in; the main file when the value is sshd's default.
func sshdWhere(cfg *sshdConfig, d *sshdDirective, display, value string) (where, text string) {
	if d == nil {
		return cfg.Main, fmt.Sprintf("%s not set (default: %s)", display, value)
	}
	where = fmt.Sprintf("%s:%d", d.File, d.Line)
	if d.Match != nil {
		where += fmt.Sprintf(" (in %q at %s)", d.Match.Text, d.Match.where())
	}
	text = d.Text
	if got := strings.ToLower(strings.Join(d.Args, " ")); got != value && !sshdSameValue(d.Keyword, got, value) {
		text += fmt.Sprintf(" [sshd -T reports %s %s]", display, value)
	}
	return where, text
}

// sshdSameValue knows the spellings sshd -T normalises.
func sshdSameValue(kw, written, effective string) bool {
	if kw == "permitrootlogin" {
		norm := func(s string) string {
			if s == "prohibit-password" {
				return "without-password"
			}
			return s
		}
		return norm(written) == norm(effective)
	}
	return false
}

// sshdList is one AuthenticationMethods list as sshd uses it.
type sshdList struct {
	text     string
	methods  []string // distinct, without a submethod (keyboard-interactive:pam)
	disabled []string // the options that turn off a method of the list
}

func sshdLists(am string, eff map[string][]string) []sshdList {
	var out []sshdList
	for _, text := range strings.Fields(am) {
		l := sshdList{text: text}
		for _, m := range strings.Split(text, ",") {
			m, _, _ = strings.Cut(m, ":") // keyboard-interactive:pam
			if opt, ok := sshdMethodOption[m]; ok && sshdFirst(eff, opt, "yes") != "yes" && !slices.Contains(l.disabled, opt) {
				l.disabled = append(l.disabled, opt)
			}
			if !slices.Contains(l.methods, m) {
				l.methods = append(l.methods, m)
			}
		}
		out = append(out, l)
	}
	return out
}

// sshdFindings checks one effective configuration: AuthenticationMethods
// must demand two methods in every usable list, one of them a second factor;
// keyboard-interactive (and password, with UsePAM yes) is a second factor
// through a PAM stack with an MFA module. Lists that all name a disabled
// method lock users out. viaPAM says the second factor relies on the sshd
// PAM stack; a defect of that stack is a finding here only when control
// pam does not report it (pamJudged false).
func (c *mfaCheck) sshdFindings(cfg *sshdConfig, eff map[string][]string, p sshdProbe, acc *mfaAccounts, pam *pamVerdict, pamJudged bool) (fs []mfaFinding, viaPAM bool) {
	second := c.opts.SSHD.SecondFactorMethods
	am := sshdFirst(eff, "authenticationmethods", "any")
	where, text := sshdWhere(cfg, cfg.source("authenticationmethods", p, acc), "AuthenticationMethods", am)
	want := fmt.Sprintf("every AuthenticationMethods list must demand two methods, one of them a second factor (%s)", strings.Join(second, ", "))
	if am == "any" {
		return []mfaFinding{{Where: where, Text: text, Rule: want + `; with "any" one method is enough`}}, false
	}
	usePAM := sshdFirst(eff, "usepam", "no") == "yes"
	lists := sshdLists(am, eff)
	var problems, off []string
	usable := 0
	for _, l := range lists {
		if len(l.disabled) > 0 {
			for _, opt := range l.disabled {
				w, t := sshdWhere(cfg, cfg.source(opt, p, acc), sshdDisplay[opt], sshdFirst(eff, opt, "yes"))
				off = append(off, fmt.Sprintf("%q needs what %s: %s turns off", l.text, w, t))
			}
			continue // sshd skips a list with a disabled method
		}
		usable++
		var factors, pamFactors []string
		for _, m := range l.methods {
			switch {
			case m == "keyboard-interactive" && slices.Contains(second, m), m == "password" && usePAM && !slices.Contains(second, m):
				pamFactors = append(pamFactors, m)
			case slices.Contains(second, m):
				factors = append(factors, m)
			}
		}
		switch {
		case len(l.methods) < 2:
			problems = append(problems, fmt.Sprintf("%q is one method", l.text))
		case len(factors) == 0 && len(pamFactors) == 0 && slices.Contains(l.methods, "password"):
			problems = append(problems, fmt.Sprintf("%q has none (password is a second factor only through a PAM auth stack that requires one, and UsePAM is no)", l.text))
		case len(factors) == 0 && len(pamFactors) == 0:
			problems = append(problems, fmt.Sprintf("%q has none", l.text))
		case len(factors) == 0:
			viaPAM = true
		}
	}
	if usable == 0 && len(lists) > 0 {
		fs = append(fs, mfaFinding{Where: where, Text: text, Rule: lockoutRule + ": every AuthenticationMethods list names a disabled method: " + strings.Join(off, "; ")})
	}
	if len(problems) > 0 {
		fs = append(fs, mfaFinding{Where: where, Text: text, Rule: want + "; " + strings.Join(problems, "; ")})
	}
	if viaPAM {
		fs = append(fs, c.sshdPAMFindings(cfg, eff, p, acc, pam, pamJudged)...)
	}
	return fs, viaPAM
}

// sshdPAMFindings checks what a second factor through PAM needs of sshd:
// UsePAM yes and a PAM service; the stack itself is control pam's, judged
// here only when that control is not evaluated.
func (c *mfaCheck) sshdPAMFindings(cfg *sshdConfig, eff map[string][]string, p sshdProbe, acc *mfaAccounts, pam *pamVerdict, pamJudged bool) []mfaFinding {
	usePAM := sshdFirst(eff, "usepam", "no")
	w, t := sshdWhere(cfg, cfg.source("usepam", p, acc), "UsePAM", usePAM)
	switch {
	case usePAM != "yes":
		return []mfaFinding{{Where: w, Text: t, Rule: "keyboard-interactive is the second factor only through PAM with an MFA module: UsePAM must be yes"}}
	case pam == nil:
		return []mfaFinding{{Where: w, Text: t, Rule: "the second factor goes through PAM, but there is no PAM configuration for sshd"}}
	case !pam.Compliant && !pamJudged:
		f := mfaFinding{Where: pam.Stack.File, Text: "the second factor goes through PAM service " + pam.Stack.Service,
			Rule: "the PAM auth stack of sshd must require an MFA module that cannot be skipped (control pam is not evaluated)"}
		if len(pam.Findings) > 0 {
			f.Where, f.Text = pam.Findings[0].Where, pam.Findings[0].Text
			f.Rule += ": " + pam.Findings[0].Rule
		}
		return []mfaFinding{f}
	}
	return nil
}
