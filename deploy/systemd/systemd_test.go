// Package systemd_test runs the l2agent .deb and its unit under a real systemd: a Debian 12
// container booted with systemd 252 as PID 1 (deploy/testenv/systemd.sh), once for the whole
// package. The package is installed in a chroot as an image build would (enabled there,
// started at boot), reloaded with a good and a rejected config, its journal read by
// priority, scored by `systemd-analyze security`, upgraded, removed, reinstalled and purged.
// It needs root; without it every test is skipped with the reason.
package systemd_test

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/l2agent/l2agent/deploy/testenv"
)

const (
	v1 = "1.0.0"
	v2 = "1.0.1"
	// maxExposure is the highest `systemd-analyze security` score the unit may have.
	maxExposure = 2.0
	unit        = "l2agent.service"
	metricsURL  = "http://127.0.0.1:10061/metrics"
	readyURL    = "http://127.0.0.1:10061/-/ready"
)

// ct is the container of this test run.
type ct struct {
	*testenv.SystemdContainer
	t *testing.T
}

// run runs argv in the container; it must succeed.
func (c ct) run(argv ...string) string {
	c.t.Helper()
	out, err := c.Run(c.t.Context(), argv...)
	require.NoError(c.t, err)
	return out
}

// exec runs argv in the container and returns its exit status and combined output.
func (c ct) exec(argv ...string) (int, string) {
	c.t.Helper()
	r, err := c.Exec(c.t.Context(), argv...)
	require.NoError(c.t, err)
	return r.Code, r.Stdout + r.Stderr
}

// until polls f (about every 100 ms, each poll a command in the container) until it says
// done, for at most d.
func (c ct) until(d time.Duration, what string, f func() (bool, string)) {
	c.t.Helper()
	deadline := time.Now().Add(d)
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		ok, last := f()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			c.t.Fatalf("%s: not after %s; last: %s", what, d, last)
		}
		<-tick.C
	}
}

// ready waits until the agent answers /-/ready and returns the time since t0.
func (c ct) ready(t0 time.Time) time.Duration {
	c.t.Helper()
	c.until(60*time.Second, "l2agent ready", func() (bool, string) {
		code, out := c.exec("curl", "-sf", readyURL)
		return code == 0, out
	})
	return time.Since(t0)
}

func (c ct) mainPID() int {
	c.t.Helper()
	pid, err := strconv.Atoi(strings.TrimSpace(c.run("systemctl", "show", "-P", "MainPID", unit)))
	require.NoError(c.t, err)
	return pid
}

func (c ct) writeFile(path, content string) {
	c.t.Helper()
	src := filepath.Join(c.t.TempDir(), filepath.Base(path))
	require.NoError(c.t, os.WriteFile(src, []byte(content), 0o640))
	require.NoError(c.t, c.Copy(c.t.Context(), src, path))
}

// TestUnderSystemd is one boot of the container; the subtests run in order, each on what the
// one before left.
func TestUnderSystemd(t *testing.T) {
	if why := testenv.SystemdNeeds(); why != "" {
		t.Skipf("the systemd container %s: not testing the package under systemd", why)
	}
	root, err := filepath.Abs("../..")
	require.NoError(t, err)
	debs := buildPackages(t, root)
	c := bootWithPackage(t, debs[v1])

	t.Run("the container", func(t *testing.T) { container(c, t) })
	t.Run("enabled in a chroot, started at boot", func(t *testing.T) { enabledAtBoot(c, t) })
	t.Run("reload", func(t *testing.T) { reload(c, t) })
	t.Run("journal priorities", func(t *testing.T) { journalPriorities(c, t) })
	t.Run("security exposure", func(t *testing.T) { exposure(c, t) })
	// After the journal's test: journal_vacuum removes archived journal files. They run the
	// strict profile; the config before them is put back for the upgrade's test.
	kept := c.run("cat", config)
	def, err := os.ReadFile(filepath.Join(root, "configs/agent.yaml"))
	require.NoError(t, err)
	c.writeFile(config, string(def)) // the package's default: every check
	c.run("systemctl", "restart", unit)
	c.ready(time.Now())
	t.Run("privilege separation", func(t *testing.T) { privilegeSeparation(c, t) })
	t.Run("remediation through the helper", func(t *testing.T) { remediationThroughHelper(c, t) })
	t.Run("helper exposure", func(t *testing.T) { helperExposure(c, t) })
	c.writeFile(config, kept)
	c.run("systemctl", "reload", unit)
	if !t.Run("upgrade keeps config and state, restarts", func(t *testing.T) { upgrade(c, t, debs[v2]) }) {
		return
	}
	t.Run("remove, reinstall, purge", func(t *testing.T) { removeReinstallPurge(c, t, debs[v1]) })
}

// buildPackages builds the .deb of v1 and v2 with build.sh.
func buildPackages(t *testing.T, root string) map[string]string {
	debs := map[string]string{}
	for _, v := range []string{v1, v2} {
		out := t.TempDir()
		ctx, cancel := context.WithTimeout(t.Context(), 5*time.Minute)
		cmd := exec.CommandContext(ctx, "sh", filepath.Join(root, "deploy/packaging/build.sh"), out)
		cmd.Dir = root
		cmd.Env = append(os.Environ(), "VERSION="+v)
		b, err := cmd.CombinedOutput()
		cancel()
		require.NoError(t, err, "build.sh VERSION=%s:\n%s", v, b)
		debs[v] = filepath.Join(out, "l2agent_"+v+"-1_amd64.deb")
		require.FileExists(t, debs[v])
	}
	return debs
}

// bootWithPackage makes the container's tree, installs deb in it with chroot (no systemd
// runs there, as in an image build), then boots it.
func bootWithPackage(t *testing.T, deb string) ct {
	ctx := t.Context()
	sc, err := testenv.NewSystemdContainer(ctx, fmt.Sprintf("l2agent-test-%d", os.Getpid()))
	require.NoError(t, err)
	c := ct{SystemdContainer: sc, t: t}
	// Runs after the stop (cleanups run last first).
	t.Cleanup(func() {
		if _, err := os.Stat(sc.Root); !os.IsNotExist(err) {
			t.Errorf("stopped, the container's tree %s is still there (%v)", sc.Root, err)
		}
	})
	sc.StopWhenDone(t, unit, 80)
	// openssh-server: the mfa check judges sshd through `sshd -T`, under the unit as l2agent.
	apt := exec.CommandContext(ctx, "chroot", sc.Root, "sh", "-c", "apt-get update -q && apt-get install -y -q --no-install-recommends openssh-server")
	apt.Env = append(os.Environ(), "DEBIAN_FRONTEND=noninteractive")
	out, err := apt.CombinedOutput()
	require.NoError(t, err, "apt-get install openssh-server in a chroot:\n%s", out)
	b, err := os.ReadFile(deb)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(filepath.Join(sc.Root, "root", filepath.Base(deb)), b, 0o644))
	out, err = exec.CommandContext(ctx, "chroot", sc.Root, "dpkg", "-i", "/root/"+filepath.Base(deb)).CombinedOutput()
	require.NoError(t, err, "dpkg -i in a chroot:\n%s", out)
	link := filepath.Join(sc.Root, "etc/systemd/system/multi-user.target.wants", unit)
	target, err := os.Readlink(link)
	require.NoError(t, err, "installed in a chroot, the unit is not enabled")
	require.Equal(t, "/lib/systemd/system/"+unit, target)
	target, err = os.Readlink(filepath.Join(sc.Root, "etc/systemd/system/sockets.target.wants", helperSocket))
	require.NoError(t, err, "installed in a chroot, the helper's socket is not enabled")
	require.Equal(t, "/lib/systemd/system/"+helperSocket, target)
	require.NoError(t, sc.Boot(ctx))
	return c
}

func enabledAtBoot(c ct, t *testing.T) {
	require.Equal(t, "enabled\n", c.run("systemctl", "is-enabled", unit))
	t.Logf("ready %s after the boot finished", c.ready(time.Now()).Round(time.Millisecond))
	require.Equal(t, "active\n", c.run("systemctl", "is-active", unit))
	metrics := c.run("curl", "-sf", metricsURL)
	require.Regexp(t, `l2agent_build_info\{[^}]*version="`+regexp.QuoteMeta(v1)+`"`, metrics)
	require.Contains(t, metrics, "l2agent_config_last_reload_successful 1")

	// Start-up time: from `systemctl start` until it listens (/-/healthy) and until it is
	// ready (/-/ready: every check has run once).
	c.run("systemctl", "stop", unit)
	t0 := time.Now()
	c.run("systemctl", "start", unit)
	c.until(30*time.Second, "l2agent listening", func() (bool, string) {
		code, out := c.exec("curl", "-sf", "http://127.0.0.1:10061/-/healthy")
		return code == 0, out
	})
	listening := time.Since(t0)
	t.Logf("start-up: listening after %s, ready after %s (from `systemctl start`, each poll a command in the container)",
		listening.Round(time.Millisecond), c.ready(t0).Round(time.Millisecond))
}

// container: what the tests rely on: exit statuses pass through, and the container's
// 127.0.0.1 is its own.
func container(c ct, t *testing.T) {
	code, out := c.exec("sh", "-c", "echo out; echo err >&2; exit 7")
	require.Equal(t, 7, code)
	require.Equal(t, "out\nerr\n", out)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer l.Close()
	code, out = c.exec("curl", "-s", "--max-time", "5", "http://"+l.Addr().String()+"/")
	require.NotEqual(t, 0, code, "the host's 127.0.0.1 reached from the container: %s", out)
	links := c.run("ip", "-o", "link", "show")
	require.Equal(t, 1, strings.Count(links, "\n"), "only lo: %s", links)
	require.Contains(t, links, ": lo:")
}
