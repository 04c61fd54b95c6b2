package remediate_test

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
	"github.com/stretchr/testify/require"

	"github.com/l2agent/l2agent/configs"
	"github.com/l2agent/l2agent/internal/alert"
	"github.com/l2agent/l2agent/internal/remediatetest"
	"github.com/l2agent/l2agent/internal/testkit"
	"github.com/l2agent/l2agent/remediate"
)

// policyYAML: fake_cleanup stands for a disk cleanup, fake_vacuum for a
// cheap action allowed often, fake_updates for one inside a maintenance
// window, fake_av for a disabled one.
const policyYAML = `
remediation:
  max_runs: {count: 4, window: 1h}
  actions:
    fake_cleanup:
      enabled: true
      cooldown: 30m
      max_runs: {count: 2, window: 1h}
    fake_vacuum:
      enabled: true
      cooldown: 1m
      max_runs: {count: 10, window: 1h}
    fake_updates:
      enabled: true
      maintenance_window: "0 2 * * *"
      maintenance_duration: 1h
    fake_av: {enabled: false}
  rules:
    - {check: disk, metric: disk_used_ratio, action: fake_cleanup}
    - {check: journal, action: fake_vacuum}
    - {check: patches, state: crit, action: fake_updates}
    - {check: av, action: fake_av}
`

func firingAlert(check, key string) remediate.Alert {
	metric := check + "_metric"
	if check == "disk" {
		metric = "disk_used_ratio"
	}
	return remediate.Alert{Key: key, Host: "h1", Check: check, Metric: metric, State: alert.StateCrit, Value: 0.97}
}

func TestPolicy(t *testing.T) {
	type step struct {
		advance time.Duration
		check   string
		key     string
		verify  remediate.VerifyFunc
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
		{name: "disabled", steps: []step{{check: "av", key: "k", want: remediate.ResultNotAllowed}}},
		{name: "success then cooldown then again", steps: []step{
			{check: "disk", key: "a", verify: remediatetest.Cleared(true), want: remediate.ResultSuccess},
			{advance: 10 * time.Minute, check: "disk", key: "a", want: remediate.ResultSkippedCooldown},
			{advance: 21 * time.Minute, check: "disk", key: "a", verify: remediatetest.Cleared(false), want: remediate.ResultNotVerified},
		}},
		{name: "cooldown is per alert key", steps: []step{
			{check: "disk", key: "a", want: remediate.ResultSuccess},
			{check: "disk", key: "b", want: remediate.ResultSuccess},
		}},
		{name: "rate limit per action", steps: []step{
			{check: "disk", key: "a", want: remediate.ResultSuccess},
			{check: "disk", key: "b", want: remediate.ResultSuccess},
			{check: "disk", key: "c", want: remediate.ResultSkippedRateLimit},
			{advance: 59 * time.Minute, check: "disk", key: "d", want: remediate.ResultSkippedRateLimit},
			{advance: time.Minute, check: "disk", key: "e", want: remediate.ResultSuccess},
		}},
		{name: "rate limit overall", steps: []step{
			{check: "journal", key: "a", want: remediate.ResultSuccess},
			{check: "journal", key: "b", want: remediate.ResultSuccess},
			{check: "disk", key: "c", want: remediate.ResultSuccess},
			{check: "journal", key: "d", want: remediate.ResultSuccess},
			{check: "journal", key: "e", want: remediate.ResultSkippedRateLimit},
			{advance: time.Hour, check: "journal", key: "f", want: remediate.ResultSuccess},
		}},
		{name: "maintenance window", start: "2026-08-01T01:30:00Z", steps: []step{
			{check: "patches", key: "p", want: remediate.ResultSkippedWindow},
			{advance: 30 * time.Minute, check: "patches", key: "p", want: remediate.ResultSuccess},
			{advance: 24*time.Hour + 59*time.Minute, check: "patches", key: "p", want: remediate.ResultSuccess},
			{advance: 25 * time.Hour, check: "patches", key: "q", want: remediate.ResultSkippedWindow},
		}},
		{name: "global dry run", yaml: "\n  dry_run: true", steps: []step{
			{check: "disk", key: "a", want: remediate.ResultDryRun},
			{advance: time.Minute, check: "disk", key: "a", want: remediate.ResultSkippedCooldown},
			{check: "disk", key: "b", want: remediate.ResultDryRun},
			{check: "disk", key: "c", want: remediate.ResultDryRun}, // dry runs do not use up the rate limit
		}},
		{name: "apply fails", applyFn: func(f *fakeAction) { f.applyErr = errors.New("disk on fire") }, steps: []step{
			{check: "disk", key: "a", want: remediate.ResultFailed},
		}},
		{name: "applied without effect", applyFn: func(f *fakeAction) { f.expect, f.noEffect = "space freed", "read-only file system (/x)" }, steps: []step{
			{check: "disk", key: "a", want: remediate.ResultFailed},
			{advance: time.Hour, check: "disk", key: "a", verify: remediatetest.Cleared(false), want: remediate.ResultFailed},
		}},
		{name: "expected effect not measured", applyFn: func(f *fakeAction) { f.expect = "space freed" }, steps: []step{
			{check: "disk", key: "a", want: remediate.ResultFailed},
		}},
		{name: "expected effect measured", applyFn: func(f *fakeAction) { f.expect, f.effect = "space freed", "freed 100 B" }, steps: []step{
			{check: "disk", key: "a", want: remediate.ResultSuccess},
			{advance: time.Hour, check: "disk", key: "a", verify: remediatetest.Cleared(false), want: remediate.ResultNotVerified},
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
			e, reg, dir := remediatetest.NewEngine(t, yaml, clk)
			fakes := map[string]*fakeAction{}
			for _, n := range []string{"fake_cleanup", "fake_vacuum", "fake_updates", "fake_av"} {
				fakes[n] = &fakeAction{name: n}
				if tc.applyFn != nil {
					tc.applyFn(fakes[n])
				}
				e.SetAction(n, fakes[n])
			}
			audited := 0
			for i, s := range tc.steps {
				clk.Add(s.advance)
				v := s.verify
				if v == nil {
					v = remediatetest.Cleared(true)
				}
				at, attempted := e.Remediate(context.Background(), firingAlert(s.check, s.key), v)
				if s.want == "" {
					require.False(t, attempted, "step %d", i)
					require.Empty(t, at.Action, "step %d", i)
					continue
				}
				audited++
				require.True(t, strings.HasPrefix(at.Result, s.want+":") || at.Result == s.want, "step %d: got %q, want %s", i, at.Result, s.want)
				require.Equal(t, s.want == remediate.ResultSuccess, at.Success, "step %d", i)
				require.Equal(t, remediate.Ran(s.want), attempted, "step %d", i)
				require.Equal(t, clk.Now(), at.At)
			}
			recs, err := remediate.ReadAudit(filepath.Join(dir, remediate.AuditFile), 0)
			require.NoError(t, err)
			require.Len(t, recs, audited, "every decision is audited")
			require.Equal(t, float64(audited), remediatetest.Counter(t, reg, "l2agent_remediation_runs_total", nil), "every decision is counted")
			if tc.name == "global dry run" {
				_, applies := fakes["fake_cleanup"].counts()
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
	cmd, argvFile := testkit.StandIn(t, "hang", "sleep 300 & echo $! > '"+pidFile+"'\nsleep 300", 0)
	yaml := fmt.Sprintf(`
remediation:
  actions:
    fake_command: {enabled: true, timeout: 300ms, command: %s}
  rules:
    - {check: journal, action: fake_command}
`, cmd)
	e, _, auditDir := remediatetest.NewEngine(t, yaml, clk)
	start := time.Now()
	at, attempted := e.Remediate(context.Background(), firingAlert("journal", "j"), remediatetest.Cleared(true))
	require.Less(t, time.Since(start), remediate.KillGrace+2*time.Second)
	require.True(t, attempted)
	require.False(t, at.Success)
	require.True(t, strings.HasPrefix(at.Result, remediate.ResultTimeout+":"), at.Result)
	require.Equal(t, []string{cmd}, testkit.RecordedArgv(t, argvFile))
	b, err := os.ReadFile(pidFile)
	require.NoError(t, err)
	var pid int
	_, err = fmt.Sscan(strings.TrimSpace(string(b)), &pid)
	require.NoError(t, err)
	require.Eventually(t, func() bool { return syscall.Kill(pid, 0) != nil }, 3*time.Second, 20*time.Millisecond, "grandchild %d survived", pid)
	recs, err := remediate.ReadAudit(filepath.Join(auditDir, remediate.AuditFile), 0)
	require.NoError(t, err)
	require.Len(t, recs, 1)
	require.Equal(t, remediate.ResultTimeout, recs[0].Result)
}

// A fake action that hangs in Go code is cut off at the timeout too.
func TestPolicyTimeoutFakeAction(t *testing.T) {
	clk := testkit.NewClock("2026-08-01T12:00:00Z")
	yaml := strings.Replace(policyYAML, "      cooldown: 30m\n", "      cooldown: 30m\n      timeout: 100ms\n", 1)
	e, _, _ := remediatetest.NewEngine(t, yaml, clk)
	e.SetAction("fake_cleanup", &fakeAction{name: "fake_cleanup", hang: true})
	at, attempted := e.Remediate(context.Background(), firingAlert("disk", "d"), remediatetest.Cleared(true))
	require.True(t, attempted)
	require.Equal(t, remediate.ResultTimeout+": interrupted; killed at its timeout of 100ms", at.Result)
}

// Cooldowns and rate limits survive a restart (and hold between the daemon
// and the CLI): they are restored from the audit log.
func TestPolicyRestoredFromAudit(t *testing.T) {
	clk := testkit.NewClock("2026-08-01T12:00:00Z")
	dir := t.TempDir()
	cfg := remediatetest.Parse(t, policyYAML)
	e1, err := remediate.New(cfg, dir, nil, nil, clk.Now)
	require.NoError(t, err)
	e1.SetAction("fake_cleanup", &fakeAction{name: "fake_cleanup"})
	at, _ := e1.Remediate(context.Background(), firingAlert("disk", "a"), remediatetest.Cleared(true))
	require.True(t, at.Success)

	clk.Add(time.Minute)
	e2, err := remediate.New(cfg, dir, nil, nil, clk.Now)
	require.NoError(t, err)
	e2.SetAction("fake_cleanup", &fakeAction{name: "fake_cleanup"})
	at, attempted := e2.Remediate(context.Background(), firingAlert("disk", "a"), remediatetest.Cleared(true))
	require.False(t, attempted)
	require.True(t, strings.HasPrefix(at.Result, remediate.ResultSkippedCooldown), at.Result)

	// The manual run goes through the same policy: one run left of 2/h.
	at, attempted = e2.Run(context.Background(), "fake_cleanup", remediate.Alert{Key: "manual"}, nil)
	require.True(t, attempted)
	require.Equal(t, "success: fixed; not verified: no check to re-run", at.Result)
	at, _ = e2.Run(context.Background(), "fake_cleanup", remediate.Alert{Key: "manual2"}, nil)
	require.True(t, strings.HasPrefix(at.Result, remediate.ResultSkippedRateLimit), at.Result)

	infos := map[string]remediate.ActionInfo{}
	for _, ai := range e2.Actions() {
		infos[ai.Name] = ai
	}
	require.Len(t, infos, len(remediate.Names()), "every registered action")
	dc := infos["fake_cleanup"]
	require.True(t, dc.Policy.Enabled)
	require.Equal(t, []int{0}, dc.Rules)
	require.Len(t, dc.LastRuns, 4)
	require.Equal(t, remediate.ResultSkippedRateLimit, dc.LastRuns[0].Result)
	require.False(t, infos["fake_av"].Policy.Enabled, "fake_av is off")

	// Reloading on the same registry reuses the metrics.
	reg := prometheus.NewRegistry()
	_, err = remediate.New(cfg, dir, nil, reg, clk.Now)
	require.NoError(t, err)
	_, err = remediate.New(cfg, dir, nil, reg, clk.Now)
	require.NoError(t, err)
}

func TestAuditLine(t *testing.T) {
	clk := testkit.NewClock("2026-08-01T12:00:00Z")
	e, _, dir := remediatetest.NewEngine(t, policyYAML, clk)
	e.SetAction("fake_cleanup", &fakeAction{name: "fake_cleanup"})
	e.Remediate(context.Background(), firingAlert("disk", "h1/disk/disk_used_ratio{mountpoint=\"/var\"}"), remediatetest.Cleared(true))
	b, err := os.ReadFile(filepath.Join(dir, remediate.AuditFile))
	require.NoError(t, err)
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	require.Len(t, lines, 1)
	var m map[string]any
	require.NoError(t, json.Unmarshal([]byte(lines[0]), &m))
	require.Equal(t, "success", m["result"])
	require.Equal(t, "fake_cleanup", m["action"])
	fi, err := os.Stat(filepath.Join(dir, remediate.AuditFile))
	require.NoError(t, err)
	require.Equal(t, os.FileMode(0o600), fi.Mode().Perm())
}

func TestMaintenanceWindow(t *testing.T) {
	p := configs.ActionPolicy{MaintenanceWindow: "0 2 * * SUN", MaintenanceDuration: configs.Duration(2 * 3600e9)}
	for _, tc := range []struct {
		at   string
		want bool
	}{
		{"2026-08-02T01:59:59Z", false}, // a Sunday
		{"2026-08-02T02:00:00Z", true},
		{"2026-08-02T03:59:59Z", true},
		{"2026-08-02T04:00:00Z", true},
		{"2026-08-02T04:00:01Z", false},
		{"2026-08-03T02:30:00Z", false}, // Monday
	} {
		require.Equal(t, tc.want, p.InMaintenanceWindow(testkit.NewClock(tc.at).Now()), tc.at)
	}
	require.True(t, configs.ActionPolicy{}.InMaintenanceWindow(testkit.NewClock("2026-08-03T02:30:00Z").Now()))
}

// An action that ran without error but measured no effect fails with the
// reason, in the attempt (the ticket's "What was tried"), the audit and the
// metrics, and its alert is not verified: a run that changed nothing is
// never counted as a fix, even when the alert cleared by itself.
func TestPolicyNoEffect(t *testing.T) {
	clk := testkit.NewClock("2026-08-01T12:00:00Z")
	e, reg, dir := remediatetest.NewEngine(t, policyYAML, clk)
	fake := &fakeAction{name: "fake_cleanup", expect: "space freed in /x", noEffect: "read-only file system (/x)"}
	e.SetAction("fake_cleanup", fake)
	verified := false
	at, attempted := e.Remediate(context.Background(), firingAlert("disk", "a"), func(context.Context) (bool, error) {
		verified = true
		return true, nil
	})
	require.True(t, attempted)
	require.False(t, at.Success)
	require.Equal(t, "failed: fixed; no effect: read-only file system (/x)", at.Result)
	require.False(t, verified, "a run without effect is not verified")
	recs, err := remediate.ReadAudit(filepath.Join(dir, remediate.AuditFile), 0)
	require.NoError(t, err)
	require.Len(t, recs, 1)
	require.Equal(t, remediate.ResultFailed, recs[0].Result)
	require.Equal(t, "no effect: read-only file system (/x)", recs[0].Reason)
	require.Equal(t, "space freed in /x", recs[0].Expect)
	require.Empty(t, recs[0].Effect)
	require.Equal(t, 1.0, remediatetest.Counter(t, reg, "l2agent_remediation_runs_total", map[string]string{"action": "fake_cleanup", "result": "failed"}))
	require.Zero(t, remediatetest.Counter(t, reg, "l2agent_remediation_runs_total", map[string]string{"result": "success"}))

	// The same action measuring its effect succeeds once the alert cleared;
	// the audit has both the expected and the measured effect.
	fake.noEffect, fake.effect = "", "freed 100 B in /x"
	at, _ = e.Remediate(context.Background(), firingAlert("disk", "b"), remediatetest.Cleared(true))
	require.Equal(t, "success: fixed; alert cleared", at.Result)
	recs, err = remediate.ReadAudit(filepath.Join(dir, remediate.AuditFile), 0)
	require.NoError(t, err)
	require.Equal(t, "freed 100 B in /x", recs[1].Effect)
	require.Equal(t, "space freed in /x", recs[1].Expect)
}
