package main

import (
	"bytes"
	"fmt"
	"io"
	"maps"
	"math"
	"slices"
	"strconv"
	"strings"

	"github.com/l2agent/l2agent/agent"
	"github.com/l2agent/l2agent/checks"
	"github.com/l2agent/l2agent/configs"
	"github.com/l2agent/l2agent/internal/alert"
	"github.com/l2agent/l2agent/internal/textfmt"
)

// writePlugin writes the output of `l2agent check` as a Nagios plugin's
// (Nagios plugin development guidelines, "Plugin Output"): a first line
// "SERVICE STATUS - text | perfdata", the long text (the table and the
// diagnostics, with no '|' in it), then the rest of the performance data
// after a '|', one item a line.
func writePlugin(w io.Writer, results []agent.CheckResult, cfg *configs.Config, worst alert.State) {
	service := "L2AGENT"
	if len(results) == 1 {
		service = strings.ToUpper(pluginSafe(results[0].Name))
	}
	perf := perfData(results, cfg)
	first := fmt.Sprintf("%s %s - %s", service, pluginStatus(worst), pluginSummary(results))
	if len(perf) > 0 {
		first += " | " + perf[0]
	}
	fmt.Fprintln(w, first)
	var long bytes.Buffer
	printTable(&long, results)
	w.Write(bytes.ReplaceAll(long.Bytes(), []byte("|"), []byte("¦")))
	if len(perf) > 1 {
		fmt.Fprintln(w, "| "+strings.Join(perf[1:], "\n"))
	}
}

// pluginStatus is the status word of a state; pending (a rule's `for` not
// yet over) is not yet a problem.
func pluginStatus(s alert.State) string {
	switch s {
	case alert.StateWarn:
		return "WARNING"
	case alert.StateCrit:
		return "CRITICAL"
	case alert.StateUnknown:
		return "UNKNOWN"
	}
	return "OK"
}

// pluginSummary says what is wrong, worst first, at most three items; or
// how many series are fine, and which rules are pending.
func pluginSummary(results []agent.CheckResult) string {
	var problems, pending []string
	series := 0
	for _, st := range []alert.State{alert.StateCrit, alert.StateWarn, alert.StateUnknown, alert.StatePending} {
		for _, r := range results {
			if st == alert.StateUnknown && r.Error != "" {
				problems = append(problems, pluginSafe(r.Name+": "+r.Error))
			}
			for _, al := range r.Alerts {
				if al.State != st || al.ReportOnly != "" {
					continue
				}
				if st == alert.StatePending {
					pending = append(pending, alertText(al))
				} else {
					problems = append(problems, alertText(al))
				}
			}
		}
	}
	for _, r := range results {
		series += len(r.Observations)
	}
	if len(problems) == 0 {
		s := fmt.Sprintf("%d series ok", series)
		if len(pending) > 0 {
			s += "; pending (waiting for the rule's for): " + strings.Join(firstOf(pending, 3), "; ")
		}
		return s
	}
	return strings.Join(firstOf(problems, 3), "; ")
}

func firstOf(items []string, n int) []string {
	if len(items) <= n {
		return items
	}
	return append(slices.Clone(items[:n]), fmt.Sprintf("(+%d more)", len(items)-n))
}

// alertText is "disk /var disk_used_ratio 96.0% ≥ 90.0%".
func alertText(al alert.Alert) string {
	op := "≥"
	if al.Direction == "below" {
		op = "≤"
	}
	where := al.Check
	if vs := labelValues(al.Labels); vs != "" {
		where += " " + vs
	}
	s := fmt.Sprintf("%s %s %s %s %s", where, al.Metric, textfmt.FormatValue(al.Metric, al.Value), op, textfmt.FormatValue(al.Metric, al.Threshold))
	if al.Error != "" {
		s = where + " " + al.Metric + ": " + al.Error
	}
	return pluginSafe(s)
}

func labelValues(m map[string]string) string {
	var vs []string
	for _, k := range slices.Sorted(maps.Keys(m)) {
		vs = append(vs, m[k])
	}
	return strings.Join(vs, ",")
}

// perfData is one performance data item per observation:
// 'label'=value[UOM];[warn];[crit];[min];[max], the thresholds those of
// the rule that judges it. Ratios are given in percent.
func perfData(results []agent.CheckResult, cfg *configs.Config) []string {
	rules := map[string][]configs.Rule{}
	for _, c := range cfg.Checks {
		rules[c.Name] = c.Rules
	}
	var out []string
	for _, r := range results {
		obs := slices.Clone(r.Observations)
		slices.SortStableFunc(obs, func(a, b checks.Observation) int {
			return strings.Compare(a.Metric+labelText(a.Labels), b.Metric+labelText(b.Labels))
		})
		for _, o := range obs {
			out = append(out, perfItem(r.Name, o, agent.RuleFor(rules[r.Name], o), len(results) > 1))
		}
	}
	return out
}

func perfItem(check string, o checks.Observation, rule *configs.Rule, withCheck bool) string {
	label := o.Metric
	if withCheck {
		label = check + " " + label
	}
	if vs := labelValues(o.Labels); vs != "" {
		label += " " + vs
	}
	scale, uom, bounds := 1.0, "", ";"
	switch m := o.Metric; {
	case strings.HasSuffix(m, "_ratio"):
		scale, uom, bounds = 100, "%", "0;100"
	case strings.HasSuffix(m, "_timestamp_seconds"):
	case strings.HasSuffix(m, "_seconds"):
		uom = "s"
	case strings.HasSuffix(m, "_bytes"):
		uom, bounds = "B", "0;"
	case strings.HasSuffix(m, "_total"):
		uom = "c"
	}
	th := func(p *float64) string {
		if p == nil {
			return ""
		}
		return perfNumber(*p * scale)
	}
	var warn, crit string
	if rule != nil {
		warn, crit = th(rule.Warn), th(rule.Crit)
		if !rule.Above() { // a floor: alert when the value is below it (Nagios range "@…" would be inside)
			warn, crit = belowRange(warn), belowRange(crit)
		}
	}
	return fmt.Sprintf("'%s'=%s%s;%s;%s;%s", strings.NewReplacer("'", "''", "=", ":").Replace(pluginSafe(label)), perfNumber(o.Value*scale), uom, warn, crit, bounds)
}

// belowRange is the Nagios threshold range that alerts below v ("v:").
func belowRange(v string) string {
	if v == "" {
		return ""
	}
	return v + ":"
}

// perfNumber writes v without exponent and float noise (96.00000000000001).
func perfNumber(v float64) string {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return "U" // the guidelines' "value could not be determined"
	}
	return strconv.FormatFloat(math.Round(v*1e6)/1e6, 'f', -1, 64)
}

// pluginSafe keeps a host's names from breaking the plugin output: escaped
// as for a terminal cell (no control character, line break or odd space),
// and no '|' (the performance data separator).
func pluginSafe(s string) string {
	return strings.ReplaceAll(textfmt.TerminalCell(s), "|", "¦")
}

// jsonAlert is an alert as `check --json` prints it: its threshold is
// there whenever a rule judged it breached (firing or pending), even 0.
type jsonAlert struct {
	alert.Alert
	Threshold *float64 `json:"threshold,omitempty"`
}

// jsonResult is a check's result as `check --json` prints it.
type jsonResult struct {
	agent.CheckResult
	Alerts []jsonAlert `json:"alerts,omitempty"`
}

func jsonResults(results []agent.CheckResult) []jsonResult {
	out := make([]jsonResult, len(results))
	for i, r := range results {
		out[i].CheckResult = r
		for _, al := range r.Alerts {
			ja := jsonAlert{Alert: al}
			if al.State.Firing() || al.State == alert.StatePending {
				ja.Threshold = &al.Threshold
			}
			out[i].Alerts = append(out[i].Alerts, ja)
		}
	}
	return out
}
