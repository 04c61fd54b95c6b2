package patches

import (
	"bufio"
	"bytes"
	"context"
	"os/exec"
	"slices"
	"strings"
	"time"

	"github.com/l2agent/l2agent/internal/fsutil"
	"github.com/l2agent/l2agent/internal/textfmt"
)

// The dnf/yum backend (RHEL, Fedora, Rocky, Alma, Oracle, Amazon Linux).
//
// Every command runs with -C (cache only): the metadata is never refreshed,
// as apt's lists are not. Security updates are the packages named by the
// security advisories of `updateinfo list --security`; all updates are
// `check-update` (exit code 100 when some are pending); installed versions
// come from the rpm database; `needs-restarting -r` exits 1 when a reboot is
// needed.

func (c *patchesCheck) collectDnf(ctx context.Context, backend string) (*patchStatus, error) {
	dnf := c.dnfCommand(backend)
	key, ok := c.dnfFingerprint(ctx, dnf)
	ans, err := reuseAnswer(c, &c.dnfMemo, key, ok, dnfAnswer.clone, func() (dnfAnswer, error) {
		return c.dnfQuery(ctx, dnf)
	})
	if err != nil {
		return nil, err
	}
	st := &patchStatus{Backend: dnf, Updates: ans.Updates, SecurityKnown: true, Reboot: ans.Reboot, RebootReasons: ans.RebootReasons}
	st.ListsTime = newestMtime(
		c.rootPath("/var/cache/dnf/*/repodata/repomd.xml"),
		c.rootPath("/var/cache/libdnf5/*/repodata/repomd.xml"),
		c.rootPath("/var/cache/yum/*/*/*/repomd.xml"))
	if b, err := fsutil.ReadTail(c.rootPath("/var/log/dnf.rpm.log"), 8<<20); err == nil {
		st.LastUpgrade = parseDnfRPMLog(b)
	}
	return st, nil
}

// dnfCommand is the configured program, else dnf, or yum where only yum is
// installed.
func (c *patchesCheck) dnfCommand(backend string) string {
	if c.opts.Dnf.Command != "" {
		return c.opts.Dnf.Command
	}
	if backend == "dnf" {
		if _, err := c.lookPath("dnf"); err != nil {
			if _, err := c.lookPath("yum"); err == nil {
				return "yum"
			}
		}
	}
	return backend
}

// dnfAnswer is what the dnf, rpm and needs-restarting commands said: the
// part of a run that dnfreuse.go reuses while its inputs are unchanged.
type dnfAnswer struct {
	Updates       []pkgUpdate
	Reboot        *bool
	RebootReasons []string
}

func (a dnfAnswer) clone() dnfAnswer {
	a.Updates, a.RebootReasons = slices.Clone(a.Updates), slices.Clone(a.RebootReasons)
	if a.Reboot != nil {
		a.Reboot = new(*a.Reboot)
	}
	return a
}

// dnfQuery runs the queries: pending and security updates, installed
// versions, and whether a reboot is needed.
func (c *patchesCheck) dnfQuery(ctx context.Context, dnf string) (dnfAnswer, error) {
	updates, sec, err := c.dnfPending(ctx, dnf)
	if err != nil {
		return dnfAnswer{}, err
	}
	argv := append(c.rpmArgs(), "-qa", "--qf", `%{NAME}.%{ARCH}\t%{EPOCH}:%{VERSION}-%{RELEASE}\n`)
	installed := map[string]string{}
	if out, err := c.command(ctx, argv...); err == nil && out.Exit == 0 {
		installed = parseRpmQA(out.Stdout)
	}
	byName := map[string]int{}
	for i := range updates {
		u := &updates[i]
		u.Installed = installed[u.Name]
		byName[u.Name] = i
	}
	for name, fixed := range sec {
		if i, ok := byName[name]; ok {
			updates[i].Security = true
			updates[i].Source = fixed.advisory + ", " + updates[i].Source
			continue
		}
		// An advisory for a package check-update does not list (a newer
		// version obsoletes it): still pending.
		updates = append(updates, pkgUpdate{Name: name, Installed: installed[name], Candidate: fixed.version, Source: fixed.advisory, Security: true})
	}
	ans := dnfAnswer{Updates: updates}
	nr := c.needsRestarting(dnf)
	if out, err := c.command(ctx, nr...); err == nil && (out.Exit == 0 || out.Exit == 1) {
		ans.Reboot = new(out.Exit == 1)
		if out.Exit == 1 {
			ans.RebootReasons = []string{strings.TrimSpace(sanitizeLines(string(out.Stdout)))}
		}
	} else {
		c.env.Log().Debug("patches: needs-restarting gave no answer", "check", c.name, "err", err, "exit", out.Exit)
	}
	return ans, nil
}

// needsRestarting is the configured needs-restarting argv, else the
// program of that name, else the dnf/yum plugin.
func (c *patchesCheck) needsRestarting(dnf string) []string {
	if nr := c.opts.Dnf.NeedsRestarting; len(nr) > 0 {
		return nr
	}
	if p, err := exec.LookPath("needs-restarting"); err == nil {
		return []string{p, "-r"}
	}
	return []string{dnf, "needs-restarting", "-r"}
}

// dnfUnrestricted are the options that lift excludes (exclude= of dnf.conf
// and the .repo files, --exclude) and version locks for a query: a pending
// update dnf will not install is still pending.
var dnfUnrestricted = []string{"--disableexcludes=all", "--disableplugin=versionlock"}

// dnfPending returns the pending updates and the security fixes. Both come
// from queries with excludes and version locks lifted; an update that the
// plain check-update does not list is marked Blocked "excluded" (excluded
// or version-locked).
func (c *patchesCheck) dnfPending(ctx context.Context, dnf string) ([]pkgUpdate, map[string]dnfFix, error) {
	query := func(unrestricted bool, args ...string) ([]byte, error) {
		argv := c.dnfArgs(dnf)
		if unrestricted {
			argv = append(argv, dnfUnrestricted...)
		}
		argv = append(argv, args...)
		out, err := c.command(ctx, argv...)
		if err != nil {
			return nil, err
		}
		if out.Exit != 0 && (out.Exit != 100 || args[0] != "check-update") {
			return nil, out.ExitError(argv)
		}
		return out.Stdout, nil
	}
	out, err := query(false, "check-update")
	if err != nil {
		return nil, nil, err
	}
	installable := map[string]bool{}
	for _, u := range parseDnfCheckUpdate(out) {
		installable[u.Name] = true
	}
	if out, err = query(true, "check-update"); err != nil {
		return nil, nil, err
	}
	updates := parseDnfCheckUpdate(out)
	for i := range updates {
		if !installable[updates[i].Name] {
			updates[i].Blocked = "excluded"
		}
	}
	if out, err = query(true, "updateinfo", "list", "--security"); err != nil {
		return nil, nil, err
	}
	return updates, parseDnfUpdateinfo(out), nil
}

// sanitizeLines is sanitize for multi-line text: it keeps the newlines.
func sanitizeLines(s string) string {
	lines := strings.Split(s, "\n")
	for i, l := range lines {
		lines[i] = textfmt.Sanitize(l)
	}
	return strings.Join(lines, "\n")
}

// parseDnfCheckUpdate parses `dnf -q check-update`:
//
//	openssl-libs.x86_64          1:3.0.7-25.el9_3          baseos
//
// stopping at "Obsoleting Packages". On a narrow terminal dnf puts a long
// name alone on its line and the rest on the next one.
func parseDnfCheckUpdate(out []byte) []pkgUpdate {
	var us []pkgUpdate
	var carry string
	sc := bufio.NewScanner(bytes.NewReader(out))
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "Obsoleting Packages") || strings.HasPrefix(line, "Security:") {
			break
		}
		f := strings.Fields(line)
		if carry != "" {
			f = append([]string{carry}, f...)
			carry = ""
		}
		switch {
		case len(f) == 1 && strings.Contains(f[0], "."):
			carry = f[0]
		case len(f) == 3 && strings.Contains(f[0], "."):
			us = append(us, pkgUpdate{Name: f[0], Candidate: f[1], Source: f[2]})
		}
	}
	return us
}

// dnfFix is the version of a package that a security advisory brings.
type dnfFix struct{ version, advisory string }

// parseDnfUpdateinfo parses `dnf -q updateinfo list --security`, the dnf 4
// and yum format
//
//	RHSA-2024:1234 Important/Sec. openssl-libs-1:3.0.7-25.el9_3.x86_64
//
// and the dnf 5 one (Name Type Severity Package Issued columns), into the
// packages (name.arch) with the newest fixed version each.
func parseDnfUpdateinfo(out []byte) map[string]dnfFix {
	m := map[string]dnfFix{}
	sc := bufio.NewScanner(bytes.NewReader(out))
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		var adv, nevra, sev string
		switch {
		case len(f) >= 4 && f[1] == "security": // dnf 5
			adv, sev, nevra = f[0], f[2], f[3]
		case len(f) == 3 && (strings.HasSuffix(f[1], "/Sec.") || f[1] == "security"):
			adv, sev, nevra = f[0], strings.TrimSuffix(f[1], "/Sec."), f[2]
		default:
			continue
		}
		name, version, ok := splitNEVRA(nevra)
		if !ok {
			continue
		}
		if prev, ok := m[name]; ok && compareRPMVersions(prev.version, version) >= 0 {
			continue
		}
		m[name] = dnfFix{version: version, advisory: adv + " " + sev}
	}
	return m
}

// splitNEVRA splits name-[epoch:]version-release.arch into name.arch and
// [epoch:]version-release.
func splitNEVRA(s string) (nameArch, evr string, ok bool) {
	dot := strings.LastIndexByte(s, '.')
	if dot <= 0 {
		return "", "", false
	}
	arch, rest := s[dot+1:], s[:dot]
	rel := strings.LastIndexByte(rest, '-')
	if rel <= 0 {
		return "", "", false
	}
	ver := strings.LastIndexByte(rest[:rel], '-')
	if ver <= 0 || arch == "" {
		return "", "", false
	}
	return rest[:ver] + "." + arch, rest[ver+1:], true
}

// parseRpmQA parses `rpm -qa --qf '%{NAME}.%{ARCH}\t%{EPOCH}:%{VERSION}-%{RELEASE}\n'`
// (EPOCH is "(none)" when unset).
func parseRpmQA(out []byte) map[string]string {
	m := map[string]string{}
	for _, line := range strings.Split(string(out), "\n") {
		name, evr, ok := strings.Cut(line, "\t")
		if !ok || name == "" {
			continue
		}
		m[name] = strings.TrimPrefix(evr, "(none):")
	}
	return m
}

// compareRPMVersions orders [epoch:]version-release strings, close enough
// to rpmvercmp for choosing the newest of a package's fixes.
func compareRPMVersions(a, b string) int {
	return compareDebVersions(strings.ReplaceAll(a, "~", ""), strings.ReplaceAll(b, "~", ""))
}

// parseDnfRPMLog returns the time of the last "Upgrade:" line of
// /var/log/dnf.rpm.log:
//
//	2024-03-04T10:00:00+0000 SUBDEBUG Upgrade: openssl-libs-1:3.0.7-25.el9_3.x86_64
func parseDnfRPMLog(b []byte) time.Time {
	var last time.Time
	for _, line := range strings.Split(string(b), "\n") {
		ts, rest, ok := strings.Cut(line, " ")
		if !ok || !strings.Contains(rest, " Upgrade: ") && !strings.Contains(rest, " Upgraded: ") {
			continue
		}
		if t, err := time.Parse("2006-01-02T15:04:05-0700", ts); err == nil && t.After(last) {
			last = t
		}
	}
	return last
}
