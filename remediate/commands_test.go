package remediate

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"

	"github.com/l2agent/l2agent/internal/alert"
	"github.com/l2agent/l2agent/internal/testkit"
)

// evil labels: nothing of an alert may reach a command line, let alone a shell.
var evilLabels = map[string]string{
	"mountpoint": "/var; touch /tmp/l2agent-pwned",
	"unit":       "$(touch /tmp/l2agent-pwned).service",
	"config":     `"'; rm -rf / #`,
}

func evilAlert(check string) Alert {
	return Alert{Key: "h/" + check + "/m{x=\"$(id)\"}", Host: "h", Check: check, Metric: "m", Labels: evilLabels, State: alert.StateCrit, Value: 1}
}

func TestCommandActions(t *testing.T) {
	for _, tc := range []struct {
		action, check, policy, params string
		script                        string // extra stand-in code
		code                          int
		wantArgs                      []string
		wantResult                    string
		wantFreed                     int64
	}{
		{action: "service_restart", check: "antivirus", policy: "allow_units: [clamav-daemon.service]", params: "{unit: clamav-daemon.service}",
			wantArgs: []string{"--no-ask-password", "restart", "clamav-daemon.service"}, wantResult: "success: restarted clamav-daemon.service; alert cleared"},
		{action: "service_restart", check: "antivirus", policy: "allow_units: [clamav-daemon.service]", params: "{unit: clamav-daemon.service}",
			script: "echo 'Job for clamav-daemon.service failed.' >&2", code: 1,
			wantArgs: []string{"--no-ask-password", "restart", "clamav-daemon.service"}, wantResult: "failed: STANDIN exited with status 1"},
		{action: "journal_vacuum", check: "disk", params: "{vacuum_size: 500M, vacuum_time: 7d}",
			script:   "echo 'Vacuuming done, freed 96.0M of archived journals from /var/log/journal.' >&2",
			wantArgs: []string{"--vacuum-size=500M", "--vacuum-time=604800s"}, wantResult: "success: journal vacuumed, freed 96.0 MiB; alert cleared", wantFreed: 96 << 20},
		{action: "antivirus_update", check: "antivirus", params: "{}",
			script:   "echo 'daily.cvd updated (version: 27000)'",
			wantArgs: []string{"--stdout"}, wantResult: "success: signatures updated; alert cleared"},
		{action: "logrotate", check: "disk", policy: "allow_configs: [/etc/logrotate.d/nginx]", params: "{config: /etc/logrotate.d/nginx}",
			wantArgs: []string{"-f", "/etc/logrotate.d/nginx"}, wantResult: "success: rotated /etc/logrotate.d/nginx; alert cleared"},
		{action: "package_cache_clean", check: "disk", policy: "manager: apt", params: "{}",
			wantArgs: []string{"clean"}},
		{action: "package_cache_clean", check: "disk", policy: "manager: dnf", params: "{}",
			wantArgs: []string{"clean", "packages"}},
		{action: "package_cache_clean", check: "disk", policy: "manager: zypper", params: "{}",
			wantArgs: []string{"--non-interactive", "clean"}},
		{action: "package_cache_clean", check: "disk", policy: "manager: apk", params: "{}",
			wantArgs: []string{"cache", "clean"}},
	} {
		t.Run(tc.action+" "+tc.policy+fmt.Sprint(tc.code), func(t *testing.T) {
			cmd, argvFile := testkit.StandIn(t, "stand-in", tc.script, tc.code)
			policy := "enabled: true, command: " + cmd
			if tc.policy != "" {
				policy += ", " + tc.policy
			}
			yaml := fmt.Sprintf("remediation:\n  actions:\n    %s: {%s}\n  rules:\n    - {check: %s, action: %s, params: %s}\n", tc.action, policy, tc.check, tc.action, tc.params)
			e, _, _ := newTestEngine(t, yaml, testkit.NewClock("2026-08-01T12:00:00Z"))
			at, attempted := e.Remediate(context.Background(), evilAlert(tc.check), cleared(true))
			require.True(t, attempted, at.Result)
			require.Equal(t, append([]string{cmd}, tc.wantArgs...), testkit.RecordedArgv(t, argvFile))
			if tc.wantResult != "" {
				require.Equal(t, strings.ReplaceAll(tc.wantResult, "STANDIN", cmd), at.Result)
			}
			require.Equal(t, tc.code == 0, at.Success)
			require.Contains(t, at.Plan, cmd)
			for _, v := range evilLabels {
				require.NotContains(t, at.Plan, v)
			}
			if tc.wantFreed != 0 {
				require.Equal(t, float64(tc.wantFreed), testutilCounter(e, tc.action))
			}
			_, err := os.Stat("/tmp/l2agent-pwned")
			require.True(t, os.IsNotExist(err), "a label reached a shell")
		})
	}
}

func testutilCounter(e *Engine, action string) float64 {
	return testutil.ToFloat64(e.m.freed.WithLabelValues(action))
}

func TestSecurityUpdates(t *testing.T) {
	root := t.TempDir()
	status := filepath.Join(root, "var/lib/dpkg/status")
	require.NoError(t, os.MkdirAll(filepath.Dir(status), 0o755))
	require.NoError(t, os.MkdirAll(filepath.Join(root, "var/run"), 0o755))
	require.NoError(t, os.MkdirAll(filepath.Join(root, "etc/apt/apt.conf.d"), 0o755))
	dpkg := "Package: openssl\nStatus: install ok installed\nArchitecture: amd64\nVersion: 3.0.1\n\nPackage: gone\nStatus: deinstall ok config-files\nArchitecture: amd64\nVersion: 1\n"
	require.NoError(t, os.WriteFile(status, []byte(dpkg), 0o644))
	// The stand-in upgrades openssl and leaves a reboot-required flag.
	script := fmt.Sprintf("sed -i 's/3.0.1/3.0.2/' '%s'\ntouch '%s/var/run/reboot-required'\necho 'Packages that will be upgraded: openssl'", status, root)
	cmd, argvFile := testkit.StandIn(t, "unattended-upgrade", script, 0)
	yaml := fmt.Sprintf(`
remediation:
  actions:
    security_updates: {enabled: true, manager: apt, command: %s, maintenance_window: "0 2 * * *", maintenance_duration: 2h}
  rules:
    - {check: patches, metric: patches_pending, labels: {kind: security}, action: security_updates}
`, cmd)
	clk := testkit.NewClock("2026-08-01T12:00:00Z")
	dir := t.TempDir()
	e, err := NewWithEnv(parseRemediation(t, yaml), dir, nil, nil, clk.Now, Env{Procfs: "/proc", Root: root})
	require.NoError(t, err)
	a := Alert{Key: "h/patches", Check: "patches", Metric: "patches_pending", Labels: map[string]string{"kind": "security"}, State: alert.StateWarn, Value: 3}

	// Outside the window: nothing runs.
	at, attempted := e.Remediate(context.Background(), a, cleared(true))
	require.False(t, attempted)
	require.True(t, strings.HasPrefix(at.Result, ResultSkippedWindow), at.Result)
	_, err = os.Stat(argvFile)
	require.True(t, os.IsNotExist(err))

	// Automatic reboots configured: refused, never run.
	clk.Add(15 * time.Hour) // 03:00 the next day
	conf := filepath.Join(root, "etc/apt/apt.conf.d/50unattended-upgrades")
	require.NoError(t, os.WriteFile(conf, []byte("Unattended-Upgrade::Automatic-Reboot \"true\";\n"), 0o644))
	at, attempted = e.Remediate(context.Background(), a, cleared(true))
	require.True(t, attempted)
	require.Contains(t, at.Result, "failed: plan: refusing")
	_, err = os.Stat(argvFile)
	require.True(t, os.IsNotExist(err))

	require.NoError(t, os.WriteFile(conf, []byte("// Unattended-Upgrade::Automatic-Reboot \"true\";\nUnattended-Upgrade::Automatic-Reboot \"false\";\n"), 0o644))
	clk.Add(24 * time.Hour)
	at, attempted = e.Remediate(context.Background(), a, cleared(false))
	require.True(t, attempted)
	require.Equal(t, []string{cmd, "-v"}, testkit.RecordedArgv(t, argvFile))
	require.Equal(t, "not_verified: 1 packages changed; a reboot is required (not done); alert still firing after the action", at.Result)
	require.Contains(t, at.Output, "openssl:amd64 3.0.1 → 3.0.2")
	recs, err := ReadAudit(filepath.Join(dir, AuditFile), 0)
	require.NoError(t, err)
	require.True(t, recs[len(recs)-1].RebootRequired)
}

// The real programs, by their default absolute paths, through runCommand.
func TestRealCommands(t *testing.T) {
	for _, tc := range []struct {
		path, want string
		optional   bool
	}{
		{"/usr/bin/freshclam", "ClamAV", false},
		{"/usr/bin/journalctl", "systemd", true},
	} {
		t.Run(filepath.Base(tc.path), func(t *testing.T) {
			if _, err := os.Stat(tc.path); err != nil {
				if tc.optional {
					t.Skipf("%s not installed", tc.path)
				}
				testkit.RequireCI(t, "%s not installed (deploy/testenv/install.sh antivirus)", tc.path)
			}
			r, err := RunCommand(context.Background(), tc.path, "--version")
			require.NoError(t, err)
			require.Equal(t, 0, r.ExitCode)
			require.Contains(t, r.Output, tc.want)
			// The same program through a PATH lookup would be found too;
			// l2agent never does one.
			lp, err := exec.LookPath(filepath.Base(tc.path))
			if err == nil {
				t.Logf("%s (PATH would give %s)", tc.path, lp)
			}
		})
	}
	_, err := RunCommand(context.Background(), "freshclam", "--version")
	require.ErrorContains(t, err, "not an absolute path")
	_, err = RunCommand(context.Background(), "/nonexistent/freshclam")
	require.Error(t, err)
}

// A file name with shell syntax is only ever passed to unlinkat; argv of
// commands never carries alert data (see TestCommandActions). Here the
// command runner itself: arguments arrive byte for byte.
func TestRunCommandArgvVerbatim(t *testing.T) {
	cmd, argvFile := testkit.StandIn(t, "echo-args", "", 0)
	args := []string{"; rm -rf /", "$(touch /tmp/l2agent-pwned)", `"'`, "`id`", "a\nb", "\xff"}
	_, err := RunCommand(context.Background(), append([]string{cmd}, args...)...)
	require.NoError(t, err)
	require.Equal(t, append([]string{cmd}, args...), testkit.RecordedArgv(t, argvFile))
	_, err = os.Stat("/tmp/l2agent-pwned")
	require.True(t, os.IsNotExist(err))
}
