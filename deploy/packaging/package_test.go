// Package packaging_test builds the .deb and .rpm with build.sh and installs, upgrades and
// purges the .deb with the real dpkg of the test machine. It needs root; under CI=true a
// missing dpkg is a failure, elsewhere a skip.
package packaging_test

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/l2agent/l2agent/deploy/testenv"
)

const (
	v1 = "1.0.0"
	v2 = "1.0.1"
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
	// Even a failed test leaves no package behind.
	t.Cleanup(func() {
		if out, err := exec.Command("dpkg", "--purge", "l2agent").CombinedOutput(); err != nil {
			t.Logf("cleanup: dpkg --purge l2agent: %v\n%s", err, out)
		}
	})

	// Version 1 with the default config; version 2 ships a changed default config, so dpkg
	// has a real conffile conflict to resolve on the upgrade.
	out1 := t.TempDir()
	build(t, root, out1, v1, "")
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
	if _, err := os.Stat("/usr/bin/rpm"); err == nil {
		list := run(t, "rpm", "-qpl", rpmFile)
		for _, p := range []string{"/usr/bin/l2agent", "/etc/l2agent/agent.yaml", "/usr/lib/systemd/system/l2agent.service", "/var/lib/l2agent"} {
			if !containsLine(list, p) {
				t.Errorf("rpm -qpl: %s missing:\n%s", p, list)
			}
		}
		if conf := run(t, "rpm", "-qpc", rpmFile); !containsLine(conf, "/etc/l2agent/agent.yaml") {
			t.Errorf("rpm -qpc: agent.yaml is not a %%config file:\n%s", conf)
		}
	}

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
	verifyUnit(t, ci)
	if fi, err := os.Stat("/var/lib/l2agent"); err != nil || !fi.IsDir() || fi.Mode().Perm() != 0o750 {
		t.Errorf("/var/lib/l2agent: %v %v, want a 0750 dir", fi, err)
	}
	if fi, err := os.Stat("/etc/l2agent/agent.yaml"); err != nil || fi.Mode().Perm() != 0o640 {
		t.Errorf("/etc/l2agent/agent.yaml: %v %v, want mode 0640", fi, err)
	}
	if cf := run(t, "dpkg-query", "-W", "-f=${Conffiles}", "l2agent"); !strings.Contains(cf, "/etc/l2agent/agent.yaml") {
		t.Errorf("agent.yaml is not a conffile: %q", cf)
	}
	// The service runs as root in a sandbox: the package creates no user, the unit sets none.
	if out, err := exec.Command("getent", "passwd", "l2agent").Output(); err == nil {
		t.Errorf("unexpected user l2agent: %s", out)
	}
	if bytes.Contains(unit, []byte("\nUser=")) {
		t.Error("unit sets User=, but the package creates no user")
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
	run(t, "dpkg", "-i", "--force-confold", deb2)
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
	for _, p := range []string{"/usr/bin/l2agent", "/lib/systemd/system/l2agent.service", "/var/lib/l2agent", "/etc/l2agent", "/etc/systemd/system/multi-user.target.wants/l2agent.service"} {
		if _, err := os.Lstat(p); !os.IsNotExist(err) {
			t.Errorf("after dpkg --purge: %s still there (%v)", p, err)
		}
	}
	if st := testenv.DpkgStatus("l2agent"); st != "" && !strings.HasSuffix(st, " not-installed") {
		t.Errorf("after dpkg --purge: status %q", st)
	}
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
	out, err := exec.Command("systemd-analyze", "verify", "/lib/systemd/system/l2agent.service").CombinedOutput()
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
