package ansible_test

// TestPlaybookUnderSystemd runs the README's example playbook exactly as documented — `make
// package VERSION=1.2.3`'s .deb in bin/, then `ansible-playbook -i inventory
// deploy/ansible/playbook.yml` from the root of the checkout — against a Debian 12 container
// whose PID 1 is systemd 252 (deploy/testenv/systemd.sh). The controller is this machine's
// ansible-playbook; it reaches the container as it reaches any host, by ssh to the container's
// own sshd as an unprivileged user with sudo (become). The container has a network of its own
// (only lo), so the inventory's ProxyCommand carries the ssh connection into it: socat run in
// the container's network namespace (nsenter --net), connected to its 127.0.0.1:22.

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

	"github.com/l2agent/l2agent/deploy/testenv"
)

const (
	// pbCommand is the command line of the README, run from the root of the checkout.
	pbCommand = "ansible-playbook -i inventory deploy/ansible/playbook.yml"
	// pbVersion is the version of the package the example playbook names.
	pbVersion  = "1.2.3"
	pbDeb      = "bin/l2agent_" + pbVersion + "-1_amd64.deb"
	pbHost     = "l2agent-ct" // the container's name in the inventory
	pbUser     = "admin"      // the ssh user, root through sudo
	ctUnit     = "l2agent.service"
	ctConf     = "/etc/l2agent/agent.yaml"
	ctMetrics  = "http://127.0.0.1:10061/metrics"
	ctRTToken  = "/etc/l2agent/rt.token"
	reloadedTS = "l2agent_config_last_reload_success_timestamp_seconds"
)

// targetPackages are what a host needs for the role beyond the container's root: the sshd the
// controller logs in to, sudo for become, python3-apt for Ansible's apt module (which would
// install it itself from a mirror, but the container has no network).
var targetPackages = []string{"openssh-server", "sudo", "python3-apt"}

func TestPlaybookUnderSystemd(t *testing.T) {
	if why := testenv.SystemdNeeds(); why != "" {
		t.Skipf("the systemd container %s: not running the example playbook", why)
	}
	tools := map[string]string{}
	for _, bin := range []string{"ansible-playbook", "ssh", "ssh-keygen", "socat", "nsenter", "apt-get", "chroot"} {
		tools[bin] = testenv.Need(t, bin)
	}
	root, err := filepath.Abs("../..")
	require.NoError(t, err)
	documented(t, root)
	co := checkout(t, root)
	c := bootTarget(t)
	p := newPlayer(t, c, co, tools)

	t.Run("first run installs, configures, starts", func(t *testing.T) { firstRun(t, c, p) })
	if t.Failed() {
		return
	}
	t.Run("second run changes nothing", func(t *testing.T) {
		pid := c.mainPID(t)
		r := p.play(t)
		require.NoError(t, r.err, r.out)
		require.Equal(t, 0, r.changed, "second run is not idempotent:\n%s", r.out)
		require.Equal(t, pid, c.mainPID(t))
	})
	t.Run("a ticketing change reloads the agent", func(t *testing.T) { ticketingChange(t, c, p) })
	t.Run("a config that fails validation changes nothing", func(t *testing.T) { rejected(t, c, p) })
	t.Run("a reload the agent refuses fails the run", func(t *testing.T) { refusedReload(t, c, p) })
}

// documented: the README shows the command line this test runs, and the playbook as it is.
func documented(t *testing.T, root string) {
	readme, err := os.ReadFile(filepath.Join(root, "deploy/ansible/README.md"))
	require.NoError(t, err)
	playbook, err := os.ReadFile(filepath.Join(root, "deploy/ansible/playbook.yml"))
	require.NoError(t, err)
	require.Contains(t, string(readme), pbCommand)
	require.Contains(t, string(readme), "```yaml\n"+string(playbook)+"```", "the README's example is not deploy/ansible/playbook.yml")
	require.Contains(t, string(playbook), pbDeb, "the playbook does not name the package this test builds")
}

// checkout is a copy of what the playbook uses from a checkout, laid out as in one: the
// playbook and the role under deploy/ansible/, and the package in bin/ where `make package
// VERSION=1.2.3` puts it (build.sh is what make package runs).
func checkout(t *testing.T, root string) string {
	co := t.TempDir()
	require.NoError(t, os.CopyFS(filepath.Join(co, "deploy/ansible"), os.DirFS(filepath.Join(root, "deploy/ansible"))))
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Minute)
	defer cancel()
	start := time.Now()
	cmd := exec.CommandContext(ctx, "sh", filepath.Join(root, "deploy/packaging/build.sh"), filepath.Join(co, "bin"))
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "VERSION="+pbVersion)
	b, err := cmd.CombinedOutput()
	require.NoError(t, err, "build.sh VERSION=%s:\n%s", pbVersion, b)
	require.FileExists(t, filepath.Join(co, pbDeb))
	t.Logf("build.sh: %s", time.Since(start).Round(time.Millisecond))
	return co
}

// target is the booted container.
type target struct {
	*testenv.SystemdContainer
	hostKey string // its sshd's ed25519 public key
}

// bootTarget makes the container's tree, installs targetPackages in it with chroot (as an
// image build would), adds the ssh user with sudo and the RT token the example playbook
// expects, and boots it.
func bootTarget(t *testing.T) *target {
	ctx := t.Context()
	sc, err := testenv.NewSystemdContainer(ctx, fmt.Sprintf("l2agent-pb-%d", os.Getpid()))
	require.NoError(t, err)
	c := &target{SystemdContainer: sc}
	sc.StopWhenDone(t, ctUnit, 60)
	debs := targetDebs(t, filepath.Join(sc.Root, "var/lib/dpkg/status"))
	dir := filepath.Join(sc.Root, "root/debs")
	require.NoError(t, os.MkdirAll(dir, 0o755))
	args := []string{sc.Root, "dpkg", "-i"}
	for _, d := range debs {
		b, err := os.ReadFile(d)
		require.NoError(t, err)
		require.NoError(t, os.WriteFile(filepath.Join(dir, filepath.Base(d)), b, 0o644))
		args = append(args, "/root/debs/"+filepath.Base(d))
	}
	chroot(t, args...)
	require.NoError(t, os.RemoveAll(dir))
	chroot(t, sc.Root, "useradd", "--create-home", "--shell", "/bin/bash", pbUser)
	writeFile(t, filepath.Join(sc.Root, "etc/sudoers.d", pbUser), pbUser+" ALL=(ALL) NOPASSWD: ALL\n")
	require.NoError(t, os.Chmod(filepath.Join(sc.Root, "etc/sudoers.d", pbUser), 0o440))
	// The secret the example's RT backend reads, put there as an admin's secret store would.
	require.NoError(t, os.MkdirAll(filepath.Join(sc.Root, filepath.Dir(ctRTToken)), 0o755))
	writeFile(t, filepath.Join(sc.Root, ctRTToken), "example-token\n")
	key, err := os.ReadFile(filepath.Join(sc.Root, "etc/ssh/ssh_host_ed25519_key.pub"))
	require.NoError(t, err)
	c.hostKey = strings.Join(strings.Fields(string(key))[:2], " ")
	require.NoError(t, sc.Boot(ctx))
	require.Equal(t, "active\n", c.run(t, "systemctl", "is-active", "ssh.service"))
	return c
}

func chroot(t *testing.T, args ...string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, "chroot", args...).CombinedOutput()
	require.NoError(t, err, "chroot %s:\n%s", strings.Join(args, " "), out)
}

// targetDebs returns the .debs of targetPackages and of what they need that a root with the
// dpkg status file status lacks, downloaded once with the host's apt sources (the container's
// root is made from the same) into the test environment's cache.
func targetDebs(t *testing.T, status string) []string {
	cache := os.Getenv("L2AGENT_TESTENV_CACHE")
	if cache == "" {
		cache = "/var/cache/l2agent-testenv"
	}
	dir := filepath.Join(cache, "ansible", "debs")
	require.NoError(t, os.MkdirAll(filepath.Join(dir, "partial"), 0o755))
	lock, err := os.OpenFile(filepath.Join(dir, ".lock"), os.O_CREATE|os.O_RDWR, 0o600)
	require.NoError(t, err)
	defer lock.Close()
	require.NoError(t, syscall.Flock(int(lock.Fd()), syscall.LOCK_EX))
	apt := func(args ...string) string {
		ctx, cancel := context.WithTimeout(t.Context(), 5*time.Minute)
		defer cancel()
		args = append([]string{"-q", "-y", "--no-install-recommends", "-o", "Dir::State::status=" + status,
			"-o", "Dir::Cache::Archives=" + dir}, args...)
		out, err := exec.CommandContext(ctx, "apt-get", args...).CombinedOutput()
		require.NoError(t, err, "apt-get %s:\n%s", strings.Join(args, " "), out)
		return string(out)
	}
	apt(append([]string{"--download-only", "install"}, targetPackages...)...)
	// "Inst NAME (VERSION SOURCES [ARCH])" for each package the root lacks.
	inst := regexp.MustCompile(`(?m)^Inst (\S+) \((\S+) .*\[(\S+)\]\)`)
	var debs []string
	for _, m := range inst.FindAllStringSubmatch(apt(append([]string{"-s", "install"}, targetPackages...)...), -1) {
		f := filepath.Join(dir, m[1]+"_"+strings.ReplaceAll(m[2], ":", "%3a")+"_"+m[3]+".deb")
		require.FileExists(t, f)
		debs = append(debs, f)
	}
	require.GreaterOrEqual(t, len(debs), len(targetPackages))
	return debs
}

// run runs argv in the container; it must succeed.
func (c *target) run(t *testing.T, argv ...string) string {
	t.Helper()
	out, err := c.Run(t.Context(), argv...)
	require.NoError(t, err)
	return out
}

func (c *target) mainPID(t *testing.T) int {
	t.Helper()
	pid, err := strconv.Atoi(strings.TrimSpace(c.run(t, "systemctl", "show", "-P", "MainPID", ctUnit)))
	require.NoError(t, err)
	require.NotZero(t, pid, "%s has no main process", ctUnit)
	return pid
}

// metric is the value of the sample named exactly series (name and labels as exposed) in the
// agent's /metrics, or -1 when there is none.
func (c *target) metric(t *testing.T, series string) float64 {
	t.Helper()
	sc := bufio.NewScanner(strings.NewReader(c.run(t, "curl", "-sf", ctMetrics)))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), series+" "); ok {
			f, err := strconv.ParseFloat(v, 64)
			require.NoError(t, err, sc.Text())
			return f
		}
	}
	return -1
}

// leaderPID is the PID of the container's init on this machine (systemd.sh's state file).
func (c *target) leaderPID(t *testing.T) int {
	state := os.Getenv("L2AGENT_CT_STATE")
	if state == "" {
		state = "/run/l2agent-testenv/systemd"
	}
	b, err := os.ReadFile(filepath.Join(state, c.Name, "leader.pid"))
	require.NoError(t, err)
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	require.NoError(t, err)
	return pid
}

func writeFileIn(t *testing.T, dir, name, s string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	writeFile(t, p, s)
	return p
}

// sameBytes fails unless the container's file path holds want.
func (c *target) sameBytes(t *testing.T, path string, want []byte) {
	t.Helper()
	got, err := os.ReadFile(filepath.Join(c.Root, path))
	require.NoError(t, err)
	require.True(t, bytes.Equal(want, got), "%s changed:\n%s", path, got)
}
