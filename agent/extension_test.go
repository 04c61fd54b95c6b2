package agent

// The extension points, shown end to end: a check kind, a remediation
// action and a ticket backend, each registered from this test file only
// (no line of the project changes), each with its own options block that
// the loader decodes, defaults and validates with FILE:LINE:COL.

import (
	"context"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/l2agent/l2agent/checks"
	"github.com/l2agent/l2agent/configs"
	"github.com/l2agent/l2agent/internal/testkit"
	"github.com/l2agent/l2agent/remediate"
	"github.com/l2agent/l2agent/ticketing"
)

// extCheckOptions is the `test_ext:` block of a check of kind test_ext.
type extCheckOptions struct {
	Queue string `yaml:"queue"` // which queue length it reports
	Scale int    `yaml:"scale"` // default 1
}

func (o *extCheckOptions) ApplyDefaults(string) {
	if o.Scale == 0 {
		o.Scale = 1
	}
}

func (o *extCheckOptions) Validate(path string, errf configs.Errorf) {
	if o.Queue == "" {
		errf(path+".queue", "test_ext: queue is required")
	}
}

// extQueues are the queue lengths the check reads and the action drains.
var extQueues sync.Map // name → *atomic.Int64

func extQueue(name string) *atomic.Int64 {
	v, _ := extQueues.LoadOrStore(name, new(atomic.Int64))
	return v.(*atomic.Int64)
}

// extActionSettings and extActionParams are the action's block and params.
type extActionSettings struct {
	Drain bool `yaml:"drain"` // really drain, or pretend and fail
}

func (*extActionSettings) ApplyDefaults(string)            {}
func (*extActionSettings) Validate(string, configs.Errorf) {}

type extActionParams struct {
	Queue string `yaml:"queue"`
}

func (*extActionParams) Validate(string, configs.Errorf, configs.Options) {}
func (p *extActionParams) Complete(path string, errf configs.Errorf, _ configs.Options) {
	if p.Queue == "" {
		errf(path, "test_ext_drain: queue is required")
	}
}

type extDrain struct {
	drain bool
	queue string
	runs  *atomic.Int64
}

func (d *extDrain) Name() string { return "test_ext_drain" }
func (d *extDrain) Plan(context.Context, remediate.Alert) (remediate.Plan, error) {
	return remediate.Plan{Action: d.Name(), Text: "drain queue " + d.queue}, nil
}
func (d *extDrain) Apply(context.Context, remediate.Plan) (remediate.Outcome, error) {
	d.runs.Add(1)
	if !d.drain {
		return remediate.Outcome{Success: false, Result: "queue " + d.queue + " is stuck"}, nil
	}
	extQueue(d.queue).Store(0)
	return remediate.Outcome{Success: true, Result: "drained " + d.queue}, nil
}

// extBackendOptions is the `test_ext_sink:` block of a backend.
type extBackendOptions struct {
	Project string `yaml:"project"`
}

func (o *extBackendOptions) ApplyDefaults(string) {
	if o.Project == "" {
		o.Project = "OPS"
	}
}
func (*extBackendOptions) Validate(string, configs.Errorf) {}

// extSink records what the pipeline delivers to it.
type extSink struct {
	project string
	mu      sync.Mutex
	opened  []ticketing.Ticket
}

var extSinks sync.Map // backend name → *extSink

func (s *extSink) Find(context.Context, string) (ticketing.Ref, bool, error) {
	return ticketing.Ref{}, false, nil
}
func (s *extSink) Open(_ context.Context, t ticketing.Ticket) (ticketing.Ref, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.opened = append(s.opened, t)
	return ticketing.Ref{ID: s.project + "-1"}, nil
}
func (s *extSink) Comment(context.Context, ticketing.Ref, string) error { return nil }
func (s *extSink) Escalate(context.Context, ticketing.Ref, ticketing.Tier, ticketing.Ticket) error {
	return nil
}
func (s *extSink) Resolve(context.Context, ticketing.Ref, string) error { return nil }
func (s *extSink) Reopen(context.Context, ticketing.Ref, string) error  { return nil }

func (s *extSink) tickets() []ticketing.Ticket {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]ticketing.Ticket(nil), s.opened...)
}

var extDrainRuns atomic.Int64

func init() {
	checks.Register("test_ext", func(c configs.Check, _ checks.Env) (checks.Check, error) {
		o := c.Options.(*extCheckOptions)
		return funcCheck{c.Name, func(context.Context) ([]checks.Observation, error) {
			v := float64(extQueue(o.Queue).Load() * int64(o.Scale))
			return []checks.Observation{{Metric: "test_ext_queue_length", Labels: map[string]string{"queue": o.Queue}, Value: v}}, nil
		}}, nil
	}, func() configs.Options { return &extCheckOptions{} },
		checks.MetricInfo{Name: "test_ext_queue_length", Help: "Items waiting in a test queue."})
	remediate.Register("test_ext_drain", func(s configs.Options, p configs.Params, _ remediate.Env) (remediate.Action, error) {
		queue := ""
		if p != nil {
			queue = p.(*extActionParams).Queue
		}
		return &extDrain{drain: s.(*extActionSettings).Drain, queue: queue, runs: &extDrainRuns}, nil
	}, func() configs.Options { return &extActionSettings{} }, func() configs.Params { return &extActionParams{} })
	ticketing.Register("test_ext_sink", func(b configs.Backend) (ticketing.Ticketer, error) {
		s := &extSink{project: b.Options.(*extBackendOptions).Project}
		extSinks.Store(b.Name, s)
		return s, nil
	}, func() configs.Options { return &extBackendOptions{} })
}

const extConfig = `
hostname: web-7
checks:
  - name: jobs
    kind: test_ext
    test_ext: {queue: %QUEUE%}
    rules: [{metric: test_ext_queue_length, warn: 100}]
remediation:
  actions:
    test_ext_drain: {enabled: true, drain: %DRAIN%}
  rules:
    - {check: jobs, action: test_ext_drain, params: {queue: %QUEUE%}}
ticketing:
  interval: 100ms
  backends: [{name: sink-%QUEUE%, kind: test_ext_sink}]
`

func extAgent(t *testing.T, queue string, drain bool) (*Agent, *extSink) {
	t.Helper()
	body := strings.NewReplacer("%QUEUE%", queue, "%DRAIN%", map[bool]string{true: "true", false: "false"}[drain]).Replace(extConfig)
	a, err := New(Options{ConfigFile: writeConfig(t, body), Logger: testkit.QuietLogger()})
	require.NoError(t, err)
	require.NoError(t, a.Start(false))
	t.Cleanup(func() { stopAgent(t, a) })
	v, ok := extSinks.Load("sink-" + queue)
	require.True(t, ok, "the backend was built from the config")
	return a, v.(*extSink)
}

func TestExtensionKindsEndToEnd(t *testing.T) {
	t.Run("the action fixes it: no ticket", func(t *testing.T) {
		extQueue("fixable").Store(500)
		before := extDrainRuns.Load()
		a, sink := extAgent(t, "fixable", true)
		_, err := a.RunAll(context.Background(), "jobs")
		require.NoError(t, err)
		// The run at start and RunAll's may overlap (one is then skipped):
		// wait for the one that ran.
		require.Eventually(t, func() bool { return extDrainRuns.Load() == before+1 }, 10*time.Second, 10*time.Millisecond, "the alert ran the action")
		require.Zero(t, extQueue("fixable").Load(), "the action drained the queue")
		require.Empty(t, sink.tickets(), "a verified fix files no ticket")
	})
	t.Run("the action fails: a ticket that says what was tried", func(t *testing.T) {
		extQueue("stuck").Store(500)
		a, sink := extAgent(t, "stuck", false)
		_, err := a.RunAll(context.Background(), "jobs")
		require.NoError(t, err)
		require.Eventually(t, func() bool { return len(sink.tickets()) == 1 }, 10*time.Second, 20*time.Millisecond)
		tk := sink.tickets()[0]
		require.Equal(t, "jobs", tk.Check)
		require.Equal(t, map[string]string{"queue": "stuck"}, tk.Labels)
		require.Contains(t, tk.Body, "test_ext_drain")
		require.Contains(t, tk.Body, "queue stuck is stuck")
	})
	t.Run("the new kinds' options are validated at their line", func(t *testing.T) {
		_, err := configs.Parse("ext.yml", []byte(`checks:
  - name: jobs
    kind: test_ext
    test_ext: {scale: 2}
    rules: [{metric: test_ext_queue_length, warn: 1}]
remediation:
  rules:
    - {check: jobs, action: test_ext_drain, params: {queu: x}}
`))
		require.Error(t, err)
		msg := err.Error()
		require.Contains(t, msg, "ext.yml:4:15: test_ext: queue is required")
		require.Contains(t, msg, `ext.yml:8:54: unknown key "queu" in remediation.rules[0].params (known keys: queue)`)
		require.Contains(t, msg, "ext.yml:8:53: test_ext_drain: queue is required")
	})
}
