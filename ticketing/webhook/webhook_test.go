package webhook

import (
	"context"
	"crypto/hmac"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/l2agent/l2agent/internal/version"
	"github.com/l2agent/l2agent/ticketing"
)

// receiver is what a user's endpoint would do: verify the signature and
// drop requests whose idempotency key it has seen.
type receiver struct {
	secret []byte
	mu     sync.Mutex
	seen   map[string]bool
	events []Payload
	bad    int
	agents []string // User-Agent of each request
}

func (r *receiver) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	body, _ := io.ReadAll(req.Body)
	r.mu.Lock()
	r.agents = append(r.agents, req.Header.Get("User-Agent"))
	r.mu.Unlock()
	if !hmac.Equal([]byte(req.Header.Get(SignatureHeader)), []byte(Sign(r.secret, body))) {
		r.mu.Lock()
		r.bad++
		r.mu.Unlock()
		http.Error(w, "bad signature", http.StatusUnauthorized)
		return
	}
	var p Payload
	if err := json.Unmarshal(body, &p); err != nil || p.IdempotencyKey != req.Header.Get(IdempotencyHeader) {
		http.Error(w, "bad payload", http.StatusBadRequest)
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if !r.seen[p.IdempotencyKey] {
		r.seen[p.IdempotencyKey] = true
		r.events = append(r.events, p)
	}
	json.NewEncoder(w).Encode(map[string]string{"id": "T-1"})
}

func TestWebhookSignatureAndIdempotency(t *testing.T) {
	rcv := &receiver{secret: []byte("s3cret"), seen: map[string]bool{}}
	srv := httptest.NewServer(rcv)
	defer srv.Close()
	b := New(srv.URL, "s3cret", 5*time.Second)
	key := `web-7/disk/disk_used_ratio{mountpoint="/var"}`
	ctx := ticketing.WithEvent(context.Background(), ticketing.Event{Key: key, Seq: 1})
	ref, err := b.Open(ctx, ticketing.Ticket{Key: key, Title: "t", Tier: ticketing.L2})
	require.NoError(t, err)
	require.Equal(t, "T-1", ref.ID)
	_, err = b.Open(ctx, ticketing.Ticket{Key: key, Title: "t", Tier: ticketing.L2}) // a retry after a lost answer
	require.NoError(t, err)
	ctx2 := ticketing.WithEvent(context.Background(), ticketing.Event{Key: key, Seq: 2})
	require.NoError(t, b.Comment(ctx2, ref, "hello"))
	require.Len(t, rcv.events, 2, "the retried open is recognised by its idempotency key")
	require.Equal(t, key+"#1", rcv.events[0].IdempotencyKey)
	require.Equal(t, "comment", rcv.events[1].Event)
	require.Equal(t, key, rcv.events[1].Key)
	require.Equal(t, []string{version.UserAgent(), version.UserAgent(), version.UserAgent()}, rcv.agents, "the agent names itself: l2agent/<version>")

	wrong := New(srv.URL, "other", 5*time.Second)
	err = wrong.Comment(ctx2, ref, "x")
	_, retry, _ := ticketing.Classify(err)
	require.False(t, retry, "401 is final")
	require.Equal(t, 1, rcv.bad)
}

func TestWebhookRetryAfter(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Retry-After", "2")
		w.WriteHeader(http.StatusTooManyRequests)
	}))
	defer srv.Close()
	err := New(srv.URL, "s", time.Second).Comment(context.Background(), ticketing.Ref{ID: "1"}, "x")
	_, retry, after := ticketing.Classify(err)
	require.True(t, retry)
	require.Equal(t, 2*time.Second, after)
}
