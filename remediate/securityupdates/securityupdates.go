// Package securityupdates is the remediation action security_updates: it
// applies pending security updates, inside a maintenance window, and never
// reboots.
package securityupdates

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"

	"github.com/l2agent/l2agent/remediate"
	"github.com/l2agent/l2agent/remediate/internal/pkgmgr"
	"github.com/l2agent/l2agent/remediate/internal/space"
)

// securityUpdates applies pending security updates (apt: unattended-upgrade,
// dnf upgrade --security -y, zypper patch --category security). It never
// reboots: it reports whether /var/run/reboot-required exists afterwards,
// and refuses to run unattended-upgrade when its Automatic-Reboot is on.
// The policy lets it run only inside its maintenance window.
type securityUpdates struct {
	manager string
	command string
	root    string
}

type updatePlan struct {
	argv    []string
	manager string
}

func (s *securityUpdates) Name() string { return "security_updates" }

func (s *securityUpdates) Plan(ctx context.Context, a remediate.Alert) (remediate.Plan, error) {
	m, err := pkgmgr.Find(s.manager, s.root)
	if err != nil {
		return remediate.Plan{}, err
	}
	if m.Security == nil {
		return remediate.Plan{}, fmt.Errorf("%s has no security-only updates", m.Name)
	}
	cmd := m.Command
	if m.SecCmd != "" {
		cmd = m.SecCmd
	}
	if s.command != "" {
		cmd = s.command
	}
	if m.Name == "apt" {
		if f := autoReboot(s.root); f != "" {
			return remediate.Plan{}, fmt.Errorf("refusing: %s enables Unattended-Upgrade::Automatic-Reboot and l2agent never reboots", f)
		}
	}
	argv := append([]string{cmd}, m.Security...)
	return remediate.Plan{Action: s.Name(), Text: "run " + remediate.ArgvString(argv) + " (installs security updates; never reboots)",
		Expect: "installed packages upgraded (" + packageDB(m.Name) + ")", Data: updatePlan{argv: argv, manager: m.Name}}, nil
}

// packageDB is the directory of the database the installed versions are
// read from, which an upgrade writes.
func packageDB(manager string) string {
	if manager == "apt" {
		return "/var/lib/dpkg"
	}
	return "/var/lib/rpm"
}

func (s *securityUpdates) Apply(ctx context.Context, p remediate.Plan) (remediate.Outcome, error) {
	up, ok := p.Data.(updatePlan)
	if !ok {
		return remediate.Outcome{}, errors.New("security_updates: not a security_updates plan")
	}
	before := s.installed(ctx, up.manager)
	r, err := remediate.RunCommand(ctx, up.argv...)
	after := s.installed(ctx, up.manager)
	changes := diffPackages(before, after)
	text := fmt.Sprintf("%d packages changed", len(changes))
	if len(changes) == 0 {
		text = remediate.Exited0(up.argv) + ", no package changed"
	}
	o, err := remediate.CommandOutcome(r, err, text)
	o.Effect, o.NoEffect = s.effect(up.manager, changes, len(after))
	if _, serr := os.Stat(pkgmgr.JoinRoot(s.root, "/var/run/reboot-required")); serr == nil {
		o.RebootRequired = true
		o.Result += "; a reboot is required (not done)"
	}
	if len(changes) > 0 {
		o.Output = remediate.Excerpt("changed: "+strings.Join(changes, ", ")+"\n"+o.Output, remediate.MaxOutput)
	}
	return o, err
}

// effect is what the versions before and after measured: the packages
// changed, or why none did.
func (s *securityUpdates) effect(manager string, changes []string, installed int) (effect, noEffect string) {
	db := packageDB(manager)
	switch {
	case len(changes) > 0:
		return fmt.Sprintf("%d packages upgraded: %s", len(changes), listed(changes, 10)), ""
	case installed == 0:
		return "", fmt.Sprintf("cannot read the installed packages (%s)", db)
	case space.ReadOnly(pkgmgr.JoinRoot(s.root, db)):
		return "", fmt.Sprintf("read-only file system (%s)", db)
	}
	return "", fmt.Sprintf("nothing upgraded (no installed package changed; %d read from %s)", installed, db)
}

// listed joins the first n of ss, with how many more.
func listed(ss []string, n int) string {
	if len(ss) <= n {
		return strings.Join(ss, ", ")
	}
	return strings.Join(ss[:n], ", ") + fmt.Sprintf(" and %d more", len(ss)-n)
}

// installed lists name → version of the installed packages; empty when the
// database cannot be read.
func (s *securityUpdates) installed(ctx context.Context, manager string) map[string]string {
	out := map[string]string{}
	switch manager {
	case "apt":
		f, err := os.Open(pkgmgr.JoinRoot(s.root, "/var/lib/dpkg/status"))
		if err != nil {
			return out
		}
		defer f.Close()
		parseDpkgStatus(f, out)
	case "dnf", "zypper":
		r, err := remediate.RunCommand(ctx, "/usr/bin/rpm", "-qa", "--qf", "%{NAME}.%{ARCH} %{EPOCHNUM}:%{VERSION}-%{RELEASE}\n")
		if err != nil {
			return out
		}
		for line := range strings.SplitSeq(r.Output, "\n") {
			if n, v, ok := strings.Cut(line, " "); ok {
				out[n] = v
			}
		}
	}
	return out
}

func parseDpkgStatus(f *os.File, out map[string]string) {
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	var pkg, arch, ver string
	installed := false
	flush := func() {
		if pkg != "" && installed {
			out[pkg+":"+arch] = ver
		}
		pkg, arch, ver, installed = "", "", "", false
	}
	for sc.Scan() {
		line := sc.Text()
		switch {
		case line == "":
			flush()
		case strings.HasPrefix(line, "Package: "):
			pkg = strings.TrimPrefix(line, "Package: ")
		case strings.HasPrefix(line, "Architecture: "):
			arch = strings.TrimPrefix(line, "Architecture: ")
		case strings.HasPrefix(line, "Version: "):
			ver = strings.TrimPrefix(line, "Version: ")
		case strings.HasPrefix(line, "Status: "):
			installed = strings.HasSuffix(line, " installed")
		}
	}
	flush()
}

// diffPackages lists "name old → new" for every change.
func diffPackages(before, after map[string]string) []string {
	var out []string
	for n, v := range after {
		switch old, ok := before[n]; {
		case !ok:
			out = append(out, fmt.Sprintf("%s (new) %s", n, v))
		case old != v:
			out = append(out, fmt.Sprintf("%s %s → %s", n, old, v))
		}
	}
	for n, v := range before {
		if _, ok := after[n]; !ok {
			out = append(out, fmt.Sprintf("%s %s (removed)", n, v))
		}
	}
	slices.Sort(out)
	return out
}

var autoRebootRe = regexp.MustCompile(`(?i)Unattended-Upgrade::Automatic-Reboot\s+"(true|1|yes|on)"`)

// autoReboot returns the apt config file that turns on automatic reboots
// of unattended-upgrade, if any.
func autoReboot(root string) string {
	files, _ := filepath.Glob(pkgmgr.JoinRoot(root, "/etc/apt/apt.conf.d/*"))
	files = append([]string{pkgmgr.JoinRoot(root, "/etc/apt/apt.conf")}, files...)
	found := ""
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		for line := range strings.SplitSeq(string(b), "\n") {
			line = strings.TrimSpace(line)
			if strings.HasPrefix(line, "//") || strings.HasPrefix(line, "#") {
				continue
			}
			if autoRebootRe.MatchString(line) {
				found = f
			} else if strings.Contains(line, "Unattended-Upgrade::Automatic-Reboot ") {
				found = "" // a later file turns it off
			}
		}
	}
	return found
}
