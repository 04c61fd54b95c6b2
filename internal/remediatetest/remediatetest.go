// Package remediatetest runs remediation actions in tests the way the agent
// does: the config through the real loader (its defaults and validation),
// the action through the real engine (policy, audit, metrics). The tests of
// package remediate and of every action under remediate/ share it.
package remediatetest

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
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
	Script        string // extra stand-in code; STANDIN stands for the stand-in's path
	Code          int    // the stand-in's exit code
	Root          string // the root the action reads the host through (Env.Root); empty: /
	// WantArgs are the arguments of the one call of the program; WantCalls,
	// when set, those of every call in order (an action that also measures
	// its effect with the program, as service_restart with is-active).
	WantArgs  []string
	WantCalls [][]string
	// WantResult is the attempt's result (STANDIN stands for the stand-in's
	// path); empty: not checked. The attempt must succeed when it starts
	// with "success", else fail; when empty, when the program exits 0.
	WantResult string
	WantFreed  int64 // l2agent_remediation_freed_bytes_total; 0: not checked
}

// Name names the case for t.Run.
func (tc CommandCase) Name() string { return tc.Action + " " + tc.Settings + fmt.Sprint(tc.Code) }

// Run runs the case on an evil alert whose verification clears: the
// program gets exactly WantArgs (or WantCalls), the plan names it and no
// label, no label reached a shell, and the audit states the effect the
// plan expected and, for a success, the one measured.
func (tc CommandCase) Run(t *testing.T) {
	t.Helper()
	callsFile := filepath.Join(t.TempDir(), "calls")
	record := fmt.Sprintf("{ printf '%%d\\0' $(($# + 1)); printf '%%s\\0' \"$0\" \"$@\"; } >> '%s'\n", callsFile)
	cmd, _ := testkit.StandIn(t, "stand-in", record+tc.Script, tc.Code)
	script, err := os.ReadFile(cmd)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(cmd, bytes.ReplaceAll(script, []byte("STANDIN"), []byte(cmd)), 0o755))
	settings := "enabled: true, command: " + cmd
	if tc.Settings != "" {
		settings += ", " + tc.Settings
	}
	yaml := fmt.Sprintf("remediation:\n  actions:\n    %s: {%s}\n  rules:\n    - {check: %s, action: %s, params: %s}\n", tc.Action, settings, tc.Check, tc.Action, tc.Params)
	env := remediate.DefaultEnv
	if tc.Root != "" {
		env.Root = tc.Root
	}
	auditDir := t.TempDir()
	reg := prometheus.NewRegistry()
	e, err := remediate.NewWithEnv(Parse(t, yaml), auditDir, nil, reg, testkit.NewClock("2026-08-01T12:00:00Z").Now, env)
	require.NoError(t, err)
	at, attempted := e.Remediate(context.Background(), EvilAlert(tc.Check), Cleared(true))
	require.True(t, attempted, at.Result)
	calls := tc.WantCalls
	if calls == nil {
		calls = [][]string{tc.WantArgs}
	}
	var wantCalls [][]string
	for _, c := range calls {
		wantCalls = append(wantCalls, append([]string{cmd}, c...))
	}
	require.Equal(t, wantCalls, recordedCalls(t, callsFile))
	wantSuccess := tc.Code == 0
	if tc.WantResult != "" {
		require.Equal(t, strings.ReplaceAll(tc.WantResult, "STANDIN", cmd), at.Result)
		wantSuccess = strings.HasPrefix(tc.WantResult, remediate.ResultSuccess+":")
	}
	require.Equal(t, wantSuccess, at.Success, at.Result)
	require.Contains(t, at.Plan, cmd)
	for _, v := range EvilLabels {
		require.NotContains(t, at.Plan, v)
	}
	if tc.WantFreed != 0 {
		require.Equal(t, float64(tc.WantFreed), Counter(t, reg, "l2agent_remediation_freed_bytes_total", map[string]string{"action": tc.Action}))
	}
	recs, err := remediate.ReadAudit(filepath.Join(auditDir, remediate.AuditFile), 0)
	require.NoError(t, err)
	require.Len(t, recs, 1)
	require.NotEmpty(t, recs[0].Expect, "the plan states the effect it expects")
	if wantSuccess {
		require.NotEmpty(t, recs[0].Effect, "a success measured its effect")
	}
	_, err = os.Stat("/tmp/l2agent-pwned")
	require.True(t, os.IsNotExist(err), "a label reached a shell")
}

// recordedCalls reads the calls a CommandCase's stand-in recorded: for
// each, its argument count then its argv ($0 first), NUL separated.
func recordedCalls(t testing.TB, file string) [][]string {
	t.Helper()
	b, err := os.ReadFile(file)
	require.NoError(t, err, "the stand-in did not run")
	f := strings.Split(strings.TrimSuffix(string(b), "\x00"), "\x00")
	var calls [][]string
	for len(f) > 0 {
		n, err := strconv.Atoi(f[0])
		require.NoError(t, err)
		require.GreaterOrEqual(t, len(f)-1, n)
		calls = append(calls, f[1:1+n])
		f = f[1+n:]
	}
	return calls
}

// ReadOnlyTmpfs mounts a fresh tmpfs at dir (created), lets fill write into
// it, then remounts it read-only, as the systemd sandbox leaves most of the
// host (ProtectSystem=strict): a program run there may exit 0 and change
// nothing. It needs root: skipped elsewhere, fatal in CI. Unmounted at
// cleanup.
func ReadOnlyTmpfs(t testing.TB, dir string, fill func()) {
	t.Helper()
	if os.Geteuid() != 0 {
		testkit.RequireCI(t, "needs root to mount a tmpfs")
	}
	require.NoError(t, os.MkdirAll(dir, 0o755))
	if err := syscall.Mount("tmpfs", dir, "tmpfs", 0, "size=16m,mode=0755"); err != nil {
		testkit.RequireCI(t, "cannot mount a tmpfs: %v", err)
	}
	t.Cleanup(func() { _ = syscall.Unmount(dir, syscall.MNT_DETACH) })
	if fill != nil {
		fill()
	}
	require.NoError(t, syscall.Mount("tmpfs", dir, "tmpfs", syscall.MS_REMOUNT|syscall.MS_RDONLY, ""), "remount read-only")
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

// Fill writes size bytes to each of paths (their directories created) and
// returns the bytes they take on disk, as the actions measure space freed.
func Fill(t testing.TB, size int, paths ...string) int64 {
	t.Helper()
	var total int64
	for _, p := range paths {
		require.NoError(t, os.MkdirAll(filepath.Dir(p), 0o755))
		require.NoError(t, os.WriteFile(p, bytes.Repeat([]byte("x"), size), 0o644))
		var st syscall.Stat_t
		require.NoError(t, syscall.Stat(p, &st))
		total += st.Blocks * 512
	}
	return total
}
