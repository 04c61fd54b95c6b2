package patches

import (
	"bytes"
	"context"
	"encoding/xml"
	"fmt"
	"os"
	"path"
	"slices"
	"strings"
	"time"

	"github.com/l2agent/l2agent/internal/fsutil"
	"github.com/l2agent/l2agent/internal/textfmt"
)

// The zypper backend (SLES, openSUSE).
//
// Commands run with --no-refresh (the repositories are never refreshed)
// and --xmlout. Security updates are the needed patches of category
// security from `list-patches --category security` (zypper 1.14 also lists
// other categories there, so the category is checked); all updates are the
// packages of `list-updates`; held are the locks. zypper creates
// /run/reboot-needed when an installed update needs a reboot.

// zypperExitOK are zypper's exit codes for a successful query: 0, and the
// informational 100 (updates needed), 101 (security updates needed), 102
// (reboot needed), 103 (restart of zypper needed).
func zypperExitOK(code int) bool { return code == 0 || code >= 100 && code <= 103 }

func (c *patchesCheck) collectZypper(ctx context.Context) (*patchStatus, error) {
	key, ok := c.zypperFingerprint(ctx)
	ans, err := reuseAnswer(c, &c.zypperMemo, key, ok, zypperAnswer.clone, func() (zypperAnswer, error) {
		return c.zypperQuery(ctx)
	})
	if err != nil {
		return nil, err
	}
	st := &patchStatus{Backend: "zypper", SecurityKnown: true, BlockedSecurityUnknown: true, Updates: ans.Updates}
	if ans.Held != nil {
		st.Held = new(*ans.Held)
	}
	flag := c.rootPath(c.opts.Zypper.RebootNeededFile)
	_, err = os.Stat(flag)
	st.Reboot = new(err == nil)
	if err == nil {
		st.RebootReasons = []string{flag + " exists"}
	}
	st.ListsTime = newestMtime(c.rootPath("/var/cache/zypp/raw/*/repodata/repomd.xml"))
	if b, err := fsutil.ReadTail(c.rootPath("/var/log/zypp/history"), 8<<20); err == nil {
		st.LastUpgrade = parseZyppHistory(b, time.Local)
	}
	return st, nil
}

// zypperAnswer is what zypper's queries said: the part of a run that
// zypperreuse.go reuses while its inputs are unchanged.
type zypperAnswer struct {
	Updates []pkgUpdate
	Held    *int // nil when the locks could not be listed
}

func (a zypperAnswer) clone() zypperAnswer {
	a.Updates = slices.Clone(a.Updates)
	if a.Held != nil {
		a.Held = new(*a.Held)
	}
	return a
}

// zypperArgs is the start of every zypper query.
func (c *patchesCheck) zypperArgs() []string {
	argv := []string{c.opts.Zypper.Command, "--non-interactive", "--no-refresh", "--xmlout"}
	if r := c.foreignRoot(); r != "" {
		argv = append(argv, "--root="+r)
	}
	return argv
}

// zypperQuery runs the queries: installable and all package updates,
// security patches, locks.
func (c *patchesCheck) zypperQuery(ctx context.Context) (zypperAnswer, error) {
	base := c.zypperArgs()
	query := func(args ...string) (zypperStream, error) {
		argv := append(slices.Clone(base), args...)
		out, err := c.command(ctx, argv...)
		if err != nil {
			return zypperStream{}, err
		}
		if !zypperExitOK(out.Exit) {
			return zypperStream{}, out.ExitError(argv)
		}
		s, err := parseZypperXML(out.Stdout)
		if err != nil {
			return s, fmt.Errorf("%s: %w", strings.Join(argv, " "), err)
		}
		return s, nil
	}
	pkgs, err := query("list-updates")
	if err != nil {
		return zypperAnswer{}, err
	}
	patches, err := query("list-patches", "--category", "security")
	if err != nil {
		return zypperAnswer{}, err
	}
	// list-updates hides a locked package's update; --all lists every
	// newer version, installable or not.
	all, err := query("list-updates", "--all")
	if err != nil {
		return zypperAnswer{}, err
	}
	var ans zypperAnswer
	var locks []string
	if lk, err := query("locks"); err == nil && lk.Locks != nil {
		for _, l := range lk.Locks.Lock {
			locks = append(locks, l.Name)
		}
		ans.Held = new(len(locks))
	}
	ans.Updates = zypperPackageUpdates(pkgs.Updates, all.Updates, locks)
	for _, p := range patches.Updates {
		if p.Kind == "patch" && p.Category == "security" && (p.Status == "" || p.Status == "needed") {
			src := p.Severity
			if p.Summary != "" {
				src += ": " + p.Summary
			}
			ans.Updates = append(ans.Updates, pkgUpdate{Name: p.Name, Source: strings.TrimPrefix(src, ": "), Security: true, Patch: true})
		}
	}
	return ans, nil
}

// zypperPackageUpdates returns the package updates of list-updates and,
// marked Blocked, those only list-updates --all has: "locked" when a lock
// (a name or a glob) matches the package, else "kept back".
func zypperPackageUpdates(installable, all []zypperUpdate, locks []string) []pkgUpdate {
	var us []pkgUpdate
	seen := map[string]bool{}
	for i, list := range [][]zypperUpdate{installable, all} {
		for _, u := range list {
			name := u.Name + "." + u.Arch
			if u.Kind != "package" || seen[name] {
				continue
			}
			seen[name] = true
			p := pkgUpdate{Name: name, Installed: u.EditionOld, Candidate: u.Edition, Source: u.Source.Alias}
			if i == 1 {
				p.Blocked = "kept back"
				if slices.ContainsFunc(locks, func(l string) bool { ok, _ := path.Match(l, u.Name); return ok || l == u.Name }) {
					p.Blocked = "locked"
				}
			}
			us = append(us, p)
		}
	}
	return us
}

// zypperStream is the part of zypper's --xmlout output the check reads.
type zypperStream struct {
	Updates []zypperUpdate `xml:"update-status>update-list>update"`
	Locks   *struct {
		Lock []struct {
			Name string `xml:"name"`
		} `xml:"lock"`
	} `xml:"locks"`
	Messages []struct {
		Type string `xml:"type,attr"`
		Text string `xml:",chardata"`
	} `xml:"message"`
}

// zypperUpdate is one <update> of list-updates or list-patches:
//
//	<update kind="patch" name="SUSE-2024-1234" edition="1" arch="noarch" status="needed"
//	  category="security" severity="important" ...><summary>…</summary>…</update>
//	<update kind="package" name="openssl-3" edition="3.0.8-150500.5.20.1" arch="x86_64"
//	  edition-old="3.0.8-150500.5.17.1">…</update>
type zypperUpdate struct {
	Kind       string `xml:"kind,attr"`
	Name       string `xml:"name,attr"`
	Edition    string `xml:"edition,attr"`
	EditionOld string `xml:"edition-old,attr"`
	Arch       string `xml:"arch,attr"`
	Status     string `xml:"status,attr"`
	Category   string `xml:"category,attr"`
	Severity   string `xml:"severity,attr"`
	Summary    string `xml:"summary"`
	Source     struct {
		Alias string `xml:"alias,attr"`
	} `xml:"source"`
}

// parseZypperXML decodes zypper --xmlout output; an error message in it
// is returned as an error.
func parseZypperXML(b []byte) (zypperStream, error) {
	var s zypperStream
	d := xml.NewDecoder(bytes.NewReader(b))
	d.Strict = false
	if err := d.Decode(&s); err != nil {
		return s, fmt.Errorf("zypper XML: %w", err)
	}
	for _, m := range s.Messages {
		if m.Type == "error" {
			return s, fmt.Errorf("zypper: %s", textfmt.Sanitize(strings.TrimSpace(m.Text)))
		}
	}
	return s, nil
}

// parseZyppHistory returns the time of the last install in
// /var/log/zypp/history, whose lines are
//
//	2024-03-04 10:00:00|install|openssl-3|3.0.8-150500.5.20.1|x86_64|root@host|repo|sha|
func parseZyppHistory(b []byte, loc *time.Location) time.Time {
	var last time.Time
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Split(line, "|")
		if len(f) < 3 || strings.TrimSpace(f[1]) != "install" {
			continue
		}
		if t, err := time.ParseInLocation("2006-01-02 15:04:05", f[0], loc); err == nil && t.After(last) {
			last = t
		}
	}
	return last
}
