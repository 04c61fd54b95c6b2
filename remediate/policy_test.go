package remediate

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"

	"github.com/l2agent/l2agent/internal/alert"
	"github.com/l2agent/l2agent/internal/testkit"
)

const policyYAML = `
remediation:
  max_runs: {count: 4, window: 1h}
  actions:
    disk_cleanup:
      enabled: true
      allow_paths: [/nonexistent/logs]
      cooldown: 30m
      max_runs: {count: 2, window: 1h}
    journal_vacuum:
      enabled: true
      cooldown: 1m
      max_runs: {count: 10, window: 1h}
      params: {vacuum_size: 500M}
    security_updates:
      enabled: true
      maintenance_window: "0 2 * * *"
      maintenance_duration: 1h
    antivirus_update: {enabled: false}
  rules:
    - {check: disk, metric: disk_used_ratio, action: disk_cleanup, params: {globs: ["*.gz"], older_than: 7d}}
    - {check: journal, action: journal_vacuum}
    - {check: patches, state: crit, action: security_updates}
    - {check: av, action: antivirus_update}
`

func firingAlert(check, key string) Alert {
	metric := check + "_metric"
	if check == "disk" {
		metric = "disk_used_ratio"
	}
	return Alert{Key: key, Host: "h1", Check: check, Metric: metric, State: alert.StateCrit, Value: 0.97}
}

func cleared(ok bool) VerifyFunc {
	return func(context.Context) (bool, error) { return ok, nil }
}

func newTestEngine(t *testing.T, yaml string, clk *testkit.Clock) (*Engine, *prometheus.Registry, string) {
	t.Helper()
	dir := t.TempDir()
	reg := prometheus.NewRegistry()
	e, err := New(parseRemediation(t, yaml), dir, nil, reg, clk.Now)
	require.NoError(t, err)
	return e, reg, dir
}

func TestPolicy(t *testing.T) {
	type step struct {
		advance time.Duration
		check   string
		key     string
		verify  VerifyFunc
		want    string // result; "" = no rule matched
	}
	for _, tc := range []struct {
		name    string
		yaml    string
		start   string
		applyFn func(*fakeAction)
		steps   []step
	}{
		{name: "no rule", steps: []step{{check: "cpu", key: "k", want: ""}}},
		{name: "disabled", steps: []step{{check: "av", key: "k", want: ResultNotAllowed}}},
		{name: "success then cooldown then again", steps: []step{
			{check: "disk", key: "a", verify: cleared(true), want: ResultSuccess},
			{advance: 10 * time.Minute, check: "disk", key: "a", want: ResultSkippedCooldown},
			{advance: 21 * time.Minute, check: "disk", key: "a", verify: cleared(false), want: ResultNotVerified},
		}},
		{name: "cooldown is per alert key", steps: []step{
			{check: "disk", key: "a", want: ResultSuccess},
			{check: "disk", key: "b", want: ResultSuccess},
		}},
		{name: "rate limit per action", steps: []step{
			{check: "disk", key: "a", want: ResultSuccess},
			{check: "disk", key: "b", want: ResultSuccess},
			{check: "disk", key: "c", want: ResultSkippedRateLimit},
			{advance: 59 * time.Minute, check: "disk", key: "d", want: ResultSkippedRateLimit},
			{advance: time.Minute, check: "disk", key: "e", want: ResultSuccess},
		}},
		{name: "rate limit overall", steps: []step{
			{check: "journal", key: "a", want: ResultSuccess},
			{check: "journal", key: "b", want: ResultSuccess},
			{check: "disk", key: "c", want: ResultSuccess},
			{check: "journal", key: "d", want: ResultSuccess},
			{check: "journal", key: "e", want: ResultSkippedRateLimit},
			{advance: time.Hour, check: "journal", key: "f", want: ResultSuccess},
		}},
		{name: "maintenance window", start: "2026-08-01T01:30:00Z", steps: []step{
			{check: "patches", key: "p", want: ResultSkippedWindow},
			{advance: 30 * time.Minute, check: "patches", key: "p", want: ResultSuccess},
			{advance: 24*time.Hour + 59*time.Minute, check: "patches", key: "p", want: ResultSuccess},
			{advance: 25 * time.Hour, check: "patches", key: "q", want: ResultSkippedWindow},
		}},
		{name: "global dry run", yaml: "\n  dry_run: true", steps: []step{
			{check: "disk", key: "a", want: ResultDryRun},
			{advance: time.Minute, check: "disk", key: "a", want: ResultSkippedCooldown},
			{check: "disk", key: "b", want: ResultDryRun},
			{check: "disk", key: "c", want: ResultDryRun}, // dry runs do not use up the rate limit
		}},
		{name: "apply fails", applyFn: func(f *fakeAction) { f.applyErr = errors.New("disk on fire") }, steps: []step{
			{check: "disk", key: "a", want: ResultFailed},
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			start := tc.start
			if start == "" {
				start = "2026-08-01T12:00:00Z"
			}
			clk := testkit.NewClock(start)
			yaml := policyYAML
			if tc.yaml != "" {
				yaml = strings.Replace(yaml, "remediation:", "remediation:"+tc.yaml, 1)
			}
			e, reg, dir := newTestEngine(t, yaml, clk)
			fakes := map[string]*fakeAction{}
			for _, n := range []string{"disk_cleanup", "journal_vacuum", "security_updates", "antivirus_update"} {
				fakes[n] = &fakeAction{name: n}
				if tc.applyFn != nil {
					tc.applyFn(fakes[n])
				}
				e.setAction(n, fakes[n])
			}
			audited := 0
			for i, s := range tc.steps {
				clk.Add(s.advance)
				v := s.verify
				if v == nil {
					v = cleared(true)
				}
				at, attempted := e.Remediate(context.Background(), firingAlert(s.check, s.key), v)
				if s.want == "" {
					require.False(t, attempted, "step %d", i)
					require.Empty(t, at.Action, "step %d", i)
					continue
				}
				audited++
				require.True(t, strings.HasPrefix(at.Result, s.want+":") || at.Result == s.want, "step %d: got %q, want %s", i, at.Result, s.want)
				require.Equal(t, s.want == ResultSuccess, at.Success, "step %d", i)
				require.Equal(t, ran(s.want), attempted, "step %d", i)
				require.Equal(t, clk.Now(), at.At)
			}
			recs, err := ReadAudit(filepath.Join(dir, AuditFile), 0)
			require.NoError(t, err)
			require.Len(t, recs, audited, "every decision is audited")
			var total float64
			for _, r := range Results {
				for _, a := range []string{"disk_cleanup", "journal_vacuum", "security_updates", "antivirus_update"} {
					total += testutil.ToFloat64(e.m.runs.WithLabelValues(a, r))
				}
			}
			require.Equal(t, float64(audited), total)
			_, err = reg.Gather()
			require.NoError(t, err)
			if tc.name == "global dry run" {
				_, applies := fakes["disk_cleanup"].counts()
				require.Zero(t, applies, "a dry run never applies")
			}
		})
	}
}

// A hanging action is killed at its timeout, with its whole process group,
// and recorded as timeout.
func TestPolicyTimeoutKillsProcessGroup(t *testing.T) {
	clk := testkit.NewClock("2026-08-01T12:00:00Z")
	dir := t.TempDir()
	pidFile := filepath.Join(dir, "child.pid")
	// The stand-in starts a grandchild that would outlive it, then hangs.
	cmd, argvFile := testkit.StandIn(t, "journalctl", "sleep 300 & echo $! > '"+pidFile+"'\nsleep 300", 0)
	yaml := strings.Replace(policyYAML, "      params: {vacuum_size: 500M}", "      params: {vacuum_size: 500M}\n      timeout: 300ms\n      command: "+cmd, 1)
	e, _, auditDir := newTestEngine(t, yaml, clk)
	start := time.Now()
	at, attempted := e.Remediate(context.Background(), firingAlert("journal", "j"), cleared(true))
	require.Less(t, time.Since(start), killGrace+2*time.Second)
	require.True(t, attempted)
	require.False(t, at.Success)
	require.True(t, strings.HasPrefix(at.Result, ResultTimeout+":"), at.Result)
	require.Equal(t, []string{cmd, "--vacuum-size=500M"}, testkit.RecordedArgv(t, argvFile))
	b, err := os.ReadFile(pidFile)
	require.NoError(t, err)
	var pid int
	_, err = fmt.Sscan(strings.TrimSpace(string(b)), &pid)
	require.NoError(t, err)
	require.Eventually(t, func() bool { return syscall.Kill(pid, 0) != nil }, 3*time.Second, 20*time.Millisecond, "grandchild %d survived", pid)
	recs, err := ReadAudit(filepath.Join(auditDir, AuditFile), 0)
	require.NoError(t, err)
	require.Len(t, recs, 1)
	require.Equal(t, ResultTimeout, recs[0].Result)
}

// A fake action that hangs in Go code is cut off at the timeout too.
func TestPolicyTimeoutFakeAction(t *testing.T) {
	clk := testkit.NewClock("2026-08-01T12:00:00Z")
	yaml := strings.Replace(policyYAML, "      cooldown: 30m\n", "      cooldown: 30m\n      timeout: 100ms\n", 1)
	e, _, _ := newTestEngine(t, yaml, clk)
	e.setAction("disk_cleanup", &fakeAction{name: "disk_cleanup", hang: true})
	at, attempted := e.Remediate(context.Background(), firingAlert("disk", "d"), cleared(true))
	require.True(t, attempted)
	require.Equal(t, ResultTimeout+": interrupted; killed at its timeout of 100ms", at.Result)
}

// Cooldowns and rate limits survive a restart (and hold between the daemon
// and the CLI): they are restored from the audit log.
func TestPolicyRestoredFromAudit(t *testing.T) {
	clk := testkit.NewClock("2026-08-01T12:00:00Z")
	dir := t.TempDir()
	cfg := parseRemediation(t, policyYAML)
	e1, err := New(cfg, dir, nil, nil, clk.Now)
	require.NoError(t, err)
	e1.setAction("disk_cleanup", &fakeAction{name: "disk_cleanup"})
	at, _ := e1.Remediate(context.Background(), firingAlert("disk", "a"), cleared(true))
	require.True(t, at.Success)

	clk.Add(time.Minute)
	e2, err := New(cfg, dir, nil, nil, clk.Now)
	require.NoError(t, err)
	e2.setAction("disk_cleanup", &fakeAction{name: "disk_cleanup"})
	at, attempted := e2.Remediate(context.Background(), firingAlert("disk", "a"), cleared(true))
	require.False(t, attempted)
	require.True(t, strings.HasPrefix(at.Result, ResultSkippedCooldown), at.Result)

	// The manual run goes through the same policy: one run left of 2/h.
	at, attempted = e2.Run(context.Background(), "disk_cleanup", Alert{Key: "manual"}, nil)
	require.True(t, attempted)
	require.Equal(t, "success: fixed; not verified: no check to re-run", at.Result)
	at, _ = e2.Run(context.Background(), "disk_cleanup", Alert{Key: "manual2"}, nil)
	require.True(t, strings.HasPrefix(at.Result, ResultSkippedRateLimit), at.Result)

	infos := map[string]ActionInfo{}
	for _, ai := range e2.Actions() {
		infos[ai.Name] = ai
	}
	require.Len(t, infos, 7)
	dc := infos["disk_cleanup"]
	require.True(t, dc.Policy.Enabled)
	require.Equal(t, []int{0}, dc.Rules)
	require.Len(t, dc.LastRuns, 4)
	require.Equal(t, ResultSkippedRateLimit, dc.LastRuns[0].Result)
	require.False(t, infos["antivirus_update"].Policy.Enabled, "antivirus_update is off")

	// Reloading on the same registry reuses the metrics.
	reg := prometheus.NewRegistry()
	_, err = New(cfg, dir, nil, reg, clk.Now)
	require.NoError(t, err)
	_, err = New(cfg, dir, nil, reg, clk.Now)
	require.NoError(t, err)
}

func TestAuditLine(t *testing.T) {
	clk := testkit.NewClock("2026-08-01T12:00:00Z")
	e, _, dir := newTestEngine(t, policyYAML, clk)
	e.setAction("disk_cleanup", &fakeAction{name: "disk_cleanup"})
	e.Remediate(context.Background(), firingAlert("disk", "h1/disk/disk_used_ratio{mountpoint=\"/var\"}"), cleared(true))
	b, err := os.ReadFile(filepath.Join(dir, AuditFile))
	require.NoError(t, err)
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	require.Len(t, lines, 1)
	var m map[string]any
	require.NoError(t, json.Unmarshal([]byte(lines[0]), &m))
	require.Equal(t, "success", m["result"])
	require.Equal(t, "disk_cleanup", m["action"])
	fi, err := os.Stat(filepath.Join(dir, AuditFile))
	require.NoError(t, err)
	require.Equal(t, os.FileMode(0o600), fi.Mode().Perm())
}
