package agent

import (
	"context"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/l2agent/l2agent/checks"
	"github.com/l2agent/l2agent/configs"
	"github.com/l2agent/l2agent/internal/remediatetest"
	"github.com/l2agent/l2agent/internal/testkit"
	"github.com/l2agent/l2agent/remediate"
)

// burstRuns counts the runs of each test_burst check, by name.
var burstRuns sync.Map // name → *atomic.Int64

// test_burst reports a breach on its first run only: the alert clears at
// the next run whatever the remediation did.
func init() {
	checks.Register("test_burst", func(c configs.Check, _ checks.Env) (checks.Check, error) {
		v, _ := burstRuns.LoadOrStore(c.Name, new(atomic.Int64))
		runs := v.(*atomic.Int64)
		return funcCheck{c.Name, func(context.Context) ([]checks.Observation, error) {
			val := 0.0
			if runs.Add(1) == 1 {
				val = 500
			}
			return []checks.Observation{{Metric: "test_burst_value", Value: val}}, nil
		}}, nil
	}, nil, checks.MetricInfo{Name: "test_burst_value", Help: "500 at the first run, 0 after."})
}

// A remediation that ran without error but had no effect (disk_cleanup
// with nothing to delete) is a failed fix: the ticket is filed and its
// "What was tried" says why, and the incident is not counted as
// auto-remediated, although the alert would have cleared by itself at the
// verifying run.
func TestRemediationWithoutEffectIsTicketed(t *testing.T) {
	empty := t.TempDir() // allowlisted, holds nothing to delete
	body := `
hostname: web-7
checks:
  - name: burst
    kind: test_burst
    schedule: "@every 1h"
    rules: [{metric: test_burst_value, warn: 100}]
remediation:
  actions:
    disk_cleanup: {enabled: true, allow_paths: [` + empty + `]}
  rules:
    - {check: burst, action: disk_cleanup, params: {globs: ["*.log"], older_than: 7d}}
ticketing:
  interval: 100ms
  backends: [{name: sink-noeffect, kind: test_ext_sink}]
`
	cfgFile := writeConfig(t, body)
	a, err := New(Options{ConfigFile: cfgFile, Logger: testkit.QuietLogger()})
	require.NoError(t, err)
	require.NoError(t, a.Start(false))
	t.Cleanup(func() { stopAgent(t, a) })
	v, ok := extSinks.Load("sink-noeffect")
	require.True(t, ok)
	sink := v.(*extSink)

	require.Eventually(t, func() bool { return len(sink.tickets()) == 1 }, 10*time.Second, 20*time.Millisecond, "the failed fix is ticketed")
	tk := sink.tickets()[0]
	t.Logf("ticket body:\n%s", tk.Body)
	_, tried, ok := strings.Cut(tk.Body, "What was tried:")
	require.True(t, ok, tk.Body)
	require.Contains(t, tried, "disk_cleanup: failed: nothing to delete; no effect: nothing to free (no file older than 7d matching *.log in "+empty+")")

	require.Zero(t, remediatetest.Counter(t, a.reg, "l2agent_incidents_total", map[string]string{"check": "burst", "outcome": "auto_remediated"}),
		"a fix without effect is not an auto-remediation")
	require.Equal(t, 1.0, remediatetest.Counter(t, a.reg, "l2agent_incidents_total", map[string]string{"check": "burst", "outcome": "ticketed"}))
	require.Equal(t, 1.0, remediatetest.Counter(t, a.reg, "l2agent_remediation_runs_total", map[string]string{"action": "disk_cleanup", "result": "failed"}))
	recs, err := remediate.ReadAudit(filepath.Join(filepath.Dir(cfgFile), remediate.AuditFile), 0)
	require.NoError(t, err)
	require.Len(t, recs, 1)
	require.Equal(t, remediate.ResultFailed, recs[0].Result)
	require.True(t, strings.HasPrefix(recs[0].Reason, "no effect: nothing to free"), recs[0].Reason)
}
