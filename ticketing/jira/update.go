package jira

import (
	"context"
	"net/http"
	"net/url"
	"strings"

	"github.com/l2agent/l2agent/internal/rest"
	"github.com/l2agent/l2agent/ticketing"
)

var _ ticketing.Updater = (*Backend)(nil)

// Update implements ticketing.Updater: the issue's summary becomes t's
// title and its priority that of t's tier (priority_l2 … priority_l4, when
// set), unless the issue has a priority that is none of those (someone
// chose it): that one is kept. The issue is read first (GET
// /rest/api/N/issue/KEY?fields=summary,priority) and only what differs is
// sent (PUT /rest/api/N/issue/KEY {"fields": …}, answered 204).
func (b *Backend) Update(ctx context.Context, r ticketing.Ref, t ticketing.Ticket) error {
	what := "update " + r.ID
	var cur struct {
		Fields struct {
			Summary  string `json:"summary"`
			Priority *struct {
				Name string `json:"name"`
			} `json:"priority"`
		} `json:"fields"`
	}
	err := b.do(ctx, what, rest.Request{Method: http.MethodGet, Path: issuePath(r),
		Query: url.Values{"fields": {"summary,priority"}}}, &cur)
	if err != nil {
		return err
	}
	f := map[string]any{}
	if s := summary(t.Title); cur.Fields.Summary != s {
		f["summary"] = s
	}
	if want := b.priority(max(t.Tier, ticketing.L2)); want != "" {
		p := cur.Fields.Priority
		if p == nil || !strings.EqualFold(p.Name, want) && b.ownPriority(p.Name) {
			f["priority"] = map[string]string{"name": want}
		}
	}
	if len(f) == 0 {
		return nil
	}
	return b.call(ctx, what, http.MethodPut, issuePath(r), map[string]any{"fields": f}, nil)
}

// priority is the priority name of tier t; "" leaves priorities alone.
func (b *Backend) priority(t ticketing.Tier) string {
	if p, ok := b.tierFields(t)["priority"].(map[string]string); ok {
		return p["name"]
	}
	return ""
}

// ownPriority: name is the priority of one of the tiers.
func (b *Backend) ownPriority(name string) bool {
	for _, p := range []string{b.o.PriorityL2, b.o.PriorityL3, b.o.PriorityL4} {
		if p != "" && strings.EqualFold(p, name) {
			return true
		}
	}
	return false
}
