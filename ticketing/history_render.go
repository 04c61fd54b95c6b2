package ticketing

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/l2agent/l2agent/internal/textfmt"
)

// Past is "This happened before": the recent history of an alert key and
// of the same check and metric on other labels of this host, as a new or
// reopened ticket shows it (and the webhook and file backends send it as
// structured fields). Nil when there is no history.
type Past struct {
	// SameKey: the last incidents of this alert key, newest first.
	SameKey []PastEntry `json:"same_key,omitempty"`
	// Last30d, Last90d: incidents of this key that ended within 30 and
	// 90 days (all of them, not only those listed).
	Last30d int `json:"last_30d"`
	Last90d int `json:"last_90d"`
	// Other: the last incidents of the same check and metric on other
	// labels of this host (another mount), newest first.
	Other        []PastEntry `json:"same_check_other_labels,omitempty"`
	OtherLast30d int         `json:"other_last_30d"`
	OtherLast90d int         `json:"other_last_90d"`
	// LastFix: the action that fixed this key the last time one did.
	LastFix *PastFix `json:"last_fix,omitempty"`
}

// PastEntry is one past incident as a ticket lists it.
type PastEntry struct {
	Began           time.Time         `json:"began"`
	DurationSeconds float64           `json:"duration_seconds"`
	Outcome         string            `json:"outcome"`
	Severity        string            `json:"severity"`
	Labels          map[string]string `json:"labels,omitempty"` // on Other only
	Tickets         map[string]Ref    `json:"tickets,omitempty"`
}

// PastFix is the action that fixed the problem the last time.
type PastFix struct {
	At     time.Time `json:"at"`
	Action string    `json:"action"`
	Result string    `json:"result"`
}

// pastFor gathers the Past of inc from the history (oldest first), shown
// entries per section; nil when nothing of it is in the history.
func pastFor(hist []PastIncident, inc *Incident, shown int, now time.Time) *Past {
	p := &Past{}
	for i := len(hist) - 1; i >= 0; i-- {
		h := &hist[i]
		if h.Host != inc.Host || h.Check != inc.Check || h.Metric != inc.Metric {
			continue
		}
		age := now.Sub(h.Ended)
		same := h.Key == inc.Key
		e := PastEntry{Began: h.Began, DurationSeconds: h.Duration().Seconds(), Outcome: h.Outcome, Severity: h.Severity.String(), Tickets: h.Refs}
		switch {
		case same:
			p.Last30d += b2i(age <= 30*24*time.Hour)
			p.Last90d += b2i(age <= 90*24*time.Hour)
			if len(p.SameKey) < shown {
				p.SameKey = append(p.SameKey, e)
			}
			if p.LastFix == nil {
				p.LastFix = lastFix(h)
			}
		default:
			p.OtherLast30d += b2i(age <= 30*24*time.Hour)
			p.OtherLast90d += b2i(age <= 90*24*time.Hour)
			if len(p.Other) < shown {
				e.Labels = h.Labels
				p.Other = append(p.Other, e)
			}
		}
	}
	if len(p.SameKey) == 0 && len(p.Other) == 0 {
		return nil
	}
	return p
}

// lastFix is the successful attempt of h, if an action fixed it.
func lastFix(h *PastIncident) *PastFix {
	for i := len(h.Attempts) - 1; i >= 0; i-- {
		if a := h.Attempts[i]; a.Success {
			return &PastFix{At: a.At, Action: a.Action, Result: a.Result}
		}
	}
	return nil
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

// outcomeText says how a past incident ended, for a person.
func outcomeText(o string) string {
	switch o {
	case EndFixed:
		return "fixed by an action"
	case EndCleared:
		return "cleared"
	case EndUnreported:
		return "closed, no longer reported"
	case EndReportOnly:
		return "closed, report-only"
	case EndClosedByPerson:
		return "closed by a person"
	}
	return o
}

// writePast writes the "This happened before" section of a ticket; nothing
// when p is nil.
func writePast(b *strings.Builder, p *Past) {
	if p == nil {
		return
	}
	b.WriteString("\nThis happened before (UTC):\n")
	if len(p.SameKey) > 0 {
		fmt.Fprintf(b, "  This alert: %d time(s) in 30 days, %d in 90 days. Last:\n", p.Last30d, p.Last90d)
		for _, e := range p.SameKey {
			writePastEntry(b, e)
		}
	}
	if p.LastFix != nil {
		fmt.Fprintf(b, "  What fixed it last time: %s, %s (%s)\n", p.LastFix.Action, p.LastFix.At.UTC().Format("2006-01-02 15:04"), p.LastFix.Result)
	}
	if len(p.Other) > 0 {
		fmt.Fprintf(b, "  Same check, other %s: %d time(s) in 30 days, %d in 90 days. Last:\n", otherNoun(p.Other), p.OtherLast30d, p.OtherLast90d)
		for _, e := range p.Other {
			writePastEntry(b, e)
		}
	}
}

// otherNoun names what the other labels are (mount, control…).
func otherNoun(es []PastEntry) string {
	for _, k := range []string{"mountpoint", "control", "engine", "kind", "group", "window"} {
		if _, ok := es[0].Labels[k]; ok {
			if k == "mountpoint" {
				return "mount"
			}
			return k
		}
	}
	return "labels"
}

func writePastEntry(b *strings.Builder, e PastEntry) {
	fmt.Fprintf(b, "    %s  %-8s %-27s", e.Began.UTC().Format("2006-01-02 15:04"), textfmt.Duration(time.Duration(e.DurationSeconds*float64(time.Second))), outcomeText(e.Outcome))
	if e.Labels != nil {
		b.WriteString("  " + labelSummary(e.Labels))
	}
	for _, name := range slices.Sorted(maps.Keys(e.Tickets)) {
		r := e.Tickets[name]
		fmt.Fprintf(b, "  %s %s", name, r.Label())
		if r.URL != "" {
			b.WriteString(" " + r.URL)
		}
	}
	b.WriteByte('\n')
}

// pastText is the section as text, for a reopen comment ("" when p is nil).
func pastText(p *Past) string {
	var b strings.Builder
	writePast(&b, p)
	return b.String()
}
