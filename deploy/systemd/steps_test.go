package systemd_test

import (
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

const (
	config = "/etc/l2agent/agent.yaml"
	// probeConfig is valid, and its one check fails at every run: its procfs is not there.
	// The agent logs "check failed" (error) and the alert state going unknown (warning).
	probeConfig = `# the systemd test's config: a check that fails
state_dir: /var/lib/l2agent
paths: {procfs: /nonexistent}
checks:
  - name: memory_probe
    kind: memory
    schedule: "@every 1h"
    rules:
      - {metric: memory_available_ratio, warn: 0.1, crit: 0.05, direction: below}
`
	rejectedConfig = "checks: [{name: x, kind: nope}]\n"
)

// reload: `systemctl reload` succeeds once the new config is in force, and fails, with the
// errors in `systemctl status`, when the config is rejected; the agent keeps its PID and the
// running config.
func reload(c ct, t *testing.T) {
	pid := c.mainPID()
	c.writeFile(config, probeConfig)
	c.run("systemctl", "reload", unit)
	// In force the moment systemctl returns: no waiting.
	require.Contains(t, c.run("curl", "-sf", "--unix-socket", "/run/l2agent/api.sock", "http://l2agent/api/v1/status"), `"name": "memory_probe"`)
	require.Contains(t, c.run("curl", "-sf", metricsURL), "l2agent_config_last_reload_successful 1")

	c.writeFile(config, rejectedConfig)
	code, out := c.exec("systemctl", "reload", unit)
	require.NotEqual(t, 0, code, "systemctl reload of a rejected config: %s", out)
	require.Contains(t, out, "failed")
	_, status := c.exec("systemctl", "status", "--no-pager", "-l", "-n", "20", unit)
	require.Contains(t, status, "config rejected, the running config is kept")
	require.Contains(t, status, config+":1:")
	require.Contains(t, status, "Active: active (running)")
	require.Equal(t, pid, c.mainPID())
	require.Contains(t, c.run("curl", "-sf", metricsURL), "l2agent_config_last_reload_successful 0")
	require.Contains(t, c.run("curl", "-sf", "--unix-socket", "/run/l2agent/api.sock", "http://l2agent/api/v1/status"), `"name": "memory_probe"`)

	c.writeFile(config, probeConfig)
	c.run("systemctl", "reload", unit)
	require.Contains(t, c.run("curl", "-sf", metricsURL), "l2agent_config_last_reload_successful 1")
	require.Equal(t, pid, c.mainPID())
}

// journalPriorities: the agent's warnings and errors are stored as such: `journalctl -p
// warning` lists them and no info line, `-p err` the errors only.
func journalPriorities(c ct, t *testing.T) {
	journal := func(prio string) string {
		return c.run("journalctl", "--no-pager", "-o", "cat", "-u", unit, "-p", prio)
	}
	c.until(30*time.Second, "the probe's failure in `journalctl -p warning`", func() (bool, string) {
		out := journal("warning")
		return strings.Contains(out, `msg="check failed" check=memory_probe`) &&
			strings.Contains(out, `msg="alert state changed"`), out
	})
	warn := journal("warning")
	require.Regexp(t, `level=WARN msg="alert state changed" key=\S+/memory_probe from=ok to=unknown`, warn)
	require.Contains(t, warn, "level=ERROR")
	require.NotContains(t, warn, "level=INFO")
	require.NotContains(t, warn, "l2agent started")
	for _, l := range strings.Split(strings.TrimSpace(warn), "\n") {
		require.False(t, strings.HasPrefix(l, "<"), "journald keeps the prefix: %q", l)
	}

	errs := journal("err")
	require.Contains(t, errs, `msg="check failed" check=memory_probe`)
	require.Contains(t, errs, `msg="config reload failed; keeping the running config"`)
	require.Contains(t, errs, "l2agent reload: config rejected, the running config is kept:")
	require.NotContains(t, errs, "level=WARN")

	info := journal("info")
	require.Contains(t, info, "l2agent started")
}

// exposure: `systemd-analyze security` of the installed unit, under the running systemd.
func exposure(c ct, t *testing.T) {
	out := c.run("systemd-analyze", "security", "--no-pager", unit)
	m := regexp.MustCompile(`Overall exposure level for ` + regexp.QuoteMeta(unit) + `: ([0-9.]+) (\S+)`).FindStringSubmatch(out)
	require.NotNil(t, m, "no overall exposure in:\n%s", out)
	score, err := strconv.ParseFloat(m[1], 64)
	require.NoError(t, err)
	t.Logf("systemd-analyze security %s: %s %s (systemd %s)", unit, m[1], m[2], strings.Fields(c.run("systemctl", "--version"))[1])
	require.LessOrEqual(t, score, maxExposure, "%s", out)
}

// upgrade: a newer package keeps the changed config and the state, and restarts the agent.
func upgrade(c ct, t *testing.T, deb string) {
	c.run("sh", "-c", "echo kept > /var/lib/l2agent/upgrade-marker")
	before := c.run("cat", config)
	pid := c.mainPID()
	// As a version that ran as root left it: the upgrade gives the state to l2agent.
	c.run("chown", "-R", "root:root", "/var/lib/l2agent")
	require.NoError(t, c.Copy(t.Context(), deb, "/root/"))
	c.run("dpkg", "-i", "/root/l2agent_"+v2+"-1_amd64.deb")
	require.Equal(t, "active\n", c.run("systemctl", "is-active", unit))
	require.NotEqual(t, pid, c.mainPID(), "the agent was not restarted")
	c.ready(time.Now())
	require.Regexp(t, `l2agent_build_info\{[^}]*version="`+regexp.QuoteMeta(v2)+`"`, c.run("curl", "-sf", metricsURL))
	require.Equal(t, before, c.run("cat", config), "the upgrade changed the config")
	require.Equal(t, "kept\n", c.run("cat", "/var/lib/l2agent/upgrade-marker"))
	require.Contains(t, c.run("ls", "/var/lib/l2agent"), "alerts.json", "the alert state is gone")
	require.Equal(t, "l2agent\n", c.run("sh", "-c", "find /var/lib/l2agent -printf '%u\\n' | sort -u"), "state left to root by the upgrade")
	require.Equal(t, "active\n", c.run("systemctl", "is-active", helperSocket))
	require.Contains(t, c.run("curl", "-sf", "--unix-socket", "/run/l2agent/api.sock", "http://l2agent/api/v1/status"), `"name": "memory_probe"`)
}

// removeReinstallPurge: remove stops the agent and keeps config and state; installing again
// starts it; purge leaves nothing; an install under the running systemd starts it at once.
func removeReinstallPurge(c ct, t *testing.T, deb string) {
	pkg := "/root/l2agent_" + v1 + "-1_amd64.deb"
	c.run("dpkg", "-r", "l2agent")
	code, _ := c.exec("systemctl", "is-active", unit)
	require.NotEqual(t, 0, code, "active after dpkg -r")
	c.run("test", "-f", config)
	c.run("test", "-f", "/var/lib/l2agent/upgrade-marker")
	code, out := c.exec("pgrep", "-x", "l2agent")
	require.NotEqual(t, 0, code, "l2agent still runs: %s", out)

	c.run("dpkg", "-i", pkg)
	require.Equal(t, "active\n", c.run("systemctl", "is-active", unit), "not started again on reinstall")
	require.Equal(t, "enabled\n", c.run("systemctl", "is-enabled", unit))

	c.run("dpkg", "--purge", "l2agent")
	purged(c, t)

	c.run("apt-get", "install", "-y", "-q", pkg)
	require.Equal(t, "active\n", c.run("systemctl", "is-active", unit))
	require.Equal(t, "enabled\n", c.run("systemctl", "is-enabled", unit))
	c.ready(time.Now())
	require.Regexp(t, `l2agent_build_info\{[^}]*version="`+regexp.QuoteMeta(v1)+`"`, c.run("curl", "-sf", metricsURL))
	c.run("apt-get", "purge", "-y", "-q", "l2agent")
	purged(c, t)
}

func purged(c ct, t *testing.T) {
	t.Helper()
	for _, p := range []string{"/usr/bin/l2agent", "/etc/l2agent", "/var/lib/l2agent", "/var/lib/l2agent-remediate", "/run/l2agent", "/lib/systemd/system/" + unit,
		"/lib/systemd/system/" + helperSocket, "/lib/systemd/system/" + helperUnit, "/etc/systemd/system/sockets.target.wants/" + helperSocket, "/run/l2agent-remediate.sock",
		"/etc/systemd/system/" + unit, "/etc/systemd/system/multi-user.target.wants/" + unit, "/var/lib/systemd/deb-systemd-helper-enabled/" + unit + ".dsh-also"} {
		code, _ := c.exec("test", "-e", p, "-o", "-L", p)
		require.NotEqual(t, 0, code, "after purge: %s is still there", p)
	}
	require.Equal(t, "not-found\n", c.run("systemctl", "show", "-P", "LoadState", unit))
	require.Equal(t, "not-found\n", c.run("systemctl", "show", "-P", "LoadState", helperSocket))
	c.run("getent", "passwd", "l2agent") // kept on purge, as Debian keeps system users
	code, out := c.exec("pgrep", "-x", "l2agent")
	require.NotEqual(t, 0, code, "l2agent still runs: %s", out)
}
