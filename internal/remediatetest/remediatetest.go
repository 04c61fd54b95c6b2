// Package remediatetest runs remediation actions in tests the way the agent
// does: the config through the real loader (its defaults and validation),
// the action through the real engine (policy, audit, metrics). The tests of
// package remediate and of every action under remediate/ share it.
package remediatetest

import (
	"context"
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	_ "github.com/l2agent/l2agent/checks/all" // the check kinds the default config names
	"github.com/l2agent/l2agent/configs"
	"github.com/l2agent/l2agent/internal/alert"
	"github.com/l2agent/l2agent/internal/testkit"
	"github.com/l2agent/l2agent/remediate"
	_ "github.com/l2agent/l2agent/ticketing/all" // and its ticket backend
)

// Parse parses a config holding a remediation: block with the config
// loader, so that defaults and validation are the real ones.
func Parse(t testing.TB, yaml string) configs.Remediation {
	t.Helper()
	cfg, err := configs.Parse("test.yaml", []byte(yaml))
	require.NoError(t, err)
	return cfg.Remediation
}

// NewEngine builds the engine of a config on the clock, with its audit log
// in a new temporary directory and its metrics on a new registry.
func NewEngine(t testing.TB, yaml string, clk *testkit.Clock) (e *remediate.Engine, reg *prometheus.Registry, auditDir string) {
	t.Helper()
	auditDir = t.TempDir()
	reg = prometheus.NewRegistry()
	e, err := remediate.New(Parse(t, yaml), auditDir, nil, reg, clk.Now)
	require.NoError(t, err)
	return e, reg, auditDir
}

// Cleared is a verify function: the re-run check reports the alert
// cleared, or still firing.
func Cleared(ok bool) remediate.VerifyFunc {
	return func(context.Context) (bool, error) { return ok, nil }
}

// Counter sums the series of the counter name in g whose labels include
// labels (every series when labels is empty).
func Counter(t testing.TB, g prometheus.Gatherer, name string, labels map[string]string) float64 {
	t.Helper()
	mfs, err := g.Gather()
	require.NoError(t, err)
	var sum float64
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	series:
		for _, m := range mf.GetMetric() {
			have := map[string]string{}
			for _, lp := range m.GetLabel() {
				have[lp.GetName()] = lp.GetValue()
			}
			for k, v := range labels {
				if have[k] != v {
					continue series
				}
			}
			sum += m.GetCounter().GetValue()
		}
	}
	return sum
}

// EvilLabels: nothing of an alert may reach a command line, let alone a
// shell.
var EvilLabels = map[string]string{
	"mountpoint": "/var; touch /tmp/l2agent-pwned",
	"unit":       "$(touch /tmp/l2agent-pwned).service",
	"config":     `"'; rm -rf / #`,
}

// EvilAlert is a crit alert of check whose key and labels carry shell
// syntax.
func EvilAlert(check string) remediate.Alert {
	return remediate.Alert{Key: "h/" + check + "/m{x=\"$(id)\"}", Host: "h", Check: check, Metric: "m", Labels: EvilLabels, State: alert.StateCrit, Value: 1}
}

// CommandCase is one run of an action that runs a program, through the
// engine, with a stand-in for the program (its `command`).
type CommandCase struct {
	Action, Check string
	Settings      string // the action's own keys beside enabled and command, flow style
	Params        string // the rule's params, flow style
	Script        string // extra stand-in code
	Code          int    // the stand-in's exit code
	WantArgs      []string
	WantResult    string // STANDIN stands for the stand-in's path; empty: not checked
	WantFreed     int64  // l2agent_remediation_freed_bytes_total; 0: not checked
}

// Name names the case for t.Run.
func (tc CommandCase) Name() string { return tc.Action + " " + tc.Settings + fmt.Sprint(tc.Code) }

// Run runs the case on an evil alert whose verification clears: the
// program gets exactly WantArgs, the plan names it and no label, and no
// label reached a shell.
func (tc CommandCase) Run(t *testing.T) {
	t.Helper()
	cmd, argvFile := testkit.StandIn(t, "stand-in", tc.Script, tc.Code)
	settings := "enabled: true, command: " + cmd
	if tc.Settings != "" {
		settings += ", " + tc.Settings
	}
	yaml := fmt.Sprintf("remediation:\n  actions:\n    %s: {%s}\n  rules:\n    - {check: %s, action: %s, params: %s}\n", tc.Action, settings, tc.Check, tc.Action, tc.Params)
	e, reg, _ := NewEngine(t, yaml, testkit.NewClock("2026-08-01T12:00:00Z"))
	at, attempted := e.Remediate(context.Background(), EvilAlert(tc.Check), Cleared(true))
	require.True(t, attempted, at.Result)
	require.Equal(t, append([]string{cmd}, tc.WantArgs...), testkit.RecordedArgv(t, argvFile))
	if tc.WantResult != "" {
		require.Equal(t, strings.ReplaceAll(tc.WantResult, "STANDIN", cmd), at.Result)
	}
	require.Equal(t, tc.Code == 0, at.Success)
	require.Contains(t, at.Plan, cmd)
	for _, v := range EvilLabels {
		require.NotContains(t, at.Plan, v)
	}
	if tc.WantFreed != 0 {
		require.Equal(t, float64(tc.WantFreed), Counter(t, reg, "l2agent_remediation_freed_bytes_total", map[string]string{"action": tc.Action}))
	}
	_, err := os.Stat("/tmp/l2agent-pwned")
	require.True(t, os.IsNotExist(err), "a label reached a shell")
}

// RequireErrors parses a config that must not validate and requires
// exactly want, each FILE:LINE:COL: message, in order.
func RequireErrors(t testing.TB, yaml string, want ...string) {
	t.Helper()
	_, err := configs.Parse("test.yaml", []byte(yaml))
	var errs configs.Errors
	require.ErrorAs(t, err, &errs)
	var got []string
	for _, e := range errs {
		got = append(got, e.Error())
	}
	require.Equal(t, want, got)
}
