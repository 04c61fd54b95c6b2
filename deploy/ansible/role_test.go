// Package ansible_test runs the l2agent Ansible role with the machine's ansible-playbook
// against localhost (-c local): it installs the .deb built by build.sh, templates and
// validates the config, is idempotent, works in --check mode, and a config the agent rejects
// fails the run and leaves the previous file in place. It needs root; under CI=true a missing
// ansible-playbook is a failure, elsewhere a skip.
package ansible_test

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/l2agent/l2agent/deploy/testenv"
)

const (
	version = "0.9.1"
	listen  = "127.0.0.1:19561"
	conf    = "/etc/l2agent/agent.yaml"
)

func TestRole(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root (installs the package)")
	}
	for _, tool := range []string{"ansible-playbook", "dpkg"} {
		if _, err := exec.LookPath(tool); err != nil {
			if os.Getenv("CI") == "true" {
				t.Fatalf("CI=true and %s is missing: the Ansible role cannot be tested", tool)
			}
			t.Skipf("%s not installed", tool)
		}
	}
	testenv.LockPackageTests(t)
	testenv.SkipIfInstalled(t, "l2agent")
	testenv.RemovePackageUserAfter(t) // the package's system user; runs after the purge below
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	copyDir := t.TempDir() // where the role copies the package to (l2agent_package_copy)
	t.Cleanup(func() {
		if out, err := exec.Command("dpkg", "--purge", "l2agent").CombinedOutput(); err != nil {
			t.Logf("cleanup: dpkg --purge l2agent: %v\n%s", err, out)
		}
	})

	out := t.TempDir()
	start := time.Now()
	build(t, root, out, version)
	t.Logf("build.sh: %s", time.Since(start).Round(time.Millisecond))
	deb := filepath.Join(out, "l2agent_"+version+"-1_amd64.deb")

	work := t.TempDir()
	playbook := filepath.Join(work, "playbook.yml")
	writeFile(t, playbook, `- hosts: all
  gather_facts: true
  gather_subset: [min]
  roles: [l2agent]
`)
	cfg := filepath.Join(work, "ansible.cfg")
	writeFile(t, cfg, "[defaults]\n")
	vars := map[string]any{
		"l2agent_package_path":     deb,
		"l2agent_package_copy":     true,
		"l2agent_package_copy_dir": copyDir,
		"l2agent_listen_address":   listen,
		"l2agent_checks": []any{
			map[string]any{"name": "disk", "kind": "disk", "schedule": "@every 1m",
				"rules": []any{map[string]any{"metric": "disk_used_ratio", "warn": 0.8, "crit": 0.9}}},
			map[string]any{"name": "memory", "kind": "memory"},
		},
		"l2agent_ticketing":   map[string]any{"resolve_after": "20m", "backends": []any{map[string]any{"name": "file", "kind": "file"}}},
		"l2agent_remediation": map[string]any{"dry_run": true},
		"l2agent_extra":       map[string]any{"log": map[string]any{"level": "debug"}},
	}
	env := append(os.Environ(),
		"ANSIBLE_ROLES_PATH="+filepath.Join(root, "deploy/ansible/roles"),
		"ANSIBLE_PYTHON_INTERPRETER=/usr/bin/python3",
		"ANSIBLE_HOME="+filepath.Join(work, "home"),
		"ANSIBLE_LOCAL_TEMP="+filepath.Join(work, "tmp"),
		"ANSIBLE_REMOTE_TEMP="+filepath.Join(work, "rtmp"),
		"ANSIBLE_PIPELINING=1", // one python per task, no module files copied
		"ANSIBLE_NOCOLOR=1",
		"ANSIBLE_FORCE_COLOR=0",
		"ANSIBLE_RETRY_FILES_ENABLED=0",
		"ANSIBLE_STDOUT_CALLBACK=default",
		"ANSIBLE_LOAD_CALLBACK_PLUGINS=0",
		"ANSIBLE_CONFIG="+cfg, // not the machine's /etc/ansible/ansible.cfg
	)
	play := func(v map[string]any, extra ...string) (string, error) {
		t.Helper()
		js, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
		defer cancel()
		args := append([]string{"-c", "local", "-i", "localhost,", playbook, "-e", string(js)}, extra...)
		cmd := exec.CommandContext(ctx, "ansible-playbook", args...)
		cmd.Dir = work
		cmd.Env = env
		start := time.Now()
		b, err := cmd.CombinedOutput()
		t.Logf("ansible-playbook %s: %s", strings.Join(extra, " "), time.Since(start).Round(time.Millisecond))
		return string(b), err
	}

	// First run: installs and configures.
	o, err := play(vars)
	if err != nil {
		t.Fatalf("first run: %v\n%s", err, o)
	}
	if c := changed(t, o); c == 0 {
		t.Errorf("first run changed nothing:\n%s", o)
	}
	if v, err := exec.Command("/usr/bin/l2agent", "version").CombinedOutput(); err != nil || !strings.Contains(string(v), version) {
		t.Errorf("l2agent version = %q (%v), want %s", v, err, version)
	}
	first, err := os.ReadFile(conf)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"listen_address: " + listen, "kind: memory", "resolve_after: 20m", "dry_run: true", "level: debug"} {
		if !strings.Contains(string(first), want) {
			t.Errorf("%s lacks %q:\n%s", conf, want, first)
		}
	}
	if fi, err := os.Stat(conf); err != nil || fi.Mode().Perm() != 0o640 {
		t.Errorf("%s: %v %v, want mode 0640", conf, fi, err)
	}
	if b, err := exec.Command("/usr/bin/l2agent", "config", "validate", conf).CombinedOutput(); err != nil {
		t.Errorf("config validate %s: %v\n%s", conf, err, b)
	}

	// Second run: nothing to do.
	o, err = play(vars)
	if err != nil {
		t.Fatalf("second run: %v\n%s", err, o)
	}
	if c := changed(t, o); c != 0 {
		t.Errorf("second run changed=%d, want 0 (not idempotent):\n%s", c, o)
	}

	// --check with a changed variable: reports the change, writes nothing.
	vc := clone(vars)
	vc["l2agent_listen_address"] = "127.0.0.1:19562"
	o, err = play(vc, "--check", "--diff")
	if err != nil {
		t.Fatalf("--check run: %v\n%s", err, o)
	}
	if c := changed(t, o); c == 0 || !strings.Contains(o, "127.0.0.1:19562") {
		t.Errorf("--check run: changed=%d and no diff with the new address:\n%s", c, o)
	}
	if b, _ := os.ReadFile(conf); !bytes.Equal(b, first) {
		t.Errorf("--check run modified %s", conf)
	}

	// A check kind the agent does not know: the validate step fails, the old file stays.
	bad := clone(vars)
	bad["l2agent_listen_address"] = "127.0.0.1:19563"
	bad["l2agent_checks"] = []any{map[string]any{"name": "broken", "kind": "nope"}}
	o, err = play(bad)
	if err == nil {
		t.Fatalf("run with check kind \"nope\" succeeded:\n%s", o)
	}
	if !strings.Contains(o, "failed to validate") || !strings.Contains(o, "unknown check kind") {
		t.Errorf("run with a broken check did not fail in validation:\n%s", o)
	}
	if b, err := os.ReadFile(conf); err != nil || !bytes.Equal(b, first) {
		t.Errorf("after the failed validation %s is not the previous file (%v):\n%s", conf, err, b)
	}
}

var recap = regexp.MustCompile(`(?m)^localhost\s+:\s+ok=\d+\s+changed=(\d+)\s+unreachable=0\s+failed=(\d+)`)

// changed is the changed= count of the PLAY RECAP line.
func changed(t *testing.T, out string) int {
	t.Helper()
	m := recap.FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("no PLAY RECAP line for localhost:\n%s", out)
	}
	n, _ := strconv.Atoi(m[1])
	return n
}

func clone(m map[string]any) map[string]any {
	c := make(map[string]any, len(m))
	for k, v := range m {
		c[k] = v
	}
	return c
}

func build(t *testing.T, root, out, version string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "sh", filepath.Join(root, "deploy/packaging/build.sh"), out)
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "VERSION="+version)
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build.sh %s: %v\n%s", out, err, b)
	}
}

func writeFile(t *testing.T, name, s string) {
	t.Helper()
	if err := os.WriteFile(name, []byte(s), 0o600); err != nil {
		t.Fatal(err)
	}
}
