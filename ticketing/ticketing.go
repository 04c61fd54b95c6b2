// Package ticketing turns alert transitions into tickets: the incident life
// cycle (manager.go), a durable outbox (store.go), delivery with retries
// (delivery.go), and one subpackage per ticket system behind Ticketer.
package ticketing

import (
	"context"
	"errors"
	"strconv"
	"time"

	"github.com/l2agent/l2agent/internal/rest"
)

// Tier is the support level a ticket sits at. Tiers are ordered.
type Tier int

// The tiers: L2 owns a new ticket, L3 gets escalations, L4 (vendor) is
// optional, for escalations past L3.
const (
	L2 Tier = 2
	L3 Tier = 3
	L4 Tier = 4
)

func (t Tier) String() string { return "L" + strconv.Itoa(int(t)) }

// Ref identifies a ticket in one backend.
type Ref struct {
	ID  string `json:"id"`
	URL string `json:"url,omitempty"` // for humans: a link to the ticket
	// Name is what people call the ticket when its ID is not it (a
	// ServiceNow incident's number, INC0010001, beside its sys_id); "" when
	// the ID is.
	Name string `json:"name,omitempty"`
	// Resolved, from Find only, says that the ticket found is resolved
	// (one a backend still takes back, within its reuse_resolved): the
	// deliverer reopens it before it becomes the incident's ticket. Never
	// stored.
	Resolved bool `json:"-"`
}

// Label is how a ticket is named to people: its Name, else #ID.
func (r Ref) Label() string {
	if r.Name != "" {
		return r.Name
	}
	return "#" + r.ID
}

// Ticket is what a backend files, with the text already rendered.
type Ticket struct {
	Key        string            `json:"key"` // the alert key: the dedup key in every system
	Title      string            `json:"title"`
	Body       string            `json:"body"`
	Host       string            `json:"host"`
	Check      string            `json:"check"`
	Metric     string            `json:"metric,omitempty"`
	Labels     map[string]string `json:"labels,omitempty"`
	Severity   string            `json:"severity"` // warn or crit
	Tier       Tier              `json:"tier"`
	RunbookURL string            `json:"runbook_url,omitempty"`
	Flapping   bool              `json:"flapping,omitempty"`
	// Retitle, on a comment, reopen or resolve, says that the title or the
	// priority changed with this operation (a new severity, the flapping
	// mark set or cleared, a reopen): a backend that keeps them in the
	// ticket (Updater) updates them before it delivers the operation. An
	// open or an escalation always sets them.
	Retitle bool `json:"retitle,omitempty"`
	// Past, on an open (and the escalation queued with it) or a reopen:
	// this problem's history on this host (history_render.go).
	Past *Past `json:"past,omitempty"`
}

// Ticketer is one ticket system. Each call is a single attempt: retries,
// backoff and ordering are the outbox's job. Errors say whether a retry can
// help (see Retryable, Final).
type Ticketer interface {
	// Find looks the key up in the backend (dedup after lost state).
	Find(ctx context.Context, key string) (Ref, bool, error)
	Open(ctx context.Context, t Ticket) (Ref, error)
	Comment(ctx context.Context, r Ref, text string) error
	// Escalate moves the ticket to tier (e.g. the L3 queue) with the new text.
	Escalate(ctx context.Context, r Ref, tier Tier, t Ticket) error
	Resolve(ctx context.Context, r Ref, text string) error
	Reopen(ctx context.Context, r Ref, text string) error
}

// Updater is implemented by backends whose tickets keep a title and a
// priority (RT, Jira, ServiceNow). Update makes the ticket's title and
// the priority the backend derives from t (tier, severity) what t says,
// changing only what differs, so that it can be repeated safely. A
// priority someone set by hand (not one the backend would set) is kept.
type Updater interface {
	Update(ctx context.Context, r Ref, t Ticket) error
}

// DeliveryError is a failed call to a backend: its reason (a metric
// label), whether a retry can help, and the server's Retry-After. It is
// rest.Error, so the HTTP client's classification needs no translation.
type DeliveryError = rest.Error

// Retryable wraps err as an error worth retrying.
func Retryable(reason string, err error) error { return rest.Retryable(reason, err) }

// Final wraps err as an error that retrying will not fix.
func Final(reason string, err error) error { return rest.Final(reason, err) }

// Classify returns the reason, whether to retry and the wait the server
// asked for. Errors that are not DeliveryErrors (network, timeouts) retry.
func Classify(err error) (reason string, retry bool, after time.Duration) {
	var de *DeliveryError
	if errors.As(err, &de) {
		return de.Reason, de.Retryable, de.RetryAfter
	}
	if errors.Is(err, context.Canceled) {
		return "cancelled", true, 0
	}
	return "network", true, 0
}
