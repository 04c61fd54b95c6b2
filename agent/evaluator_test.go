package agent

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/l2agent/l2agent/checks"
	"github.com/l2agent/l2agent/configs"
	"github.com/l2agent/l2agent/internal/alert"
)

func f(v float64) *float64 { return &v }

type step struct {
	at    time.Duration // since t0
	value float64
	err   error
	want  alert.State // state of the key after the step
	trans string      // "" for no transition, else "from>to"
}

func TestEvaluatorTable(t *testing.T) {
	above := configs.Rule{Metric: "disk_used_ratio", Warn: f(0.8), Crit: f(0.9), For: configs.Duration(time.Minute), Clear: 0.05}
	below := configs.Rule{Metric: "memory_available_ratio", Direction: "below", Warn: f(0.1), Crit: f(0.05), Clear: 0.02}
	critOnly := configs.Rule{Metric: "disk_used_ratio", Crit: f(0.9)}
	timeout := errors.New("check timed out after 10s")

	cases := []struct {
		name  string
		rule  configs.Rule
		steps []step
	}{
		{"ok stays ok", above, []step{{0, 0.5, nil, alert.StateOK, ""}, {30 * time.Second, 0.79, nil, alert.StateOK, ""}}},
		{"for: breach must hold before firing", above, []step{
			{0, 0.85, nil, alert.StatePending, "ok>pending"},
			{30 * time.Second, 0.86, nil, alert.StatePending, ""},
			{60 * time.Second, 0.86, nil, alert.StateWarn, "pending>warn"},
		}},
		{"for: a short breach never fires", above, []step{
			{0, 0.85, nil, alert.StatePending, "ok>pending"},
			{30 * time.Second, 0.5, nil, alert.StateOK, "pending>ok"},
			{60 * time.Second, 0.85, nil, alert.StatePending, "ok>pending"},
			{90 * time.Second, 0.85, nil, alert.StatePending, ""},
		}},
		{"pending fires at the severity reached", above, []step{
			{0, 0.85, nil, alert.StatePending, "ok>pending"},
			{61 * time.Second, 0.95, nil, alert.StateCrit, "pending>crit"},
		}},
		{"warn to crit to warn", above, []step{
			{0, 0.85, nil, alert.StatePending, "ok>pending"},
			{time.Minute, 0.85, nil, alert.StateWarn, "pending>warn"},
			{2 * time.Minute, 0.92, nil, alert.StateCrit, "warn>crit"},
			{3 * time.Minute, 0.87, nil, alert.StateCrit, ""}, // hysteresis: 0.87 ≥ 0.9-0.05
			{4 * time.Minute, 0.84, nil, alert.StateWarn, "crit>warn"},
			{5 * time.Minute, 0.76, nil, alert.StateWarn, ""}, // hysteresis: 0.76 ≥ 0.8-0.05
			{6 * time.Minute, 0.74, nil, alert.StateOK, "warn>ok"},
		}},
		{"hysteresis below", below, []step{
			{0, 0.09, nil, alert.StateWarn, "ok>warn"}, // no for: fires at once
			{time.Minute, 0.11, nil, alert.StateWarn, ""},
			{2 * time.Minute, 0.04, nil, alert.StateCrit, "warn>crit"},
			{3 * time.Minute, 0.06, nil, alert.StateCrit, ""},
			{4 * time.Minute, 0.08, nil, alert.StateWarn, "crit>warn"},
			{5 * time.Minute, 0.13, nil, alert.StateOK, "warn>ok"},
		}},
		{"crit only", critOnly, []step{{0, 0.89, nil, alert.StateOK, ""}, {time.Second, 0.9, nil, alert.StateCrit, "ok>crit"}, {2 * time.Second, 0.89, nil, alert.StateOK, "crit>ok"}}},
		{"unknown on error, firing resumes without waiting again", above, []step{
			{0, 0.85, nil, alert.StatePending, "ok>pending"},
			{time.Minute, 0.85, nil, alert.StateWarn, "pending>warn"},
			{2 * time.Minute, 0, errors.New("statfs: input/output error"), alert.StateUnknown, "warn>unknown"},
			{3 * time.Minute, 0, errors.New("statfs: input/output error"), alert.StateUnknown, ""},
			{4 * time.Minute, 0.85, nil, alert.StateWarn, "unknown>warn"},
		}},
		{"unknown on timeout, then pending anew when it was not firing", above, []step{
			{0, 0.5, nil, alert.StateOK, ""},
			{time.Minute, 0, timeout, alert.StateUnknown, "ok>unknown"},
			{2 * time.Minute, 0.85, nil, alert.StatePending, "unknown>pending"},
			{3 * time.Minute, 0.5, nil, alert.StateOK, "pending>ok"},
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e := NewEvaluator("web-7")
			t0 := time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC)
			labels := map[string]string{"mountpoint": "/var"}
			key := alert.Key("web-7", "c", tc.rule.Metric, labels)
			for i, s := range tc.steps {
				var obs []checks.Observation
				if s.err == nil {
					obs = []checks.Observation{{Metric: tc.rule.Metric, Labels: labels, Value: s.value}}
				}
				ts := e.Evaluate("c", []configs.Rule{tc.rule}, obs, s.err, t0.Add(s.at))
				var got string
				for _, tr := range ts {
					if tr.Key == key {
						got = tr.From.String() + ">" + tr.State.String()
						require.Equal(t, t0.Add(s.at), tr.At)
					}
				}
				require.Equal(t, s.trans, got, "step %d transition", i)
				al, ok := e.Alert(key)
				require.True(t, ok, "step %d: key %s missing", i, key)
				require.Equal(t, s.want, al.State, "step %d state", i)
				if s.err != nil {
					require.Equal(t, s.err.Error(), al.Error)
				}
			}
		})
	}
}

func TestEvaluatorLabelsInKey(t *testing.T) {
	e := NewEvaluator("h")
	rule := configs.Rule{Metric: "disk_used_ratio", Crit: f(0.9)}
	obs := []checks.Observation{
		{Metric: "disk_used_ratio", Labels: map[string]string{"mountpoint": "/", "device": "/dev/vda"}, Value: 0.95},
		{Metric: "disk_used_ratio", Labels: map[string]string{"mountpoint": "/var", "device": "/dev/vdb"}, Value: 0.5},
	}
	ts := e.Evaluate("disk", []configs.Rule{rule}, obs, nil, time.Now())
	require.Len(t, ts, 1)
	require.Equal(t, `h/disk/disk_used_ratio{device="/dev/vda",mountpoint="/"}`, ts[0].Key)
	require.Equal(t, alert.StateCrit, ts[0].State)
	require.Equal(t, 0.9, ts[0].Threshold)
	// the key does not depend on map order
	require.Equal(t, ts[0].Key, alert.Key("h", "disk", "disk_used_ratio", map[string]string{"mountpoint": "/", "device": "/dev/vda"}))

	al, ok := e.Alert(alert.Key("h", "disk", "disk_used_ratio", obs[1].Labels))
	require.True(t, ok)
	require.Equal(t, alert.StateOK, al.State)
}

func TestEvaluatorMostSpecificRuleWins(t *testing.T) {
	e := NewEvaluator("h")
	rules := []configs.Rule{
		{Metric: "disk_used_ratio", Crit: f(0.9)},
		{Metric: "disk_used_ratio", Labels: map[string]string{"mountpoint": "/backup"}, Crit: f(0.99)},
	}
	obs := []checks.Observation{
		{Metric: "disk_used_ratio", Labels: map[string]string{"mountpoint": "/backup"}, Value: 0.95},
		{Metric: "disk_used_ratio", Labels: map[string]string{"mountpoint": "/"}, Value: 0.95},
	}
	ts := e.Evaluate("disk", rules, obs, nil, time.Now())
	require.Len(t, ts, 1)
	require.Equal(t, "/", ts[0].Labels["mountpoint"])
}

func TestEvaluatorGoneSeriesClears(t *testing.T) {
	e := NewEvaluator("h")
	rule := configs.Rule{Metric: "disk_used_ratio", Crit: f(0.9)}
	now := time.Now()
	obs := []checks.Observation{{Metric: "disk_used_ratio", Labels: map[string]string{"mountpoint": "/mnt"}, Value: 0.95}}
	require.Len(t, e.Evaluate("disk", []configs.Rule{rule}, obs, nil, now), 1)
	ts := e.Evaluate("disk", []configs.Rule{rule}, nil, nil, now.Add(time.Minute))
	require.Len(t, ts, 1)
	require.Equal(t, alert.StateCrit, ts[0].From)
	require.Equal(t, alert.StateOK, ts[0].State)
	require.Equal(t, "series no longer reported", ts[0].Reason)
	_, ok := e.Alert(alert.Key("h", "disk", "disk_used_ratio", obs[0].Labels))
	require.False(t, ok)
}

func TestEvaluatorCheckRunKey(t *testing.T) {
	e := NewEvaluator("h")
	now := time.Now()
	ts := e.Evaluate("cpu", nil, nil, errors.New("boom"), now)
	require.Len(t, ts, 1)
	require.Equal(t, "h/cpu", ts[0].Key)
	require.Equal(t, alert.StateUnknown, ts[0].State)
	ts = e.Evaluate("cpu", nil, nil, nil, now.Add(time.Second))
	require.Len(t, ts, 1)
	require.Equal(t, alert.StateOK, ts[0].State)
	require.Equal(t, alert.StateUnknown, ts[0].From)
}

func TestEvaluatorIgnoreFor(t *testing.T) {
	e := NewEvaluator("h")
	e.IgnoreFor = true
	rule := configs.Rule{Metric: "m", Warn: f(1), For: configs.Duration(time.Hour)}
	ts := e.Evaluate("c", []configs.Rule{rule}, []checks.Observation{{Metric: "m", Value: 2}}, nil, time.Now())
	require.Len(t, ts, 1)
	require.Equal(t, alert.StateWarn, ts[0].State)
}

// The evaluator's state survives a restart: a pending breach does not wait
// `for` again, a firing alert that is ok at the first run clears (a
// transition ticketing sees), and keys of removed checks or other hosts are
// left out.
func TestEvaluatorSaveRestore(t *testing.T) {
	rule := []configs.Rule{{Metric: "disk_used_ratio", Warn: f(0.8), For: configs.Duration(10 * time.Minute)}}
	obs := func(mnt string, v float64) checks.Observation {
		return checks.Observation{Metric: "disk_used_ratio", Labels: map[string]string{"mountpoint": mnt}, Value: v}
	}
	t0 := time.Date(2026, 12, 5, 8, 0, 0, 0, time.UTC)
	e := NewEvaluator("web-7")
	e.Evaluate("disk", rule, []checks.Observation{obs("/var", 0.9), obs("/srv", 0.9)}, nil, t0)
	e.Evaluate("disk", rule, []checks.Observation{obs("/var", 0.9), obs("/srv", 0.9)}, nil, t0.Add(10*time.Minute))
	e.Evaluate("disk", rule, []checks.Observation{obs("/var", 0.9), obs("/srv", 0.9), obs("/tmp", 0.9)}, nil, t0.Add(15*time.Minute))
	e.Evaluate("gone", rule, []checks.Observation{obs("/x", 0.9)}, nil, t0)
	path := filepath.Join(t.TempDir(), AlertStateFile)
	require.NoError(t, e.Save(path, t0.Add(15*time.Minute)))

	r := NewEvaluator("web-7")
	n, err := r.Restore(path, []string{"disk"})
	require.NoError(t, err)
	require.Equal(t, 4, n, "three series and the run of disk; not the removed check")
	other := NewEvaluator("db-1")
	n, err = other.Restore(path, []string{"disk"})
	require.NoError(t, err)
	require.Zero(t, n, "another host's keys are not restored")

	ts := r.Evaluate("disk", rule, []checks.Observation{obs("/var", 0.5), obs("/srv", 0.9), obs("/tmp", 0.9)}, nil, t0.Add(25*time.Minute))
	got := map[string]string{}
	for _, tr := range ts {
		got[tr.Labels["mountpoint"]] = tr.From.String() + ">" + tr.State.String()
	}
	require.Equal(t, map[string]string{"/var": "warn>ok", "/tmp": "pending>warn"}, got, "/tmp fires 10m after its breach began before the restart; /srv stays warn")

	_, err = r.Restore(filepath.Join(t.TempDir(), "none.json"), nil)
	require.NoError(t, err, "a first start has no state")
	require.NoError(t, os.WriteFile(path, []byte("{"), 0o600))
	_, err = NewEvaluator("web-7").Restore(path, []string{"disk"})
	require.ErrorContains(t, err, "read alert state")
}

// A series its check marks report-only keeps its state; when the mark turns
// on or off while it fires, one transition from the state to itself says
// so (what ticketing acts on); the mark is saved and restored.
func TestEvaluatorReportOnly(t *testing.T) {
	const why = "antivirus is not required"
	rule := []configs.Rule{{Metric: "antivirus_up", Direction: "below", Crit: f(0)}}
	obs := func(v float64, reportOnly string) []checks.Observation {
		return []checks.Observation{{Metric: "antivirus_up", Labels: map[string]string{"engine": "none"}, Value: v, ReportOnly: reportOnly}}
	}
	t0 := time.Date(2026, 12, 5, 8, 0, 0, 0, time.UTC)
	e := NewEvaluator("web-7")
	key := alert.Key("web-7", "antivirus", "antivirus_up", map[string]string{"engine": "none"})

	ts := e.Evaluate("antivirus", rule, obs(0, why), nil, t0)
	require.Len(t, ts, 1)
	require.Equal(t, alert.StateCrit, ts[0].State, "report-only keeps its alert state")
	require.Equal(t, why, ts[0].ReportOnly)
	require.False(t, ts[0].TicketingChange())
	require.Empty(t, e.Evaluate("antivirus", rule, obs(0, why), nil, t0.Add(time.Minute)), "no change, nothing")

	ts = e.Evaluate("antivirus", rule, obs(0, ""), nil, t0.Add(2*time.Minute))
	require.Len(t, ts, 1, "required now: ticketed from now on")
	require.True(t, ts[0].TicketingChange())
	require.Equal(t, alert.StateCrit, ts[0].State)
	require.Empty(t, ts[0].ReportOnly)
	require.Contains(t, ts[0].Reason, "ticketed from now on")

	ts = e.Evaluate("antivirus", rule, obs(0, why), nil, t0.Add(3*time.Minute))
	require.Len(t, ts, 1, "not required any more")
	require.True(t, ts[0].TicketingChange())
	require.Equal(t, why, ts[0].ReportOnly)
	require.Contains(t, ts[0].Reason, why)

	// A change of state that comes with the change of mark is one transition.
	ts = e.Evaluate("antivirus", rule, obs(1, ""), nil, t0.Add(4*time.Minute))
	require.Len(t, ts, 1)
	require.Equal(t, "crit>ok", ts[0].From.String()+">"+ts[0].State.String())
	// Not firing: the mark changes in silence.
	require.Empty(t, e.Evaluate("antivirus", rule, obs(1, why), nil, t0.Add(5*time.Minute)))

	ts = e.Evaluate("antivirus", rule, obs(0, why), nil, t0.Add(6*time.Minute))
	require.Len(t, ts, 1)
	path := filepath.Join(t.TempDir(), AlertStateFile)
	require.NoError(t, e.Save(path, t0.Add(6*time.Minute)))
	r := NewEvaluator("web-7")
	_, err := r.Restore(path, []string{"antivirus"})
	require.NoError(t, err)
	al, ok := r.Alert(key)
	require.True(t, ok)
	require.Equal(t, why, al.ReportOnly, "restored with its mark: a restart is no change")
	require.Empty(t, r.Evaluate("antivirus", rule, obs(0, why), nil, t0.Add(7*time.Minute)))
}
