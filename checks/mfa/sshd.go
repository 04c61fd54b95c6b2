package mfa

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/l2agent/l2agent/internal/command"
	"github.com/l2agent/l2agent/internal/textfmt"
)

const (
	// sshdMaxDepth is sshd's SERVCONF_MAX_DEPTH for nested Include.
	sshdMaxDepth = 16
	// sshdSysconfDir is where sshd resolves relative Include paths (SSHDIR).
	sshdSysconfDir = "/etc/ssh"
	// sshdMaxFiles bounds the files one config reads through Include.
	sshdMaxFiles = 256
	// sshdMaxProbes bounds the sshd -T -C runs of one check run.
	sshdMaxProbes = 64
	// mfaMaxOutput bounds what is kept of a command's stdout and stderr.
	mfaMaxOutput = 1 << 20
)

// sshdAliases map keywords to the option they set, lowercased.
var sshdAliases = map[string]string{
	"challengeresponseauthentication": "kbdinteractiveauthentication",
	"dsaauthentication":               "pubkeyauthentication",
}

// sshdMethodOption is the option that enables each authentication method.
var sshdMethodOption = map[string]string{
	"publickey":            "pubkeyauthentication",
	"password":             "passwordauthentication",
	"keyboard-interactive": "kbdinteractiveauthentication",
	"hostbased":            "hostbasedauthentication",
	"gssapi-with-mic":      "gssapiauthentication",
}

// parseSSHDT parses the output of `sshd -T`: one "keyword value" per line,
// keywords lowercase; keywords that may repeat (hostkey, listenaddress, ...)
// keep every value in order.
func parseSSHDT(r io.Reader) (map[string][]string, error) {
	eff := map[string][]string{}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64*1024), 1<<20)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimRight(sc.Text(), " \t\r")
		if strings.TrimSpace(line) == "" {
			continue
		}
		kw, val, _ := strings.Cut(line, " ")
		if kw == "" {
			return nil, fmt.Errorf("line %d: no keyword: %q", n, textfmt.Truncate(line, 100))
		}
		for _, c := range kw {
			if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9') {
				return nil, fmt.Errorf("line %d: not a keyword and value: %q", n, textfmt.Truncate(line, 100))
			}
		}
		eff[kw] = append(eff[kw], strings.TrimSpace(val))
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	if len(eff) == 0 {
		return nil, errors.New("no configuration printed")
	}
	return eff, nil
}

// sshdDirective is one keyword line of an sshd_config file.
type sshdDirective struct {
	File    string
	Line    int
	Keyword string // lowercase, aliases resolved
	Args    []string
	Text    string     // as written, trimmed
	Match   *sshdMatch // the Match block it is in; nil for the global section
}

// sshdMatch is one Match line.
type sshdMatch struct {
	File     string
	Line     int
	Text     string
	Criteria []sshdCriterion
}

func (m *sshdMatch) where() string { return fmt.Sprintf("%s:%d", m.File, m.Line) }

type sshdCriterion struct {
	Name     string // lowercase: all, user, group, host, address, localaddress, localport, rdomain
	Patterns string // comma-separated, with ! negation
}

// sshdConfig is an sshd_config with its includes, in the order sshd reads it.
type sshdConfig struct {
	Main       string
	Directives []sshdDirective
	Matches    []*sshdMatch
	Notes      []string
	files      int
}

// sshdConfigReader reads an sshd_config and its includes as sshd does.
type sshdConfigReader struct {
	open func(name string) (io.ReadCloser, error)
	glob func(pattern string) ([]string, error)
}

func (r sshdConfigReader) read(path string) (*sshdConfig, error) {
	if r.open == nil {
		r.open = func(name string) (io.ReadCloser, error) { return os.Open(name) }
	}
	if r.glob == nil {
		r.glob = filepath.Glob
	}
	c := &sshdConfig{Main: path}
	if err := r.file(c, path, nil, 0); err != nil {
		return nil, err
	}
	return c, nil
}

// file reads one file; match is the Match block in force where it is
// included. A Match inside it ends at its end, as in sshd.
func (r sshdConfigReader) file(c *sshdConfig, path string, match *sshdMatch, depth int) error {
	if c.files++; c.files > sshdMaxFiles {
		return fmt.Errorf("read sshd config %s: more than %d files included", path, sshdMaxFiles)
	}
	f, err := r.open(path)
	if err != nil {
		return fmt.Errorf("read sshd config: %w", err)
	}
	defer f.Close()
	return r.parse(c, path, f, match, depth)
}

func (r sshdConfigReader) parse(c *sshdConfig, path string, f io.Reader, match *sshdMatch, depth int) error {
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 0, 64*1024), 1<<20)
	for n := 1; sc.Scan(); n++ {
		kw, args, ok := splitSSHDLine(sc.Text())
		if !ok {
			continue
		}
		text := strings.TrimSpace(sc.Text())
		switch kw {
		case "match":
			m := &sshdMatch{File: path, Line: n, Text: text}
			for i := 0; i < len(args); i++ {
				name, val, hasEq := strings.Cut(args[i], "=")
				name = strings.ToLower(name)
				if name == "all" {
					m.Criteria = append(m.Criteria, sshdCriterion{Name: "all"})
					continue
				}
				if !hasEq {
					if i+1 >= len(args) {
						m.Criteria = append(m.Criteria, sshdCriterion{Name: name})
						break
					}
					i++
					val = args[i]
				}
				m.Criteria = append(m.Criteria, sshdCriterion{Name: name, Patterns: val})
			}
			c.Matches = append(c.Matches, m)
			match = m
		case "include":
			d := sshdDirective{File: path, Line: n, Keyword: kw, Args: args, Text: text, Match: match}
			if depth+1 > sshdMaxDepth {
				c.Notes = append(c.Notes, fmt.Sprintf("%s:%d: Include nested deeper than %d", path, n, sshdMaxDepth))
				continue
			}
			for _, pat := range args {
				if !filepath.IsAbs(pat) && !strings.HasPrefix(pat, "~") {
					pat = filepath.Join(sshdSysconfDir, pat)
				}
				files, err := r.glob(pat)
				if err != nil {
					c.Notes = append(c.Notes, fmt.Sprintf("%s:%d: Include %s: %v", path, n, pat, err))
					continue
				}
				slices.Sort(files)
				for _, inc := range files {
					if err := r.file(c, inc, match, depth+1); err != nil {
						c.Notes = append(c.Notes, fmt.Sprintf("%s:%d: %v", path, n, err))
					}
				}
			}
			c.Directives = append(c.Directives, d)
		default:
			if a, ok := sshdAliases[kw]; ok {
				kw = a
			}
			c.Directives = append(c.Directives, sshdDirective{File: path, Line: n, Keyword: kw, Args: args, Text: text, Match: match})
		}
	}
	return sc.Err()
}

// splitSSHDLine splits a config line as sshd does: the keyword ends at a
// blank or one '=', arguments are split on blanks with "double" or 'single'
// quotes and backslash escapes, and a word starting with '#' ends the line.
func splitSSHDLine(line string) (kw string, args []string, ok bool) {
	s := strings.TrimLeft(line, " \t\f\r")
	if s == "" || s[0] == '#' {
		return "", nil, false
	}
	end := strings.IndexAny(s, " \t\f\r=")
	if end < 0 {
		return strings.ToLower(s), nil, true
	}
	kw = strings.ToLower(s[:end])
	s = strings.TrimLeft(s[end:], " \t\f\r")
	if strings.HasPrefix(s, "=") {
		s = strings.TrimLeft(s[1:], " \t\f\r")
	}
	for s != "" {
		if s[0] == '#' {
			break
		}
		var b strings.Builder
		var quote byte
		i := 0
		for ; i < len(s); i++ {
			ch := s[i]
			if quote == 0 && (ch == ' ' || ch == '\t' || ch == '\f' || ch == '\r') {
				break
			}
			switch {
			case ch == '\\' && i+1 < len(s) && quote != '\'':
				i++
				b.WriteByte(s[i])
			case quote == 0 && (ch == '"' || ch == '\''):
				quote = ch
			case quote != 0 && ch == quote:
				quote = 0
			default:
				b.WriteByte(ch)
			}
		}
		args = append(args, b.String())
		s = strings.TrimLeft(s[i:], " \t\f\r")
	}
	return kw, args, true
}

// sshdProbe is a connection described to sshd -T -C; empty fields are left out.
type sshdProbe struct {
	User, Host, Addr, LAddr, LPort, RDomain string
	Why                                     string // what the probe is for, e.g. "Match Group admins at f:3"
}

// spec is the -C argument; "" for none.
func (p sshdProbe) spec() string {
	var parts []string
	for _, f := range []struct{ k, v string }{{"user", p.User}, {"host", p.Host}, {"addr", p.Addr}, {"laddr", p.LAddr}, {"lport", p.LPort}, {"rdomain", p.RDomain}} {
		if f.v != "" {
			parts = append(parts, f.k+"="+f.v)
		}
	}
	return strings.Join(parts, ",")
}

func (p sshdProbe) String() string {
	if s := p.spec(); s != "" {
		return strings.ReplaceAll(s, ",", " ")
	}
	return "any connection that matches no Match block"
}

// sshdAccounts answers the group questions of Match Group.
type sshdAccounts interface {
	groupsOf(user string) []string
	membersOf(group string) []string
	groupNames() []string
}

// active reports whether Match block m applies to probe p, as sshd's
// match_cfg_line does in test mode: a criterion on a field the probe does not
// give does not match.
func (m *sshdMatch) active(p sshdProbe, acc sshdAccounts) bool {
	if len(m.Criteria) == 0 {
		return false
	}
	for _, c := range m.Criteria {
		ok := false
		switch c.Name {
		case "all":
			ok = true
		case "user":
			ok = p.User != "" && sshdMatchList(p.User, c.Patterns) == 1
		case "group":
			if p.User != "" && acc != nil {
				ok = sshdMatchGroups(acc.groupsOf(p.User), c.Patterns)
			}
		case "host":
			ok = p.Host != "" && sshdMatchList(strings.ToLower(p.Host), strings.ToLower(c.Patterns)) == 1
		case "address":
			ok = p.Addr != "" && sshdMatchAddrList(p.Addr, c.Patterns) == 1
		case "localaddress":
			ok = p.LAddr != "" && sshdMatchAddrList(p.LAddr, c.Patterns) == 1
		case "localport":
			ok = p.LPort != "" && p.LPort == c.Patterns
		case "rdomain":
			ok = p.RDomain != "" && sshdMatchList(p.RDomain, c.Patterns) == 1
		}
		if !ok {
			return false
		}
	}
	return true
}

// sshdMatchList is OpenSSH's match_pattern_list: 1 when a pattern matches,
// -1 when a negated one does (which wins), 0 otherwise.
func sshdMatchList(s, list string) int {
	got := 0
	for _, pat := range strings.Split(list, ",") {
		neg := strings.HasPrefix(pat, "!")
		pat = strings.TrimPrefix(pat, "!")
		if sshdWildcard(s, pat) {
			if neg {
				return -1
			}
			got = 1
		}
	}
	return got
}

func sshdMatchGroups(groups []string, list string) bool {
	found := false
	for _, g := range groups {
		switch sshdMatchList(g, list) {
		case -1:
			return false
		case 1:
			found = true
		}
	}
	return found
}

// sshdMatchAddrList is OpenSSH's addr_match_list: entries are addresses,
// CIDR prefixes or wildcard patterns, ! negates.
func sshdMatchAddrList(addr, list string) int {
	a, aerr := netip.ParseAddr(addr)
	got := 0
	for _, pat := range strings.Split(list, ",") {
		neg := strings.HasPrefix(pat, "!")
		pat = strings.TrimPrefix(pat, "!")
		hit := false
		if pfx, err := netip.ParsePrefix(pat); err == nil {
			hit = aerr == nil && pfx.Masked().Contains(a.Unmap())
		} else if pa, err := netip.ParseAddr(pat); err == nil {
			hit = aerr == nil && pa.Unmap() == a.Unmap()
		} else {
			hit = sshdWildcard(addr, pat)
		}
		if hit {
			if neg {
				return -1
			}
			got = 1
		}
	}
	return got
}

// sshdWildcard matches s against a pattern with * and ?, as match_pattern.
func sshdWildcard(s, pat string) bool {
	for {
		if pat == "" {
			return s == ""
		}
		switch pat[0] {
		case '*':
			pat = pat[1:]
			if pat == "" {
				return true
			}
			for i := 0; i <= len(s); i++ {
				if sshdWildcard(s[i:], pat) {
					return true
				}
			}
			return false
		case '?':
			if s == "" {
				return false
			}
		default:
			if s == "" || s[0] != pat[0] {
				return false
			}
		}
		s, pat = s[1:], pat[1:]
	}
}

// source returns the directive that sets keyword for probe p: the first one
// in a Match block that applies, else the first global one; nil for the
// compiled-in default.
func (c *sshdConfig) source(keyword string, p sshdProbe, acc sshdAccounts) *sshdDirective {
	for i := range c.Directives {
		d := &c.Directives[i]
		if d.Keyword == keyword && d.Match != nil && d.Match.active(p, acc) {
			return d
		}
	}
	for i := range c.Directives {
		if d := &c.Directives[i]; d.Keyword == keyword && d.Match == nil {
			return d
		}
	}
	return nil
}

// probes returns the connections to evaluate besides the plain sshd -T: each
// user as a connection from probeAddr, and for every Match block a
// connection that satisfies it.
func (c *sshdConfig) probes(users []string, probeAddr string, acc sshdAccounts) []sshdProbe {
	var ps sshdProbeSet
	for _, u := range users {
		if !strings.ContainsAny(u, ",=") {
			ps.add(sshdProbe{User: u, Host: probeAddr, Addr: probeAddr, Why: "user " + u})
		}
	}
	for _, m := range c.Matches {
		base, userCrit, ok := c.matchProbe(m, probeAddr)
		if !ok {
			continue
		}
		ps.addExcluded(m, users)
		who := users
		if userCrit {
			who = sshdMatchUsers(m, users, acc)
			if len(who) > 1 {
				who = who[:1] // one satisfying user shows the block
			}
		}
		if len(who) == 0 {
			ps.add(base) // no user: a User or Group block cannot match, others can
			continue
		}
		for _, u := range who {
			p := base
			p.User = u
			ps.add(p)
		}
	}
	return ps.probes
}

// sshdProbeSet collects probes, each connection once.
type sshdProbeSet struct {
	probes []sshdProbe
	seen   map[string]bool
}

// add adds p unless it was added before or cannot be given to sshd -T -C.
func (ps *sshdProbeSet) add(p sshdProbe) {
	if ps.seen == nil {
		ps.seen = map[string]bool{}
	}
	if k := p.spec(); k != "" && !ps.seen[k] && !strings.ContainsAny(k, " \t") {
		ps.seen[k] = true
		ps.probes = append(ps.probes, p)
	}
}

// addExcluded adds connections from the addresses the block m leaves out
// (Address *,!10.0.0.0/8): they get what the other blocks or the global
// section say, so they are probed too.
func (ps *sshdProbeSet) addExcluded(m *sshdMatch, users []string) {
	for _, cr := range m.Criteria {
		if cr.Name != "address" {
			continue
		}
		for _, pat := range strings.Split(cr.Patterns, ",") {
			neg, ok := strings.CutPrefix(pat, "!")
			if !ok {
				continue
			}
			a := sshdSynthAddr(neg, "")
			for _, u := range users {
				ps.add(sshdProbe{User: u, Host: a, Addr: a, Why: "excluded by " + m.Text + " at " + m.where()})
			}
			if len(users) == 0 {
				ps.add(sshdProbe{Host: a, Addr: a})
			}
		}
	}
}

// matchProbe returns a connection that satisfies the criteria of m other
// than User and Group, and whether m has such criteria (userCrit). ok is
// false, with a note in c.Notes, when m has a criterion sshd -T -C cannot
// be given.
func (c *sshdConfig) matchProbe(m *sshdMatch, probeAddr string) (base sshdProbe, userCrit, ok bool) {
	base = sshdProbe{Why: m.Text + " at " + m.where()}
	ok = true
	for _, cr := range m.Criteria {
		switch cr.Name {
		case "user", "group":
			userCrit = true
		case "address":
			base.Addr = sshdSynthAddr(cr.Patterns, probeAddr)
		case "localaddress":
			base.LAddr = sshdSynthAddr(cr.Patterns, "127.0.0.1")
		case "localport":
			base.LPort = cr.Patterns
		case "host":
			base.Host = sshdSynthName(cr.Patterns, "probe.invalid")
		case "rdomain":
			base.RDomain = sshdSynthName(cr.Patterns, "probe")
		case "all":
		default:
			ok = false // a criterion sshd -T -C cannot be given
			c.Notes = append(c.Notes, fmt.Sprintf("%s: criterion %q cannot be probed with sshd -T -C; block not checked", m.where(), cr.Name))
		}
	}
	if base.Addr == "" {
		base.Addr = probeAddr
	}
	if base.Host == "" {
		base.Host = base.Addr
	}
	return base, userCrit, ok
}

// sshdMatchUsers returns users (known ones first) that satisfy the User and
// Group criteria of m.
func sshdMatchUsers(m *sshdMatch, known []string, acc sshdAccounts) []string {
	cands := slices.Clone(known)
	for _, cr := range m.Criteria {
		switch cr.Name {
		case "user":
			for _, pat := range strings.Split(cr.Patterns, ",") {
				if !strings.HasPrefix(pat, "!") {
					cands = append(cands, sshdSynthName(pat, "x"))
				}
			}
		case "group":
			if acc == nil {
				continue
			}
			for _, g := range acc.groupNames() {
				if sshdMatchList(g, cr.Patterns) == 1 {
					cands = append(cands, acc.membersOf(g)...)
				}
			}
		}
	}
	var out []string
	for _, u := range cands {
		p := sshdProbe{User: u}
		all := true
		for _, cr := range m.Criteria {
			if cr.Name != "user" && cr.Name != "group" {
				continue
			}
			one := sshdMatch{Criteria: []sshdCriterion{cr}}
			if !one.active(p, acc) {
				all = false
				break
			}
		}
		if all && !slices.Contains(out, u) {
			out = append(out, u)
		}
	}
	return out
}

// sshdSynthAddr returns an address matching the first positive entry of an
// address list: the first host of a prefix, a wildcard pattern with its
// wildcards filled in; def when the list has only negations.
func sshdSynthAddr(list, def string) string {
	for _, pat := range strings.Split(list, ",") {
		if strings.HasPrefix(pat, "!") || pat == "" {
			continue
		}
		if pfx, err := netip.ParsePrefix(pat); err == nil {
			a := pfx.Masked().Addr()
			if pfx.Bits() < a.BitLen() {
				a = a.Next()
			}
			if sshdMatchAddrList(a.String(), list) == 1 {
				return a.String()
			}
			continue
		}
		a := strings.NewReplacer("*", "1", "?", "1").Replace(pat)
		if _, err := netip.ParseAddr(a); err == nil && sshdMatchAddrList(a, list) == 1 {
			return a
		}
	}
	for _, a := range []string{def, "198.51.100.1", "2001:db8::1"} {
		if sshdMatchAddrList(a, list) == 1 {
			return a
		}
	}
	return def
}

// sshdSynthName fills the wildcards of the first positive pattern.
func sshdSynthName(list, def string) string {
	for _, pat := range strings.Split(list, ",") {
		if pat != "" && !strings.HasPrefix(pat, "!") {
			return strings.NewReplacer("*", "x", "?", "x").Replace(pat)
		}
	}
	return def
}

// mfaCommand runs argv without a shell, with LC_ALL=C, bounded by ctx: on
// cancellation its whole process group is killed. A non-zero exit is an error
// carrying stderr. With root other than "" and "/" it runs chrooted into root.
func mfaCommand(ctx context.Context, root string, argv []string) ([]byte, error) {
	stdout := &command.Buffer{Max: mfaMaxOutput}
	stderr := &command.Buffer{Max: mfaMaxOutput}
	res, err := command.Run(ctx, argv, command.Options{
		Root:   root,
		Env:    []string{"LC_ALL=C", "PATH=/usr/sbin:/usr/bin:/sbin:/bin"},
		Stdout: stdout, Stderr: stderr,
	})
	what := strings.Join(argv, " ")
	switch {
	case ctx.Err() != nil:
		return nil, fmt.Errorf("%s: %w", what, context.Cause(ctx))
	case err == nil && res.Exit != 0:
		err = fmt.Errorf("exit status %d", res.Exit)
	}
	if err != nil {
		msg := strings.TrimSpace(stderr.String())
		if msg == "" {
			return nil, fmt.Errorf("%s: %w", what, err)
		}
		return nil, fmt.Errorf("%s: %w: %s", what, err, textfmt.Truncate(msg, 1024))
	}
	return stdout.Bytes(), nil
}
