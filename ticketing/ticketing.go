// Package ticketing turns alert transitions into tickets: the incident life
// cycle (manager.go), a durable outbox (store.go), delivery with retries
// (delivery.go), and one subpackage per ticket system behind Ticketer.
package ticketing

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"
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

// DeliveryError is a failed call to a backend.
type DeliveryError struct {
	Reason     string        // metric label: "http_429", "http_5xx", "http_4xx", "network", "api" …
	Retryable  bool          // whether trying again later can succeed
	RetryAfter time.Duration // the server's Retry-After, if any
	Err        error
}

func (e *DeliveryError) Error() string { return e.Err.Error() }
func (e *DeliveryError) Unwrap() error { return e.Err }

// Retryable wraps err as an error worth retrying.
func Retryable(reason string, err error) error {
	return &DeliveryError{Reason: reason, Retryable: true, Err: err}
}

// Final wraps err as an error that retrying will not fix.
func Final(reason string, err error) error {
	return &DeliveryError{Reason: reason, Err: err}
}

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

// TransportError classifies an error of the HTTP client itself (no answer):
// the caller's cancellation or deadline is returned as it is, a timeout and
// any other network failure are retryable. err is already wrapped with what
// was being done.
func TransportError(ctx context.Context, err error) error {
	if ctx.Err() != nil && errors.Is(err, ctx.Err()) {
		return err // cancelled or out of time: the caller's decision
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return Retryable("timeout", err)
	}
	return Retryable("network", err)
}

// maxBodyInError bounds the response body quoted in an error.
const maxBodyInError = 512

// CheckHTTP turns an HTTP status into a DeliveryError, or nil for 2xx.
// 429 and 503 honour Retry-After; other 5xx retry; other 4xx are final and
// quote the body, which usually says what is wrong.
func CheckHTTP(what string, status int, header http.Header, body []byte) error {
	if status >= 200 && status < 300 {
		return nil
	}
	b := strings.TrimSpace(string(body))
	if len(b) > maxBodyInError {
		b = b[:maxBodyInError] + "…"
	}
	err := fmt.Errorf("%s: HTTP %d: %s", what, status, b)
	switch {
	case status == http.StatusTooManyRequests || status == http.StatusServiceUnavailable:
		return &DeliveryError{Reason: "http_" + strconv.Itoa(status), Retryable: true, RetryAfter: ParseRetryAfter(header.Get("Retry-After"), time.Now()), Err: err}
	case status >= 500:
		return &DeliveryError{Reason: "http_5xx", Retryable: true, Err: err}
	case status == http.StatusRequestTimeout:
		return &DeliveryError{Reason: "http_408", Retryable: true, Err: err}
	default:
		return &DeliveryError{Reason: "http_4xx", Err: err}
	}
}

// ParseRetryAfter reads a Retry-After header: delay-seconds or an HTTP date.
func ParseRetryAfter(v string, now time.Time) time.Duration {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0
	}
	if s, err := strconv.Atoi(v); err == nil && s >= 0 {
		return time.Duration(s) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil && t.After(now) {
		return t.Sub(now)
	}
	return 0
}
