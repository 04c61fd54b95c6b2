package ticketing

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/l2agent/l2agent/internal/alert"
	"github.com/l2agent/l2agent/internal/textfmt"
)

// MaxBody bounds a rendered ticket body.
const MaxBody = 16 * 1024

// Title renders a ticket title such as
// "[l2agent] web-7: disk /var disk_used_ratio 93.0% (crit ≥ 90.0%)",
// with " [flapping]" while the incident is marked flapping. It follows the
// incident: an op that changes it says so (Ticket.Retitle). Names from the
// host (host name, label values) are escaped by textfmt.TicketTitle: the
// title is one line without control characters or escape sequences.
func Title(inc *Incident) string {
	var b strings.Builder
	fmt.Fprintf(&b, "[l2agent] %s: %s", textfmt.TicketTitle(inc.Host), textfmt.TicketTitle(inc.Check))
	if s := labelSummary(inc.Labels); s != "" {
		b.WriteString(" " + textfmt.TicketTitle(s))
	}
	if inc.Metric == "" {
		b.WriteString(": check failing")
		return b.String()
	}
	fmt.Fprintf(&b, " %s %s (%s %s %s)", textfmt.TicketTitle(inc.Metric), textfmt.FormatValue(inc.Metric, firingValue(inc)), inc.Severity, op(inc.Direction), textfmt.FormatValue(inc.Metric, inc.Threshold))
	if inc.Flapping {
		b.WriteString(" [flapping]")
	}
	return b.String()
}

// firingValue is the value the alert last fired with, the one the title
// quotes with its severity: while the alert is back within its threshold
// (waiting for resolve_after, or resolved) the title still says what
// breached, not "40.0% (warn ≥ 80.0%)".
func firingValue(inc *Incident) float64 {
	for i := len(inc.History) - 1; i >= 0; i-- {
		if inc.History[i].To.Firing() {
			return inc.History[i].Value
		}
	}
	return inc.Value
}

// labelSummary picks the label that names the thing (a mountpoint, a
// control, an engine) or else lists the label values.
func labelSummary(l map[string]string) string {
	for _, k := range []string{"mountpoint", "control", "engine", "kind", "group", "window"} {
		if v, ok := l[k]; ok {
			return v
		}
	}
	var vs []string
	for _, k := range slices.Sorted(maps.Keys(l)) {
		vs = append(vs, l[k])
	}
	return strings.Join(vs, " ")
}

func op(direction string) string {
	if direction == "below" {
		return "≤"
	}
	return "≥"
}

// Body renders the ticket text, the same for every backend: what breached,
// since when, what was tried, the diagnostics, and where to read more.
// Every name from the host is escaped for it (textfmt.TicketField on a
// "Key: value" line, textfmt.TicketText in an indented block), so no line
// of the text starts with anything but what Body wrote: a name cannot
// forge a "Resolved:" line.
func Body(inc *Incident, now time.Time, version string) string {
	var b strings.Builder
	line := func(k, v string) { fmt.Fprintf(&b, "%-17s %s\n", k+":", textfmt.TicketField(v)) }
	line("Host", inc.Host)
	line("Check", inc.Check)
	if inc.Metric != "" {
		line("Metric", "l2agent_"+inc.Metric)
	}
	if len(inc.Labels) > 0 {
		var ls []string
		for _, k := range slices.Sorted(maps.Keys(inc.Labels)) {
			ls = append(ls, k+"="+inc.Labels[k])
		}
		line("Labels", strings.Join(ls, " "))
	}
	if inc.Metric != "" {
		line("Value", textfmt.FormatValue(inc.Metric, inc.Value))
		line("Threshold", fmt.Sprintf("%s %s %s", inc.Severity, op(inc.Direction), textfmt.FormatValue(inc.Metric, inc.Threshold)))
	}
	line("Severity / tier", fmt.Sprintf("%s / %s", inc.Severity, inc.Tier))
	if !inc.Since.IsZero() {
		line("Breached since", fmt.Sprintf("%s (%s ago)", inc.Since.UTC().Format(time.RFC3339), textfmt.Duration(now.Sub(inc.Since))))
	}
	line("Alert key", inc.Key)
	if inc.RunbookURL != "" {
		line("Runbook", inc.RunbookURL)
	}
	for _, name := range slices.Sorted(maps.Keys(inc.PrevRefs)) {
		r := inc.PrevRefs[name]
		v := r.Label()
		if r.URL != "" {
			v += " " + r.URL
		}
		line("Previous ticket", fmt.Sprintf("%s (%s): this problem happened before", v, name))
	}
	writePast(&b, inc.past)
	if inc.Flapping {
		b.WriteString("\nThis alert is FLAPPING: it changed state often; the ticket stays open until it settles.\n")
	}

	b.WriteString("\nState history (UTC):\n")
	if len(inc.History) == 0 {
		b.WriteString("  (none)\n")
	}
	for _, h := range inc.History {
		fmt.Fprintf(&b, "  %s  %-7s → %-7s %s", h.At.UTC().Format("2006-01-02 15:04:05"), h.From, h.To, textfmt.FormatValue(inc.Metric, h.Value))
		if h.Reason != "" {
			b.WriteString("  " + textfmt.TicketField(h.Reason))
		}
		b.WriteByte('\n')
	}

	writeProcedure(&b, inc.Procedure)
	writeAttempts(&b, inc.Attempts)

	b.WriteString("\nDiagnostics:\n")
	if strings.TrimSpace(inc.Details) == "" {
		b.WriteString("  (none)\n")
	} else {
		b.WriteString(indent(inc.Details, "  "))
	}
	fmt.Fprintf(&b, "\n-- \nFiled by l2agent %s on %s.\n", textfmt.TicketField(version), textfmt.TicketField(inc.Host))
	s := b.String()
	if len(s) > MaxBody {
		s = textfmt.Head(s, MaxBody-64) + "\n… (truncated to " + fmt.Sprint(MaxBody) + " bytes)\n"
	}
	return s
}

// writeAttempts writes the "What was tried" section.
func writeAttempts(b *strings.Builder, attempts []alert.Attempt) {
	b.WriteString("\nWhat was tried:\n")
	if len(attempts) == 0 {
		b.WriteString("  nothing: no remediation is configured for this alert\n")
	}
	for _, a := range attempts {
		fmt.Fprintf(b, "  %s  %s: %s\n", a.At.UTC().Format("2006-01-02 15:04:05"), textfmt.TicketField(a.Action), textfmt.TicketField(a.Result))
		if a.Plan != "" {
			b.WriteString(indent(a.Plan, "    plan: "))
		}
		if a.Output != "" {
			b.WriteString(indent(a.Output, "    output: "))
		}
	}
}

// indent escapes the multi-line text s for a ticket (textfmt.TicketText)
// and starts its first line with prefix and every other with as many
// spaces, so that no line of s starts a line of the ticket.
func indent(s, prefix string) string {
	s = textfmt.TicketText(s)
	var b strings.Builder
	pad := strings.Repeat(" ", len([]rune(prefix)))
	for i, l := range strings.Split(strings.TrimRight(s, "\n"), "\n") {
		if i == 0 {
			b.WriteString(prefix)
		} else {
			b.WriteString(pad)
		}
		b.WriteString(l)
		b.WriteByte('\n')
	}
	return b.String()
}
