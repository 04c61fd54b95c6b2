package systemd_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

const (
	helperSocket = "l2agent-remediate.socket"
	helperUnit   = "l2agent-remediate@.service"
	// maxHelperExposure: the helper runs as root with the capabilities its actions need and
	// reaches systemd's D-Bus API (service_restart): its score is bounded by that.
	maxHelperExposure = 3.3
	// probeUnit is the installed l2agent.service with its ExecStart replaced (inUnit).
	probeUnit = "l2agent-probe.service"
	probeOut  = "/run/l2agent-probe.out"
)

// inUnit runs argv as the ExecStart of a copy of the installed l2agent.service: the same
// file, so the same user, capabilities, system call filter, namespaces and mounts, as systemd
// applies them to the daemon. Only what makes it a one-off run differs (checked): Type,
// ExecStart, ExecReload, Restart, its own RuntimeDirectory (stopping it must not remove the
// daemon's /run/l2agent), its output to a file, no [Install]. It returns the exit status and
// the output.
func (c ct) inUnit(argv ...string) (int, string) {
	c.t.Helper()
	installed := c.run("cat", "/lib/systemd/system/"+unit)
	var b strings.Builder
	for _, l := range strings.SplitAfter(installed, "\n") {
		switch {
		case l == "[Install]\n":
			goto done
		case strings.HasPrefix(l, "ExecStart="):
			fmt.Fprintf(&b, "ExecStart=%s\nStandardOutput=truncate:%s\nStandardError=inherit\n", strings.Join(argv, " "), probeOut)
		case strings.HasPrefix(l, "ExecReload="), strings.HasPrefix(l, "Restart"):
		case l == "Type=simple\n":
			b.WriteString("Type=oneshot\n")
		case l == "RuntimeDirectory=l2agent\n":
			b.WriteString("RuntimeDirectory=l2agent-probe\n")
		default:
			b.WriteString(l)
		}
	}
done:
	probe := b.String()
	require.Contains(c.t, probe, "\nUser=l2agent\n")
	require.Contains(c.t, probe, "\nCapabilityBoundingSet=CAP_DAC_READ_SEARCH\n")
	c.writeFile("/run/systemd/system/"+probeUnit, probe)
	c.run("systemctl", "daemon-reload")
	code, _ := c.exec("systemctl", "start", probeUnit)
	out := c.run("cat", probeOut)
	c.exec("systemctl", "reset-failed", probeUnit)
	return code, out
}

// privilegeSeparation: the daemon runs as l2agent with one capability; its checks judge the
// host as root would; from its unit context, everything that would give root is refused.
func privilegeSeparation(c ct, t *testing.T) {
	pid := c.mainPID()
	require.Equal(t, "l2agent\n", c.run("ps", "-o", "user=", "-p", strconv.Itoa(pid)))
	status := c.run("cat", fmt.Sprintf("/proc/%d/status", pid))
	// CAP_DAC_READ_SEARCH is bit 2: effective, permitted, ambient and bounding sets hold it alone.
	for _, set := range []string{"CapEff", "CapPrm", "CapAmb", "CapBnd"} {
		require.Regexp(t, set+`:\s+0000000000000004\n`, status)
	}
	require.Regexp(t, `NoNewPrivs:\s+1\n`, status)
	require.Equal(t, "l2agent l2agent 750\n", c.run("stat", "-c", "%U %G %a", "/var/lib/l2agent"))
	sameVerdicts(c, t)
	probes(c, t)
}

// sameVerdicts: every check of the default config gives, under the unit, what it gives run by
// root outside any sandbox, and none fails for want of a permission.
func sameVerdicts(c ct, t *testing.T) {
	var st struct {
		Checks []struct {
			Name   string `json:"name"`
			State  string `json:"state"`
			Errors int    `json:"errors"`
			Error  string `json:"last_error"`
		} `json:"checks"`
	}
	require.NoError(t, json.Unmarshal([]byte(c.run("curl", "-sf", "--unix-socket", "/run/l2agent/api.sock", "http://l2agent/api/v1/status")), &st))
	require.Len(t, st.Checks, 6)
	for _, ch := range st.Checks {
		require.Zero(t, ch.Errors, "check %s under the unit: %+v", ch.Name, ch)
		require.NotEqual(t, "unknown", ch.State, "check %s under the unit: %+v", ch.Name, ch)
	}
	var asRoot struct {
		Checks []struct {
			Name         string `json:"name"`
			Errors       int    `json:"errors"`
			Observations []struct {
				Metric  string            `json:"metric"`
				Labels  map[string]string `json:"labels"`
				Value   float64           `json:"value"`
				Details string            `json:"details"`
			} `json:"observations"`
		} `json:"checks"`
	}
	out := c.run("l2agent", "check", "--json", "--config", config, "mfa", "patches", "antivirus")
	require.NoError(t, json.Unmarshal([]byte(out), &asRoot))
	metrics := c.run("curl", "-sf", metricsURL)
	compared := 0
	for _, ch := range asRoot.Checks {
		require.Zero(t, ch.Errors, "check %s as root", ch.Name)
		for _, o := range ch.Observations {
			if strings.HasSuffix(o.Metric, "_seconds") { // ages: they move between the two runs
				continue
			}
			if o.Metric == "mfa_compliant" && o.Labels["control"] == "sshd" {
				require.Contains(t, o.Details, "sshd -T", "the sshd control is judged from sshd -T")
			}
			series := "l2agent_" + o.Metric + promLabels(o.Labels) + " " + strconv.FormatFloat(o.Value, 'g', -1, 64) + "\n"
			require.Contains(t, metrics, series, "as root %s; under the unit differently", strings.TrimSpace(series))
			compared++
		}
	}
	t.Logf("%d series of mfa, patches and antivirus: the same under the unit as run by root", compared)
	require.Greater(t, compared, 10)
}

func promLabels(l map[string]string) string {
	if len(l) == 0 {
		return ""
	}
	var ks []string
	for k := range l {
		ks = append(ks, k)
	}
	slices.Sort(ks)
	var parts []string
	for _, k := range ks {
		parts = append(parts, fmt.Sprintf("%s=%q", k, l[k]))
	}
	return "{" + strings.Join(parts, ",") + "}"
}

// probes runs testdata/probe in the daemon's unit context: each way to root is refused.
func probes(c ct, t *testing.T) {
	bin := filepath.Join(t.TempDir(), "l2agent-probe")
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "go", "build", "-o", bin, "./testdata/probe")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	b, err := cmd.CombinedOutput()
	require.NoError(t, err, "build the probe: %s", b)
	require.NoError(t, c.Copy(t.Context(), bin, "/usr/local/bin/l2agent-probe"))
	c.writeFile("/etc/systemd/system/l2agent-probe-target.service", "[Service]\nExecStart=/bin/sleep 1000\n")
	c.writeFile(config, strictConfig(t))
	code, out := c.inUnit("/usr/local/bin/l2agent-probe")
	t.Logf("probes in the daemon's unit context:\n%s", out)
	require.Equal(t, 0, code, out)
	require.Contains(t, out, "whoami: uid "+strings.TrimSpace(c.run("id", "-u", "l2agent"))+" ")
	for _, ok := range []string{"write state dir", "read /etc/shadow"} {
		require.Contains(t, out, ok+": ok\n")
	}
	refused := map[string]string{
		"write /etc":                       "read-only file system",
		"write /run":                       "read-only file system",
		"write /run/systemd/system":        "read-only file system",
		"write /run/lock":                  "read-only file system",
		"systemd-run":                      "Access denied",
		"systemctl start":                  "Access denied",
		"dbus StartUnit":                   "Access denied",
		"ptrace":                           "operation not permitted",
		"load module":                      "operation not permitted",
		"finit module":                     "operation not permitted",
		"setuid 0":                         "operation not permitted",
		"chown /var/lib/l2agent":           "operation not permitted",
		"helper: path outside allow_paths": `not_allowed: params refused by the policy: remediation action disk_cleanup: path "/etc" is outside allow_paths`,
		"helper: action not enabled":       "not_allowed: action security_updates is not enabled",
		"helper: unknown action":           `not_allowed: unknown action "shell"`,
		"helper: unit outside allow_units": `not_allowed: params refused by the policy: remediation action service_restart: unit "ssh.service" is not in allow_units`,
	}
	for name, why := range refused {
		require.Regexp(t, "(?m)^"+regexp.QuoteMeta(name+": refused: ")+".*"+regexp.QuoteMeta(why), out, name)
	}
	for _, p := range []string{"/etc/l2agent-probe", "/etc/l2agent-probe-systemd-run", "/run/l2agent-probe-file", "/run/systemd/system/l2agent-probe-evil.service"} {
		code, _ := c.exec("test", "-e", p)
		require.NotEqual(t, 0, code, "%s was created", p)
	}
	code, _ = c.exec("systemctl", "is-active", "l2agent-probe-target.service")
	require.NotEqual(t, 0, code, "the probe started a unit")
}

// strictConfig is configs/examples/strict.yaml, with journal_vacuum's size bound below the
// container's few MiB of journal (500M would leave nothing to free there).
func strictConfig(t *testing.T) string {
	b, err := os.ReadFile("../../configs/examples/strict.yaml")
	require.NoError(t, err)
	s := string(b)
	require.Contains(t, s, "params: {vacuum_size: 500M}")
	return strings.Replace(s, "params: {vacuum_size: 500M}", "params: {vacuum_size: 1K}", 1)
}

// remediationThroughHelper: every action the strict profile enables, run from the daemon's
// unit context (as user l2agent), goes through the helper under the shipped units and has its
// effect, measured here too.
func remediationThroughHelper(c ct, t *testing.T) {
	uid := strings.TrimSpace(c.run("id", "-u", "l2agent"))
	remediate := func(action, key string) string {
		t.Helper()
		argv := []string{"/usr/bin/l2agent", "remediate", "run", "--config", config, "--yes", action}
		if key != "" { // the params of the rule matching the alert, else the action's own
			argv = append(argv, "--alert", "'"+key+"'")
		}
		code, out := c.inUnit(argv...)
		require.Equal(t, 0, code, "%s: %s", action, out)
		require.Regexp(t, "^"+action+": success: ", out)
		return out
	}
	// disk_cleanup: old rotated logs in /var/log, and in /var/tmp in a directory of another user.
	c.run("sh", "-c", `head -c 300000 /dev/urandom >/var/log/app.log.1.gz && touch -d "30 days ago" /var/log/app.log.1.gz &&
		mkdir -p /var/tmp/other && head -c 100000 /dev/urandom >/var/tmp/other/x.log.3 && touch -d "30 days ago" /var/tmp/other/x.log.3 &&
		chown -R nobody:nogroup /var/tmp/other && chmod 700 /var/tmp/other && head -c 1000 /dev/urandom >/var/log/new.log.1.gz`)
	out := remediate("disk_cleanup", "") // the action's params: all of allow_paths
	require.Contains(t, out, "freed")
	for _, p := range []string{"/var/log/app.log.1.gz", "/var/tmp/other/x.log.3"} {
		code, _ := c.exec("test", "-e", p)
		require.NotEqual(t, 0, code, "disk_cleanup left %s", p)
	}
	c.run("test", "-f", "/var/log/new.log.1.gz") // not old enough
	helperLog := c.run("journalctl", "--no-pager", "-o", "cat", "-u", "l2agent-remediate@*")
	require.Regexp(t, `msg="confined by Landlock" .*action=disk_cleanup .*abi=\d+ writable="\[/var/log /var/tmp /var/lib/l2agent-remediate /dev/null\]"`, helperLog)

	// journal_vacuum: archived journal files (journalctl --rotate makes some) are removed.
	c.run("journalctl", "--rotate")
	archived := func() int {
		out := c.run("sh", "-c", "find /run/log/journal /var/log/journal -name '*@*.journal' 2>/dev/null | wc -l")
		n, err := strconv.Atoi(strings.TrimSpace(out))
		require.NoError(t, err)
		return n
	}
	before := archived()
	require.Positive(t, before, "no archived journal file to vacuum")
	remediate("journal_vacuum", `x/disk/disk_used_ratio{mountpoint="/"}`)
	after := archived()
	t.Logf("journal_vacuum: archived journal files %d → %d", before, after)
	require.Less(t, after, before)

	// service_restart: the unit the strict profile allows, stopped, is active again.
	c.writeFile("/etc/systemd/system/clamav-daemon.service", "[Service]\nExecStart=/bin/sleep infinity\n")
	c.run("systemctl", "daemon-reload")
	code, _ := c.exec("systemctl", "is-active", "clamav-daemon.service")
	require.NotEqual(t, 0, code)
	remediate("service_restart", `x/antivirus/antivirus_up{engine="clamav"}`)
	require.Equal(t, "active\n", c.run("systemctl", "is-active", "clamav-daemon.service"))

	// The helper audited each run with the agent's user as its peer, in its own root-owned log.
	audit := c.run("cat", "/var/lib/l2agent-remediate/remediation-audit.jsonl")
	for _, a := range []string{"disk_cleanup", "journal_vacuum", "service_restart"} {
		require.Regexp(t, `"action":"`+a+`","result":"success","reason":"applied; the agent verifies","peer":"uid `+uid+` `, audit)
	}
	require.Equal(t, "root 600\n", c.run("stat", "-c", "%U %a", "/var/lib/l2agent-remediate/remediation-audit.jsonl"))
	c.run("systemctl", "stop", "clamav-daemon.service")
}

// helperExposure: `systemd-analyze security` of the helper's units.
func helperExposure(c ct, t *testing.T) {
	inst := strings.Replace(helperUnit, "@", "@probe", 1)
	out := c.run("systemd-analyze", "security", "--no-pager", inst)
	m := regexp.MustCompile(`Overall exposure level for ` + regexp.QuoteMeta(inst) + `: ([0-9.]+) (\S+)`).FindStringSubmatch(out)
	require.NotNil(t, m, "no overall exposure in:\n%s", out)
	score, err := strconv.ParseFloat(m[1], 64)
	require.NoError(t, err)
	t.Logf("systemd-analyze security %s: %s %s", helperUnit, m[1], m[2])
	require.LessOrEqual(t, score, maxHelperExposure, "%s", out)
	require.Equal(t, "active\n", c.run("systemctl", "is-active", helperSocket))
	require.Equal(t, "srw-rw---- root l2agent\n", c.run("stat", "-c", "%A %U %G", "/run/l2agent-remediate.sock"))
}
