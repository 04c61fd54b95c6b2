// Package packaging_test builds the .deb and .rpm with build.sh and installs, upgrades and
// purges the .deb with the real dpkg of the test machine, whose PID 1 is not systemd (as in a
// chroot or an image build). It needs root; under CI=true a missing dpkg is a failure,
// elsewhere a skip. The packages under a running systemd: deploy/systemd.
package packaging_test

import (
	"bytes"
	"compress/gzip"
	"context"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/l2agent/l2agent/deploy/testenv"
)

// snapshotVersion is the default version off a tag; releaseVersion on a tag or after one.
var (
	snapshotVersion = regexp.MustCompile(`^0\.0\.0~git[0-9]{8}\.[0-9a-f]{7}$`)
	releaseVersion  = regexp.MustCompile(`^[0-9]+\.[0-9]+\.[0-9]+(~[0-9A-Za-z.]+)?(\+git[0-9]{8}\.[0-9a-f]{7})?$`)
)

func TestDebInstallUpgradePurge(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root (dpkg -i)")
	}
	ci := os.Getenv("CI") == "true"
	if _, err := exec.LookPath("dpkg"); err != nil {
		if ci {
			t.Fatal("CI=true and dpkg is missing: the .deb cannot be tested")
		}
		t.Skip("dpkg not installed")
	}
	testenv.LockPackageTests(t)
	testenv.SkipIfInstalled(t, "l2agent")
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	// Even a failed test leaves no package behind, nor the system user the package made (it
	// keeps it on purge, as Debian does; this host is not to keep it).
	testenv.RemovePackageUserAfter(t) // runs after the purge below
	t.Cleanup(func() {
		if out, err := exec.Command("dpkg", "--purge", "l2agent").CombinedOutput(); err != nil {
			t.Logf("cleanup: dpkg --purge l2agent: %v\n%s", err, out)
		}
	})

	// Version 1: the default version (from git) and config; version 2 is newer and ships a
	// changed default config, so dpkg has a real conffile conflict to resolve on the upgrade.
	v1 := strings.TrimSpace(run(t, "sh", filepath.Join(root, "deploy/packaging/version.sh")))
	if !snapshotVersion.MatchString(v1) && !releaseVersion.MatchString(v1) {
		t.Fatalf("default version %q is neither 0.0.0~gitDATE.HASH nor a release", v1)
	}
	v2 := v1 + "+upgrade"
	out1 := t.TempDir()
	build(t, root, out1, "", "")
	newConf := filepath.Join(t.TempDir(), "agent.yaml")
	def, err := os.ReadFile(filepath.Join(root, "configs/agent.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, newConf, append(def, "\n# shipped by "+v2+"\n"...))
	out2 := t.TempDir()
	build(t, root, out2, v2, newConf)

	deb1 := filepath.Join(out1, "l2agent_"+v1+"-1_amd64.deb")
	deb2 := filepath.Join(out2, "l2agent_"+v2+"-1_amd64.deb")
	rpmFile := filepath.Join(out1, "l2agent-"+v1+"-1.x86_64.rpm")
	for _, f := range []string{deb1, deb2, rpmFile} {
		if fi, err := os.Stat(f); err != nil || fi.Size() == 0 {
			t.Fatalf("package %s missing or empty: %v", f, err)
		}
	}
	if f := run(t, "dpkg-deb", "-f", deb1, "Version"); strings.TrimSpace(f) != v1+"-1" {
		t.Errorf("dpkg-deb -f Version = %q, want %s-1", f, v1)
	}
	if snapshotVersion.MatchString(v1) {
		// A snapshot sorts below every release, 0.0.1 included.
		run(t, "dpkg", "--compare-versions", v1, "lt", "0.0.1")
	}
	debDocs(t, deb1, v1)
	rpmContents(t, ci, rpmFile, v1)
	lintian(t, deb1)

	// Install.
	run(t, "dpkg", "-i", deb1)
	if v := run(t, "/usr/bin/l2agent", "version"); !strings.Contains(v, v1) {
		t.Errorf("l2agent version = %q, want %s", v, v1)
	}
	validate(t)
	unit, err := os.ReadFile("/lib/systemd/system/l2agent.service")
	if err != nil {
		t.Fatal(err)
	}
	want, err := os.ReadFile(filepath.Join(root, "deploy/systemd/l2agent.service"))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(unit, want) {
		t.Error("installed unit differs from deploy/systemd/l2agent.service")
	}
	for _, u := range []string{"l2agent-remediate.socket", "l2agent-remediate@.service"} {
		got, err := os.ReadFile("/lib/systemd/system/" + u)
		want, err2 := os.ReadFile(filepath.Join(root, "deploy/systemd", u))
		if err != nil || err2 != nil || !bytes.Equal(got, want) {
			t.Errorf("installed %s differs from deploy/systemd/%s (%v, %v)", u, u, err, err2)
		}
	}
	verifyUnit(t, ci)
	// No systemd runs here (as in a chroot or an image build): enabled all the same.
	const wants = "/etc/systemd/system/multi-user.target.wants/l2agent.service"
	if _, err := os.Stat("/run/systemd/system"); err == nil {
		t.Log("systemd runs here: not the chroot case")
	} else if target, err := os.Readlink(wants); err != nil || target != "/lib/systemd/system/l2agent.service" {
		t.Errorf("installed without a running systemd, the unit is not enabled: %s -> %q (%v)", wants, target, err)
	}
	if out, err := exec.Command("man", "-P", "cat", "l2agent").CombinedOutput(); err != nil || !strings.Contains(string(out), "l2agent reload") {
		t.Errorf("man l2agent: %v\n%s", err, out)
	}
	if fi, err := os.Stat("/var/lib/l2agent"); err != nil || !fi.IsDir() || fi.Mode().Perm() != 0o750 {
		t.Errorf("/var/lib/l2agent: %v %v, want a 0750 dir", fi, err)
	}
	if own := run(t, "stat", "-c", "%U:%G", "/var/lib/l2agent", "/etc/l2agent/agent.yaml"); own != "l2agent:l2agent\nroot:l2agent\n" {
		t.Errorf("owners of /var/lib/l2agent and agent.yaml: %q, want l2agent:l2agent and root:l2agent", own)
	}
	if fi, err := os.Stat("/etc/l2agent/agent.yaml"); err != nil || fi.Mode().Perm() != 0o640 {
		t.Errorf("/etc/l2agent/agent.yaml: %v %v, want mode 0640", fi, err)
	}
	if cf := run(t, "dpkg-query", "-W", "-f=${Conffiles}", "l2agent"); !strings.Contains(cf, "/etc/l2agent/agent.yaml") {
		t.Errorf("agent.yaml is not a conffile: %q", cf)
	}
	// The agent runs as the system user the package made: no login, home the state dir.
	pw := strings.Split(strings.TrimSpace(run(t, "getent", "passwd", "l2agent")), ":")
	if len(pw) != 7 || pw[5] != "/var/lib/l2agent" || pw[6] != "/usr/sbin/nologin" {
		t.Errorf("user l2agent: %q, want home /var/lib/l2agent and shell /usr/sbin/nologin", pw)
	}
	if !bytes.Contains(unit, []byte("\nUser=l2agent\n")) {
		t.Error("unit does not run as User=l2agent")
	}

	// Change the config and leave some state, then upgrade keeping the changed config.
	const mark = "# changed by the package test\n"
	f, err := os.OpenFile("/etc/l2agent/agent.yaml", os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteString(mark); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	writeFile(t, "/var/lib/l2agent/state-marker", []byte("x"))
	// As an older version that ran as root left it: the upgrade gives it to l2agent. A
	// symlink in it is not followed.
	run(t, "chown", "-R", "root:root", "/var/lib/l2agent")
	if err := os.Symlink("/etc/hostname", "/var/lib/l2agent/link"); err != nil {
		t.Fatal(err)
	}
	run(t, "dpkg", "-i", "--force-confold", deb2)
	if own := run(t, "stat", "-c", "%U", "/var/lib/l2agent", "/var/lib/l2agent/state-marker", "/etc/hostname"); own != "l2agent\nl2agent\nroot\n" {
		t.Errorf("after an upgrade from a root-owned state dir, owners of the dir, a file in it, a symlink's target: %q", own)
	}
	if v := run(t, "/usr/bin/l2agent", "version"); !strings.Contains(v, v2) {
		t.Errorf("after upgrade: l2agent version = %q, want %s", v, v2)
	}
	conf, err := os.ReadFile("/etc/l2agent/agent.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasSuffix(string(conf), mark) || strings.Contains(string(conf), "shipped by "+v2) {
		t.Errorf("upgrade did not keep the changed config; it ends with:\n%s", tail(string(conf)))
	}
	if dist, err := os.ReadFile("/etc/l2agent/agent.yaml.dpkg-dist"); err != nil || !strings.Contains(string(dist), "shipped by "+v2) {
		t.Errorf("new default config not left as agent.yaml.dpkg-dist: %v", err)
	}
	if _, err := os.Stat("/var/lib/l2agent/state-marker"); err != nil {
		t.Errorf("upgrade lost the state dir: %v", err)
	}
	validate(t)

	// Purge: nothing left.
	run(t, "dpkg", "--purge", "l2agent")
	for _, p := range []string{"/usr/bin/l2agent", "/lib/systemd/system/l2agent.service", "/var/lib/l2agent", "/etc/l2agent", "/etc/systemd/system/multi-user.target.wants/l2agent.service",
		"/usr/share/doc/l2agent", "/usr/share/man/man1/l2agent.1.gz", "/var/lib/systemd/deb-systemd-helper-enabled/l2agent.service.dsh-also"} {
		if _, err := os.Lstat(p); !os.IsNotExist(err) {
			t.Errorf("after dpkg --purge: %s still there (%v)", p, err)
		}
	}
	if st := testenv.DpkgStatus("l2agent"); st != "" && !strings.HasSuffix(st, " not-installed") {
		t.Errorf("after dpkg --purge: status %q", st)
	}
	// The system user stays, as Debian keeps system users on purge (README).
	run(t, "getent", "passwd", "l2agent")
}

// build runs build.sh into out.
func build(t *testing.T, root, out, version, config string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "sh", filepath.Join(root, "deploy/packaging/build.sh"), out)
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "VERSION="+version, "L2AGENT_CONFIG="+config)
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build.sh %s (VERSION=%s): %v\n%s", out, version, err, b)
	}
}

func validate(t *testing.T) {
	t.Helper()
	if out := run(t, "/usr/bin/l2agent", "config", "validate", "/etc/l2agent/agent.yaml"); !strings.Contains(out, "/etc/l2agent/agent.yaml: ok") {
		t.Errorf("config validate: %s", out)
	}
}

// verifyUnit runs systemd-analyze verify on the installed unit: it must say nothing about it
// (other units of the machine may draw warnings; those are not ours).
func verifyUnit(t *testing.T, ci bool) {
	t.Helper()
	if _, err := exec.LookPath("systemd-analyze"); err != nil {
		if ci {
			t.Error("CI=true and systemd-analyze is missing")
		}
		t.Log("systemd-analyze not installed: unit not verified")
		return
	}
	out, err := exec.Command("systemd-analyze", "verify", "/lib/systemd/system/l2agent.service", "/lib/systemd/system/l2agent-remediate.socket", "/lib/systemd/system/l2agent-remediate@.service").CombinedOutput()
	if err != nil || bytes.Contains(out, []byte("l2agent")) {
		t.Errorf("systemd-analyze verify l2agent.service: %v\n%s", err, out)
	}
}

func run(t *testing.T, name string, args ...string) string {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Stdin = nil // dpkg never prompts: no terminal
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}

func writeFile(t *testing.T, name string, b []byte) {
	t.Helper()
	if err := os.WriteFile(name, b, 0o600); err != nil {
		t.Fatal(err)
	}
}

func containsLine(s, line string) bool {
	for _, l := range strings.Split(s, "\n") {
		if strings.TrimSpace(l) == line {
			return true
		}
	}
	return false
}

func tail(s string) string {
	if len(s) > 200 {
		return s[len(s)-200:]
	}
	return s
}

// debDocs: the .deb holds a copyright file, a Debian changelog whose top entry is this
// version, a man page that groff reads without a warning, and lintian's overrides.
func debDocs(t *testing.T, deb, version string) {
	t.Helper()
	dir := t.TempDir()
	run(t, "dpkg-deb", "-x", deb, dir)
	cr, err := os.ReadFile(filepath.Join(dir, "usr/share/doc/l2agent/copyright"))
	if err != nil || !bytes.HasPrefix(cr, []byte("Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/\n")) ||
		!bytes.Contains(cr, []byte("\nLicense: Apache-2.0\n")) || !bytes.Contains(cr, []byte(" golang.org/x/sys ")) {
		t.Errorf("copyright: %v\n%s", err, cr)
	}
	changelog := filepath.Join(dir, "changelog")
	writeFile(t, changelog, gunzip(t, filepath.Join(dir, "usr/share/doc/l2agent/changelog.Debian.gz")))
	if v := run(t, "dpkg-parsechangelog", "-l", changelog, "-S", "Version"); strings.TrimSpace(v) != version+"-1" {
		t.Errorf("changelog version %q, want %s-1", v, version)
	}
	if d := run(t, "dpkg-parsechangelog", "-l", changelog, "-S", "Distribution"); strings.TrimSpace(d) != "unstable" {
		t.Errorf("changelog distribution %q", d)
	}
	page := gunzip(t, filepath.Join(dir, "usr/share/man/man1/l2agent.1.gz"))
	for _, s := range []string{".TH L2AGENT 1", `.SS "l2agent run"`, `.SS "l2agent reload"`, "l2agent config validate"} {
		if !bytes.Contains(page, []byte(s)) {
			t.Errorf("man page: no %q", s)
		}
	}
	if _, err := exec.LookPath("groff"); err == nil {
		cmd := exec.Command("groff", "-man", "-ww", "-z", "-Tutf8")
		cmd.Stdin = bytes.NewReader(page)
		if out, err := cmd.CombinedOutput(); err != nil || len(out) > 0 {
			t.Errorf("groff on the man page: %v\n%s", err, out)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "usr/share/lintian/overrides/l2agent")); err != nil {
		t.Errorf("lintian overrides: %v", err)
	}
}

// rpmContents: the rpm, from the same description, holds the same files where rpm wants
// them, the config as %config, and a %changelog.
func rpmContents(t *testing.T, ci bool, rpmFile, version string) {
	t.Helper()
	if _, err := exec.LookPath("rpm"); err != nil {
		if ci {
			t.Error("CI=true and rpm is missing (install.sh packaging): the rpm is not inspected")
		}
		t.Log("rpm not installed: the rpm is not inspected")
		return
	}
	list := run(t, "rpm", "-qpl", rpmFile)
	for _, p := range []string{"/usr/bin/l2agent", "/etc/l2agent/agent.yaml", "/usr/lib/systemd/system/l2agent.service", "/var/lib/l2agent",
		"/usr/lib/systemd/system/l2agent-remediate.socket", "/usr/lib/systemd/system/l2agent-remediate@.service",
		"/usr/share/man/man1/l2agent.1.gz", "/usr/share/licenses/l2agent/copyright"} {
		if !containsLine(list, p) {
			t.Errorf("rpm -qpl: %s missing:\n%s", p, list)
		}
	}
	if conf := run(t, "rpm", "-qpc", rpmFile); !containsLine(conf, "/etc/l2agent/agent.yaml") {
		t.Errorf("rpm -qpc: agent.yaml is not a %%config file:\n%s", conf)
	}
	if v := run(t, "rpm", "-qp", "--qf", "%{VERSION}-%{RELEASE} %{LICENSE}", rpmFile); v != version+"-1 Apache-2.0" {
		t.Errorf("rpm version and license: %q", v)
	}
	if cl := run(t, "rpm", "-qp", "--changelog", rpmFile); !strings.Contains(cl, "l2agent maintainers") || !strings.Contains(cl, "git commit") {
		t.Errorf("rpm %%changelog:\n%s", cl)
	}
	if sc := run(t, "rpm", "-qp", "--scripts", rpmFile); !strings.Contains(sc, "systemctl --no-reload enable l2agent-remediate.socket l2agent.service") ||
		!strings.Contains(sc, "useradd -r -g l2agent") || strings.Contains(sc, "deb-systemd") {
		t.Errorf("rpm scripts:\n%s", sc)
	}
}

// lintian: Debian's package checker finds nothing (the choices it would flag are overridden
// in the package, each with its reason).
func lintian(t *testing.T, deb string) {
	t.Helper()
	bin := testenv.Need(t, "lintian")
	out, err := exec.Command(bin, "--fail-on", "error,warning", deb).CombinedOutput()
	var found []string
	for _, l := range strings.Split(string(out), "\n") {
		if strings.HasPrefix(l, "E: ") || strings.HasPrefix(l, "W: ") {
			found = append(found, l)
		}
	}
	if err != nil || len(found) > 0 {
		t.Errorf("lintian %s: %v\n%s", filepath.Base(deb), err, out)
	}
}

func gunzip(t *testing.T, path string) []byte {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	b, err := io.ReadAll(zr)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return b
}

// TestVersionScript: version.sh makes versions dpkg accepts and orders rightly, from the git
// history of a repository of its own, and refuses a VERSION that dpkg or rpm would refuse
// or misorder.
func TestVersionScript(t *testing.T) {
	for _, bin := range []string{"git", "dpkg"} {
		if _, err := exec.LookPath(bin); err != nil {
			t.Skipf("%s not installed", bin)
		}
	}
	repo := t.TempDir()
	script := filepath.Join(repo, "deploy/packaging/version.sh")
	b, err := os.ReadFile("version.sh")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Dir(script), 0o755); err != nil {
		t.Fatal(err)
	}
	writeFile(t, script, b)
	git := func(args ...string) string {
		t.Helper()
		cmd := exec.Command("git", append([]string{"-C", repo, "-c", "user.name=t", "-c", "user.email=t@example.org"}, args...)...)
		cmd.Env = append(os.Environ(), "GIT_COMMITTER_DATE=2026-12-05T23:30:00Z", "GIT_AUTHOR_DATE=2026-12-05T23:30:00Z", "TZ=Pacific/Auckland")
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("git %v: %v\n%s", args, err, out)
		}
		return strings.TrimSpace(string(out))
	}
	version := func(env string) (string, error) {
		cmd := exec.Command("sh", script)
		cmd.Env = append(os.Environ(), "VERSION="+env, "TZ=Pacific/Auckland") // a day ahead of UTC
		out, err := cmd.CombinedOutput()
		return strings.TrimSpace(string(out)), err
	}
	git("init", "-q")
	git("commit", "-q", "--allow-empty", "-m", "one")
	hash := git("rev-parse", "--short=7", "HEAD")

	want := map[string]string{"": "0.0.0~git20261205." + hash} // the commit's date in UTC
	got := map[string]string{}
	got[""], err = version("")
	if err != nil {
		t.Fatal(got[""])
	}
	git("tag", "v1.2.3")
	want["tag"] = "1.2.3"
	got["tag"], _ = version("")
	git("commit", "-q", "--allow-empty", "-m", "two")
	want["after"] = "1.2.3+git20261205." + git("rev-parse", "--short=7", "HEAD")
	got["after"], _ = version("")
	git("tag", "v2.0.0-rc1")
	want["rc"] = "2.0.0~rc1"
	got["rc"], _ = version("")
	want["given"] = "1.2.4"
	got["given"], _ = version("v1.2.4")
	for k, w := range want {
		if got[k] != w {
			t.Errorf("%s: version %q, want %q", k, got[k], w)
		}
	}
	// Each below the next, as dpkg orders them.
	order := []string{want[""], "0.0.1", want["tag"], want["after"], "1.2.4", want["rc"], "2.0.0"}
	for i := 1; i < len(order); i++ {
		run(t, "dpkg", "--compare-versions", order[i-1], "lt", order[i])
	}
	for _, bad := range []string{"8cd1e78", "abcdef0123", "1.2.3-rc1", "v", "x1.0", "1.0 2"} {
		if out, err := version(bad); err == nil {
			t.Errorf("VERSION=%s accepted as %q", bad, out)
		}
	}
}
