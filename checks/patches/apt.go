package patches

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/l2agent/l2agent/internal/fsutil"
)

// The apt backend (Debian, Ubuntu).
//
// Pending updates come from `apt-get -s dist-upgrade` (or upgrade): apt's
// own resolver decides what an upgrade would install, so held packages,
// pins and phased updates count exactly as apt would apply them, and each
// "Inst" line names the installed version, the candidate and the releases
// it comes from (Label:Version/Archive), which tells security updates
// apart. The simulation runs with Debug::NoLocking=1 (it never takes or
// waits for the dpkg lock) and with the binary caches disabled (it writes
// nothing). `apt-cache policy` would need one call per package to say the
// same. The lists are never refreshed: that is apt-get update's job.
//
// While another process holds the dpkg lock (an install is running) the
// database is in flux: the run fails, so the alerts become unknown.

// aptPaths are the files apt uses, as apt-config resolves them with the
// configured options.
type aptPaths struct {
	Status, Lists, State, History string
	// Config: apt's configuration, which the simulation reads: Dir::Etc,
	// the sources, the preferences, apt.conf and apt.conf.d (aptreuse.go).
	Config            []string
	UnattendedUpgrade string // APT::Periodic::Unattended-Upgrade
}

// aptArgs returns the -o arguments every apt command gets. With a rootfs
// other than / and no Dir option of its own, apt reads the host through it,
// unless apt runs chrooted into the rootfs (paths.chroot): then it is the
// host's apt with the host's configuration, and needs no Dir.
func (c *patchesCheck) aptArgs() []string {
	opts := c.opts.Apt.Options
	if c.env.Paths.Rootfs != "/" && c.env.CommandRoot() == "" && !slices.ContainsFunc(opts, func(o string) bool { return strings.HasPrefix(o, "Dir=") }) {
		opts = append([]string{"Dir=" + c.env.Paths.Rootfs}, opts...)
	}
	args := make([]string, 0, 2*len(opts))
	for _, o := range opts {
		args = append(args, "-o", o)
	}
	return args
}

func (c *patchesCheck) collectApt(ctx context.Context) (*patchStatus, error) {
	base := c.aptArgs()
	paths, err := c.aptConfig(ctx, base)
	if err != nil {
		return nil, err
	}
	if c.env.CommandRoot() != "" { // apt-config named the files as the chrooted apt sees them
		for _, p := range []*string{&paths.Status, &paths.Lists, &paths.State, &paths.History} {
			*p = c.rootPath(*p)
		}
		for i, p := range paths.Config {
			paths.Config[i] = c.rootPath(p)
		}
	}
	if err := dpkgLocked(filepath.Dir(paths.Status)); err != nil {
		return nil, err
	}
	pkgs, err := readDpkgStatus(paths.Status)
	if err != nil {
		return nil, err
	}
	heldNames := map[string]bool{}
	for _, p := range pkgs {
		if p.Want == "hold" && p.Installed() {
			heldNames[p.Name] = true
		}
	}
	updates, err := c.aptPendingReused(ctx, base, heldNames, paths)
	if err != nil {
		return nil, err
	}
	dates := aptReleaseDates(paths.Lists)
	for i := range updates {
		updates[i].Available = availableSince(updates[i].Source, dates)
	}
	st := &patchStatus{Backend: "apt", Updates: updates, SecurityKnown: true, Held: new(len(heldNames))}

	reboot, reasons := c.aptReboot(pkgs)
	st.Reboot, st.RebootReasons = &reboot, reasons

	st.ListsTime = newestMtime(paths.Lists, filepath.Join(paths.Lists, "partial"), filepath.Join(paths.Lists, "*Release"),
		filepath.Join(paths.State, "periodic", "update-success-stamp"), filepath.Join(paths.State, "periodic", "update-stamp"))
	st.LastUpgrade = lastAptUpgrade(paths.History)

	uu := slices.ContainsFunc(pkgs, func(p dpkgPackage) bool { return p.Name == "unattended-upgrades" && p.Installed() })
	switch strings.ToLower(paths.UnattendedUpgrade) {
	case "", "0", "false", "no", "off":
		uu = false
	}
	st.AutoUpgrades = &uu
	return st, nil
}

// aptSimulate runs apt-get -s op with the given extra options and returns
// its output. It never locks (Debug::NoLocking), writes no binary cache and
// no planner log (Dir::Log::Planner empty: as root, every simulation would
// otherwise rewrite /var/log/apt/eipp.log.xz).
func (c *patchesCheck) aptSimulate(ctx context.Context, base []string, op string, extra ...string) ([]byte, error) {
	argv := append([]string{c.opts.Apt.AptGet}, base...)
	argv = append(argv, "-o", "Debug::NoLocking=1", "-o", "Dir::Cache::pkgcache=", "-o", "Dir::Cache::srcpkgcache=",
		"-o", "Dir::Log::Planner=", "-o", "APT::Get::Show-User-Simulation-Note=false")
	argv = append(append(argv, extra...), "-s", op)
	out, err := c.command(ctx, argv...)
	if err != nil {
		return nil, err
	}
	if out.Exit != 0 {
		return nil, out.ExitError(argv)
	}
	return out.Stdout, nil
}

// aptPending returns the pending upgrades: those the configured simulation
// (apt.upgrade) would install, and those apt will not install although a
// newer candidate exists: held packages (dpkg hold) and updates apt keeps
// back (they need new packages or removals under "upgrade", or their
// dependencies cannot be met). The second kind comes from a second
// simulation, run only when the first kept something back or a package is
// held: dist-upgrade with APT::Ignore-Hold, whose upgrades the first lacks
// are marked Blocked.
func (c *patchesCheck) aptPending(ctx context.Context, base []string, held map[string]bool, lists string) ([]pkgUpdate, error) {
	out, err := c.aptSimulate(ctx, base, c.opts.Apt.Upgrade)
	if err != nil {
		return nil, err
	}
	updates := parseAptSimulation(out, c.secRE)
	if len(held) == 0 && len(parseAptKeptBack(out)) == 0 {
		return updates, nil
	}
	out, err = c.aptSimulate(ctx, base, "dist-upgrade", "-o", "APT::Ignore-Hold=true")
	if err != nil {
		return nil, fmt.Errorf("simulate with holds ignored: %w", err)
	}
	seen := map[string]bool{}
	for _, u := range updates {
		seen[u.Name] = true
	}
	blocked := func(u pkgUpdate) pkgUpdate {
		name, _, _ := strings.Cut(u.Name, ":")
		u.Blocked = "kept back"
		if held[name] || held[u.Name] {
			u.Blocked = "held"
		}
		return u
	}
	for _, u := range parseAptSimulation(out, c.secRE) {
		if !seen[u.Name] {
			seen[u.Name] = true
			updates = append(updates, blocked(u))
		}
	}
	// What even dist-upgrade keeps back (its dependencies cannot be met)
	// has no Inst line: apt-cache policy says its candidate and where from.
	var kept []string
	for _, n := range parseAptKeptBack(out) {
		if !seen[n] {
			kept = append(kept, n)
		}
	}
	if len(kept) == 0 {
		return updates, nil
	}
	argv := append(append([]string{c.opts.Apt.AptCache}, base...), "policy")
	argv = append(argv, kept...)
	pol, err := c.command(ctx, argv...)
	if err != nil {
		return nil, err
	}
	if pol.Exit != 0 {
		return nil, pol.ExitError(argv)
	}
	for _, u := range c.policyUpdates(parseAptPolicy(pol.Stdout), lists) {
		updates = append(updates, blocked(u))
	}
	return updates, nil
}

// policyUpdates turns apt-cache policy entries whose candidate is newer
// than the installed version into updates, naming each source as apt-get
// -s would (from the Release file of the lists) where it can.
func (c *patchesCheck) policyUpdates(ps []aptPolicy, lists string) []pkgUpdate {
	rels := aptReleasesByFile(lists)
	var us []pkgUpdate
	for _, p := range ps {
		if p.Installed == "" || p.Candidate == "" || compareDebVersions(p.Candidate, p.Installed) <= 0 {
			continue
		}
		u := pkgUpdate{Name: p.Name, Installed: p.Installed, Candidate: p.Candidate}
		var srcs []string
		for _, s := range p.Sources {
			name := s.Dist
			if r, ok := rels[aptListsPrefix(s.URI, s.Dist)]; ok && len(r.names()) > 0 {
				name = r.names()[0]
			}
			if !slices.Contains(srcs, name) {
				srcs = append(srcs, name)
			}
			if c.secRE.MatchString(name) {
				u.Security = true
			}
		}
		u.Source = strings.Join(srcs, ", ")
		us = append(us, u)
	}
	return us
}

// aptPolicy is one package of apt-cache policy: the installed version, the
// candidate and the sources of the candidate.
type aptPolicy struct {
	Name, Installed, Candidate string
	Sources                    []aptSource
}

// aptSource is a source line of apt-cache policy's version table:
// "500 http://deb.debian.org/debian-security bookworm-security/main amd64 Packages".
type aptSource struct{ URI, Dist string }

// parseAptPolicy parses apt-cache policy PKG...:
//
//	l2a-kept:
//	  Installed: 1.0
//	  Candidate: 1.1
//	  Version table:
//	     1.1 500
//	        500 file:/srv/repo stable-security/main all Packages
//	 *** 1.0 100
//	        100 /var/lib/dpkg/status
func parseAptPolicy(out []byte) []aptPolicy {
	var ps []aptPolicy
	var cur *aptPolicy
	version := ""
	for _, line := range strings.Split(string(out), "\n") {
		f := strings.Fields(line)
		switch {
		case len(f) == 0:
		case line[0] != ' ' && strings.HasSuffix(line, ":") && len(f) == 1 && len(f[0]) > 1:
			ps = append(ps, aptPolicy{Name: strings.TrimSuffix(f[0], ":")})
			cur, version = &ps[len(ps)-1], ""
		case cur == nil:
		case len(f) == 2 && f[0] == "Installed:":
			cur.Installed = strings.TrimPrefix(f[1], "(none)")
		case len(f) == 2 && f[0] == "Candidate:":
			cur.Candidate = strings.TrimPrefix(f[1], "(none)")
		case f[0] == "***" && len(f) >= 2:
			version = f[1]
		case strings.HasPrefix(line, "     ") && !strings.HasPrefix(line, "        "):
			version = f[0] // "     1.1 500", Ubuntu adds " (phased 10%)"
		case len(f) >= 4 && strings.HasPrefix(line, "        ") && version != "" && version == cur.Candidate:
			dist := f[2]
			if i := strings.LastIndexByte(dist, '/'); i > 0 {
				dist = dist[:i] // the component
			}
			cur.Sources = append(cur.Sources, aptSource{URI: f[1], Dist: dist})
		}
	}
	return ps
}

// aptListsPrefix is the name apt gives the files of a release in its lists
// directory, without the trailing Release/InRelease (apt's URItoFileName:
// no scheme or credentials, some characters %-quoted, / as _).
func aptListsPrefix(uri, dist string) string {
	if i := strings.Index(uri, ":"); i >= 0 {
		uri = uri[i+1:]
	}
	if rest, ok := strings.CutPrefix(uri, "//"); ok {
		host, p, _ := strings.Cut(rest, "/")
		if i := strings.LastIndexByte(host, '@'); i >= 0 {
			host = host[i+1:]
		}
		uri = host + "/" + p
	}
	s := strings.TrimSuffix(uri, "/") + "/dists/" + dist + "/"
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		switch ch := s[i]; {
		case ch <= 0x20 || ch >= 0x7f || strings.IndexByte("\\|{}[]<>\"^~_=!@#$%&*", ch) >= 0:
			fmt.Fprintf(&b, "%%%02x", ch)
		case ch == '/':
			b.WriteByte('_')
		default:
			b.WriteByte(ch)
		}
	}
	return b.String()
}

// aptReleasesByFile reads the Release and InRelease files of the lists by
// their prefix (the name without Release/InRelease).
func aptReleasesByFile(lists string) map[string]aptRelease {
	m := map[string]aptRelease{}
	files, _ := filepath.Glob(filepath.Join(lists, "*Release"))
	for _, f := range files {
		base := filepath.Base(f)
		prefix, ok := strings.CutSuffix(base, "InRelease")
		if !ok {
			prefix = strings.TrimSuffix(base, "Release")
		}
		if b, err := fsutil.ReadHead(f, 64<<10); err == nil {
			m[prefix] = parseAptRelease(b)
		}
	}
	return m
}

// parseAptKeptBack returns the packages of apt-get's "The following
// packages have been kept back:" list (indented names, several a line).
func parseAptKeptBack(out []byte) []string {
	var names []string
	in := false
	for _, line := range strings.Split(string(out), "\n") {
		switch {
		case strings.HasPrefix(line, "The following packages have been kept back:"):
			in = true
		case in && strings.HasPrefix(line, " "):
			names = append(names, strings.Fields(line)...)
		default:
			in = false
		}
	}
	return names
}

// aptRelease is the head of a Release or InRelease file of apt's lists.
type aptRelease struct {
	Label, Suite, Codename, Version string
	Date                            time.Time
}

// parseAptRelease reads the fields of a Release file (or the clearsigned
// InRelease) that name the release and its Date.
func parseAptRelease(b []byte) aptRelease {
	var r aptRelease
	for _, line := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(line, "-----BEGIN PGP SIGNATURE") {
			break
		}
		k, v, ok := strings.Cut(line, ":")
		if !ok || strings.HasPrefix(line, " ") {
			continue
		}
		v = strings.TrimSpace(v)
		switch k {
		case "Label":
			r.Label = v
		case "Suite":
			r.Suite = v
		case "Codename":
			r.Codename = v
		case "Version":
			r.Version = v
		case "Date":
			for _, layout := range []string{time.RFC1123Z, time.RFC1123, "Mon, 2 Jan 2006 15:04:05 MST", "Mon, 2 Jan 2006 15:04:05 -0700"} {
				if t, err := time.Parse(layout, v); err == nil {
					r.Date = t
					break
				}
			}
		}
	}
	return r
}

// names returns how apt-get -s names the release of a candidate (apt's
// RelStr): "Label:" if there is a label, then "Version/Suite", or "Suite"
// when the release has no version (the Codename where there is no Suite).
func (r aptRelease) names() []string {
	var ns []string
	for _, s := range []string{r.Suite, r.Codename} {
		if s == "" {
			continue
		}
		if r.Version != "" {
			s = r.Version + "/" + s
		}
		if r.Label != "" {
			s = r.Label + ":" + s
		}
		ns = append(ns, s)
	}
	return ns
}

// aptReleaseDates maps each release of the lists (as apt-get -s names it)
// to the Date of its Release file; where several files name the same
// release, the newest Date.
func aptReleaseDates(lists string) map[string]time.Time {
	m := map[string]time.Time{}
	for _, r := range aptReleasesByFile(lists) {
		if r.Date.IsZero() {
			continue
		}
		for _, n := range r.names() {
			if r.Date.After(m[n]) {
				m[n] = r.Date
			}
		}
	}
	return m
}

// availableSince is a time at which the candidate was certainly published:
// it is in every release apt names for it (source, "A, B"), and each
// release's Release file, dated, already listed it. The earliest such Date;
// zero when no release is known.
func availableSince(source string, dates map[string]time.Time) time.Time {
	var since time.Time
	for _, r := range strings.Split(source, ", ") {
		if d, ok := dates[r]; ok && (since.IsZero() || d.Before(since)) {
			since = d
		}
	}
	return since
}

// aptConfig asks apt-config where apt's files are, with the same options.
func (c *patchesCheck) aptConfig(ctx context.Context, base []string) (aptPaths, error) {
	argv := append([]string{c.opts.Apt.AptConfig}, base...)
	argv = append(argv, "shell",
		"STATUS", "Dir::State::status/f", "LISTS", "Dir::State::Lists/d", "STATE", "Dir::State/d",
		"HISTORY", "Dir::Log::History/f", "UU", "APT::Periodic::Unattended-Upgrade")
	for i, name := range aptConfigItems {
		argv = append(argv, fmt.Sprintf("CONFIG%d", i), name)
	}
	out, err := c.command(ctx, argv...)
	if err != nil {
		return aptPaths{}, err
	}
	if out.Exit != 0 {
		return aptPaths{}, out.ExitError(argv)
	}
	v := parseShellAssignments(out.Stdout)
	p := aptPaths{Status: v["STATUS"], Lists: v["LISTS"], State: v["STATE"], History: v["HISTORY"], UnattendedUpgrade: v["UU"]}
	for i := range aptConfigItems {
		if f := v[fmt.Sprintf("CONFIG%d", i)]; f != "" {
			p.Config = append(p.Config, f)
		}
	}
	if p.Status == "" || p.Lists == "" {
		return p, fmt.Errorf("apt-config did not say where the dpkg status and the lists are: %q", out.Stdout)
	}
	return p, nil
}

// parseShellAssignments parses apt-config shell output: NAME='value' lines,
// with ' written as '\”.
func parseShellAssignments(b []byte) map[string]string {
	m := map[string]string{}
	for _, line := range strings.Split(string(b), "\n") {
		k, v, ok := strings.Cut(line, "=")
		if !ok || len(v) < 2 || v[0] != '\'' || v[len(v)-1] != '\'' {
			continue
		}
		m[k] = strings.ReplaceAll(v[1:len(v)-1], `'\''`, `'`)
	}
	return m
}

// dpkgLocked reports an error when another process holds dpkg's lock or
// apt's frontend lock in dir. It only tests the locks (F_GETLK): it never
// takes them.
func dpkgLocked(dir string) error {
	for _, name := range []string{"lock-frontend", "lock"} {
		p := filepath.Join(dir, name)
		f, err := os.Open(p)
		if err != nil {
			continue // no lock file: nobody has locked it
		}
		lk := syscall.Flock_t{Type: syscall.F_WRLCK, Whence: io.SeekStart}
		err = syscall.FcntlFlock(f.Fd(), syscall.F_GETLK, &lk)
		f.Close()
		if err == nil && lk.Type != syscall.F_UNLCK {
			return fmt.Errorf("%s is held by process %d: a package operation is running, pending updates are unknown until it ends", p, lk.Pid)
		}
	}
	return nil
}

// parseAptSimulation reads the "Inst" lines of apt-get -s output:
//
//	Inst libssl3 [3.0.11-1~deb12u1] (3.0.11-1~deb12u2 Debian-Security:12/stable-security [amd64])
//	Inst linux-image-6.1.0-18-amd64 (6.1.76-1 Debian:12.5/stable [amd64])
//
// A line with an installed version is an upgrade; one without installs a
// new package (a new kernel ABI) and is not counted. A candidate is a
// security update when any of its releases matches sec.
func parseAptSimulation(out []byte, sec *regexp.Regexp) []pkgUpdate {
	var us []pkgUpdate
	sc := bufio.NewScanner(bytes.NewReader(out))
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for sc.Scan() {
		rest, ok := strings.CutPrefix(sc.Text(), "Inst ")
		if !ok {
			continue
		}
		name, rest, _ := strings.Cut(rest, " ")
		if name == "" || !strings.HasPrefix(rest, "[") {
			continue
		}
		installed, rest, ok := strings.Cut(rest[1:], "] ")
		if !ok || !strings.HasPrefix(rest, "(") {
			continue
		}
		end := strings.LastIndexByte(rest, ')')
		if end < 0 {
			continue
		}
		cand, rels, _ := strings.Cut(rest[1:end], " ")
		if i := strings.LastIndex(rels, " ["); i >= 0 && strings.HasSuffix(rels, "]") {
			rels = rels[:i] // the architecture
		}
		u := pkgUpdate{Name: name, Installed: installed, Candidate: cand, Source: rels}
		for _, r := range strings.Split(rels, ", ") {
			if r != "" && sec.MatchString(r) {
				u.Security = true
			}
		}
		us = append(us, u)
	}
	return us
}

// dpkgPackage is one paragraph of dpkg's status file.
type dpkgPackage struct {
	Name, Arch, Version string
	Want, State         string // first and third word of Status
}

// Installed reports whether the package is unpacked and configured.
func (p dpkgPackage) Installed() bool { return p.State == "installed" }

// readDpkgStatus parses dpkg's status file (deb822 paragraphs).
func readDpkgStatus(path string) ([]dpkgPackage, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("read dpkg status: %w", err)
	}
	defer f.Close()
	ps, err := parseDpkgStatus(f)
	if err != nil {
		return nil, fmt.Errorf("read dpkg status %s: %w", path, err)
	}
	return ps, nil
}

func parseDpkgStatus(r io.Reader) ([]dpkgPackage, error) {
	var ps []dpkgPackage
	var cur dpkgPackage
	flush := func() {
		if cur.Name != "" {
			ps = append(ps, cur)
		}
		cur = dpkgPackage{}
	}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64<<10), 4<<20)
	for sc.Scan() {
		line := sc.Text()
		if strings.TrimSpace(line) == "" {
			flush()
			continue
		}
		if line[0] == ' ' || line[0] == '\t' {
			continue // continuation of a multi-line field
		}
		k, v, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		v = strings.TrimSpace(v)
		switch k {
		case "Package":
			cur.Name = v
		case "Architecture":
			cur.Arch = v
		case "Version":
			cur.Version = v
		case "Status":
			if f := strings.Fields(v); len(f) == 3 {
				cur.Want, cur.State = f[0], f[2]
			}
		}
	}
	flush()
	return ps, sc.Err()
}

// aptReboot says whether a reboot is owed: the flag file (with the
// packages its .pkgs twin lists), or a newer kernel of the running flavour
// installed than the one running.
func (c *patchesCheck) aptReboot(pkgs []dpkgPackage) (bool, []string) {
	var reasons []string
	flag := c.rootPath(c.opts.Apt.RebootRequiredFile)
	if _, err := os.Stat(flag); err == nil {
		r := flag + " exists"
		if b, err := fsutil.ReadTail(flag+".pkgs", 4096); err == nil {
			if names := strings.Fields(string(b)); len(names) > 0 {
				slices.Sort(names)
				r += " (packages: " + strings.Join(slices.Compact(names), ", ") + ")"
			}
		}
		reasons = append(reasons, r)
	}
	if b, err := os.ReadFile(filepath.Join(c.env.Paths.Procfs, "sys", "kernel", "osrelease")); err == nil {
		if newer, ok := newerKernel(strings.TrimSpace(string(b)), pkgs); ok {
			reasons = append(reasons, newer)
		}
	}
	return len(reasons) > 0, reasons
}

// kernelPackage splits linux-image-<abi>-<flavour> (Debian 6.1.0-18-amd64,
// 6.1.0-0.deb11.13-cloud-amd64; Ubuntu 5.15.0-91-generic).
var kernelPackage = regexp.MustCompile(`^linux-image-(\d[^-]*-[^-]+)-(.+)$`)

// newerKernel compares the running kernel release with the installed
// linux-image packages of the same flavour.
func newerKernel(release string, pkgs []dpkgPackage) (string, bool) {
	m := kernelPackage.FindStringSubmatch("linux-image-" + release)
	if m == nil {
		return "", false
	}
	runABI, flavour := m[1], m[2]
	runVer := ""
	var newest dpkgPackage
	newestABI := ""
	for _, p := range pkgs {
		km := kernelPackage.FindStringSubmatch(p.Name)
		if km == nil || km[2] != flavour || !p.Installed() {
			continue
		}
		if km[1] == runABI {
			runVer = p.Version
		}
		if newestABI == "" || compareDebVersions(p.Version, newest.Version) > 0 {
			newest, newestABI = p, km[1]
		}
	}
	if newestABI == "" || newestABI == runABI {
		return "", false
	}
	older := compareDebVersions(runABI, newestABI) < 0
	if runVer != "" {
		older = compareDebVersions(runVer, newest.Version) < 0
	}
	if !older {
		return "", false
	}
	return fmt.Sprintf("running kernel %s is older than the installed %s (%s)", release, newest.Name, newest.Version), true
}

// lastAptUpgrade returns the End-Date of the last history entry that
// upgraded packages without error, from the history log or, when it has
// none (just rotated), from its .1.gz predecessor.
func lastAptUpgrade(history string) time.Time {
	if history == "" {
		return time.Time{}
	}
	if b, err := fsutil.ReadTail(history, 8<<20); err == nil {
		if t := parseAptHistory(b, time.Local); !t.IsZero() {
			return t
		}
	}
	f, err := os.Open(history + ".1.gz")
	if err != nil {
		return time.Time{}
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		return time.Time{}
	}
	b, _ := io.ReadAll(io.LimitReader(zr, 32<<20))
	return parseAptHistory(b, time.Local)
}

// parseAptHistory parses apt's history.log, entries of
//
//	Start-Date: 2024-03-01  10:00:00
//	Commandline: apt-get upgrade
//	Upgrade: libfoo:amd64 (1.0, 1.1)
//	End-Date: 2024-03-01  10:00:05
//
// separated by blank lines, and returns the end of the last one with an
// Upgrade line and no Error line (local times, in loc).
func parseAptHistory(b []byte, loc *time.Location) time.Time {
	var last time.Time
	var upgrade, failed bool
	var end time.Time
	done := func() {
		if upgrade && !failed && !end.IsZero() && end.After(last) {
			last = end
		}
		upgrade, failed, end = false, false, time.Time{}
	}
	for _, line := range strings.Split(string(b), "\n") {
		k, v, _ := strings.Cut(line, ": ")
		switch k {
		case "Start-Date":
			done()
		case "Upgrade":
			upgrade = true
		case "Error":
			failed = true
		case "End-Date":
			if t, err := time.ParseInLocation("2006-01-02 15:04:05", strings.Join(strings.Fields(v), " "), loc); err == nil {
				end = t
			}
		}
	}
	done()
	return last
}

// compareDebVersions compares two Debian versions as dpkg does
// ([epoch:]upstream[-revision]; see deb-version(7)).
func compareDebVersions(a, b string) int {
	ea, ua, ra := splitDebVersion(a)
	eb, ub, rb := splitDebVersion(b)
	if ea != eb {
		if ea < eb {
			return -1
		}
		return 1
	}
	if c := compareDebPart(ua, ub); c != 0 {
		return c
	}
	return compareDebPart(ra, rb)
}

func splitDebVersion(v string) (epoch int, upstream, revision string) {
	if e, rest, ok := strings.Cut(v, ":"); ok {
		n := 0
		for _, r := range e {
			if r < '0' || r > '9' || n > 1<<24 {
				n = -1
				break
			}
			n = n*10 + int(r-'0')
		}
		if n >= 0 {
			epoch, v = n, rest
		}
	}
	if i := strings.LastIndexByte(v, '-'); i >= 0 {
		return epoch, v[:i], v[i+1:]
	}
	return epoch, v, ""
}

// debOrder is the sort weight of a character outside a digit run: ~ sorts
// before the end of the string, letters before everything else (dpkg's
// order()).
func debOrder(s string, i int) int {
	if i >= len(s) {
		return 0
	}
	switch c := s[i]; {
	case c >= '0' && c <= '9':
		return 0
	case c >= 'A' && c <= 'Z', c >= 'a' && c <= 'z':
		return int(c)
	case c == '~':
		return -1
	default:
		return int(c) + 256
	}
}

// compareDebPart is dpkg's verrevcmp: alternating runs of non-digits
// (compared by debOrder) and digits (compared as numbers).
func compareDebPart(a, b string) int {
	isDigit := func(s string, i int) bool { return i < len(s) && s[i] >= '0' && s[i] <= '9' }
	i, j := 0, 0
	for i < len(a) || j < len(b) {
		for (i < len(a) && !isDigit(a, i)) || (j < len(b) && !isDigit(b, j)) {
			if oa, ob := debOrder(a, i), debOrder(b, j); oa != ob {
				return cmpInt(oa, ob)
			}
			i++
			j++
		}
		for isDigit(a, i) && a[i] == '0' {
			i++
		}
		for isDigit(b, j) && b[j] == '0' {
			j++
		}
		first := 0
		for isDigit(a, i) && isDigit(b, j) {
			if first == 0 {
				first = cmpInt(int(a[i]), int(b[j]))
			}
			i++
			j++
		}
		if isDigit(a, i) {
			return 1
		}
		if isDigit(b, j) {
			return -1
		}
		if first != 0 {
			return first
		}
	}
	return 0
}

func cmpInt(a, b int) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}
