package rt

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"

	"github.com/l2agent/l2agent/internal/rest"
	"github.com/l2agent/l2agent/ticketing"
)

// Preflight checks, without changing anything in RT, every name the
// config uses: each queue (L2, L3, L4) can be seen by the agent's user
// (GET /queue/NAME), the custom field applies to each of them (the
// queue's TicketCustomFields, which lists only the fields the user may
// see), and each owner (owner_l3, owner_l4) is a user of RT (GET
// /user/NAME). step reports each check; Preflight stops at the first
// failure. Rights that only a change proves (CreateTicket, ModifyTicket,
// ModifyCustomField, OwnTicket) are proved by the test ticket that
// `l2agent tickets test` then opens, comments on and resolves.
func (b *Backend) Preflight(ctx context.Context, step func(what string, err error) bool) bool {
	var queues, owners []string
	for _, t := range []ticketing.Tier{ticketing.L2, ticketing.L3, ticketing.L4} {
		if q := b.tiers[t].queue; !slices.Contains(queues, q) {
			queues = append(queues, q)
		}
		if o := b.tiers[t].owner; o != "" && !slices.Contains(owners, o) {
			owners = append(owners, o)
		}
	}
	for _, q := range queues {
		cfs, err := b.queueFields(ctx, q)
		if !step("queue "+q, err) {
			return false
		}
		if !slices.Contains(cfs, b.cf) {
			err = fmt.Errorf("custom field %s does not apply to queue %s, or the user lacks SeeCustomField on it (the queue's ticket custom fields are %q): tickets filed there could never be found by their alert key", b.cf, q, cfs)
		}
		if !step("custom field "+b.cf+" on queue "+q, err) {
			return false
		}
	}
	for _, o := range owners {
		var u struct {
			Name string `json:"Name"`
		}
		err := b.client.Do(ctx, "read user "+o, rest.Request{Method: http.MethodGet, Path: "/user/" + url.PathEscape(o)}, &u)
		var de *ticketing.DeliveryError
		if errors.As(err, &de) && de.Reason == "http_4xx" {
			err = fmt.Errorf("no user %q in RT that the agent may see (the owner of escalated tickets): %w", o, err)
		}
		if !step("owner "+o, err) {
			return false
		}
	}
	return true
}

// queueFields reads queue q and returns the names of the ticket custom
// fields that apply to it. RT answers 403 both for a queue that does not
// exist and for one the user may not see.
func (b *Backend) queueFields(ctx context.Context, q string) ([]string, error) {
	var res struct {
		Name               string        `json:"Name"`
		Disabled           flexString    `json:"Disabled"`
		TicketCustomFields []customField `json:"TicketCustomFields"`
	}
	err := b.client.Do(ctx, "read queue "+q, rest.Request{Method: http.MethodGet, Path: "/queue/" + url.PathEscape(q)}, &res)
	var de *ticketing.DeliveryError
	if errors.As(err, &de) && de.Reason == "http_4xx" {
		return nil, fmt.Errorf("RT refuses queue %q: it does not exist, or the agent's user lacks SeeQueue on it: %w", q, err)
	}
	if err != nil {
		return nil, err
	}
	if res.Disabled == "1" {
		return nil, fmt.Errorf("queue %q is disabled: RT files no ticket there", q)
	}
	var names []string
	for _, cf := range res.TicketCustomFields {
		names = append(names, cf.Name)
	}
	return names, nil
}
