package rt

import (
	"context"
	"fmt"
	"net/http"
	"strconv"
	"strings"

	"github.com/l2agent/l2agent/internal/rest"
	"github.com/l2agent/l2agent/ticketing"
)

var _ ticketing.Updater = (*Backend)(nil)

// titled is what Update reads of a ticket.
type titled struct {
	Subject  string     `json:"Subject"`
	Priority flexString `json:"Priority"`
}

// Update implements ticketing.Updater: the ticket's Subject becomes t's
// title and its Priority that of t's tier (priority_l2 … priority_l4),
// unless the priority is not one of those (someone set it by hand, or
// RT's own priority escalation raised it): that one is kept. The ticket is
// read first and only what differs is sent (PUT /REST/2.0/ticket/ID), then
// read back: RT answers 200 to a change it refused.
func (b *Backend) Update(ctx context.Context, r ticketing.Ref, t ticketing.Ticket) error {
	id, err := ticketID(r)
	if err != nil {
		return err
	}
	to, err := b.tier(max(t.Tier, ticketing.L2))
	if err != nil {
		return err
	}
	what := "update ticket " + id
	cur, err := b.titled(ctx, what, id)
	if err != nil {
		return err
	}
	want := titled{Subject: subject(t.Title), Priority: flexString(strconv.Itoa(to.priority))}
	fields := map[string]any{}
	if !sameSubject(cur.Subject, want.Subject) {
		fields["Subject"] = want.Subject
	}
	if cur.Priority != want.Priority && b.ownPriority(cur.Priority) {
		fields["Priority"] = to.priority
	}
	if len(fields) == 0 {
		return nil
	}
	var said messages
	if err := b.client.Do(ctx, what, rest.Request{Method: http.MethodPut, Path: "/ticket/" + id, Body: fields}, &said); err != nil {
		return err
	}
	got, err := b.titled(ctx, what, id)
	if err != nil {
		return err
	}
	var problems []string
	if _, ok := fields["Subject"]; ok && !sameSubject(got.Subject, want.Subject) {
		problems = append(problems, fmt.Sprintf("subject is %q, not %q", got.Subject, want.Subject))
	}
	if _, ok := fields["Priority"]; ok && got.Priority != want.Priority {
		problems = append(problems, fmt.Sprintf("priority is %s, not %s", got.Priority, want.Priority))
	}
	if len(problems) > 0 {
		return b.refused(what, problems, said)
	}
	return nil
}

func (b *Backend) titled(ctx context.Context, what, id string) (titled, error) {
	var t titled
	err := b.client.Do(ctx, what, rest.Request{Method: http.MethodGet, Path: "/ticket/" + id}, &t)
	return t, err
}

// ownPriority: p is a priority the backend sets (a tier's), or none.
func (b *Backend) ownPriority(p flexString) bool {
	if p == "" {
		return true
	}
	for _, to := range b.tiers {
		if string(p) == strconv.Itoa(to.priority) {
			return true
		}
	}
	return false
}

// sameSubject compares subjects as RT keeps them: without the spaces at
// either end.
func sameSubject(a, b string) bool { return strings.TrimSpace(a) == strings.TrimSpace(b) }
