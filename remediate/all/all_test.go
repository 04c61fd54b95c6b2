package all_test

// The actions as a family, as the agent links them: each registered once,
// all off by default, their config errors at their lines.

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/l2agent/l2agent/configs"
	"github.com/l2agent/l2agent/internal/alert"
	"github.com/l2agent/l2agent/internal/remediatetest"
	"github.com/l2agent/l2agent/remediate"
	_ "github.com/l2agent/l2agent/remediate/all"
)

func TestEveryActionRegistered(t *testing.T) {
	require.Equal(t, []string{"antivirus_update", "disk_cleanup", "journal_vacuum", "logrotate", "package_cache_clean", "security_updates", "service_restart"},
		remediate.Names())
}

func TestConfigDefaultsAllOff(t *testing.T) {
	cfg := configs.Default().Remediation
	require.False(t, cfg.DryRun)
	require.Equal(t, configs.RateLimit{Count: 10, Window: configs.Duration(3600e9)}, cfg.MaxRuns)
	for _, name := range remediate.Names() {
		p, ok := cfg.Actions[name]
		require.True(t, ok, name)
		require.False(t, p.Enabled, "%s must be off by default", name)
		require.Positive(t, p.Timeout, name)
		require.True(t, p.VerifyEnabled(), name)
	}
	e, err := remediate.New(cfg, t.TempDir(), nil, nil, nil)
	require.NoError(t, err)
	_, attempted := e.Remediate(t.Context(), remediate.Alert{Check: "disk", State: alert.StateCrit}, nil)
	require.False(t, attempted)
}

func TestConfigValidation(t *testing.T) {
	yaml := `remediation:
  max_runs: {count: -1, window: 1h}
  actions:
    disk_cleanup: {enabled: true, allow_paths: [/var/log, var/tmp], cooldown: 30m}
    logrotate: {allow_paths: [/]}
    service_restart: {enabled: true, allow_units: ["clamav-daemon.service", "x; reboot"], command: systemctl}
    bogus: {enabled: true}
    security_updates: {enabled: true}
    journal_vacuum: {maintenance_window: "99 * * * *", allow_paths: [/var], params: {unit: foo.service}}
  rules:
    - {check: disk, metric: disk_used_ratio, labels: {mountpoint: /var}, action: disk_cleanup, params: {paths: [/etc], globs: ["*.gz", "[", "a/b"], older_than: 7d}}
    - {check: av, action: service_restart, params: {unit: sshd.service}}
    - {check: av, action: nope}
    - {check: j, action: journal_vacuum, params: {vacuum_size: lots}}
    - {action: logrotate, state: down, params: {config: /etc/logrotate.d/x}}
`
	remediatetest.RequireErrors(t, yaml,
		"test.yaml:2:21: remediation.max_runs: count must not be negative",
		"test.yaml:4:59: remediation action disk_cleanup: allow_paths \"var/tmp\": must be a clean absolute path",
		"test.yaml:5:17: unknown key \"allow_paths\" in remediation.actions.logrotate (known keys: allow_configs, command, cooldown, dry_run, enabled, maintenance_duration, maintenance_window, max_runs, params, timeout, verify)",
		"test.yaml:6:77: remediation action service_restart: \"x; reboot\" is not a systemd unit name such as clamav-daemon.service",
		"test.yaml:6:100: remediation action service_restart: command \"systemctl\": must be a clean absolute path",
		"test.yaml:7:12: unknown remediation action \"bogus\" (known: antivirus_update, disk_cleanup, journal_vacuum, logrotate, package_cache_clean, security_updates, service_restart)",
		"test.yaml:8:23: remediation action security_updates: runs only inside a maintenance window: set maintenance_window (a cron spec)",
		"test.yaml:9:42: remediation action journal_vacuum: bad maintenance_window \"99 * * * *\": end of range (99) above maximum (59): 99",
		"test.yaml:9:56: unknown key \"allow_paths\" in remediation.actions.journal_vacuum (known keys: command, cooldown, dry_run, enabled, maintenance_duration, maintenance_window, max_runs, params, timeout, verify)",
		"test.yaml:9:86: unknown key \"unit\" in remediation.actions.journal_vacuum.params (known keys: vacuum_size, vacuum_time)",
		"test.yaml:11:113: remediation action disk_cleanup: path \"/etc\" is outside allow_paths (/var/log, var/tmp)",
		"test.yaml:11:136: remediation action disk_cleanup: glob \"[\": want a file name pattern such as *.gz (no /)",
		"test.yaml:11:141: remediation action disk_cleanup: glob \"a/b\": want a file name pattern such as *.gz (no /)",
		"test.yaml:12:59: remediation action service_restart: unit \"sshd.service\" is not in allow_units",
		"test.yaml:13:27: remediation rule: unknown action \"nope\" (known: antivirus_update, disk_cleanup, journal_vacuum, logrotate, package_cache_clean, security_updates, service_restart)",
		"test.yaml:14:64: remediation action journal_vacuum: vacuum_size \"lots\": want a size such as 500M or 2G",
		"test.yaml:15:7: remediation rule: check is required (the name of the check whose alert runs the action)",
		"test.yaml:15:34: remediation rule: state \"down\": want warn or crit",
		"test.yaml:15:57: remediation action logrotate: config \"/etc/logrotate.d/x\" is not in allow_configs",
	)
}
