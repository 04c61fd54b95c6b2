// Package pagerduty is a ticket backend for PagerDuty's Events API v2: the
// alert key is the dedup_key, an open is a trigger, a resolve a resolve.
package pagerduty

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/l2agent/l2agent/configs"
	"github.com/l2agent/l2agent/internal/rest"
	"github.com/l2agent/l2agent/internal/textfmt"
	"github.com/l2agent/l2agent/ticketing"
)

// Limits of the Events API v2.
const (
	MaxDedupKey = 255
	MaxSummary  = 1024
)

// Event is the body of an Events API v2 request.
type Event struct {
	RoutingKey  string   `json:"routing_key"`
	EventAction string   `json:"event_action"` // trigger, acknowledge, resolve
	DedupKey    string   `json:"dedup_key,omitempty"`
	Payload     *Payload `json:"payload,omitempty"` // required for trigger
	Links       []Link   `json:"links,omitempty"`
	Client      string   `json:"client,omitempty"`
}

// Payload describes the alert of a trigger event.
type Payload struct {
	Summary       string         `json:"summary"`
	Source        string         `json:"source"`
	Severity      string         `json:"severity"` // critical, error, warning, info
	Timestamp     string         `json:"timestamp,omitempty"`
	Component     string         `json:"component,omitempty"`
	Group         string         `json:"group,omitempty"`
	Class         string         `json:"class,omitempty"`
	CustomDetails map[string]any `json:"custom_details,omitempty"`
}

// Link is a link shown on the alert.
type Link struct {
	Href string `json:"href"`
	Text string `json:"text,omitempty"`
}

// Response is PagerDuty's answer: 202 {"status":"success","dedup_key":…}
// or 400 {"status":"invalid event","errors":[…]}.
type Response struct {
	Status   string   `json:"status"`
	Message  string   `json:"message,omitempty"`
	DedupKey string   `json:"dedup_key,omitempty"`
	Errors   []string `json:"errors,omitempty"`
}

// Backend sends events to one Events API v2 endpoint.
type Backend struct {
	name, url  string
	keys       map[ticketing.Tier]string // routing key per tier; L3/L4 fall back to the tier below
	severity   map[string]string
	escalation string
	comments   bool
	commentAs  string // change or trigger
	changeURL  string
	class      string
	client     *rest.Client

	mu   sync.Mutex
	last map[string]ticketing.Ticket // dedup_key → last ticket sent (for comments and reopens)
}

// New returns a PagerDuty backend.
func New(name string, o Options, timeout time.Duration) (*Backend, error) {
	if o.URL == "" {
		o.URL = "https://events.pagerduty.com/v2/enqueue"
	}
	b := &Backend{name: name, url: o.URL, keys: map[ticketing.Tier]string{}, severity: map[string]string{"warn": "warning", "crit": "critical"},
		escalation: o.Escalation, comments: o.Comments == nil || *o.Comments, class: o.Class,
		commentAs: o.CommentAs, changeURL: o.ChangeURL, last: map[string]ticketing.Ticket{}}
	if b.commentAs == "" {
		b.commentAs = CommentAsChange
	}
	if b.changeURL == "" {
		b.changeURL = ChangeURL(o.URL)
	}
	for k, v := range o.Severity {
		b.severity[k] = v
	}
	if b.escalation == "" {
		b.escalation = "retrigger"
	}
	for _, k := range []struct {
		tier ticketing.Tier
		s    configs.Secret
		file string
	}{{ticketing.L2, o.RoutingKey, o.RoutingKeyFile}, {ticketing.L3, o.RoutingKeyL3, o.RoutingKeyL3File}, {ticketing.L4, o.RoutingKeyL4, o.RoutingKeyL4File}} {
		if k.tier != ticketing.L2 && k.s.Ref == "" && k.file == "" {
			b.keys[k.tier] = b.keys[k.tier-1]
			continue
		}
		v, err := configs.SecretValue(k.s, k.file)
		if err != nil {
			return nil, fmt.Errorf("pagerduty backend %q: routing key %s: %w", name, k.tier, err)
		}
		b.keys[k.tier] = strings.TrimSpace(v)
	}
	// The routing keys travel in the body: never quoted from an answer.
	b.client = rest.New(rest.Config{Timeout: timeout, Secrets: slices.Collect(maps.Values(b.keys))})
	return b, nil
}

// DedupKey returns the dedup_key of an alert key: the key itself, or, past
// PagerDuty's 255 characters, its first 190 bytes + "~" + the hex SHA-256 of
// the whole key (stable across restarts and hosts).
func DedupKey(key string) string {
	if len(key) <= MaxDedupKey {
		return key
	}
	sum := sha256.Sum256([]byte(key))
	return textfmt.Head(key, MaxDedupKey-1-2*sha256.Size) + "~" + hex.EncodeToString(sum[:])
}

// RateLimitBackoff is the least wait after PagerDuty's 429: it documents
// no Retry-After for the Events API and asks for a backoff of "a few
// minutes" (its retry guidance: about 30 s apart); one routing key is
// shared by every host of a fleet (about 120 events a minute), so
// retrying sooner only adds to the throttling. The outbox's own backoff
// takes over when it grows longer; a Retry-After is honoured when longer.
const RateLimitBackoff = 30 * time.Second

func (b *Backend) send(ctx context.Context, e Event) (string, error) {
	what := fmt.Sprintf("pagerduty %s %s", e.EventAction, e.DedupKey)
	return b.post(ctx, what, b.url, e)
}

// post sends one event (alert or change) to url and classifies the answer.
func (b *Backend) post(ctx context.Context, what, url string, body any) (string, error) {
	resp, err := b.client.Send(ctx, what, rest.Request{Method: http.MethodPost, Path: url, Body: body})
	if err != nil {
		return "", err
	}
	var r Response
	_ = json.Unmarshal(resp.Body, &r)
	if resp.Status == http.StatusBadRequest && len(r.Errors) > 0 {
		return "", ticketing.Final("http_4xx", fmt.Errorf("%s: HTTP 400 %s: %s", what, r.Status, strings.Join(r.Errors, "; ")))
	}
	if err := rest.CheckStatus(what, resp.Status, resp.Header, resp.Body); err != nil {
		var de *ticketing.DeliveryError
		if resp.Status == http.StatusTooManyRequests && errors.As(err, &de) {
			de.RetryAfter = rateLimitWait(de.RetryAfter)
		}
		return "", err
	}
	return r.DedupKey, nil
}

// rateLimitWait is the wait after a 429: the server's Retry-After when it
// is longer, else RateLimitBackoff plus up to half of it again at random,
// so that the hosts sharing a routing key do not all come back at once.
func rateLimitWait(retryAfter time.Duration) time.Duration {
	w := RateLimitBackoff + time.Duration(rand.Int64N(int64(RateLimitBackoff/2)))
	return max(w, retryAfter)
}

func (b *Backend) trigger(ctx context.Context, dk string, tier ticketing.Tier, severity string, t ticketing.Ticket, comment string) (string, error) {
	if dk == "" {
		dk = DedupKey(t.Key)
	}
	src := t.Host
	if src == "" {
		src, _, _ = strings.Cut(t.Key, "/")
	}
	sev := b.severity[t.Severity]
	if severity != "" {
		sev = severity
	} else if sev == "" {
		sev = b.severity["warn"]
	}
	summary := t.Title
	if summary == "" {
		summary = t.Key
	}
	details := map[string]any{"key": t.Key, "tier": tier.String()}
	if t.Body != "" {
		details["body"] = t.Body
	}
	if len(t.Labels) > 0 {
		details["labels"] = t.Labels
	}
	if comment != "" {
		details["comment"] = comment
	}
	if t.Flapping {
		details["flapping"] = true
	}
	e := Event{RoutingKey: b.keys[tier], EventAction: "trigger", DedupKey: dk, Client: "l2agent",
		Payload: &Payload{Summary: textfmt.Head(summary, MaxSummary), Source: src, Severity: sev, Timestamp: time.Now().UTC().Format(time.RFC3339),
			Component: t.Check, Group: t.Metric, Class: b.class, CustomDetails: details}}
	if t.RunbookURL != "" {
		e.Links = []Link{{Href: t.RunbookURL, Text: "Runbook"}}
	}
	got, err := b.send(ctx, e)
	if err != nil {
		return "", err
	}
	b.mu.Lock()
	t.Tier = tier
	b.last[dk] = t
	b.mu.Unlock()
	if got == "" {
		got = dk
	}
	return got, nil
}

// known returns the last ticket sent for ref, or one rebuilt from the key.
func (b *Backend) known(ctx context.Context, r ticketing.Ref) ticketing.Ticket {
	b.mu.Lock()
	t, ok := b.last[r.ID]
	b.mu.Unlock()
	if !ok {
		t = ticketing.Ticket{Key: r.ID, Tier: ticketing.L2}
		if e, ok := ticketing.EventFrom(ctx); ok && e.Key != "" {
			t.Key = e.Key
		}
	}
	return t
}

// Find cannot look a dedup_key up in Events v2: it reports not found, and a
// retried trigger is made idempotent by the dedup_key on PagerDuty's side.
func (b *Backend) Find(context.Context, string) (ticketing.Ref, bool, error) {
	return ticketing.Ref{}, false, nil
}

// Open triggers an alert on the routing key of t's tier.
func (b *Backend) Open(ctx context.Context, t ticketing.Ticket) (ticketing.Ref, error) {
	tier := t.Tier
	if tier < ticketing.L2 || tier > ticketing.L4 {
		tier = ticketing.L2
	}
	id, err := b.trigger(ctx, "", tier, "", t, "")
	return ticketing.Ref{ID: id}, err
}

// Comment sends the text as a change event on the service of the tier
// the alert was last sent to (comment_as: change), which never pages; or
// re-triggers the alert with the same dedup_key and the text in
// custom_details.comment (comment_as: trigger), which PagerDuty adds to
// the alert's log while it is open, and which opens and pages a new
// incident when a responder has resolved it. Nothing is sent when
// comments are off.
func (b *Backend) Comment(ctx context.Context, r ticketing.Ref, text string) error {
	if !b.comments {
		return nil
	}
	t := b.known(ctx, r)
	if b.commentAs == CommentAsChange {
		return b.change(ctx, r.ID, t, text)
	}
	_, err := b.trigger(ctx, r.ID, t.Tier, "", t, text)
	return err
}

// Escalate re-triggers at critical on the tier's routing key (escalation:
// retrigger), or does nothing and lets PagerDuty's escalation policy act
// (escalation: policy).
func (b *Backend) Escalate(ctx context.Context, r ticketing.Ref, tier ticketing.Tier, t ticketing.Ticket) error {
	if b.escalation == "policy" {
		return nil
	}
	if tier < ticketing.L2 || tier > ticketing.L4 {
		tier = ticketing.L3
	}
	if t.Key == "" {
		t.Key = b.known(ctx, r).Key
	}
	_, err := b.trigger(ctx, r.ID, tier, "critical", t, "escalated to "+tier.String())
	return err
}

// Resolve resolves the dedup_key on every routing key it may have been
// triggered on (L2 and, after an escalation, L3/L4); resolving a key that
// is not open is a no-op for PagerDuty.
func (b *Backend) Resolve(ctx context.Context, r ticketing.Ref, _ string) error {
	sent := map[string]bool{}
	for _, tier := range []ticketing.Tier{ticketing.L2, ticketing.L3, ticketing.L4} {
		k := b.keys[tier]
		if sent[k] {
			continue
		}
		sent[k] = true
		if _, err := b.send(ctx, Event{RoutingKey: k, EventAction: "resolve", DedupKey: r.ID, Client: "l2agent"}); err != nil {
			return err
		}
	}
	return nil
}

// Reopen triggers the dedup_key again, on the tier it was last sent to.
func (b *Backend) Reopen(ctx context.Context, r ticketing.Ref, text string) error {
	t := b.known(ctx, r)
	_, err := b.trigger(ctx, r.ID, t.Tier, "", t, text)
	return err
}
