package rest

import (
	"context"
	"errors"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestCheckStatus(t *testing.T) {
	for _, tc := range []struct {
		status int
		retry  bool
		after  time.Duration
		reason string
	}{{200, false, 0, ""}, {201, false, 0, ""}, {400, false, 0, "http_4xx"}, {401, false, 0, "http_4xx"}, {404, false, 0, "http_4xx"},
		{408, true, 0, "http_408"}, {429, true, 2 * time.Second, "http_429"}, {500, true, 0, "http_5xx"}, {502, true, 0, "http_5xx"},
		{503, true, 2 * time.Second, "http_503"}} {
		err := CheckStatus("x", tc.status, http.Header{"Retry-After": {"2"}}, []byte("body text"))
		if tc.status < 300 {
			require.NoError(t, err)
			continue
		}
		var e *Error
		require.ErrorAs(t, err, &e)
		require.Equal(t, tc.retry, e.Retryable, "%d", tc.status)
		require.Equal(t, tc.after, e.RetryAfter, "%d", tc.status)
		require.Equal(t, tc.reason, e.Reason, "%d", tc.status)
		require.Contains(t, err.Error(), "body text")
	}
}

func TestCheckStatusBoundsBody(t *testing.T) {
	long := make([]byte, 4096)
	for i := range long {
		long[i] = 'a'
	}
	err := CheckStatus("x", 400, nil, long)
	require.Less(t, len(err.Error()), maxBodyInError+50)
}

func TestParseRetryAfter(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	require.Equal(t, 90*time.Second, ParseRetryAfter(now.Add(90*time.Second).Format(http.TimeFormat), now))
	require.Equal(t, 7*time.Second, ParseRetryAfter(" 7 ", now))
	require.Zero(t, ParseRetryAfter("soon", now))
	require.Zero(t, ParseRetryAfter(now.Add(-time.Minute).Format(http.TimeFormat), now))
}

type timeoutErr struct{}

func (timeoutErr) Error() string   { return "i/o timeout" }
func (timeoutErr) Timeout() bool   { return true }
func (timeoutErr) Temporary() bool { return true }

func TestTransportError(t *testing.T) {
	var e *Error
	require.ErrorAs(t, TransportError(context.Background(), timeoutErr{}), &e)
	require.Equal(t, "timeout", e.Reason)
	require.True(t, e.Retryable)
	require.ErrorAs(t, TransportError(context.Background(), errors.New("connection refused")), &e)
	require.Equal(t, "network", e.Reason)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	err := TransportError(ctx, context.Canceled)
	require.False(t, errors.As(err, &e), "the caller's cancellation is not classified")
}
