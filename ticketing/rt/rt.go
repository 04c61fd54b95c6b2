// Package rt is the Request Tracker 5 ticket backend. It speaks REST 2.0
// (https://docs.bestpractical.com/rt/5.0.x/RT/REST2.html) with an auth token.
//
// The alert key lives in a ticket custom field (HostCheckKey by default);
// Find looks it up with TicketSQL. A new ticket goes to the L2 queue;
// escalation moves it to the queue of the next tier, raises its priority and
// may set an owner.
//
// RT reports many refusals inside a successful answer: an update answers
// 200 with a list of messages such as "Permission Denied" or "Queue X does
// not exist", a ticket is created even when its custom field could not be
// set, a search on an unknown custom field finds nothing. So every change is
// checked by reading the ticket back, and a ticket that did not end up as
// asked is a final error quoting RT's messages.
package rt

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/l2agent/l2agent/configs"
	"github.com/l2agent/l2agent/internal/rest"
	"github.com/l2agent/l2agent/ticketing"
)

// Statuses of RT's default lifecycle that the backend sets.
const (
	statusResolved = "resolved"
	statusOpen     = "open"
)

// maxSubject is the length of RT's Tickets.Subject column (varchar(200)).
const maxSubject = 200

// findPageSize is how many tickets Find reads. TicketSQL compares custom
// field values without regard to case, so the hits are compared again,
// exactly, here.
const findPageSize = 20

// Backend files tickets in one Request Tracker. Safe for concurrent use.
type Backend struct {
	name   string
	base   string // RT's web root, no trailing slash: https://rt.example.com
	cf     string
	tiers  map[ticketing.Tier]tier
	client *rest.Client
	reuse  time.Duration    // reuse_resolved
	now    func() time.Time // the clock Find judges a resolve's age by

	prev ticketing.Unused[oldTicket] // key → the ticket Find met and could not use, for Open
}

// tier is where a ticket of one tier lives.
type tier struct {
	queue    string
	priority int
	owner    string // empty: leave the owner alone
}

// New returns the backend for one configured RT. o should have had its
// defaults applied (configs does); an empty L3 or L4 queue falls back to
// the tier below. timeout bounds each HTTP request.
func New(name string, o Options, timeout time.Duration) (*Backend, error) {
	if !configs.ValidHTTPURL(o.URL) {
		return nil, fmt.Errorf("rt backend %q: url %q: want an http:// or https:// URL", name, o.URL)
	}
	token, err := configs.SecretValue(o.Token, o.TokenFile)
	if err != nil {
		return nil, fmt.Errorf("rt backend %q: token: %w", name, err)
	}
	if token == "" {
		return nil, fmt.Errorf("rt backend %q: the token is empty", name)
	}
	if o.QueueL2 == "" {
		return nil, fmt.Errorf("rt backend %q: queue_l2 is empty", name)
	}
	if o.CustomField == "" || strings.ContainsAny(o.CustomField, "{}'\"\\") {
		return nil, fmt.Errorf("rt backend %q: custom_field %q: want the name of a ticket custom field, without braces, quotes or backslashes", name, o.CustomField)
	}
	base := strings.TrimRight(o.URL, "/")
	base = strings.TrimSuffix(base, "/REST/2.0")
	q3 := or(o.QueueL3, o.QueueL2)
	reuse := DefaultReuseResolved
	if o.ReuseResolved != nil {
		reuse = o.ReuseResolved.D()
	}
	b := &Backend{
		reuse: reuse, now: time.Now,
		name: name,
		base: base,
		cf:   o.CustomField,
		tiers: map[ticketing.Tier]tier{
			ticketing.L2: {queue: o.QueueL2, priority: o.PriorityL2},
			ticketing.L3: {queue: q3, priority: o.PriorityL3, owner: o.OwnerL3},
			ticketing.L4: {queue: or(o.QueueL4, q3), priority: o.PriorityL4, owner: o.OwnerL4},
		},
		client: rest.New(rest.Config{
			Name:    "rt",
			BaseURL: base + "/REST/2.0",
			Header:  map[string]string{"Accept": "application/json"},
			Auth:    rest.Token("token", token),
			Timeout: timeout,
		}),
	}
	return b, nil
}

func or(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

var _ ticketing.Ticketer = (*Backend)(nil)

// TicketURL is the link to ticket id in RT's web UI.
func (b *Backend) TicketURL(id string) string {
	return b.base + "/Ticket/Display.html?id=" + url.QueryEscape(id)
}

func (b *Backend) ref(id string) ticketing.Ref {
	return ticketing.Ref{ID: id, URL: b.TicketURL(id)}
}

// Query is the TicketSQL that finds the tickets of key, in any status.
func (b *Backend) Query(key string) string {
	return "CF.{" + b.cf + "} = " + QuoteSQL(key)
}

// QuoteSQL quotes s as a TicketSQL string literal. RT unescapes every
// backslash-escaped character of a quoted value, so quotes and backslashes
// are escaped and everything else is taken as it is.
func QuoteSQL(s string) string {
	var sb strings.Builder
	sb.Grow(len(s) + 2)
	sb.WriteByte('\'')
	for _, r := range s {
		if r == '\'' || r == '\\' {
			sb.WriteByte('\\')
		}
		sb.WriteRune(r)
	}
	sb.WriteByte('\'')
	return sb.String()
}

// Find returns the newest ticket whose custom field holds exactly key and
// that can still take this incident: one in an active status (new, open,
// stalled, or any status of a custom lifecycle other than resolved,
// rejected and deleted), or one resolved within reuse_resolved (by its
// Resolved date). A rejected or deleted ticket, or one resolved longer
// ago, is never returned: the deliverer would take it as the incident's
// ticket without reopening it. Find then remembers the newest such
// ticket, which the next Open of the key refers to.
func (b *Backend) Find(ctx context.Context, key string) (ticketing.Ref, bool, error) {
	if strings.ContainsAny(key, "\r\n") {
		// A TicketSQL literal cannot hold a line break.
		return ticketing.Ref{}, false, ticketing.Final("bad_key", fmt.Errorf("rt find: key %q has a line break", key))
	}
	var page struct {
		Items []struct {
			ID           flexString    `json:"id"`
			Status       string        `json:"Status"`
			Resolved     string        `json:"Resolved"`
			CustomFields []customField `json:"CustomFields"`
		} `json:"items"`
	}
	err := b.client.Do(ctx, "find "+key, rest.Request{Method: http.MethodGet, Path: "/tickets", Query: url.Values{
		"query":    {b.Query(key)},
		"orderby":  {"id"},
		"order":    {"DESC"},
		"per_page": {strconv.Itoa(findPageSize)},
		"fields":   {"CustomFields,Status,Resolved"},
	}}, &page)
	if err != nil {
		return ticketing.Ref{}, false, err
	}
	var old *oldTicket
	for _, it := range page.Items {
		if cfValue(it.CustomFields, b.cf) != key {
			continue
		}
		why := b.unusable(it.Status, it.Resolved)
		if why == "" {
			b.prev.Remember(key, nil)
			ref := b.ref(string(it.ID))
			ref.Resolved = strings.EqualFold(it.Status, statusResolved)
			return ref, true, nil
		}
		if old == nil {
			old = &oldTicket{id: string(it.ID), why: why}
		}
	}
	b.prev.Remember(key, old)
	return ticketing.Ref{}, false, nil
}

// oldTicket is a ticket of a key that Find could not use, and why.
type oldTicket struct{ id, why string }

// unusable says why a ticket in status, resolved at resolved (RT's
// ISO 8601 UTC date), cannot take the key's incident again; "" when it
// can.
func (b *Backend) unusable(status, resolved string) string {
	switch strings.ToLower(status) {
	case "rejected", "deleted":
		return "it is " + status
	case statusResolved:
		at, err := time.Parse(time.RFC3339, resolved)
		if err != nil || at.Year() < 2000 { // RT writes 1970-01-01 for "never"
			return "it is resolved, at a time RT did not say"
		}
		if ago := b.now().Sub(at); ago > b.reuse {
			return fmt.Sprintf("it was resolved %s ago, longer than reuse_resolved (%s)", ago.Round(time.Minute), b.reuse)
		}
	}
	return ""
}

// Open creates the ticket in the queue of its tier (L2 unless t.Tier says
// otherwise) with the alert key in the custom field. When RT created the
// ticket but did not store the key (the field does not exist, does not
// apply to the queue, or the user may not set it), Open returns the ref with
// a final error: Find could never find that ticket again. When Find last
// met only a ticket of the key that it could not use, the new ticket
// refers to it (an RT RefersTo link) and its text says so.
func (b *Backend) Open(ctx context.Context, t ticketing.Ticket) (ticketing.Ref, error) {
	tr := t.Tier
	if tr < ticketing.L2 {
		tr = ticketing.L2
	}
	to, err := b.tier(tr)
	if err != nil {
		return ticketing.Ref{}, err
	}
	what := "open " + t.Key
	req := map[string]any{
		"Queue":        to.queue,
		"Subject":      subject(t.Title),
		"Content":      t.Body,
		"ContentType":  "text/plain",
		"Priority":     to.priority,
		"CustomFields": map[string]string{b.cf: t.Key},
	}
	if to.owner != "" {
		req["Owner"] = to.owner
	}
	if old, ok := b.prev.Take(t.Key); ok {
		req["RefersTo"] = old.id
		req["Content"] = strings.TrimRight(t.Body, "\n") + fmt.Sprintf("\n\nEarlier ticket of this alert: #%s %s (not used again: %s).", old.id, b.TicketURL(old.id), old.why)
	}
	var created struct {
		ID flexString `json:"id"`
	}
	if err := b.client.Do(ctx, what, rest.Request{Method: http.MethodPost, Path: "/ticket", Body: req}, &created); err != nil {
		return ticketing.Ref{}, err
	}
	if created.ID == "" {
		return ticketing.Ref{}, ticketing.Final("api", fmt.Errorf("rt %s: RT answered without a ticket id", what))
	}
	ref := b.ref(string(created.ID))
	got, err := b.readBack(ctx, what, ref.ID)
	if err != nil {
		return ref, err
	}
	var problems []string
	if v := cfValue(got.CustomFields, b.cf); v != t.Key {
		problems = append(problems, fmt.Sprintf("custom field %s is %q, not the alert key: check that the field exists, applies to queue %s, and that the user has SeeCustomField and ModifyCustomField on it", b.cf, v, to.queue))
	}
	problems = append(problems, to.mismatch(got)...)
	if len(problems) > 0 {
		return ref, ticketing.Final("api", fmt.Errorf("rt %s: ticket %s created, but %s", what, ref.ID, b.client.Redact(strings.Join(problems, "; "))))
	}
	return ref, nil
}

// Comment adds a comment (not a reply: nothing is mailed to requestors).
func (b *Backend) Comment(ctx context.Context, r ticketing.Ref, text string) error {
	id, err := ticketID(r)
	if err != nil {
		return err
	}
	return b.comment(ctx, "comment on ticket "+id, id, text, "")
}

// comment posts a text/plain comment, and sets the status unless it is "".
// The comment goes as JSON: RT 5.0.3 reads a text/plain request body as
// Latin-1 whatever its charset, which garbles "≥" and every other
// non-ASCII character.
func (b *Backend) comment(ctx context.Context, what, id, text, status string) error {
	body := map[string]any{"Content": text, "ContentType": "text/plain"}
	if status != "" {
		body["Status"] = status
	}
	var said messages
	if err := b.client.Do(ctx, what, rest.Request{Method: http.MethodPost, Path: "/ticket/" + id + "/comment", Body: body}, &said); err != nil {
		return err
	}
	if status == "" {
		return nil
	}
	got, err := b.get(ctx, what, id)
	if err != nil {
		return err
	}
	if got.Status != status {
		return b.refused(what, []string{fmt.Sprintf("status is %q, not %q", got.Status, status)}, said)
	}
	return nil
}

// Escalate moves the ticket to the queue of tier, then gives it that tier's
// priority, owner (if one is configured) and the current title, then
// comments with t.Body, which says why. Each step is read back; a refused
// step is a final error and stops the rest (RT applies the fields of one
// update independently, so the queue goes first and alone: a refused move
// changes nothing, and the owner's OwnTicket right is checked in the new
// queue, which may be the only place it is granted).
func (b *Backend) Escalate(ctx context.Context, r ticketing.Ref, tr ticketing.Tier, t ticketing.Ticket) error {
	id, err := ticketID(r)
	if err != nil {
		return err
	}
	to, err := b.tier(tr)
	if err != nil {
		return err
	}
	what := fmt.Sprintf("escalate ticket %s to %s", id, tr)
	var said messages
	got, err := b.update(ctx, what, id, map[string]any{"Queue": to.queue}, &said)
	if err != nil {
		return err
	}
	if !got.inQueue(to.queue) {
		return b.refused(what, []string{fmt.Sprintf("queue is %q, not %q", got.Queue.Name, to.queue)}, said)
	}
	rest := map[string]any{"Priority": to.priority}
	if t.Title != "" {
		rest["Subject"] = subject(t.Title)
	}
	if to.owner != "" {
		rest["Owner"] = to.owner
	}
	if got, err = b.update(ctx, what, id, rest, &said); err != nil {
		return err
	}
	if p := to.mismatch(got); len(p) > 0 {
		return b.refused(what, p, said)
	}
	note := fmt.Sprintf("l2agent escalated this ticket to %s: queue %s, priority %d", tr, to.queue, to.priority)
	if to.owner != "" {
		note += ", owner " + to.owner
	}
	note += "."
	if t.Body != "" {
		note += "\n\n" + t.Body
	}
	return b.comment(ctx, what, id, note, "")
}

// update PUTs fields, adds RT's messages to said and reads the ticket back.
func (b *Backend) update(ctx context.Context, what, id string, fields map[string]any, said *messages) (ticket, error) {
	var msgs messages
	if err := b.client.Do(ctx, what, rest.Request{Method: http.MethodPut, Path: "/ticket/" + id, Body: fields}, &msgs); err != nil {
		return ticket{}, err
	}
	*said = append(*said, msgs...)
	return b.get(ctx, what, id)
}

// Resolve comments with text and sets the status to resolved in the same
// request, then reads the status back.
func (b *Backend) Resolve(ctx context.Context, r ticketing.Ref, text string) error {
	return b.commentStatus(ctx, r, "resolve", text, statusResolved)
}

// Reopen comments with text and sets the status back to open in the same
// request, then reads the status back.
func (b *Backend) Reopen(ctx context.Context, r ticketing.Ref, text string) error {
	return b.commentStatus(ctx, r, "reopen", text, statusOpen)
}

func (b *Backend) commentStatus(ctx context.Context, r ticketing.Ref, verb, text, status string) error {
	id, err := ticketID(r)
	if err != nil {
		return err
	}
	if strings.TrimSpace(text) == "" {
		text = "l2agent: " + verb
	}
	return b.comment(ctx, verb+" ticket "+id, id, text, status)
}

func (b *Backend) tier(t ticketing.Tier) (tier, error) {
	to, ok := b.tiers[t]
	if !ok {
		return tier{}, ticketing.Final("bad_tier", fmt.Errorf("rt backend %q: no queue for tier %s", b.name, t))
	}
	return to, nil
}

// mismatch lists how got differs from where a ticket of this tier belongs,
// the queue first.
func (to tier) mismatch(got ticket) []string {
	var p []string
	if !got.inQueue(to.queue) {
		p = append(p, fmt.Sprintf("queue is %q, not %q", got.Queue.Name, to.queue))
	}
	if got.Priority.String() != strconv.Itoa(to.priority) {
		p = append(p, fmt.Sprintf("priority is %s, not %d", got.Priority, to.priority))
	}
	if to.owner != "" && !strings.EqualFold(got.Owner.ID.String(), to.owner) {
		p = append(p, fmt.Sprintf("owner is %q, not %q", got.Owner.ID, to.owner))
	}
	return p
}

// refused is the error for a change RT answered with success but did not
// make; RT's own messages say why (with the token hidden, should RT quote
// it).
func (b *Backend) refused(what string, problems []string, said messages) error {
	msg := strings.Join(problems, "; ")
	if len(said) > 0 {
		msg += "; RT said: " + strings.Join(said, " | ")
	}
	return ticketing.Final("api", fmt.Errorf("rt %s: not done: %s", what, b.client.Redact(msg)))
}

// ticket is what the backend reads back of a ticket.
type ticket struct {
	ID       flexString `json:"id"`
	Status   string     `json:"Status"`
	Priority flexString `json:"Priority"`
	Queue    struct {
		ID   flexString `json:"id"`
		Name string     `json:"Name"`
	} `json:"Queue"`
	Owner struct {
		ID flexString `json:"id"`
	} `json:"Owner"`
	CustomFields []customField `json:"CustomFields"`
}

// inQueue: queue is the ticket's queue, by name or id.
func (t ticket) inQueue(queue string) bool {
	return t.Queue.Name == queue || t.Queue.ID.String() == queue
}

type customField struct {
	Name   string   `json:"name"`
	Values []string `json:"values"`
}

func cfValue(cfs []customField, name string) string {
	for _, cf := range cfs {
		if cf.Name == name && len(cf.Values) > 0 {
			return cf.Values[0]
		}
	}
	return ""
}

// readBack reads back what Open checks of the ticket it created (queue,
// priority, owner, custom fields; RT's answer to the create holds only the
// id) with a TicketSQL search on the id that asks for just these fields.
// RT serves it in about 60 % of the time of GET /ticket/N, which also
// works out the ticket's hypermedia links (the actions the user may take
// on it); the rights it needs are the same (ShowTicket, SeeCustomField).
func (b *Backend) readBack(ctx context.Context, what, id string) (ticket, error) {
	var page struct {
		Items []ticket `json:"items"`
	}
	err := b.client.Do(ctx, what, rest.Request{Method: http.MethodGet, Path: "/tickets", Query: url.Values{
		"query":         {"id = " + id},
		"fields":        {"Queue,Priority,Owner,Status,CustomFields"},
		"fields[Queue]": {"Name"},
	}}, &page)
	if err != nil {
		return ticket{}, err
	}
	for _, t := range page.Items {
		if string(t.ID) == id {
			return t, nil
		}
	}
	return ticket{}, ticketing.Final("api", fmt.Errorf("rt %s: ticket %s created, but a search by its id does not find it: check that the user has ShowTicket in its queue", what, id))
}

func (b *Backend) get(ctx context.Context, what, id string) (ticket, error) {
	var t ticket
	err := b.client.Do(ctx, what, rest.Request{Method: http.MethodGet, Path: "/ticket/" + id, Query: url.Values{"fields[Queue]": {"Name"}}}, &t)
	return t, err
}

// messages is RT's answer to an update: one line per change or refusal.
type messages []string

// flexString is a JSON string or number: RT sends ids as either.
type flexString string

func (f *flexString) UnmarshalJSON(b []byte) error {
	if len(b) > 0 && b[0] == '"' {
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		*f = flexString(s)
		return nil
	}
	var n json.Number
	if err := json.Unmarshal(b, &n); err != nil {
		return err
	}
	*f = flexString(n)
	return nil
}

func (f flexString) String() string { return string(f) }

func ticketID(r ticketing.Ref) (string, error) {
	if _, err := strconv.ParseUint(r.ID, 10, 64); err != nil {
		return "", ticketing.Final("bad_ref", fmt.Errorf("rt: ticket id %q is not a number", r.ID))
	}
	return r.ID, nil
}

// subject fits a title into RT's Subject column, on a rune boundary.
func subject(s string) string {
	if utf8.RuneCountInString(s) <= maxSubject {
		return s
	}
	r := []rune(s)
	return string(r[:maxSubject-1]) + "…"
}
