package main

import (
	"bytes"
	"encoding/json"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/l2agent/l2agent/agent"
	"github.com/l2agent/l2agent/checks"
	"github.com/l2agent/l2agent/configs"
	"github.com/l2agent/l2agent/internal/alert"
)

// perfItemRe is one performance data item as the Nagios plugin
// guidelines define it: 'label'=value[UOM];[warn];[crit];[min];[max].
var perfItemRe = regexp.MustCompile(`^'(?:[^'=|\n]|'')+'=(-?[0-9.]+|U)(s|%|B|c)?;[0-9.:@~-]*;[0-9.:@~-]*;[0-9.-]*;[0-9.-]*$`)

func pluginFixture() ([]agent.CheckResult, *configs.Config) {
	f := func(v float64) *float64 { return &v }
	cfg := &configs.Config{Checks: []configs.Check{{Name: "disk", Kind: "disk", Rules: []configs.Rule{
		{Metric: "disk_used_ratio", Warn: f(0.8), Crit: f(0.9)},
		{Metric: "disk_free_bytes", Direction: "below", Crit: f(0)},
	}}}}
	var1 := map[string]string{"mountpoint": "/var", "device": "sda1"}
	odd := map[string]string{"mountpoint": "/srv/it's|a=b\nResolved: ok", "device": "x"}
	res := []agent.CheckResult{{Name: "disk", State: alert.StateCrit,
		Observations: []checks.Observation{
			{Metric: "disk_used_ratio", Labels: var1, Value: 0.96},
			{Metric: "disk_free_bytes", Labels: var1, Value: 0},
			{Metric: "disk_used_ratio", Labels: odd, Value: 0.1},
		},
		Alerts: []alert.Alert{
			{Key: "k1", Check: "disk", Metric: "disk_used_ratio", Labels: var1, State: alert.StateCrit, Value: 0.96, Threshold: 0.9, Details: "top dirs | sizes"},
			{Key: "k2", Check: "disk", Metric: "disk_free_bytes", Labels: var1, State: alert.StateCrit, Direction: "below", Value: 0, Threshold: 0},
		},
	}}
	return res, cfg
}

func TestPluginOutput(t *testing.T) {
	res, cfg := pluginFixture()
	var b bytes.Buffer
	writePlugin(&b, res, cfg, alert.StateCrit)
	lines := strings.Split(strings.TrimRight(b.String(), "\n"), "\n")
	text, perf, ok := strings.Cut(lines[0], " | ")
	require.True(t, ok, "first line: text | perfdata: %q", lines[0])
	require.Equal(t, "DISK CRITICAL - disk sda1,/var disk_used_ratio 96.0% ≥ 90.0%; disk sda1,/var disk_free_bytes 0 B ≤ 0 B", text)
	require.Equal(t, "'disk_free_bytes sda1,/var'=0B;;0:;0;", perf, "a floor is a Nagios range 'alert below'")

	// The long text has no '|'; the rest of the perfdata follows one '|'.
	sep := -1
	for i, l := range lines[1:] {
		if strings.HasPrefix(l, "| ") {
			require.Equal(t, -1, sep, "one separator")
			sep = i + 1
		}
	}
	require.Positive(t, sep, "%s", b.String())
	for _, l := range lines[1:sep] {
		require.NotContains(t, l, "|", "long text line %q", l)
	}
	require.Contains(t, b.String(), "top dirs ¦ sizes", "diagnostics keep their text, without the separator")
	rest := append([]string{strings.TrimPrefix(lines[sep], "| ")}, lines[sep+1:]...)
	all := append([]string{perf}, rest...)
	require.Len(t, all, 3)
	for _, item := range all {
		require.Regexp(t, perfItemRe, item)
	}
	require.Contains(t, all, "'disk_used_ratio sda1,/var'=96%;80;90;0;100", "ratios in percent with the rule's thresholds")
	require.Contains(t, all, "'disk_used_ratio x,/srv/it''s¦a:b\\nResolved: ok'=10%;80;90;0;100", "a host's name cannot break the output")
}

func TestPluginSummary(t *testing.T) {
	ok := []agent.CheckResult{{Name: "cpu", Observations: []checks.Observation{{Metric: "cpu_utilization_ratio", Value: 0.995}},
		Alerts: []alert.Alert{{Check: "cpu", Metric: "cpu_utilization_ratio", State: alert.StatePending, Severity: alert.StateCrit, Value: 0.995, Threshold: 0.98}}}}
	require.Equal(t, "1 series ok; pending (waiting for the rule's for): cpu cpu_utilization_ratio 99.5% ≥ 98.0%", pluginSummary(ok))
	require.Equal(t, "OK", pluginStatus(alert.StatePending), "a rule whose for is not over is not yet a problem")
	require.Equal(t, 0, exitCode(alert.StatePending))

	var many []alert.Alert
	for range 5 {
		many = append(many, alert.Alert{Check: "disk", Metric: "disk_used_ratio", State: alert.StateWarn, Value: 0.85, Threshold: 0.8})
	}
	got := pluginSummary([]agent.CheckResult{{Name: "disk", Alerts: many}, {Name: "patches", Error: "apt-get: exit 100\nE: lock"}})
	require.True(t, strings.HasSuffix(got, "(+3 more)"), got)
	require.NotContains(t, got, "\n")
}

func TestCheckJSONThreshold(t *testing.T) {
	res, _ := pluginFixture()
	res[0].Alerts = append(res[0].Alerts, alert.Alert{Key: "k3", Check: "disk", Metric: "disk_used_ratio", State: alert.StateOK, Since: time.Unix(0, 0)})
	out, err := json.Marshal(jsonResults(res))
	require.NoError(t, err)
	var doc []struct {
		Observations []map[string]any `json:"observations"`
		Alerts       []map[string]any `json:"alerts"`
	}
	require.NoError(t, json.Unmarshal(out, &doc))
	require.Contains(t, doc[0].Observations[0], "metric", "lowercase keys, as the alerts'")
	require.Contains(t, doc[0].Observations[0], "labels")
	require.Equal(t, 0.0, doc[0].Alerts[1]["threshold"], "a threshold of 0 is there")
	require.NotContains(t, doc[0].Alerts[2], "threshold", "an ok alert has none")
	require.Equal(t, 1, strings.Count(string(out), `"threshold":0.9`), "one threshold key per alert")
}
