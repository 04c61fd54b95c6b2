package pagerduty

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/l2agent/l2agent/ticketing"
)

// A responder resolved the incident in PagerDuty; the agent, which still
// has it open, comments: nothing pages. (Re-triggering, as comments were
// sent before, opens and pages a new incident.)
func TestCommentAfterResponderResolveDoesNotPage(t *testing.T) {
	f, url := server(t)
	b := backend(t, url+"        routing_key: ${PD_L2}\n")
	ctx := context.Background()
	ref, err := b.Open(ctx, ticket("web-7/disk"))
	require.NoError(t, err)
	require.Equal(t, 1, f.pages())

	f.resolveByResponder(keyL2, "web-7/disk")
	require.NoError(t, b.Comment(ctx, ref, "still 93%"))
	require.Equal(t, 1, f.pages(), "a comment pages no one")
	require.Equal(t, "resolved", f.alert(keyL2, "web-7/disk").Status)
	require.Len(t, f.changes[keyL2], 1)

	// comment_as: trigger keeps the old way, which pages after such a resolve.
	bt := backend(t, url+"        routing_key: ${PD_L2}\n        comment_as: trigger\n")
	require.NoError(t, bt.Comment(ctx, ref, "again"))
	require.Equal(t, 2, f.pages())

	// A ruleset key takes no change event: the comment is not sent.
	t.Setenv("PD_RULESET", "R"+strings.Repeat("1", 31))
	br := backend(t, url+"        routing_key: ${PD_RULESET}\n")
	n := len(f.Requests())
	require.NoError(t, br.Comment(ctx, ref, "x"))
	require.Len(t, f.Requests(), n)
}

// PagerDuty throttles a routing key (shared by a whole fleet) to about
// 120 events a minute and asks for a backoff of about 30 s: the 429 is
// retryable after at least that long, or the server's Retry-After when
// longer, and the event goes through once the minute has passed.
func TestRateLimit(t *testing.T) {
	f, url := server(t)
	b := backend(t, url+"        routing_key: ${PD_L2}\n        routing_key_l3: ${PD_L3}\n")
	ctx := context.Background()
	for i := range f.budget {
		_, err := b.Open(ctx, ticket("k"+string(rune('a'+i%26))))
		require.NoError(t, err, "event %d", i+1)
	}
	_, err := b.Open(ctx, ticket("over"))
	reason, retry, after := ticketing.Classify(err)
	require.True(t, retry)
	require.Equal(t, "http_429", reason)
	require.GreaterOrEqual(t, after, 30*time.Second)
	require.Nil(t, f.alert(keyL2, "over"), "a throttled event is not ingested")
	require.ErrorContains(t, b.Comment(ctx, ticketing.Ref{ID: "k"}, "c"), "HTTP 429", "change events count too")

	// Another routing key has its own budget.
	tk := ticket("l3")
	tk.Tier = ticketing.L3
	_, err = b.Open(ctx, tk)
	require.NoError(t, err)

	// A Retry-After longer than the backoff is honoured.
	f.Inject(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Retry-After", "90")
		pdError(w, http.StatusTooManyRequests, "throttle exceeded")
	})
	_, err = b.Open(ctx, ticket("over"))
	_, _, after = ticketing.Classify(err)
	require.Equal(t, 90*time.Second, after)
	f.Inject(nil)

	f.now = f.now.Add(61 * time.Second)
	_, err = b.Open(ctx, ticket("over"))
	require.NoError(t, err)
	require.Equal(t, "triggered", f.alert(keyL2, "over").Status)
}

// tickets test checks every routing key with a change event, which pages
// no one; a bad key fails the check.
func TestPreflight(t *testing.T) {
	f, url := server(t)
	b := backend(t, url+"        routing_key: ${PD_L2}\n        routing_key_l3: ${PD_L3}\n")
	require.True(t, b.Pages())
	var steps []string
	ok := b.Preflight(context.Background(), func(what string, err error) bool {
		steps = append(steps, what)
		return err == nil
	})
	require.True(t, ok)
	require.Len(t, steps, 2, "L2 and L3; L4 is the L3 key")
	require.Contains(t, steps[0], "routing key L2")
	require.Len(t, f.changes[keyL2], 1)
	require.Len(t, f.changes[keyL3], 1)
	require.Zero(t, f.pages(), "nothing is paged")

	t.Setenv("PD_BAD", "not-a-32-character-key")
	b = backend(t, url+"        routing_key: ${PD_L2}\n        routing_key_l3: ${PD_BAD}\n")
	var failed error
	ok = b.Preflight(context.Background(), func(what string, err error) bool {
		if err != nil {
			failed = errors.Join(errors.New(what), err)
		}
		return err == nil
	})
	require.False(t, ok)
	require.ErrorContains(t, failed, "routing key L3")
	require.ErrorContains(t, failed, "Length of 'routing_key' is incorrect")
}

// The fake refuses change events and alert events PagerDuty refuses.
func TestFakeRejects(t *testing.T) {
	f, _ := server(t)
	post := func(path string, v any) (int, Response) {
		t.Helper()
		body, _ := json.Marshal(v)
		resp, err := http.Post(f.URL+path, "application/json", bytes.NewReader(body))
		require.NoError(t, err)
		defer resp.Body.Close()
		var r Response
		require.NoError(t, json.NewDecoder(resp.Body).Decode(&r))
		return resp.StatusCode, r
	}
	huge := map[string]any{"x": strings.Repeat("a", maxEventBytes)}
	for _, e := range []ChangeEvent{
		{RoutingKey: "short", Payload: ChangePayload{Summary: "s"}},
		{RoutingKey: "R" + keyL2[1:], Payload: ChangePayload{Summary: "s"}},
		{RoutingKey: keyL2},
		{RoutingKey: keyL2, Payload: ChangePayload{Summary: strings.Repeat("s", 1025)}},
		{RoutingKey: keyL2, Payload: ChangePayload{Summary: "s", Timestamp: "yesterday"}},
		{RoutingKey: keyL2, Payload: ChangePayload{Summary: "s"}, Links: []Link{{Text: "no href"}}},
		{RoutingKey: keyL2, Payload: ChangePayload{Summary: "s", CustomDetails: huge}},
	} {
		status, r := post("/v2/change/enqueue", e)
		require.Equal(t, 400, status, "%+v", e.Payload.Summary)
		require.NotEmpty(t, r.Errors)
	}
	for _, e := range []Event{
		{RoutingKey: keyL2, EventAction: "trigger", Payload: &Payload{Summary: "s", Source: "h", Severity: "info", Timestamp: "12/01/2026"}},
		{RoutingKey: keyL2, EventAction: "trigger", Payload: &Payload{Summary: "s", Source: "h", Severity: "info", CustomDetails: huge}},
	} {
		status, r := post("/v2/enqueue", e)
		require.Equal(t, 400, status)
		require.NotEmpty(t, r.Errors)
	}
	status, r := post("/v2/change/enqueue", ChangeEvent{RoutingKey: keyL2, Payload: ChangePayload{Summary: "s", Timestamp: "2026-12-01T10:00:00.000+0000"}})
	require.Equal(t, 202, status)
	require.Equal(t, "success", r.Status)
	require.Empty(t, f.alerts, "a change event opens no alert")

	// A resolve sent on another routing key than the trigger's is dropped.
	status, _ = post("/v2/enqueue", Event{RoutingKey: keyL2, EventAction: "trigger", DedupKey: "d", Payload: &Payload{Summary: "s", Source: "h", Severity: "info"}})
	require.Equal(t, 202, status)
	status, _ = post("/v2/enqueue", Event{RoutingKey: keyL3, EventAction: "resolve", DedupKey: "d"})
	require.Equal(t, 202, status)
	require.Equal(t, "triggered", f.alert(keyL2, "d").Status)
}
