package pagerduty

import (
	"context"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/l2agent/l2agent/internal/textfmt"
	"github.com/l2agent/l2agent/ticketing"
)

// ChangeEvent is the body of a Change Events request (POST
// /v2/change/enqueue): an informational event on a service, shown on its
// incidents and in its recent changes; it never opens an incident and
// never pages.
type ChangeEvent struct {
	RoutingKey string        `json:"routing_key"`
	Payload    ChangePayload `json:"payload"`
	Links      []Link        `json:"links,omitempty"`
}

// ChangePayload is the payload of a change event; only summary is
// required.
type ChangePayload struct {
	Summary       string         `json:"summary"`
	Source        string         `json:"source,omitempty"`
	Timestamp     string         `json:"timestamp,omitempty"`
	CustomDetails map[string]any `json:"custom_details,omitempty"`
}

// isRuleset: integration keys of event rulesets start with R, and
// PagerDuty accepts no change event on them.
func isRuleset(key string) bool { return strings.HasPrefix(key, "R") }

// change sends text as a change event on the service of t's tier. On a
// ruleset key, which takes no change event, nothing is sent.
func (b *Backend) change(ctx context.Context, dk string, t ticketing.Ticket, text string) error {
	key := b.keys[t.Tier]
	if key == "" {
		key = b.keys[ticketing.L2]
	}
	if isRuleset(key) {
		return nil
	}
	src := t.Host
	if src == "" {
		src, _, _ = strings.Cut(t.Key, "/")
	}
	title := t.Title
	if title == "" {
		title = t.Key
	}
	details := map[string]any{"dedup_key": dk, "key": t.Key, "tier": t.Tier.String(), "comment": text}
	e := ChangeEvent{RoutingKey: key, Payload: ChangePayload{
		Summary: textfmt.Head(title+": "+firstLine(text), MaxSummary), Source: src,
		Timestamp: time.Now().UTC().Format(time.RFC3339), CustomDetails: details}}
	if t.RunbookURL != "" {
		e.Links = []Link{{Href: t.RunbookURL, Text: "Runbook"}}
	}
	_, err := b.post(ctx, "pagerduty change event for "+dk, b.changeURL, e)
	return err
}

func firstLine(s string) string {
	s, _, _ = strings.Cut(strings.TrimSpace(s), "\n")
	return s
}

// Pages says that opening a ticket pages someone: `l2agent tickets test`
// opens its test ticket only when told it may (--yes).
func (b *Backend) Pages() bool { return true }

// Preflight checks every routing key the config names without paging
// anyone: it sends one change event on each distinct key (L2, L3, L4),
// which PagerDuty answers 202 when the key is accepted and 400 when it is
// not, and which shows in the service's recent changes. A ruleset key
// (R…) takes no change event: it is reported, not sent to. step reports
// each check; Preflight stops at the first failure.
func (b *Backend) Preflight(ctx context.Context, step func(what string, err error) bool) bool {
	host, _ := os.Hostname()
	seen := map[string]bool{}
	for _, tier := range []ticketing.Tier{ticketing.L2, ticketing.L3, ticketing.L4} {
		k := b.keys[tier]
		if seen[k] {
			continue
		}
		seen[k] = true
		if isRuleset(k) {
			if !step(fmt.Sprintf("routing key %s: a ruleset key (not checked: it takes no change event, so comment_as: change drops comments on it)", tier), nil) {
				return false
			}
			continue
		}
		e := ChangeEvent{RoutingKey: k, Payload: ChangePayload{
			Summary: fmt.Sprintf("l2agent tickets test %s on %s: routing key %s works (a change event: nothing is paged)", b.name, host, tier),
			Source:  host, Timestamp: time.Now().UTC().Format(time.RFC3339),
			CustomDetails: map[string]any{"tier": tier.String(), "backend": b.name}}}
		_, err := b.post(ctx, "pagerduty change event (routing key "+tier.String()+")", b.changeURL, e)
		if !step(fmt.Sprintf("routing key %s (a change event on its service; nothing is paged)", tier), err) {
			return false
		}
	}
	return true
}
