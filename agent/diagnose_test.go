package agent

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/l2agent/l2agent/checks"
	"github.com/l2agent/l2agent/configs"
	"github.com/l2agent/l2agent/internal/alert"
	"github.com/l2agent/l2agent/internal/testkit"
	"github.com/l2agent/l2agent/ticketing/file"
)

// diagOptions is the `test_diag:` block: which gauge the check reports.
type diagOptions struct {
	Gauge string `yaml:"gauge"`
}

func (*diagOptions) ApplyDefaults(string)            {}
func (*diagOptions) Validate(string, configs.Errorf) {}

// diagGauge is a value a test sets and a test_diag check reports, with the
// number of diagnostics taken of it.
type diagGauge struct {
	value atomic.Uint64 // math.Float64bits of the value
	taken atomic.Int64
}

var diagGauges sync.Map // name → *diagGauge

func gauge(name string) *diagGauge {
	v, _ := diagGauges.LoadOrStore(name, new(diagGauge))
	return v.(*diagGauge)
}

func (g *diagGauge) set(v float64) { g.value.Store(math.Float64bits(v)) }
func (g *diagGauge) get() float64  { return math.Float64frombits(g.value.Load()) }

// diagCheck reports its gauge and diagnoses it: "diagnostics #N at V".
type diagCheck struct {
	name string
	g    *diagGauge
}

func (c diagCheck) Name() string { return c.name }
func (c diagCheck) Run(context.Context) ([]checks.Observation, error) {
	return []checks.Observation{{Metric: "test_diag_ratio", Labels: map[string]string{"gauge": c.name}, Value: c.g.get()}}, nil
}
func (c diagCheck) Diagnose(_ context.Context, o checks.Observation) (string, error) {
	return fmt.Sprintf("diagnostics #%d at %.2f", c.g.taken.Add(1), o.Value), nil
}

func init() {
	checks.Register("test_diag", func(c configs.Check, _ checks.Env) (checks.Check, error) {
		return diagCheck{name: c.Name, g: gauge(c.Options.(*diagOptions).Gauge)}, nil
	}, func() configs.Options { return &diagOptions{} },
		checks.MetricInfo{Name: "test_diag_ratio", Help: "A gauge a test sets."})
}

const diagConfig = `
hostname: web-7
checks:
  - name: %[1]s
    kind: test_diag
    schedule: "@every 1h"
    test_diag: {gauge: %[1]s}
    rules: [{metric: test_diag_ratio, warn: 0.5, crit: 0.9}]
`

// TestDiagnoseWhenSeverityRises: diagnostics are taken when the alert
// starts firing and again when it rises to crit (its escalation shows the
// host then), not when it falls back to warn; freshDiagnostics (what
// ticketing asks before an SLA escalation) takes them once more and the
// alert carries them from then on.
func TestDiagnoseWhenSeverityRises(t *testing.T) {
	g := gauge("rises")
	a, err := New(Options{ConfigFile: writeConfig(t, fmt.Sprintf(diagConfig, "rises")), Logger: testkit.QuietLogger()})
	require.NoError(t, err)
	ctx := context.Background()
	run := func(v float64) alert.Transition {
		t.Helper()
		g.set(v)
		ts := a.RunCheck(ctx, a.runners[0])
		require.Len(t, ts, 1)
		return ts[0]
	}
	tr := run(0.6)
	require.Equal(t, alert.StateWarn, tr.State)
	require.Equal(t, "diagnostics #1 at 0.60", tr.Details)

	tr = run(0.95)
	require.Equal(t, alert.StateCrit, tr.State)
	require.Equal(t, "diagnostics #2 at 0.95", tr.Details, "taken again as it rose")

	tr = run(0.6)
	require.Equal(t, alert.StateWarn, tr.State)
	require.Equal(t, "diagnostics #2 at 0.95", tr.Details, "not taken as it fell")
	require.Equal(t, int64(2), g.taken.Load())

	d, err := a.freshDiagnostics(ctx, tr.Key)
	require.NoError(t, err)
	require.Equal(t, "diagnostics #3 at 0.60", d)
	al, ok := a.Evaluator().Alert(tr.Key)
	require.True(t, ok)
	require.Equal(t, d, al.Details, "later transitions carry the new ones")

	_, err = a.freshDiagnostics(ctx, "web-7/rises/test_diag_ratio{gauge=\"gone\"}")
	require.ErrorContains(t, err, "not evaluated now")
}

// TestSLAEscalationDiagnosedAfresh: the agent wires freshDiagnostics into
// ticketing: an escalation by SLA, which no check run causes, carries
// diagnostics taken at that time, not those of the open.
func TestSLAEscalationDiagnosedAfresh(t *testing.T) {
	g := gauge("sla")
	g.set(0.6)
	body := fmt.Sprintf(diagConfig, "sla") + `
ticketing:
  interval: 100ms
  sla: {warn: 1s}
  backends: [{name: file, kind: file}]
`
	cfgPath := writeConfig(t, body)
	a, err := New(Options{ConfigFile: cfgPath, Logger: testkit.QuietLogger()})
	require.NoError(t, err)
	require.NoError(t, a.Start(false)) // the check runs once, at start
	t.Cleanup(func() { stopAgent(t, a) })

	path := filepath.Join(filepath.Dir(cfgPath), "tickets.jsonl")
	var open, esc file.Line
	require.Eventually(t, func() bool {
		f, err := os.Open(path)
		if err != nil {
			return false
		}
		defer f.Close()
		sc := bufio.NewScanner(f)
		sc.Buffer(nil, 1<<20)
		for sc.Scan() {
			var l file.Line
			require.NoError(t, json.Unmarshal(sc.Bytes(), &l))
			switch l.Event {
			case "open":
				open = l
			case "escalate":
				esc = l
			}
		}
		return esc.Event != ""
	}, 20*time.Second, 50*time.Millisecond, "escalated once the warn SLA (1s) passed")
	require.Contains(t, open.Body, "diagnostics #1 at 0.60")
	require.Contains(t, esc.Body, "past the warn SLA of 1s")
	require.Contains(t, esc.Body, "diagnostics #2 at 0.60", "taken at the escalation")
	require.NotContains(t, esc.Body, "diagnostics #1")
}
