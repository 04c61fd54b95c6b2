package agent

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/l2agent/l2agent/checks"
	"github.com/l2agent/l2agent/configs"
	"github.com/l2agent/l2agent/internal/alert"
	"github.com/l2agent/l2agent/internal/remediatetest"
	"github.com/l2agent/l2agent/internal/testkit"
	"github.com/l2agent/l2agent/remediate"
	"github.com/l2agent/l2agent/ticketing"
)

// GET /api/v1/tickets/history serves the store's history, oldest first:
// what `l2agent tickets history` shows while the agent holds the store.
func TestHistoryEndpoint(t *testing.T) {
	a := webAgent(t, Options{})
	svc := a.Tickets()
	require.NotNil(t, svc)
	at := time.Date(2026, 11, 2, 8, 0, 0, 0, time.UTC)
	for i, key := range []string{"web-7/disk/a", "web-7/disk/b"} {
		end := at.Add(time.Duration(i) * time.Hour)
		require.NoError(t, svc.Store.AddPast(ticketing.PastIncident{Key: key, Host: "web-7", Check: "disk", Began: at, Ended: end, Outcome: ticketing.EndCleared},
			a.Config().Ticketing.History, end))
	}
	code, body := apiDo(t, a, http.MethodGet, "/api/v1/tickets/history") // the API socket: TestAPINotOverTCP
	require.Equal(t, http.StatusOK, code, body)
	var got []ticketing.PastIncident
	require.NoError(t, json.Unmarshal([]byte(body), &got))
	require.Len(t, got, 2)
	require.Equal(t, "web-7/disk/a", got[0].Key)
	require.Equal(t, "web-7/disk/b", got[1].Key)
}

// toggleRuns counts the runs of each test_toggle check, by name.
var toggleRuns sync.Map // name → *atomic.Int64

// test_toggle breaches at its odd runs and is ok at its even ones: each
// breach is cleared by the verifying run that follows a remediation.
func init() {
	checks.Register("test_toggle", func(c configs.Check, _ checks.Env) (checks.Check, error) {
		v, _ := toggleRuns.LoadOrStore(c.Name, new(atomic.Int64))
		runs := v.(*atomic.Int64)
		return funcCheck{c.Name, func(context.Context) ([]checks.Observation, error) {
			val := 0.0
			if runs.Add(1)%2 == 1 {
				val = 500
			}
			return []checks.Observation{{Metric: "test_toggle_value", Value: val}}, nil
		}}, nil
	}, nil, checks.MetricInfo{Name: "test_toggle_value", Help: "500 at odd runs, 0 at even ones."})
}

// historyAgent starts an agent with a test_toggle check named name whose
// breach disk_cleanup tries to fix in dir, the file backend and the
// history rules given; it returns the agent and the file backend's path.
func historyAgent(t *testing.T, name, dir, rules string) (*Agent, string) {
	t.Helper()
	toggleRuns.Delete(name) // counted from 1 again (go test -count)
	cfgFile := writeConfig(t, `
hostname: web-7
checks:
  - name: `+name+`
    kind: test_toggle
    schedule: "@every 1h"
    rules: [{metric: test_toggle_value, warn: 100}]
remediation:
  actions:
    disk_cleanup: {enabled: true, allow_paths: [`+dir+`], cooldown: 1ms}
  rules:
    - {check: `+name+`, action: disk_cleanup, params: {globs: ["*.log"], older_than: 7d}}
ticketing:
  interval: 100ms
  history: `+rules+`
  backends: [{name: file, kind: file}]
`)
	a, err := New(Options{ConfigFile: cfgFile, Logger: testkit.QuietLogger()})
	require.NoError(t, err)
	require.NoError(t, a.Start(false))
	t.Cleanup(func() { stopAgent(t, a) })
	return a, filepath.Join(filepath.Dir(cfgFile), "tickets.jsonl")
}

// oldLog puts a file disk_cleanup deletes (a *.log older than 7 days) in dir.
func oldLog(t *testing.T, dir string) {
	t.Helper()
	p := filepath.Join(dir, "app.log")
	require.NoError(t, os.WriteFile(p, make([]byte, 64<<10), 0o644))
	old := time.Now().Add(-30 * 24 * time.Hour)
	require.NoError(t, os.Chtimes(p, old, old))
}

// waitOK waits until key is ok (the run at start and its verifying run, or
// a RunAll, are over), so that the next RunAll is a run of its own.
func waitOK(t *testing.T, a *Agent, key string) {
	t.Helper()
	require.Eventually(t, func() bool {
		cur, ok := a.Evaluator().Alert(key)
		return ok && cur.State == alert.StateOK && len(a.Results()) > 0
	}, 10*time.Second, 20*time.Millisecond)
}

func fileText(t *testing.T, path string) string {
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return ""
	}
	require.NoError(t, err)
	return string(b)
}

// skip_failing_action through the pipeline: the action failed (nothing to
// delete) at the first breach; at the next one it is not run, and the
// ticket says so in a comment.
func TestSkipFailingActionEndToEnd(t *testing.T) {
	dir := t.TempDir()
	a, tickets := historyAgent(t, "skipper", dir, "{skip_failing_action: 1}")
	require.Eventually(t, func() bool { return strings.Contains(fileText(t, tickets), `"event":"open"`) }, 10*time.Second, 20*time.Millisecond)
	require.Contains(t, fileText(t, tickets), "disk_cleanup: failed: nothing to delete")
	_, err := a.RunAll(context.Background(), "skipper") // ok: an action with no effect is not verified
	require.NoError(t, err)
	waitOK(t, a, alert.Key("web-7", "skipper", "test_toggle_value", nil))
	_, err = a.RunAll(context.Background(), "skipper")
	require.NoError(t, err)
	require.Eventually(t, func() bool {
		return strings.Contains(fileText(t, tickets), "Remediation not run: disk_cleanup failed the last 1 times it ran on this host")
	}, 10*time.Second, 20*time.Millisecond)
	runs := 0.0
	for _, r := range remediate.Results {
		runs += remediatetest.Counter(t, a.reg, "l2agent_remediation_runs_total", map[string]string{"action": "disk_cleanup", "result": r})
	}
	require.Equal(t, 1.0, runs, "the second breach did not run the action")
}

// fix_not_holding through the pipeline: the first verified fix files no
// ticket; the second (count 2) files one, escalated at once to L3.
func TestFixNotHoldingEndToEnd(t *testing.T) {
	dir := t.TempDir()
	oldLog(t, dir)
	a, tickets := historyAgent(t, "fixer", dir, "{fix_not_holding: {count: 2, window: 1d}}")
	require.Eventually(t, func() bool {
		hist, err := a.Tickets().Store.History(nil)
		return err == nil && len(hist) == 1
	}, 10*time.Second, 20*time.Millisecond, "the first fix is in the history")
	hist, err := a.Tickets().Store.History(nil)
	require.NoError(t, err)
	require.Equal(t, ticketing.EndFixed, hist[0].Outcome)
	require.Equal(t, "disk_cleanup", hist[0].FixedBy)
	require.Empty(t, fileText(t, tickets), "fixed: no ticket")

	oldLog(t, dir)
	waitOK(t, a, alert.Key("web-7", "fixer", "test_toggle_value", nil))
	_, err = a.RunAll(context.Background(), "fixer")
	require.NoError(t, err)
	require.Eventually(t, func() bool { return strings.Contains(fileText(t, tickets), `"event":"escalate"`) }, 10*time.Second, 20*time.Millisecond)
	text := fileText(t, tickets)
	require.Contains(t, text, "the fix is not holding: disk_cleanup fixed this alert 2 times within 24h0m0s")
	require.Contains(t, text, "What fixed it last time: disk_cleanup")
	require.Equal(t, 1, strings.Count(text, `"event":"open"`))
}
