// Package webhook is a ticket backend that POSTs every ticket operation as
// JSON, signed with HMAC-SHA256, for chat and home-grown systems.
package webhook

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"time"

	"github.com/l2agent/l2agent/internal/rest"
	"github.com/l2agent/l2agent/ticketing"
)

// Headers the receiver checks.
const (
	SignatureHeader   = "X-L2agent-Signature" // "sha256=" + hex(HMAC-SHA256(secret, body))
	IdempotencyHeader = "Idempotency-Key"     // alert key + "#" + event number
)

// Payload is the JSON body of every request.
type Payload struct {
	Event          string            `json:"event"` // open, comment, escalate, resolve, reopen
	IdempotencyKey string            `json:"idempotency_key"`
	Key            string            `json:"key"`
	Ticket         string            `json:"ticket,omitempty"` // the receiver's id, once known
	Tier           string            `json:"tier,omitempty"`
	Title          string            `json:"title,omitempty"`
	Body           string            `json:"body,omitempty"`
	Text           string            `json:"text,omitempty"`
	Host           string            `json:"host,omitempty"`
	Check          string            `json:"check,omitempty"`
	Metric         string            `json:"metric,omitempty"`
	Labels         map[string]string `json:"labels,omitempty"`
	Severity       string            `json:"severity,omitempty"`
	RunbookURL     string            `json:"runbook_url,omitempty"`
	Time           time.Time         `json:"time"`
	// History: this problem's past on this host, on open, escalate and
	// reopen events when there is one ("This happened before").
	History *ticketing.Past `json:"history,omitempty"`
}

// Backend posts to one URL.
type Backend struct {
	url    string
	secret []byte
	client *rest.Client
}

// New returns a webhook backend. timeout bounds each request (15s when
// not positive).
func New(url string, secret string, timeout time.Duration) *Backend {
	return &Backend{url: url, secret: []byte(secret), client: rest.New(rest.Config{Timeout: timeout})}
}

// Sign returns the signature header value of body.
func Sign(secret, body []byte) string {
	m := hmac.New(sha256.New, secret)
	m.Write(body)
	return "sha256=" + hex.EncodeToString(m.Sum(nil))
}

func (b *Backend) post(ctx context.Context, p Payload) (string, error) {
	if e, ok := ticketing.EventFrom(ctx); ok {
		p.IdempotencyKey = e.IdempotencyKey()
	} else {
		p.IdempotencyKey = fmt.Sprintf("%s#%d", p.Key, time.Now().UnixNano())
	}
	p.Time = time.Now().UTC()
	body, err := json.Marshal(p)
	if err != nil {
		return "", ticketing.Final("encode", err)
	}
	resp, err := b.client.Send(ctx, "webhook "+p.Event+" "+p.Key, rest.Request{Method: http.MethodPost, Path: b.url, Body: body,
		Header: map[string]string{SignatureHeader: Sign(b.secret, body), IdempotencyHeader: p.IdempotencyKey}})
	if err != nil {
		return "", err
	}
	if err := rest.CheckStatus("webhook "+p.Event, resp.Status, resp.Header, resp.Body); err != nil {
		return "", err
	}
	var answer struct {
		ID string `json:"id"`
	}
	_ = json.Unmarshal(resp.Body, &answer) // an id is optional
	return answer.ID, nil
}

// Find cannot look anything up in a webhook receiver: a retried open is
// recognised by the receiver through the idempotency key instead.
func (b *Backend) Find(context.Context, string) (ticketing.Ref, bool, error) {
	return ticketing.Ref{}, false, nil
}

// Open posts an open event; the receiver may answer {"id": "…"}.
func (b *Backend) Open(ctx context.Context, t ticketing.Ticket) (ticketing.Ref, error) {
	id, err := b.post(ctx, Payload{Event: "open", Key: t.Key, Tier: t.Tier.String(), Title: t.Title, Body: t.Body,
		Host: t.Host, Check: t.Check, Metric: t.Metric, Labels: t.Labels, Severity: t.Severity, RunbookURL: t.RunbookURL, History: t.Past})
	if err != nil {
		return ticketing.Ref{}, err
	}
	if id == "" {
		id = t.Key
	}
	return ticketing.Ref{ID: id}, nil
}

// Comment posts a comment event.
func (b *Backend) Comment(ctx context.Context, r ticketing.Ref, text string) error {
	_, err := b.post(ctx, Payload{Event: "comment", Ticket: r.ID, Text: text, Key: keyOf(ctx)})
	return err
}

// Escalate posts an escalate event with the ticket as it is now.
func (b *Backend) Escalate(ctx context.Context, r ticketing.Ref, tier ticketing.Tier, t ticketing.Ticket) error {
	_, err := b.post(ctx, Payload{Event: "escalate", Ticket: r.ID, Key: t.Key, Tier: tier.String(), Title: t.Title, Body: t.Body,
		Host: t.Host, Check: t.Check, Metric: t.Metric, Labels: t.Labels, Severity: t.Severity, RunbookURL: t.RunbookURL, History: t.Past})
	return err
}

// Resolve posts a resolve event.
func (b *Backend) Resolve(ctx context.Context, r ticketing.Ref, text string) error {
	_, err := b.post(ctx, Payload{Event: "resolve", Ticket: r.ID, Text: text, Key: keyOf(ctx)})
	return err
}

// Reopen posts a reopen event.
func (b *Backend) Reopen(ctx context.Context, r ticketing.Ref, text string) error {
	e, _ := ticketing.EventFrom(ctx)
	_, err := b.post(ctx, Payload{Event: "reopen", Ticket: r.ID, Text: text, Key: e.Key, History: e.Past})
	return err
}

func keyOf(ctx context.Context) string {
	e, _ := ticketing.EventFrom(ctx)
	return e.Key
}
