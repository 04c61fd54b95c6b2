package patches

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/l2agent/l2agent/checks"
	"github.com/l2agent/l2agent/configs"
	"github.com/l2agent/l2agent/internal/checktest"
	"github.com/l2agent/l2agent/internal/command"
)

func TestParseAptSimulation(t *testing.T) {
	t.Parallel()
	out := checktest.Testdata(t, "apt-get-s-dist-upgrade.txt")
	us := parseAptSimulation(out, secRE)
	require.Len(t, us, 128, "as many as the summary line says")
	require.Contains(t, string(out), "128 upgraded, 0 newly installed")
	sec := 0
	byName := map[string]pkgUpdate{}
	for _, u := range us {
		byName[u.Name] = u
		if u.Security {
			sec++
		}
	}
	require.Equal(t, strings.Count(string(out), "Debian-Security:")/2, sec, "Inst and Conf lines both name the source")
	require.Equal(t, pkgUpdate{Name: "libgcrypt20", Installed: "1.10.1-3", Candidate: "1.10.1-3+deb12u1",
		Source: "Debian:12.15/oldstable, Debian-Security:12/oldstable-security", Security: true}, byName["libgcrypt20"],
		"in both the point release and the security archive; a trailing [] (broken dependencies) is ignored")
	require.Equal(t, pkgUpdate{Name: "login", Installed: "1:4.13+dfsg1-1+deb12u1", Candidate: "1:4.13+dfsg1-1+deb12u2",
		Source: "Debian:12.15/oldstable"}, byName["login"])

	us = parseAptSimulation([]byte(`Inst linux-image-6.1.0-21-amd64 (6.1.90-1 Debian-Security:12/stable-security [amd64])
Inst linux-image-amd64 [6.1.85-1] (6.1.90-1 Debian-Security:12/stable-security [amd64])
Inst libc6:i386 [2.36-9+deb12u4] (2.36-9+deb12u7 Debian:12.6/stable [i386])
Inst broken
Inst x [1.0
Remv old [1.0]
`), secRE)
	require.Equal(t, []pkgUpdate{
		{Name: "linux-image-amd64", Installed: "6.1.85-1", Candidate: "6.1.90-1", Source: "Debian-Security:12/stable-security", Security: true},
		{Name: "libc6:i386", Installed: "2.36-9+deb12u4", Candidate: "2.36-9+deb12u7", Source: "Debian:12.6/stable"},
	}, us, "a new package (a new kernel ABI) is not an upgrade; malformed lines are skipped")
}

func FuzzParseAptSimulation(f *testing.F) {
	f.Add(string(checktest.Testdata(f, "apt-get-s-dist-upgrade.txt")))
	f.Add("Inst a [1] (2 L:1/x-security [all]) []\nInst b [] ()\nInst c [)\n")
	f.Fuzz(func(t *testing.T, s string) {
		us := parseAptSimulation([]byte(s), secRE)
		if len(us) > strings.Count(s, "Inst ") {
			t.Fatalf("%d updates from %d Inst lines", len(us), strings.Count(s, "Inst "))
		}
		for _, u := range us {
			if u.Name == "" || u.Security != secRE.MatchString(u.Source) {
				t.Fatalf("bad update %+v", u)
			}
		}
	})
}

const testDpkgStatus = `Package: linux-image-6.1.0-18-amd64
Status: install ok installed
Architecture: amd64
Version: 6.1.76-1
Description: Linux 6.1 for 64-bit PCs (signed)
 The Linux kernel 6.1 and modules for use on PCs with AMD64, Intel 64 or
 VIA Nano processors.

Package: linux-image-6.1.0-21-amd64
Status: install ok installed
Architecture: amd64
Version: 6.1.90-1

Package: linux-image-6.1.0-22-cloud-amd64
Status: install ok installed
Architecture: amd64
Version: 6.1.94-1

Package: linux-image-6.1.0-9-amd64
Status: deinstall ok config-files
Architecture: amd64
Version: 6.1.27-1

Package: linux-image-amd64
Status: install ok installed
Architecture: amd64
Version: 6.1.90-1

Package: unattended-upgrades
Status: install ok installed
Architecture: all
Version: 2.9.1+nmu3

Package: nginx
Status: hold ok installed
Architecture: amd64
Version: 1.22.1-9

Package: removed-held
Status: hold ok not-installed
Architecture: amd64
`

func TestParseDpkgStatusAndKernel(t *testing.T) {
	t.Parallel()
	ps, err := parseDpkgStatus(strings.NewReader(testDpkgStatus))
	require.NoError(t, err)
	require.Len(t, ps, 8)
	require.Equal(t, dpkgPackage{Name: "nginx", Arch: "amd64", Version: "1.22.1-9", Want: "hold", State: "installed"}, ps[6])

	msg, ok := newerKernel("6.1.0-18-amd64", ps)
	require.True(t, ok)
	require.Equal(t, "running kernel 6.1.0-18-amd64 is older than the installed linux-image-6.1.0-21-amd64 (6.1.90-1)", msg)
	_, ok = newerKernel("6.1.0-21-amd64", ps)
	require.False(t, ok, "running the newest")
	_, ok = newerKernel("6.1.0-22-cloud-amd64", ps)
	require.False(t, ok, "the cloud flavour is its own line")
	_, ok = newerKernel("6.1.0-30-amd64", ps[:1])
	require.False(t, ok, "running a kernel newer than any installed (its package removed)")
	msg, ok = newerKernel("6.1.0-9-amd64", ps)
	require.True(t, ok, "a removed package (config-files) does not count as running's version; ABIs compare")
	require.Contains(t, msg, "6.1.0-21-amd64")
	_, ok = newerKernel("6.6.13+bpo-amd64", ps)
	require.False(t, ok)
	_, ok = newerKernel("5.15.0-91-generic", ps)
	require.False(t, ok, "no package of that flavour")
}

func FuzzParseDpkgStatus(f *testing.F) {
	f.Add(testDpkgStatus)
	f.Add("Package: a\nStatus: install ok installed\n\n\n Package: b\nVersion:\n")
	f.Fuzz(func(t *testing.T, s string) {
		ps, err := parseDpkgStatus(strings.NewReader(s))
		if err != nil {
			return
		}
		for _, p := range ps {
			if p.Name == "" {
				t.Fatal("package without a name")
			}
		}
		newerKernel("6.1.0-18-amd64", ps)
	})
}

func TestParseAptHistory(t *testing.T) {
	t.Parallel()
	got := parseAptHistory(checktest.Testdata(t, "apt-history.log"), time.UTC)
	require.Equal(t, time.Date(2026, 11, 25, 0, 22, 34, 0, time.UTC), got, "the last entry with an Upgrade line")
	got = parseAptHistory([]byte(`
Start-Date: 2024-03-01  10:00:00
Upgrade: a:amd64 (1, 2)
End-Date: 2024-03-01  10:00:05

Start-Date: 2024-03-02  10:00:00
Upgrade: b:amd64 (1, 2)
Error: Sub-process /usr/bin/dpkg returned an error code (1)
End-Date: 2024-03-02  10:00:09
`), time.UTC)
	require.Equal(t, time.Date(2024, 3, 1, 10, 0, 5, 0, time.UTC), got, "a failed upgrade does not count")
	require.True(t, parseAptHistory([]byte("Start-Date: x\nInstall: a (1)\nEnd-Date: 2024-03-01  10:00:05\n"), time.UTC).IsZero())
}

func FuzzParseAptHistory(f *testing.F) {
	f.Add(string(checktest.Testdata(f, "apt-history.log")))
	f.Fuzz(func(t *testing.T, s string) {
		if got := parseAptHistory([]byte(s), time.UTC); !got.IsZero() && !strings.Contains(s, "Upgrade") {
			t.Fatal("an upgrade time without an Upgrade line")
		}
	})
}

func TestParseAptKeptBack(t *testing.T) {
	t.Parallel()
	out := []byte(`Reading package lists...
The following packages have been kept back:
  l2a-heldsec l2a-kept
  libfoo:i386
The following packages will be upgraded:
  l2a-other l2a-sec
2 upgraded, 0 newly installed, 0 to remove and 3 not upgraded.
Inst l2a-other [1.0] (2.0 L2agent:stable [all])
`)
	require.Equal(t, []string{"l2a-heldsec", "l2a-kept", "libfoo:i386"}, parseAptKeptBack(out))
	require.Empty(t, parseAptKeptBack(checktest.Testdata(t, "apt-get-s-dist-upgrade.txt")), "128 upgraded, 0 not upgraded")
}

func FuzzParseAptKeptBack(f *testing.F) {
	f.Add("The following packages have been kept back:\n  a b\nx\n  c\n")
	f.Fuzz(func(t *testing.T, s string) {
		for _, n := range parseAptKeptBack([]byte(s)) {
			if n == "" || strings.ContainsAny(n, " \t\n") {
				t.Fatalf("bad name %q", n)
			}
		}
	})
}

const testInRelease = `-----BEGIN PGP SIGNED MESSAGE-----
Hash: SHA256

Origin: Debian
Label: Debian-Security
Suite: stable-security
Version: 12
Codename: bookworm-security
Date: Thu, 26 Nov 2026 06:12:44 UTC
Valid-Until: Thu, 03 Dec 2026 06:12:44 UTC
Acquire-By-Hash: yes
Architectures: amd64 arm64 armel armhf i386 mips64el ppc64el s390x
Components: updates/main updates/contrib updates/non-free updates/non-free-firmware
Description: Debian 12 - Security Updates
SHA256:
 Date: not a field
-----BEGIN PGP SIGNATURE-----
Date: Fri, 01 Jan 2100 00:00:00 UTC
`

func TestAptReleaseDates(t *testing.T) {
	t.Parallel()
	r := parseAptRelease([]byte(testInRelease))
	date := time.Date(2026, 11, 26, 6, 12, 44, 0, time.UTC)
	require.True(t, date.Equal(r.Date), "%v", r.Date)
	require.Equal(t, []string{"Debian-Security:12/stable-security", "Debian-Security:12/bookworm-security"}, r.names(), "as apt-get -s prints them")
	require.Equal(t, []string{"L2agent:stable"}, aptRelease{Suite: "stable", Label: "L2agent"}.names())
	require.Equal(t, []string{"stable"}, aptRelease{Suite: "stable"}.names())
	r2 := parseAptRelease([]byte("Label: Debian\nSuite: stable\nVersion: 12.5\nDate: Sat, 10 Feb 2024 09:44:45 +0000\n"))
	require.False(t, r2.Date.IsZero())

	dir := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(dir, "deb.debian.org_debian-security_dists_bookworm-security_InRelease"), []byte(testInRelease), 0o644))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "deb.debian.org_debian_dists_bookworm_InRelease"), []byte("Label: Debian\nSuite: stable\nVersion: 12.5\nDate: Sat, 10 Feb 2024 09:44:45 +0000\n"), 0o644))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "mirror2_dists_bookworm-security_Release"), []byte("Label: Debian-Security\nSuite: stable-security\nVersion: 12\nDate: Fri, 27 Nov 2026 00:00:00 UTC\n"), 0o644))
	dates := aptReleaseDates(dir)
	require.True(t, time.Date(2026, 11, 27, 0, 0, 0, 0, time.UTC).Equal(dates["Debian-Security:12/stable-security"]), "two mirrors of one release: the newer Date")
	require.True(t, date.Equal(dates["Debian-Security:12/bookworm-security"]))
	require.True(t, r2.Date.Equal(availableSince("Debian:12.5/stable, Debian-Security:12/stable-security", dates)),
		"in the point release too: published before its Date")
	require.True(t, availableSince("Other:1/x", dates).IsZero())
}

func FuzzParseAptRelease(f *testing.F) {
	f.Add(testInRelease)
	f.Fuzz(func(t *testing.T, s string) {
		r := parseAptRelease([]byte(s))
		for _, n := range r.names() {
			if n == "" {
				t.Fatal("empty release name")
			}
		}
		if !r.Date.IsZero() && !strings.Contains(s, "Date:") {
			t.Fatal("a date without a Date field")
		}
	})
}

func TestParseAptPolicy(t *testing.T) {
	t.Parallel()
	ps := parseAptPolicy(checktest.Testdata(t, "apt-cache-policy.txt"))
	require.Equal(t, []aptPolicy{
		{Name: "libc6", Installed: "2.36-9+deb12u14", Candidate: "2.36-9+deb12u14",
			Sources: []aptSource{{URI: "http://deb.debian.org/debian", Dist: "bookworm"}}},
		{Name: "openssl", Installed: "3.0.19-1~deb12u2", Candidate: "3.0.22-1~deb12u2",
			Sources: []aptSource{{URI: "http://deb.debian.org/debian-security", Dist: "bookworm-security"}}},
		{Name: "base-files", Installed: "12.4+deb12u11", Candidate: "12.4+deb12u15",
			Sources: []aptSource{{URI: "http://deb.debian.org/debian", Dist: "bookworm"}}},
	}, ps, "only the candidate's sources; not the dpkg status line")
	require.Equal(t, []aptPolicy{{Name: "new:i386", Candidate: "1.0-1"}},
		parseAptPolicy([]byte("new:i386:\n  Installed: (none)\n  Candidate: 1.0-1\n  Version table:\n     1.0-1 500 (phased 10%)\n        500 x\n")))

	require.Equal(t, "deb.debian.org_debian-security_dists_bookworm-security_", aptListsPrefix("http://deb.debian.org/debian-security", "bookworm-security"),
		"as in /var/lib/apt/lists")
	require.Equal(t, "_srv_repo_dists_stable_", aptListsPrefix("file:/srv/repo", "stable"))
	require.Equal(t, "mirror.example:8080_a%5fb_dists_x_", aptListsPrefix("https://user:secret@mirror.example:8080/a_b/", "x"), "no credentials")

	dir := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(dir, "deb.debian.org_debian-security_dists_bookworm-security_InRelease"), []byte(testInRelease), 0o644))
	c := newTestPatches(t, checks.Env{}, Options{})
	us := c.policyUpdates(ps, dir)
	require.Equal(t, []pkgUpdate{
		{Name: "openssl", Installed: "3.0.19-1~deb12u2", Candidate: "3.0.22-1~deb12u2", Source: "Debian-Security:12/stable-security", Security: true},
		{Name: "base-files", Installed: "12.4+deb12u11", Candidate: "12.4+deb12u15", Source: "bookworm"},
	}, us, "named from the Release file where the lists have it, else by the suite")
}

func FuzzParseAptPolicy(f *testing.F) {
	f.Add(string(checktest.Testdata(f, "apt-cache-policy.txt")))
	f.Add("a:\n  Installed: 1\n  Candidate: 2\n *** 2\n        500 u d/c\n     2 1\n        1 2 3 4\n")
	f.Fuzz(func(t *testing.T, s string) {
		for _, p := range parseAptPolicy([]byte(s)) {
			if p.Name == "" && len(p.Sources) > 0 {
				t.Fatalf("sources without a package: %+v", p)
			}
			for _, src := range p.Sources {
				if strings.ContainsAny(aptListsPrefix(src.URI, src.Dist), "/ ") {
					t.Fatalf("bad prefix for %+v", src)
				}
			}
		}
	})
}

func TestParseShellAssignments(t *testing.T) {
	t.Parallel()
	require.Equal(t, map[string]string{"A": "/var/lib/apt/lists/", "B": "it's", "E": ""},
		parseShellAssignments([]byte("A='/var/lib/apt/lists/'\nB='it'\\''s'\nE=''\nC=unquoted\nnothing\n")))
}

// aptRepo is a local apt repository with its own sources list, lists,
// cache, dpkg status and logs, laid out like a root filesystem under Root.
type aptRepo struct {
	Root         string
	Options      []string  // -o values pointing apt at it
	SecurityDate time.Time // Date of the stable-security Release file
}

// debPackage builds a dummy .deb with dpkg-deb.
func debPackage(t *testing.T, dpkgDeb, dir, name, version string, control ...string) {
	t.Helper()
	src := filepath.Join(t.TempDir(), name)
	require.NoError(t, os.MkdirAll(filepath.Join(src, "DEBIAN"), 0o755))
	control = append([]string{fmt.Sprintf("Package: %s\nVersion: %s\nArchitecture: all\nMaintainer: l2agent tests <tests@l2agent.invalid>\nDescription: l2agent test package\n", name, version)}, control...)
	require.NoError(t, os.WriteFile(filepath.Join(src, "DEBIAN", "control"), []byte(strings.Join(control, "")), 0o644))
	out, err := exec.Command(dpkgDeb, "--root-owner-group", "-Zgzip", "--build", src, filepath.Join(dir, name+"_"+version+"_all.deb")).CombinedOutput()
	require.NoError(t, err, "%s", out)
}

// newAptRepo builds the repository: l2a-sec 1.1, l2a-heldsec 1.1,
// l2a-kept 1.1 (which needs the new package l2a-newdep) and l2a-broken 1.1
// (which needs l2a-missing, found nowhere) in suite
// stable-security (label L2agent-Security, its Release dated 40 days ago),
// l2a-other 2.0 and l2a-held 1.5 in stable; the dpkg status has all but
// l2a-newdep at 1.0, l2a-held and l2a-heldsec on hold. It runs apt-get
// update with the repository's own options (the test's setup, never the
// check's).
func newAptRepo(t *testing.T) aptRepo {
	t.Helper()
	checktest.NeedRoot(t)
	dpkgDeb, ftparchive := checktest.NeedTool(t, "dpkg-deb"), checktest.NeedTool(t, "apt-ftparchive")
	root := t.TempDir()
	// apt fetches as _apt; let it read the repository.
	require.NoError(t, os.Chmod(root, 0o755))
	mk := func(p ...string) string {
		d := filepath.Join(append([]string{root}, p...)...)
		require.NoError(t, os.MkdirAll(d, 0o755))
		return d
	}
	repo := mk("srv", "repo")
	secDate := time.Now().Add(-40 * 24 * time.Hour).UTC().Truncate(time.Second)
	for _, s := range []struct{ suite, label, pool string }{{"stable", "L2agent", "main"}, {"stable-security", "L2agent-Security", "security"}} {
		pool := mk("srv", "repo", "pool", s.pool)
		if s.pool == "main" {
			debPackage(t, dpkgDeb, pool, "l2a-other", "2.0")
			debPackage(t, dpkgDeb, pool, "l2a-held", "1.5")
		} else {
			debPackage(t, dpkgDeb, pool, "l2a-sec", "1.1")
			debPackage(t, dpkgDeb, pool, "l2a-heldsec", "1.1")
			debPackage(t, dpkgDeb, pool, "l2a-kept", "1.1", "Depends: l2a-newdep\n")
			debPackage(t, dpkgDeb, pool, "l2a-newdep", "1.0")
			debPackage(t, dpkgDeb, pool, "l2a-broken", "1.1", "Depends: l2a-missing\n")
		}
		bin := mk("srv", "repo", "dists", s.suite, "main", "binary-all")
		cmd := exec.Command(ftparchive, "packages", "pool/"+s.pool)
		cmd.Dir = repo
		out, err := cmd.Output()
		require.NoError(t, err)
		require.NoError(t, os.WriteFile(filepath.Join(bin, "Packages"), out, 0o644))
		cmd = exec.Command(ftparchive,
			"-o", "APT::FTPArchive::Release::Origin="+s.label, "-o", "APT::FTPArchive::Release::Label="+s.label,
			"-o", "APT::FTPArchive::Release::Suite="+s.suite, "-o", "APT::FTPArchive::Release::Codename="+s.suite,
			"-o", "APT::FTPArchive::Release::Architectures=amd64 arm64 all", "-o", "APT::FTPArchive::Release::Components=main",
			"release", "dists/"+s.suite)
		cmd.Dir = repo
		out, err = cmd.Output()
		require.NoError(t, err)
		if s.pool == "security" {
			out = regexp.MustCompile(`(?m)^Date: .*$`).ReplaceAll(out, []byte("Date: "+secDate.Format(time.RFC1123Z)))
		}
		require.NoError(t, os.WriteFile(filepath.Join(repo, "dists", s.suite, "Release"), out, 0o644))
	}
	etc := mk("etc", "apt")
	mk("etc", "apt", "sources.list.d")
	mk("etc", "apt", "preferences.d")
	require.NoError(t, os.WriteFile(filepath.Join(etc, "sources.list"), []byte(fmt.Sprintf(
		"deb [trusted=yes] file:%[1]s stable main\ndeb [trusted=yes] file:%[1]s stable-security main\n", repo)), 0o644))
	dpkgDir := mk("var", "lib", "dpkg")
	var status strings.Builder
	for _, p := range []struct{ name, status string }{{"l2a-sec", "install"}, {"l2a-other", "install"}, {"l2a-held", "hold"}, {"l2a-heldsec", "hold"}, {"l2a-kept", "install"}, {"l2a-broken", "install"}} {
		fmt.Fprintf(&status, "Package: %s\nStatus: %s ok installed\nPriority: optional\nMaintainer: l2agent tests <tests@l2agent.invalid>\nArchitecture: all\nVersion: 1.0\nDescription: l2agent test package\n\n", p.name, p.status)
	}
	status.WriteString(testDpkgStatus)
	require.NoError(t, os.WriteFile(filepath.Join(dpkgDir, "status"), []byte(status.String()), 0o644))
	mk("var", "lib", "apt", "lists", "partial")
	mk("var", "cache", "apt", "archives", "partial")
	mk("var", "log", "apt")
	r := aptRepo{Root: root, SecurityDate: secDate, Options: []string{
		"Dir::State=" + filepath.Join(root, "var/lib/apt"),
		"Dir::State::status=" + filepath.Join(dpkgDir, "status"),
		"Dir::Cache=" + filepath.Join(root, "var/cache/apt"),
		"Dir::Etc::sourcelist=" + filepath.Join(etc, "sources.list"),
		"Dir::Etc::sourceparts=" + filepath.Join(etc, "sources.list.d"),
		"Dir::Etc::preferences=" + filepath.Join(etc, "preferences"),
		"Dir::Etc::preferencesparts=" + filepath.Join(etc, "preferences.d"),
		"Dir::Log=" + filepath.Join(root, "var/log/apt"),
		"Acquire::Languages=none",
	}}
	out := aptUpdate(t, r)
	require.NotContains(t, string(out), "Err:", "%s", out)
	return r
}

// aptUpdate runs apt-get update with the repository's options and returns
// its output.
func aptUpdate(t *testing.T, r aptRepo) []byte {
	t.Helper()
	argv := []string{"-q", "-o", "APT::Sandbox::User=root"}
	for _, o := range r.Options {
		argv = append(argv, "-o", o)
	}
	cmd := exec.Command(checktest.NeedTool(t, "apt-get"), append(argv, "update")...)
	cmd.Env = command.LocaleC(os.Environ())
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "apt-get update: %s", out)
	return out
}

// aptSimulate runs apt-get -s op with the repository's options (and apt's
// default planner log) and returns the numbers of upgrades and of updates
// not upgraded that apt reports, and how many upgrades come from the
// security suite.
func aptSimulate(t *testing.T, r aptRepo, op string) (upgraded, notUpgraded, security int) {
	t.Helper()
	argv := []string{"-o", "Debug::NoLocking=1"}
	for _, o := range r.Options {
		argv = append(argv, "-o", o)
	}
	cmd := exec.Command(checktest.NeedTool(t, "apt-get"), append(argv, "-s", op)...)
	cmd.Env = command.LocaleC(os.Environ())
	out, err := cmd.Output()
	require.NoError(t, err)
	m := regexp.MustCompile(`(?m)^(\d+) upgraded, .* and (\d+) not upgraded\.$`).FindSubmatch(out)
	require.NotNil(t, m, "%s", out)
	upgraded, _ = strconv.Atoi(string(m[1]))
	notUpgraded, _ = strconv.Atoi(string(m[2]))
	security = len(regexp.MustCompile(`(?m)^Inst \S+ \[.*-security \[`).FindAll(out, -1))
	return upgraded, notUpgraded, security
}

// snapshotDir records every file under dir: path, size, mode and
// modification time.
func snapshotDir(t *testing.T, dir string) map[string]string {
	t.Helper()
	m := map[string]string{}
	require.NoError(t, filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		m[p] = fmt.Sprintf("%d %v %s", fi.Size(), fi.Mode(), fi.ModTime().Format(time.RFC3339Nano))
		return nil
	}))
	return m
}

// snapshotHostApt records the modification times of the host's apt state.
func snapshotHostApt() map[string]time.Time {
	m := map[string]time.Time{}
	for _, p := range []string{"/var/lib/dpkg/status", "/var/lib/apt/lists", "/var/lib/apt/extended_states", "/var/cache/apt", "/var/cache/apt/pkgcache.bin", "/var/log/apt/history.log"} {
		if fi, err := os.Stat(p); err == nil {
			m[p] = fi.ModTime()
		}
	}
	return m
}

// TestAptReal builds a local apt repository and points the check at it
// with apt's own -o options, then through paths.rootfs.
func TestAptReal(t *testing.T) {
	t.Parallel()
	host := snapshotHostApt()
	r := newAptRepo(t)

	// A reboot is owed: flag file, and a newer kernel than the running one.
	run := filepath.Join(r.Root, "var", "run")
	require.NoError(t, os.MkdirAll(run, 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(run, "reboot-required"), []byte("*** System restart required ***\n"), 0o644))
	require.NoError(t, os.WriteFile(filepath.Join(run, "reboot-required.pkgs"), []byte("linux-image-6.1.0-21-amd64\nlibc6\nlibc6\n"), 0o644))
	procfs := t.TempDir()
	require.NoError(t, os.MkdirAll(filepath.Join(procfs, "sys", "kernel"), 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(procfs, "sys", "kernel", "osrelease"), []byte("6.1.0-18-amd64\n"), 0o644))
	require.NoError(t, os.WriteFile(filepath.Join(r.Root, "var", "log", "apt", "history.log"), checktest.Testdata(t, "apt-history.log"), 0o644))

	// apt's own figures. As root, apt-get -s writes its planner log.
	logDir := filepath.Join(r.Root, "var", "log", "apt")
	want := map[string][3]int{} // op: upgraded, not upgraded, security upgrades
	for _, op := range []string{"dist-upgrade", "upgrade"} {
		u, n, s := aptSimulate(t, r, op)
		want[op] = [3]int{u, n, s}
	}
	require.Equal(t, [3]int{2, 4, 1}, want["upgrade"], "l2a-other and l2a-sec; l2a-held, l2a-heldsec, l2a-kept, l2a-broken not upgraded")
	require.Equal(t, [3]int{3, 3, 2}, want["dist-upgrade"], "l2a-kept too; the held two and l2a-broken not upgraded")
	require.FileExists(t, filepath.Join(logDir, "eipp.log.xz"), "apt-get -s as root writes the planner log")
	require.NoError(t, os.Remove(filepath.Join(logDir, "eipp.log.xz")))
	before := map[string]map[string]string{}
	for _, d := range []string{logDir, filepath.Join(r.Root, "var", "lib"), filepath.Join(r.Root, "var", "cache")} {
		before[d] = snapshotDir(t, d)
	}

	opts := Options{Backend: "apt", Apt: AptOptions{
		Options:            append(r.Options, "APT::Periodic::Unattended-Upgrade=1"),
		RebootRequiredFile: filepath.Join(run, "reboot-required"),
	}}
	for _, op := range []string{"dist-upgrade", "upgrade"} {
		opts.Apt.Upgrade = op
		c := newTestPatches(t, checks.Env{Paths: configs.Paths{Rootfs: "/", Procfs: procfs}}, opts)
		start := time.Now()
		obs, err := c.Run(context.Background())
		require.NoError(t, err)
		t.Logf("apt %s: %s", op, time.Since(start))
		got, details := checktest.ObsByKey(t, obs)
		require.Equal(t, float64(want[op][0]+want[op][1]), got[`patches_pending{kind="all"}`], "%s: apt's upgraded + not upgraded", op)
		require.Equal(t, 4.0, got[`patches_pending{kind="security"}`], "%s: l2a-sec, l2a-kept, l2a-heldsec, l2a-broken", op)
		require.Equal(t, float64(want[op][1]), got[`patches_blocked{kind="all"}`], "%s: apt's not upgraded", op)
		require.Equal(t, float64(4-want[op][2]), got[`patches_blocked{kind="security"}`], op)
		require.Equal(t, 3.0, got["patches_held"], "l2a-held, l2a-heldsec, and nginx of the kernel fixture")
		require.Equal(t, 1.0, got["reboot_required"])
		age := got["patches_oldest_security_pending_seconds"]
		require.GreaterOrEqual(t, age, time.Since(r.SecurityDate).Seconds()-1, "day one: waiting since the security Release's Date")
		require.Less(t, age, time.Since(r.SecurityDate).Seconds()+300)
		require.Contains(t, details["patches_oldest_security_pending_seconds"], "Oldest pending security update: l2a-broken, waiting at least since "+
			r.SecurityDate.Format(time.RFC3339)+" (listed in a release dated "+r.SecurityDate.Format(time.DateOnly))
		require.Equal(t, 1.0, got["patches_unattended_upgrades_enabled"])
		require.Less(t, got["patches_lists_age_seconds"], 300.0, "apt-get update ran just now")
		require.Equal(t, float64(time.Date(2026, 11, 25, 0, 22, 34, 0, time.Local).Unix()), got["patches_last_upgrade_timestamp_seconds"])
		sec := details[`patches_pending{kind="security"}`]
		require.Contains(t, sec, "l2a-sec 1.0 → 1.1 (L2agent-Security:stable-security)\n")
		require.Contains(t, sec, "l2a-heldsec 1.0 → 1.1 (L2agent-Security:stable-security) [held: not installed by an upgrade]\n")
		require.Contains(t, sec, "l2a-broken 1.0 → 1.1 (L2agent-Security:stable-security) [kept back: not installed by an upgrade]\n",
			"kept back by dist-upgrade too: from apt-cache policy, its source named from the lists' Release file")
		if op == "upgrade" {
			require.Contains(t, sec, "l2a-kept 1.0 → 1.1 (L2agent-Security:stable-security) [kept back: not installed by an upgrade]\n")
		} else {
			require.Contains(t, sec, "l2a-kept 1.0 → 1.1 (L2agent-Security:stable-security)\n")
		}
		require.NotContains(t, sec, "l2a-other")
		require.NotContains(t, sec, "l2a-newdep", "a new package is not an upgrade")
		require.Contains(t, details[`patches_pending{kind="all"}`], "l2a-other 1.0 → 2.0 (L2agent:stable)")
		require.Contains(t, details[`patches_blocked{kind="all"}`], "l2a-held 1.0 → 1.5 (L2agent:stable) [held: not installed by an upgrade]")
		require.Contains(t, details["reboot_required"], "reboot-required exists (packages: libc6, linux-image-6.1.0-21-amd64)")
		require.Contains(t, details["reboot_required"], "running kernel 6.1.0-18-amd64 is older than the installed linux-image-6.1.0-21-amd64")
	}
	for d, files := range before {
		require.Equal(t, files, snapshotDir(t, d), "the check wrote nothing under %s (no eipp.log.xz)", d)
	}

	// Through paths.rootfs: apt gets Dir=<rootfs> and finds the same.
	rootOpts := Options{Backend: "apt"}
	c := newTestPatches(t, checks.Env{Paths: configs.Paths{Rootfs: r.Root, Procfs: procfs}}, rootOpts)
	obs, err := c.Run(context.Background())
	require.NoError(t, err)
	got, _ := checktest.ObsByKey(t, obs)
	require.Equal(t, 6.0, got[`patches_pending{kind="all"}`])
	require.Equal(t, 4.0, got[`patches_pending{kind="security"}`])
	require.Equal(t, 0.0, got["patches_unattended_upgrades_enabled"], "installed, but APT::Periodic::Unattended-Upgrade is not set")

	// While another process holds the dpkg frontend lock, the run fails at
	// once (the alerts become unknown) instead of waiting.
	release := holdLock(t, filepath.Join(r.Root, "var", "lib", "dpkg", "lock-frontend"))
	start := time.Now()
	_, err = c.Run(context.Background())
	require.ErrorContains(t, err, "lock-frontend is held by process")
	require.Less(t, time.Since(start), 5*time.Second)
	release()
	_, err = c.Run(context.Background())
	require.NoError(t, err, "lock released")

	require.Equal(t, host, snapshotHostApt(), "the host's apt state is untouched")
}

// holdLock makes a child process take dpkg's kind of lock (fcntl F_SETLK)
// on path, as apt and dpkg do, until the returned function is called.
func holdLock(t *testing.T, path string) (release func()) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestHelperHoldLock$")
	cmd.Env = append(os.Environ(), "L2AGENT_TEST_HOLD_LOCK="+path)
	stdin, err := cmd.StdinPipe()
	require.NoError(t, err)
	stdout, err := cmd.StdoutPipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start())
	line, err := bufio.NewReader(stdout).ReadString('\n')
	require.NoError(t, err)
	require.Equal(t, "locked\n", line)
	done := false
	release = func() {
		if !done {
			done = true
			stdin.Close()
			cmd.Wait()
		}
	}
	t.Cleanup(release)
	return release
}

// TestHelperHoldLock is the child of holdLock; it does nothing in a normal run.
func TestHelperHoldLock(t *testing.T) {
	path := os.Getenv("L2AGENT_TEST_HOLD_LOCK")
	if path == "" {
		return
	}
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o640)
	if err != nil {
		fmt.Println("error:", err)
		os.Exit(1)
	}
	lk := syscall.Flock_t{Type: syscall.F_WRLCK}
	if err := syscall.FcntlFlock(f.Fd(), syscall.F_SETLK, &lk); err != nil {
		fmt.Println("error:", err)
		os.Exit(1)
	}
	fmt.Println("locked")
	var b bytes.Buffer
	b.ReadFrom(os.Stdin) // until the parent closes it
	os.Exit(0)
}

// TestAptChroot: with paths.chroot apt runs chrooted into the rootfs (the
// host's own apt and configuration), so it gets no Dir option, and the files
// apt-config names are read under the rootfs, through the host's symbolic
// links (its /var/run → /run).
func TestAptChroot(t *testing.T) {
	t.Parallel()
	root := t.TempDir()
	for p, content := range map[string]string{
		"var/lib/dpkg/status":      testDpkgStatus,
		"run/reboot-required":      "*** System restart required ***\n",
		"run/reboot-required.pkgs": "libc6\n",
	} {
		require.NoError(t, os.MkdirAll(filepath.Join(root, filepath.Dir(p)), 0o755))
		require.NoError(t, os.WriteFile(filepath.Join(root, p), []byte(content), 0o644))
	}
	require.NoError(t, os.MkdirAll(filepath.Join(root, "var/lib/apt/lists"), 0o755))
	require.NoError(t, os.Symlink("/run", filepath.Join(root, "var/run")))
	procfs := t.TempDir()
	require.NoError(t, os.MkdirAll(filepath.Join(procfs, "sys", "kernel"), 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(procfs, "sys", "kernel", "osrelease"), []byte("6.1.0-18-amd64\n"), 0o644))

	c := newTestPatches(t, checks.Env{Paths: configs.Paths{Rootfs: root, Procfs: procfs, Chroot: true}}, Options{Backend: "apt"})
	require.Equal(t, root, c.env.CommandRoot())
	f := &fakeRunner{outputs: map[string]command.Output{
		"apt-config": {Stdout: []byte("STATUS='/var/lib/dpkg/status'\nLISTS='/var/lib/apt/lists/'\nSTATE='/var/lib/apt/'\nHISTORY='/var/log/apt/history.log'\nUU='1'\n")},
		"apt-get":    {Stdout: []byte("Inst libc6 [2.36-9+deb12u4] (2.36-9+deb12u7 Debian-Security:12/stable-security [amd64])\n")},
	}}
	c.run = f.run
	obs, err := c.Run(context.Background())
	require.NoError(t, err)
	got, details := checktest.ObsByKey(t, obs)
	require.Equal(t, 1.0, got[`patches_pending{kind="security"}`])
	require.Equal(t, 1.0, got["patches_held"], "nginx of the fixture, from the rootfs's dpkg status")
	require.Equal(t, 1.0, got["reboot_required"], "the flag under the rootfs's /run, through its /var/run link")
	require.Contains(t, details["reboot_required"], "libc6")
	require.Len(t, f.calls, 3, "apt-config, the simulation, and a second one because nginx is held")
	require.Contains(t, f.calls[2], "APT::Ignore-Hold=true")
	for _, argv := range f.calls {
		require.NotContains(t, strings.Join(argv, " "), "Dir=", "the chrooted apt reads its own root")
		if filepath.Base(argv[0]) == "apt-get" {
			require.Contains(t, argv, "Dir::Log::Planner=", "no planner log")
		}
	}

	// Without chroot, the same rootfs gives apt a Dir option instead.
	c = newTestPatches(t, checks.Env{Paths: configs.Paths{Rootfs: root, Procfs: procfs}}, Options{Backend: "apt"})
	require.Empty(t, c.env.CommandRoot())
	require.Equal(t, []string{"-o", "Dir=" + root}, c.aptArgs())
}

// TestAptListsRefreshedUnchangedMirror: apt-get update against a mirror
// that has not changed rewrites no list and no Release file (their
// mtimes are the mirror's), yet the lists were refreshed; a failed update
// is not a refresh.
func TestAptListsRefreshedUnchangedMirror(t *testing.T) {
	t.Parallel()
	r := newAptRepo(t)
	old := time.Now().Add(-40 * 24 * time.Hour)
	setBack := func() {
		for _, d := range []string{filepath.Join(r.Root, "srv"), filepath.Join(r.Root, "var", "lib", "apt")} {
			require.NoError(t, filepath.WalkDir(d, func(p string, _ os.DirEntry, err error) error {
				if err != nil {
					return err
				}
				return os.Chtimes(p, old, old)
			}))
		}
	}
	c := newTestPatches(t, checks.Env{Paths: configs.Paths{Rootfs: "/", Procfs: t.TempDir()}}, Options{Backend: "apt", Apt: AptOptions{Options: r.Options}})
	listsAge := func() float64 {
		obs, err := c.Run(context.Background())
		require.NoError(t, err)
		got, _ := checktest.ObsByKey(t, obs)
		return got["patches_lists_age_seconds"]
	}
	lists := filepath.Join(r.Root, "var", "lib", "apt", "lists")
	release, err := filepath.Glob(filepath.Join(lists, "*_Release"))
	require.NoError(t, err)
	require.NotEmpty(t, release)

	setBack()
	require.Greater(t, listsAge(), 39*24*3600.0, "nothing refreshed since the set-back")
	aptUpdate(t, r) // the mirror is unchanged
	for _, f := range append(release, lists) {
		fi, err := os.Stat(f)
		require.NoError(t, err)
		require.True(t, fi.ModTime().Before(time.Now().Add(-39*24*time.Hour)), "apt left %s as it was", f)
	}
	require.Less(t, listsAge(), 300.0, "refreshed just now: lists/partial")

	// An update that cannot reach the mirror is no refresh.
	setBack()
	require.NoError(t, os.Rename(filepath.Join(r.Root, "srv", "repo"), filepath.Join(r.Root, "srv", "gone")))
	argv := []string{"-q", "-o", "APT::Sandbox::User=root"}
	for _, o := range r.Options {
		argv = append(argv, "-o", o)
	}
	cmd := exec.Command(checktest.NeedTool(t, "apt-get"), append(argv, "update")...)
	cmd.Env = command.LocaleC(os.Environ())
	out, _ := cmd.CombinedOutput()
	require.Contains(t, string(out), "Failed to fetch", "%s", out)
	require.Greater(t, listsAge(), 39*24*3600.0, "a failed update does not count")

	// apt's daily job marks a successful update in periodic/update-stamp.
	periodic := filepath.Join(r.Root, "var", "lib", "apt", "periodic")
	require.NoError(t, os.MkdirAll(periodic, 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(periodic, "update-stamp"), nil, 0o644))
	require.Less(t, listsAge(), 300.0, "periodic/update-stamp")
}
