package rest

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

// Error is a failed call, classified: whether trying again later can help,
// and how long the server asked to wait. ticketing.DeliveryError is this
// type.
type Error struct {
	Reason     string        // metric label: "http_429", "http_5xx", "http_4xx", "network", "api" …
	Retryable  bool          // whether trying again later can succeed
	RetryAfter time.Duration // the server's Retry-After, if any
	Err        error
}

func (e *Error) Error() string { return e.Err.Error() }
func (e *Error) Unwrap() error { return e.Err }

// Retryable wraps err as an error worth retrying.
func Retryable(reason string, err error) error {
	return &Error{Reason: reason, Retryable: true, Err: err}
}

// Final wraps err as an error that retrying will not fix.
func Final(reason string, err error) error {
	return &Error{Reason: reason, Err: err}
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

// maxBodyInError bounds the response body quoted in a status error.
const maxBodyInError = 512

// CheckStatus turns an HTTP status into an *Error, or nil for 2xx.
// 429 and 503 honour Retry-After; other 5xx and 408 retry; other 4xx are
// final. The error quotes body (at most 512 bytes), which usually says what
// is wrong: a Client's Send has already hidden its credentials in it; a
// caller with its own HTTP client passes body through a Redactor first.
func CheckStatus(what string, status int, header http.Header, body []byte) error {
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
		return &Error{Reason: "http_" + strconv.Itoa(status), Retryable: true, RetryAfter: ParseRetryAfter(header.Get("Retry-After"), time.Now()), Err: err}
	case status >= 500:
		return &Error{Reason: "http_5xx", Retryable: true, Err: err}
	case status == http.StatusRequestTimeout:
		return &Error{Reason: "http_408", Retryable: true, Err: err}
	default:
		return &Error{Reason: "http_4xx", Err: err}
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

// Snippet is body as quoted in an error about an unexpected answer: trimmed,
// at most 300 bytes, on a valid UTF-8 boundary.
func Snippet(body []byte) string {
	s := strings.TrimSpace(string(body))
	if len(s) > 300 {
		s = strings.ToValidUTF8(s[:300], "") + "…"
	}
	return s
}
