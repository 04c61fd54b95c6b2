// Package patches is the patches check (kind "patches"): pending updates
// (all and security), held packages, whether a reboot is required, the age
// of the package lists, the last upgrade and how long the oldest security
// update has waited, read from apt, dnf/yum, zypper or apk. It registers
// itself from init(); checks/all links it in.
package patches

import (
	"bufio"
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/l2agent/l2agent/checks"
	"github.com/l2agent/l2agent/configs"
	"github.com/l2agent/l2agent/internal/command"
	"github.com/l2agent/l2agent/internal/fsutil"
	"github.com/l2agent/l2agent/internal/textfmt"
)

func init() {
	checks.Register("patches", newPatchesCheck, func() configs.Options { return &Options{} },
		checks.MetricInfo{Name: "patches_pending", Help: "Pending package updates: kind=\"all\", and kind=\"security\" for those from a security source (absent where the backend cannot tell, e.g. apk)."},
		checks.MetricInfo{Name: "patches_blocked", Help: "Pending updates the package manager will not install as configured: the package is held, locked or excluded, or the update is kept back; kind=\"all\" and kind=\"security\". Included in patches_pending."},
		checks.MetricInfo{Name: "patches_held", Help: "Packages held back from upgrades (dpkg hold, zypper lock)."},
		checks.MetricInfo{Name: "reboot_required", Help: "1 if the host needs a reboot to run its updated packages (flag file, newer kernel installed than running, needs-restarting)."},
		checks.MetricInfo{Name: "patches_lists_age_seconds", Help: "Seconds since the package lists were last refreshed successfully."},
		checks.MetricInfo{Name: "patches_last_upgrade_timestamp_seconds", Help: "Time of the last package upgrade, from the package manager's history."},
		checks.MetricInfo{Name: "patches_oldest_security_pending_seconds", Help: "How long the oldest pending security update has been waiting: since the agent first saw it or, if earlier, since a dated release of the repository listed it; 0 when none."},
		checks.MetricInfo{Name: "patches_unattended_upgrades_enabled", Help: "1 if unattended-upgrades is installed and enabled by APT::Periodic::Unattended-Upgrade (apt only)."},
	)
}

// pkgUpdate is one pending package update (or, for zypper, one patch).
type pkgUpdate struct {
	Name      string // package (name:arch, name.arch) or patch name
	Installed string // installed version; "" if unknown
	Candidate string // version the upgrade would install
	Source    string // where the candidate comes from (apt release, repo, severity)
	Security  bool
	Patch     bool // a zypper patch: counted as a security update, not as a package
	// Blocked says why the package manager will not install it as
	// configured ("held", "kept back", "locked", "excluded"); "" if it would.
	Blocked string
	// Available is a time at which the candidate was certainly published
	// (the Date of a Release file that lists it); zero if unknown.
	Available time.Time
}

// patchStatus is what a backend found. Unknown values are nil or zero.
type patchStatus struct {
	Backend       string
	Updates       []pkgUpdate
	SecurityKnown bool // the backend can tell security updates apart
	// BlockedSecurityUnknown: the backend cannot tell which blocked updates
	// are security fixes (zypper: security comes from patches).
	BlockedSecurityUnknown bool
	Held                   *int
	Reboot                 *bool
	RebootReasons          []string
	ListsTime              time.Time
	LastUpgrade            time.Time
	AutoUpgrades           *bool
}

// patchesCheck reports pending updates of the host's package manager. It
// never refreshes package lists and never takes the package manager's lock.
type patchesCheck struct {
	name  string
	env   checks.Env
	opts  Options
	secRE *regexp.Regexp
	run   command.Runner
	now   func() time.Time

	mu          sync.Mutex
	firstSeen   map[string]time.Time // pending security updates by name
	stateLoaded bool
	stateFailed bool                // the state file could not be written; logged once
	aptMemo     *memo[[]pkgUpdate]  // the last apt simulation (aptreuse.go)
	dnfMemo     *memo[dnfAnswer]    // the last dnf queries (dnfreuse.go)
	zypperMemo  *memo[zypperAnswer] // the last zypper queries (zypperreuse.go)
}

func newPatchesCheck(c configs.Check, env checks.Env) (checks.Check, error) {
	o := *c.Options.(*Options)
	o = o.WithDefaults()
	re, err := regexp.Compile(o.Apt.SecurityPattern)
	if err != nil {
		return nil, fmt.Errorf("apt security_pattern: %w", err)
	}
	if !slices.Contains(Backends, o.Backend) {
		return nil, fmt.Errorf("unknown patches backend %q", o.Backend)
	}
	if env.Paths.Rootfs == "" {
		env.Paths.Rootfs = "/"
	}
	if env.Paths.Procfs == "" {
		env.Paths.Procfs = "/proc"
	}
	return &patchesCheck{
		name: c.Name, env: env, opts: o, secRE: re,
		run: command.CaptureIn(env.CommandRoot()), now: time.Now, firstSeen: map[string]time.Time{},
	}, nil
}

// Name implements Check.
func (c *patchesCheck) Name() string { return c.name }

// Run implements Check.
func (c *patchesCheck) Run(ctx context.Context) ([]checks.Observation, error) {
	backend, err := c.backend()
	if err != nil {
		return nil, err
	}
	var st *patchStatus
	switch backend {
	case "apt":
		st, err = c.collectApt(ctx)
	case "dnf", "yum":
		st, err = c.collectDnf(ctx, backend)
	case "zypper":
		st, err = c.collectZypper(ctx)
	case "apk":
		st, err = c.collectApk(ctx)
	}
	if err != nil {
		return nil, fmt.Errorf("%s: %w", backend, err)
	}
	return c.observe(st), nil
}

// observe turns a backend's findings into observations, updating the
// first-seen times of pending security updates.
func (c *patchesCheck) observe(st *patchStatus) []checks.Observation {
	now := c.now()
	var obs []checks.Observation
	add := func(metric string, labels map[string]string, v float64, details string) {
		obs = append(obs, checks.Observation{Metric: metric, Labels: labels, Value: v, Details: textfmt.Truncate(details, checks.MaxDetails)})
	}
	updates := slices.SortedFunc(slices.Values(st.Updates), func(a, b pkgUpdate) int { return cmp.Compare(a.Name, b.Name) })
	var sec, pkgs []pkgUpdate
	blocked, blockedSec := 0, 0
	for _, u := range updates {
		if u.Security {
			sec = append(sec, u)
		}
		if !u.Patch {
			pkgs = append(pkgs, u)
		}
		if u.Blocked != "" {
			if !u.Patch {
				blocked++
			}
			if u.Security {
				blockedSec++
			}
		}
	}
	add("patches_pending", map[string]string{"kind": "all"}, float64(len(pkgs)),
		formatUpdates(fmt.Sprintf("Pending updates (%s):", st.Backend), pkgs, c.opts.MaxPackages))
	if st.SecurityKnown {
		add("patches_pending", map[string]string{"kind": "security"}, float64(len(sec)),
			formatUpdates(fmt.Sprintf("Pending security updates (%s):", st.Backend), sec, c.opts.MaxPackages))
		oldest, details := c.oldestSecurity(sec, now)
		add("patches_oldest_security_pending_seconds", nil, oldest.Seconds(), details)
	}
	if st.SecurityKnown || blocked > 0 {
		var bl []pkgUpdate
		for _, u := range updates {
			if u.Blocked != "" {
				bl = append(bl, u)
			}
		}
		add("patches_blocked", map[string]string{"kind": "all"}, float64(blocked),
			formatUpdates(fmt.Sprintf("Pending updates %s will not install (held, locked, excluded or kept back):", st.Backend), bl, c.opts.MaxPackages))
		if st.SecurityKnown && !st.BlockedSecurityUnknown {
			add("patches_blocked", map[string]string{"kind": "security"}, float64(blockedSec), "")
		}
	}
	if st.Held != nil {
		add("patches_held", nil, float64(*st.Held), "")
	}
	if st.Reboot != nil {
		add("reboot_required", nil, checks.BoolValue(*st.Reboot), strings.Join(st.RebootReasons, "\n"))
	}
	if !st.ListsTime.IsZero() {
		add("patches_lists_age_seconds", nil, max(0, now.Sub(st.ListsTime).Seconds()),
			"Package lists last refreshed "+st.ListsTime.UTC().Format(time.RFC3339)+".")
	}
	if !st.LastUpgrade.IsZero() {
		add("patches_last_upgrade_timestamp_seconds", nil, float64(st.LastUpgrade.UnixNano())/1e9, "")
	}
	if st.AutoUpgrades != nil {
		add("patches_unattended_upgrades_enabled", nil, checks.BoolValue(*st.AutoUpgrades), "")
	}
	return obs
}

// formatUpdates lists at most n updates, one a line: name installed → candidate (source).
func formatUpdates(title string, us []pkgUpdate, n int) string {
	if len(us) == 0 {
		return ""
	}
	var b strings.Builder
	b.WriteString(title + "\n")
	for _, u := range us[:min(n, len(us))] {
		fmt.Fprintf(&b, "  %s", textfmt.Sanitize(u.Name))
		switch {
		case u.Installed != "" && u.Candidate != "":
			fmt.Fprintf(&b, " %s → %s", textfmt.Sanitize(u.Installed), textfmt.Sanitize(u.Candidate))
		case u.Candidate != "":
			fmt.Fprintf(&b, " → %s", textfmt.Sanitize(u.Candidate))
		}
		if u.Source != "" {
			fmt.Fprintf(&b, " (%s)", textfmt.Sanitize(u.Source))
		}
		if u.Blocked != "" {
			fmt.Fprintf(&b, " [%s: not installed by an upgrade]", u.Blocked)
		}
		b.WriteByte('\n')
	}
	if len(us) > n {
		fmt.Fprintf(&b, "  … and %d more\n", len(us)-n)
	}
	return b.String()
}

// backend returns the configured backend, or the one that fits
// <rootfs>/etc/os-release.
func (c *patchesCheck) backend() (string, error) {
	if c.opts.Backend != "auto" {
		return c.opts.Backend, nil
	}
	var errs []error
	for _, p := range []string{"etc/os-release", "usr/lib/os-release"} {
		b, err := os.ReadFile(filepath.Join(c.env.Paths.Rootfs, p))
		if err != nil {
			errs = append(errs, err)
			continue
		}
		osr := parseOSRelease(b)
		if be := backendFor(osr["ID"], osr["ID_LIKE"], c.lookPath); be != "" {
			return be, nil
		}
		return "", fmt.Errorf("no patches backend for ID=%q ID_LIKE=%q; set patches.backend", osr["ID"], osr["ID_LIKE"])
	}
	return "", fmt.Errorf("choose a patches backend: %w", errors.Join(errs...))
}

// backendFor maps os-release ID and ID_LIKE to a backend; for the Red Hat
// family it is dnf unless only yum is installed.
func backendFor(id, idLike string, lookPath func(string) (string, error)) string {
	for _, w := range append([]string{id}, strings.Fields(idLike)...) {
		switch strings.ToLower(w) {
		case "debian", "ubuntu", "raspbian", "linuxmint", "pop", "kali", "devuan":
			return "apt"
		case "rhel", "fedora", "centos", "rocky", "almalinux", "ol", "amzn", "scientific":
			if _, err := lookPath("dnf"); err != nil {
				if _, err := lookPath("yum"); err == nil {
					return "yum"
				}
			}
			return "dnf"
		case "suse", "sles", "opensuse", "opensuse-leap", "opensuse-tumbleweed", "sle-micro":
			return "zypper"
		case "alpine":
			return "apk"
		}
	}
	return ""
}

// parseOSRelease parses os-release(5): KEY=value lines, values optionally
// quoted with shell quoting.
func parseOSRelease(b []byte) map[string]string {
	m := map[string]string{}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		k, v, ok := strings.Cut(line, "=")
		if !ok || strings.HasPrefix(line, "#") {
			continue
		}
		if len(v) >= 2 && (v[0] == '"' || v[0] == '\'') && v[len(v)-1] == v[0] {
			q := v[0]
			v = v[1 : len(v)-1]
			if q == '"' {
				r := strings.NewReplacer(`\"`, `"`, `\\`, `\`, `\$`, `$`, "\\`", "`")
				v = r.Replace(v)
			}
		}
		m[k] = v
	}
	return m
}

// oldestSecurity returns how long the oldest pending security update has
// waited and the details that say which and since when. An update waits
// since the agent first saw it or, when earlier, since a dated release
// listed it (Available): on the first run on a long-unpatched host that is
// the day-one signal.
func (c *patchesCheck) oldestSecurity(sec []pkgUpdate, now time.Time) (time.Duration, string) {
	first := c.trackSecurity(sec, now)
	var oldest pkgUpdate
	var since time.Time
	how := ""
	for _, u := range sec {
		t, h := first[u.Name], "first seen by the agent"
		if !u.Available.IsZero() && u.Available.Before(t) {
			t, h = u.Available, "listed in a release dated"
		}
		if since.IsZero() || t.Before(since) || t.Equal(since) && u.Name < oldest.Name {
			oldest, since, how = u, t, h
		}
	}
	if since.IsZero() {
		return 0, ""
	}
	age := max(0, now.Sub(since))
	return age, fmt.Sprintf("Oldest pending security update: %s, waiting at least since %s (%s %s, %s ago).\n",
		textfmt.Sanitize(oldest.Name), since.UTC().Format(time.RFC3339), how, since.UTC().Format(time.DateOnly), age.Round(time.Minute)) +
		formatUpdates("Pending security updates:", sec, c.opts.MaxPackages)
}

// trackSecurity records when each pending security update was first seen,
// forgets those no longer pending, persists a change, and returns the
// first-seen times of the pending ones.
func (c *patchesCheck) trackSecurity(sec []pkgUpdate, now time.Time) map[string]time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.stateLoaded {
		c.stateLoaded = true
		c.loadState()
	}
	changed := false
	pending := make(map[string]bool, len(sec))
	for _, u := range sec {
		pending[u.Name] = true
		if _, ok := c.firstSeen[u.Name]; !ok {
			c.firstSeen[u.Name] = now
			changed = true
		}
	}
	for name := range c.firstSeen {
		if !pending[name] {
			delete(c.firstSeen, name)
			changed = true
		}
	}
	if changed {
		c.saveState()
	}
	return maps.Clone(c.firstSeen)
}

// patchesState is the file that keeps first-seen times across restarts.
type patchesState struct {
	Version   int                  `json:"version"`
	FirstSeen map[string]time.Time `json:"security_first_seen"`
}

func (c *patchesCheck) statePath() string {
	name := strings.Map(func(r rune) rune {
		if r == '-' || r == '_' || r == '.' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' {
			return r
		}
		return '_'
	}, c.name)
	return filepath.Join(c.opts.StateDir, "patches-"+name+".json")
}

// loadState reads the state file; a missing or bad file starts afresh.
func (c *patchesCheck) loadState() {
	b, err := os.ReadFile(c.statePath())
	if err != nil {
		if !errors.Is(err, os.ErrNotExist) {
			c.env.Log().Warn("patches: cannot read state; first-seen times start now", "check", c.name, "err", err)
		}
		return
	}
	var s patchesState
	if err := json.Unmarshal(b, &s); err != nil || s.Version != 1 {
		c.env.Log().Warn("patches: ignoring unreadable state file", "check", c.name, "path", c.statePath(), "err", err)
		return
	}
	for k, v := range s.FirstSeen {
		c.firstSeen[k] = v
	}
}

// saveState writes the state file atomically. A failure is logged once and
// the times are kept in memory.
func (c *patchesCheck) saveState() {
	b, err := json.MarshalIndent(patchesState{Version: 1, FirstSeen: c.firstSeen}, "", "  ")
	if err == nil {
		err = fsutil.WriteFileAtomic(c.statePath(), append(b, '\n'), 0o640)
	}
	switch {
	case err != nil && !c.stateFailed:
		c.stateFailed = true
		c.env.Log().Warn("patches: cannot save state; first-seen times are kept in memory only", "check", c.name, "err", err)
	case err == nil && c.stateFailed:
		c.stateFailed = false
		c.env.Log().Info("patches: state saved again", "check", c.name, "path", c.statePath())
	}
}

// rootPath returns p as seen through the configured rootfs, following the
// host's symbolic links inside it (its /var/run → /run).
func (c *patchesCheck) rootPath(p string) string { return fsutil.InRoot(c.env.Paths.Rootfs, p) }

// lookPath finds a program where the check runs it: in the agent's PATH, or
// under the rootfs when the programs run chrooted into it.
func (c *patchesCheck) lookPath(name string) (string, error) {
	if root := c.env.CommandRoot(); root != "" {
		return command.LookPathIn(root, name, nil)
	}
	return exec.LookPath(name)
}

// command runs argv bounded by the command timeout.
func (c *patchesCheck) command(ctx context.Context, argv ...string) (command.Output, error) {
	ctx, cancel := context.WithTimeout(ctx, c.opts.CommandTimeout.D())
	defer cancel()
	return c.run(ctx, argv...)
}

// newestMtime returns the newest modification time of the files matching
// the glob patterns (zero if none).
func newestMtime(patterns ...string) time.Time {
	var newest time.Time
	for _, p := range patterns {
		ms, _ := filepath.Glob(p)
		for _, m := range ms {
			if fi, err := os.Stat(m); err == nil && fi.ModTime().After(newest) {
				newest = fi.ModTime()
			}
		}
	}
	return newest
}
