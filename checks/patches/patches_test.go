package patches

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/l2agent/l2agent/checks"
	"github.com/l2agent/l2agent/configs"
	"github.com/l2agent/l2agent/internal/checktest"
	"github.com/l2agent/l2agent/internal/command"
)

func newTestPatches(t testing.TB, env checks.Env, o Options) *patchesCheck {
	t.Helper()
	if o.StateDir == "" {
		o.StateDir = t.TempDir()
	}
	c, err := checks.New(configs.Check{Name: "patches", Kind: "patches", Options: &o}, env)
	require.NoError(t, err)
	return c.(*patchesCheck)
}

// fakeRunner answers commands from canned outputs keyed by the program's
// base name and first non-option argument.
type fakeRunner struct {
	outputs map[string]command.Output
	calls   [][]string
}

func (f *fakeRunner) run(_ context.Context, argv ...string) (command.Output, error) {
	f.calls = append(f.calls, argv)
	key := filepath.Base(argv[0])
	for _, a := range argv[1:] {
		if !strings.HasPrefix(a, "-") {
			key += " " + a
			break
		}
	}
	out, ok := command.Output{}, false
	for _, a := range argv {
		if a == "--disableexcludes=all" || a == "--all" {
			out, ok = f.outputs[key+" "+a]
		}
	}
	if !ok {
		out, ok = f.outputs[key]
	}
	if !ok {
		out, ok = f.outputs[filepath.Base(argv[0])]
	}
	if !ok {
		return command.Output{}, &exec.Error{Name: argv[0], Err: exec.ErrNotFound}
	}
	return out, nil
}

func TestParseOSReleaseAndBackend(t *testing.T) {
	t.Parallel()
	osr := parseOSRelease([]byte("# comment\nNAME=\"Rocky Linux\"\nID=\"rocky\"\nID_LIKE=\"rhel centos fedora\"\nVERSION_ID='9.3'\nPRETTY_NAME=\"a \\\"quoted\\\" name\"\n"))
	require.Equal(t, "rocky", osr["ID"])
	require.Equal(t, "9.3", osr["VERSION_ID"])
	require.Equal(t, `a "quoted" name`, osr["PRETTY_NAME"])
	noDnf := func(n string) (string, error) {
		if n == "yum" {
			return "/usr/bin/yum", nil
		}
		return "", errors.New("not found")
	}
	withDnf := func(n string) (string, error) { return "/usr/bin/" + n, nil }
	for _, tc := range []struct{ id, like, want string }{
		{"debian", "", "apt"}, {"ubuntu", "debian", "apt"}, {"linuxmint", "ubuntu debian", "apt"},
		{"rocky", "rhel centos fedora", "dnf"}, {"fedora", "", "dnf"}, {"almalinux", "rhel centos fedora", "dnf"},
		{"sles", "suse", "zypper"}, {"opensuse-leap", "suse opensuse", "zypper"}, {"alpine", "", "apk"},
		{"my-distro", "debian", "apt"}, {"gentoo", "", ""},
	} {
		require.Equal(t, tc.want, backendFor(tc.id, tc.like, withDnf), tc.id)
	}
	require.Equal(t, "yum", backendFor("centos", "rhel fedora", noDnf), "EL7 has only yum")

	root := t.TempDir()
	require.NoError(t, os.MkdirAll(filepath.Join(root, "etc"), 0o755))
	c := newTestPatches(t, checks.Env{Paths: configs.Paths{Rootfs: root, Procfs: "/proc"}}, Options{})
	_, err := c.backend()
	require.ErrorContains(t, err, "choose a patches backend")
	require.NoError(t, os.WriteFile(filepath.Join(root, "etc", "os-release"), []byte("ID=alpine\n"), 0o644))
	be, err := c.backend()
	require.NoError(t, err)
	require.Equal(t, "apk", be)
	require.NoError(t, os.WriteFile(filepath.Join(root, "etc", "os-release"), []byte("ID=plan9\n"), 0o644))
	_, err = c.backend()
	require.ErrorContains(t, err, "set patches.backend")
}

func TestCompareDebVersions(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		a, b string
		want int
	}{
		{"1.0", "1.0", 0}, {"1.0", "1.1", -1}, {"1.10", "1.9", 1}, {"1.0~rc1", "1.0", -1},
		{"1.0", "1.0+deb12u1", -1}, {"1:1.0", "2.0", 1}, {"1.0-1", "1.0-2", -1}, {"1.0-1", "1.0-1.1", -1},
		{"3.0.11-1~deb12u2", "3.0.11-1~deb12u1", 1}, {"1.0a", "1.0", 1}, {"1.0a", "1.0+", -1},
		{"6.1.76-1", "6.1.85-1", -1}, {"6.1.0-18", "6.1.0-21", -1}, {"007", "7", 0}, {"1.0~~", "1.0~", -1},
		{"2:1.0.1-3.el9_4", "2:1.0.0-1.el9", 1},
	} {
		require.Equal(t, tc.want, compareDebVersions(tc.a, tc.b), "%s vs %s", tc.a, tc.b)
		require.Equal(t, -tc.want, compareDebVersions(tc.b, tc.a), "%s vs %s", tc.b, tc.a)
	}
}

func FuzzCompareDebVersions(f *testing.F) {
	for _, s := range [][2]string{{"1.0", "1.0~rc1"}, {"1:2.3-4", "2.3-4"}, {"a", "+"}, {"", "0"}} {
		f.Add(s[0], s[1])
	}
	f.Fuzz(func(t *testing.T, a, b string) {
		if x, y := compareDebVersions(a, b), compareDebVersions(b, a); x != -y {
			t.Fatalf("not antisymmetric: %q %q: %d %d", a, b, x, y)
		}
		if compareDebVersions(a, a) != 0 {
			t.Fatalf("%q != itself", a)
		}
	})
}

func TestPatchesObserveAndState(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	c := newTestPatches(t, checks.Env{}, Options{StateDir: dir, MaxPackages: 1})
	t0 := time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)
	c.now = func() time.Time { return t0 }
	st := &patchStatus{Backend: "apt", SecurityKnown: true, Held: new(0), Reboot: new(false), Updates: []pkgUpdate{
		{Name: "libssl3", Installed: "3.0.11-1~deb12u1", Candidate: "3.0.11-1~deb12u2", Source: "Debian-Security:12/stable-security", Security: true},
		{Name: "curl", Installed: "7.88.1-10", Candidate: "7.88.1-10+deb12u5", Source: "Debian:12.5/stable"},
	}}
	got, details := checktest.ObsByKey(t, c.observe(st))
	require.Equal(t, map[string]float64{
		`patches_pending{kind="all"}`: 2, `patches_pending{kind="security"}`: 1,
		"patches_oldest_security_pending_seconds": 0, "patches_held": 0, "reboot_required": 0,
		`patches_blocked{kind="all"}`: 0, `patches_blocked{kind="security"}`: 0,
	}, got)
	require.Equal(t, "Pending security updates (apt):\n  libssl3 3.0.11-1~deb12u1 → 3.0.11-1~deb12u2 (Debian-Security:12/stable-security)\n",
		details[`patches_pending{kind="security"}`])
	require.Equal(t, "Pending updates (apt):\n  curl 7.88.1-10 → 7.88.1-10+deb12u5 (Debian:12.5/stable)\n  … and 1 more\n",
		details[`patches_pending{kind="all"}`], "bounded by max_packages")

	// A second security update appears 3 days later; the first has waited 10 days.
	st.Updates = append(st.Updates, pkgUpdate{Name: "openssh-server", Installed: "1:9.2p1-2+deb12u1", Candidate: "1:9.2p1-2+deb12u2", Security: true})
	c.now = func() time.Time { return t0.Add(3 * 24 * time.Hour) }
	c.observe(st)
	// Restart: a new check reads the first-seen times back.
	c2 := newTestPatches(t, checks.Env{}, Options{StateDir: dir})
	c2.now = func() time.Time { return t0.Add(10 * 24 * time.Hour) }
	got, details = checktest.ObsByKey(t, c2.observe(st))
	require.Equal(t, 10*24*3600.0, got["patches_oldest_security_pending_seconds"])
	require.Contains(t, details["patches_oldest_security_pending_seconds"], "Oldest pending security update: libssl3, waiting at least since 2026-11-01T12:00:00Z (first seen by the agent 2026-11-01, 240h0m0s ago)")
	var saved patchesState
	require.NoError(t, json.Unmarshal(testdataAbs(t, filepath.Join(dir, "patches-patches.json")), &saved))
	require.Equal(t, 1, saved.Version)
	require.Equal(t, t0.Add(3*24*time.Hour), saved.FirstSeen["openssh-server"].UTC())

	// libssl3 installed: the oldest is now openssh-server, 7 days.
	st.Updates = slices.DeleteFunc(st.Updates, func(u pkgUpdate) bool { return u.Name == "libssl3" })
	got, _ = checktest.ObsByKey(t, c2.observe(st))
	require.Equal(t, 7*24*3600.0, got["patches_oldest_security_pending_seconds"])
	st.Updates = nil
	got, details = checktest.ObsByKey(t, c2.observe(st))
	require.Equal(t, 0.0, got["patches_oldest_security_pending_seconds"])
	require.Empty(t, details["patches_oldest_security_pending_seconds"])
	saved = patchesState{}
	require.NoError(t, json.Unmarshal(testdataAbs(t, filepath.Join(dir, "patches-patches.json")), &saved))
	require.Empty(t, saved.FirstSeen)
}

// TestPatchesDayOne: on the first run, a held security update whose
// release was dated 40 days ago has waited 40 days (a crit on day one),
// is counted in patches_pending and patches_blocked, and is named.
func TestPatchesDayOne(t *testing.T) {
	t.Parallel()
	c := newTestPatches(t, checks.Env{}, Options{})
	t0 := time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)
	c.now = func() time.Time { return t0 }
	st := &patchStatus{Backend: "apt", SecurityKnown: true, Updates: []pkgUpdate{
		{Name: "libssl3", Installed: "1", Candidate: "2", Source: "Debian-Security:12/stable-security", Security: true,
			Blocked: "held", Available: t0.Add(-40 * 24 * time.Hour)},
		{Name: "curl", Installed: "1", Candidate: "2", Source: "Debian:12.5/stable", Blocked: "kept back", Available: t0.Add(-90 * 24 * time.Hour)},
		{Name: "zlib1g", Installed: "1", Candidate: "2", Source: "Debian-Security:12/stable-security", Security: true,
			Available: t0.Add(time.Hour)},
	}}
	got, details := checktest.ObsByKey(t, c.observe(st))
	require.Equal(t, 40*24*3600.0, got["patches_oldest_security_pending_seconds"], "the release date, not the first sighting (now)")
	require.Equal(t, 3.0, got[`patches_pending{kind="all"}`])
	require.Equal(t, 2.0, got[`patches_pending{kind="security"}`])
	require.Equal(t, 2.0, got[`patches_blocked{kind="all"}`])
	require.Equal(t, 1.0, got[`patches_blocked{kind="security"}`], "curl is not a security update")
	require.Contains(t, details["patches_oldest_security_pending_seconds"],
		"Oldest pending security update: libssl3, waiting at least since 2026-09-22T12:00:00Z (listed in a release dated 2026-09-22, 960h0m0s ago)")
	require.Contains(t, details[`patches_pending{kind="security"}`], "  libssl3 1 → 2 (Debian-Security:12/stable-security) [held: not installed by an upgrade]\n")
	require.Contains(t, details[`patches_blocked{kind="all"}`], "  curl 1 → 2 (Debian:12.5/stable) [kept back: not installed by an upgrade]\n")
}

func testdataAbs(t *testing.T, p string) []byte {
	t.Helper()
	b, err := os.ReadFile(p)
	require.NoError(t, err)
	return b
}

func TestPatchesStateUnwritable(t *testing.T) {
	t.Parallel()
	// /proc does not take new directories, even for root.
	c := newTestPatches(t, checks.Env{}, Options{StateDir: "/proc/l2agent-test-state"})
	st := &patchStatus{Backend: "apt", SecurityKnown: true, Updates: []pkgUpdate{{Name: "a", Security: true}}}
	t0 := time.Now()
	c.now = func() time.Time { return t0 }
	c.observe(st)
	require.True(t, c.stateFailed, "the failure is noted (and logged once)")
	c.now = func() time.Time { return t0.Add(time.Hour) }
	got, _ := checktest.ObsByKey(t, c.observe(st))
	require.Equal(t, 3600.0, got["patches_oldest_security_pending_seconds"], "kept in memory")

	// A corrupt state file starts afresh.
	dir := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(dir, "patches-patches.json"), []byte("{nope"), 0o600))
	c = newTestPatches(t, checks.Env{}, Options{StateDir: dir})
	got, _ = checktest.ObsByKey(t, c.observe(st))
	require.Equal(t, 0.0, got["patches_oldest_security_pending_seconds"])
}

var secRE = regexp.MustCompile(DefaultAptSecurityPattern)

func TestPatchesConfig(t *testing.T) {
	t.Parallel()
	cfg, err := configs.Load("testdata/default-rules.yaml")
	require.NoError(t, err, "the proposed default rules are valid")
	require.Equal(t, "/var/lib/l2agent", cfg.Checks[0].Options.(*Options).StateDir)
	require.Equal(t, "dist-upgrade", cfg.Checks[0].Options.(*Options).Apt.Upgrade)

	_, err = configs.Parse("bad.yml", []byte(`checks:
  - name: p
    kind: patches
    patches:
      backend: pacman
      state_dir: relative
      max_packages: -1
      apt:
        upgrade: full-upgrade
        security_pattern: "("
        options: ["-o Dir=/x", "Dir::State=/y", "novalue"]
`))
	require.Error(t, err)
	for _, want := range []string{
		`bad.yml:5:16: patches backend "pacman": want one of auto, apt, dnf, yum, zypper, apk`,
		`bad.yml:6:18: patches state_dir "relative": must be an absolute path`,
		`bad.yml:7:21: patches max_packages must not be negative`,
		`bad.yml:9:18: apt upgrade "full-upgrade": want upgrade or dist-upgrade`,
		`bad.yml:10:27: apt security_pattern: bad regular expression`,
		`bad.yml:11:19: apt option "-o Dir=/x": want KEY=VALUE`,
		`bad.yml:11:49: apt option "novalue": want KEY=VALUE`,
	} {
		require.ErrorContains(t, err, want)
	}
}
