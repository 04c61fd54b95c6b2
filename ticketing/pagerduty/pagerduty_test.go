package pagerduty

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/l2agent/l2agent/configs"
	"github.com/l2agent/l2agent/ticketing"
)

const (
	keyL2 = "0123456789abcdef0123456789abcdef" // integration keys are 32 characters
	keyL3 = "fedcba9876543210fedcba9876543210"
)

func parse(t *testing.T, block string) (*configs.Config, error) {
	t.Helper()
	t.Setenv("PD_L2", keyL2)
	t.Setenv("PD_L3", keyL3)
	return configs.Parse("agent.yaml", []byte("ticketing:\n  backends:\n    - name: pd\n      kind: pagerduty\n      pagerduty:\n"+block))
}

func backend(t *testing.T, block string) *Backend {
	t.Helper()
	cfg, err := parse(t, block)
	require.NoError(t, err)
	bk := cfg.Ticketing.Backends[0]
	b, err := New(bk.Name, *bk.Options.(*Options), bk.Timeout.D())
	require.NoError(t, err)
	return b
}

func server(t *testing.T) (*fake, string) {
	f := newFake(t)
	return f, "        url: " + f.URL + "/v2/enqueue\n"
}

func ticket(key string) ticketing.Ticket {
	return ticketing.Ticket{Key: key, Title: "disk /var 93% used on web-7", Body: "details", Host: "web-7", Check: "disk",
		Metric: "disk_used_ratio", Labels: map[string]string{"mountpoint": "/var"}, Severity: "warn", Tier: ticketing.L2,
		RunbookURL: "https://wiki.example.com/runbooks/disk"}
}

func TestLifeCycle(t *testing.T) {
	f, url := server(t)
	b := backend(t, url+"        routing_key: ${PD_L2}\n        routing_key_l3: ${PD_L3}\n")
	ctx := context.Background()
	key := `web-7/disk/disk_used_ratio{mountpoint="/var"}`

	ref, err := b.Open(ctx, ticket(key))
	require.NoError(t, err)
	require.Equal(t, key, ref.ID)
	a := f.alert(keyL2, key)
	require.Equal(t, &alert{Status: "triggered", Opened: 1, Triggers: 1, Severity: "warning", Summary: "disk /var 93% used on web-7",
		Source: "web-7", Links: []string{"https://wiki.example.com/runbooks/disk"}}, a)
	p := f.lastEvent(t).Payload
	require.Equal(t, "disk", p.Component)
	require.Equal(t, "disk_used_ratio", p.Group)
	require.Equal(t, key, p.CustomDetails["key"])

	// A retried open is deduplicated by PagerDuty into the same alert.
	_, err = b.Open(ctx, ticket(key))
	require.NoError(t, err)
	require.Equal(t, 1, f.alert(keyL2, key).Opened)

	// A comment is a change event on the service: the alert is untouched.
	require.NoError(t, b.Comment(ctx, ref, "still 93%"))
	a = f.alert(keyL2, key)
	require.Empty(t, a.Comments)
	require.Equal(t, 2, a.Triggers)
	require.Len(t, f.changes[keyL2], 1)
	c := f.changes[keyL2][0]
	require.Equal(t, "disk /var 93% used on web-7: still 93%", c.Payload.Summary)
	require.Equal(t, "web-7", c.Payload.Source)
	require.Equal(t, map[string]any{"dedup_key": key, "key": key, "tier": "L2", "comment": "still 93%"}, c.Payload.CustomDetails)
	require.Equal(t, []Link{{Href: "https://wiki.example.com/runbooks/disk", Text: "Runbook"}}, c.Links)

	tk := ticket(key)
	tk.Severity = "crit"
	require.NoError(t, b.Escalate(ctx, ref, ticketing.L3, tk))
	a = f.alert(keyL3, key)
	require.NotNil(t, a, "escalation goes to the L3 routing key")
	require.Equal(t, "triggered", a.Status)
	require.Equal(t, "critical", a.Severity)

	require.NoError(t, b.Comment(ctx, ref, "at L3 now"))
	require.Equal(t, []string{"escalated to L3"}, f.alert(keyL3, key).Comments)
	require.Len(t, f.changes[keyL3], 1, "a comment goes to the service of the tier the alert is at")
	require.Equal(t, "at L3 now", f.changes[keyL3][0].Payload.CustomDetails["comment"])

	require.NoError(t, b.Resolve(ctx, ref, "ok again"))
	require.Equal(t, "resolved", f.alert(keyL2, key).Status)
	require.Equal(t, "resolved", f.alert(keyL3, key).Status)

	require.NoError(t, b.Reopen(ctx, ref, "back again"))
	a = f.alert(keyL3, key)
	require.Equal(t, "triggered", a.Status, "reopen triggers on the tier the ticket was at")
	require.Equal(t, 2, a.Opened)
	require.Equal(t, "resolved", f.alert(keyL2, key).Status)

	// After a restart the backend has no memory: a reopen uses the L2 key
	// and the host from the alert key.
	b2 := backend(t, url+"        routing_key: ${PD_L2}\n")
	require.NoError(t, b2.Reopen(ticketing.WithEvent(ctx, ticketing.Event{Key: key, Seq: 9}), ref, "again"))
	a = f.alert(keyL2, key)
	require.Equal(t, "triggered", a.Status)
	require.Equal(t, "web-7", a.Source)

	found, ok, err := b.Find(ctx, key)
	require.NoError(t, err)
	require.False(t, ok)
	require.Empty(t, found.ID)
}

func TestPolicyEscalationAndNoComments(t *testing.T) {
	f, url := server(t)
	b := backend(t, url+"        routing_key: ${PD_L2}\n        escalation: policy\n        comments: false\n        severity: {warn: info}\n")
	ctx := context.Background()
	ref, err := b.Open(ctx, ticket("k"))
	require.NoError(t, err)
	require.Equal(t, "info", f.alert(keyL2, "k").Severity)
	n := len(f.Requests())
	require.NoError(t, b.Comment(ctx, ref, "x"))
	require.NoError(t, b.Escalate(ctx, ref, ticketing.L3, ticket("k")))
	require.Equal(t, n, len(f.Requests()), "policy escalation and comments: false send nothing")

	// Without an L3 key, retrigger escalation uses the L2 key at critical.
	b = backend(t, url+"        routing_key: ${PD_L2}\n")
	require.NoError(t, b.Escalate(ctx, ref, ticketing.L3, ticket("k")))
	require.Equal(t, "critical", f.alert(keyL2, "k").Severity)
}

func TestLongKey(t *testing.T) {
	f, url := server(t)
	b := backend(t, url+"        routing_key: ${PD_L2}\n")
	long := "web-7/logs/" + strings.Repeat("é", 200) + "{x=1}"
	dk := DedupKey(long)
	require.LessOrEqual(t, len(dk), MaxDedupKey)
	require.Equal(t, dk, DedupKey(long), "stable")
	require.NotEqual(t, dk, DedupKey(long+"2"))
	require.True(t, strings.HasPrefix(long, strings.Split(dk, "~")[0]))
	tk := ticket(long)
	tk.Title = strings.Repeat("t", 2000)
	ref, err := b.Open(context.Background(), tk)
	require.NoError(t, err)
	require.Equal(t, dk, ref.ID)
	require.Len(t, f.alert(keyL2, dk).Summary, MaxSummary)
	require.Equal(t, long, f.lastEvent(t).Payload.CustomDetails["key"])
	require.NoError(t, b.Resolve(context.Background(), ref, ""))
	require.Equal(t, "resolved", f.alert(keyL2, dk).Status)
}

// The fake rejects what PagerDuty rejects; the backend turns that into a
// final error quoting PagerDuty's errors.
func TestInvalidEvent(t *testing.T) {
	f, url := server(t)
	srvURL := f.URL + "/v2/enqueue"
	for _, e := range []Event{
		{RoutingKey: "short", EventAction: "trigger", Payload: &Payload{Summary: "s", Source: "h", Severity: "warning"}},
		{RoutingKey: keyL2, EventAction: "escalate", DedupKey: "k"},
		{RoutingKey: keyL2, EventAction: "resolve"},
		{RoutingKey: keyL2, EventAction: "trigger"},
		{RoutingKey: keyL2, EventAction: "trigger", Payload: &Payload{Source: "h", Severity: "warning"}},
		{RoutingKey: keyL2, EventAction: "trigger", Payload: &Payload{Summary: "s", Severity: "warning"}},
		{RoutingKey: keyL2, EventAction: "trigger", Payload: &Payload{Summary: "s", Source: "h", Severity: "warn"}},
		{RoutingKey: keyL2, EventAction: "trigger", DedupKey: strings.Repeat("k", 256), Payload: &Payload{Summary: "s", Source: "h", Severity: "info"}},
		{RoutingKey: keyL2, EventAction: "trigger", Links: []Link{{Text: "no href"}}, Payload: &Payload{Summary: "s", Source: "h", Severity: "info"}},
	} {
		body, _ := json.Marshal(e)
		resp, err := http.Post(srvURL, "application/json", bytes.NewReader(body))
		require.NoError(t, err)
		var r Response
		require.NoError(t, json.NewDecoder(resp.Body).Decode(&r))
		resp.Body.Close()
		require.Equal(t, 400, resp.StatusCode, "%s", body)
		require.Equal(t, "invalid event", r.Status)
		require.NotEmpty(t, r.Errors)
	}

	t.Setenv("PD_BAD", "not-a-32-character-key")
	b := backend(t, url+"        routing_key: ${PD_BAD}\n")
	_, err := b.Open(context.Background(), ticket("k"))
	reason, retry, _ := ticketing.Classify(err)
	require.False(t, retry)
	require.Equal(t, "http_4xx", reason)
	require.ErrorContains(t, err, "Length of 'routing_key' is incorrect (should be 32 characters)")
	require.Empty(t, f.alerts)
}

func TestRetryable(t *testing.T) {
	f, url := server(t)
	b := backend(t, url+"        routing_key: ${PD_L2}\n")
	for status, want := range map[int]string{429: "http_429", 500: "http_5xx", 502: "http_5xx"} {
		f.failWith(status)
		_, err := b.Open(context.Background(), ticket("k"))
		reason, retry, after := ticketing.Classify(err)
		require.True(t, retry, "%d", status)
		require.Equal(t, want, reason)
		if status == 429 {
			require.GreaterOrEqual(t, after, RateLimitBackoff, "PagerDuty asks for a backoff of about 30 s")
			require.Less(t, after, RateLimitBackoff*3/2)
		} else {
			require.Zero(t, after, "the outbox backs off")
		}
		require.Error(t, b.Resolve(context.Background(), ticketing.Ref{ID: "k"}, ""))
	}
	// A connection refused is retryable too.
	b = backend(t, "        url: http://127.0.0.1:1/v2/enqueue\n        routing_key: ${PD_L2}\n")
	_, err := b.Open(context.Background(), ticket("k"))
	_, retry, _ := ticketing.Classify(err)
	require.True(t, retry)
}

func TestConfig(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "pd.key")
	require.NoError(t, os.WriteFile(file, []byte(keyL3+"\n"), 0o600))

	cfg, err := parse(t, "        routing_key: ${PD_L2}\n        routing_key_l3_file: "+file+"\n")
	require.NoError(t, err)
	o := cfg.Ticketing.Backends[0].Options.(*Options)
	require.Equal(t, "https://events.pagerduty.com/v2/enqueue", o.URL)
	require.Equal(t, "retrigger", o.Escalation)
	require.Equal(t, map[string]string{"warn": "warning", "crit": "critical"}, o.Severity)
	require.True(t, *o.Comments)
	require.Equal(t, "change", o.CommentAs)
	require.Equal(t, "https://events.pagerduty.com/v2/change/enqueue", o.ChangeURL)
	require.Equal(t, "https://events.eu.pagerduty.com/v2/change/enqueue", ChangeURL("https://events.eu.pagerduty.com/v2/enqueue"))
	require.Equal(t, "http://127.0.0.1:9/v2/change/enqueue", ChangeURL("http://127.0.0.1:9/pd"))
	b, err := New("pd", *o, 5*time.Second)
	require.NoError(t, err)
	require.Equal(t, keyL3, b.keys[ticketing.L3])
	require.Equal(t, keyL3, b.keys[ticketing.L4], "L4 falls back to L3")

	for block, want := range map[string]string{
		"        url: https://events.eu.pagerduty.com/v2/enqueue\n":                                         "set routing_key (as ${ENV_VAR}) or routing_key_file",
		"        routing_key: ${PD_L2}\n        routing_key_file: " + file + "\n":                           "set routing_key or routing_key_file, not both",
		"        routing_key: ${PD_L2}\n        routing_key_l3: ${PD_L3}\n        routing_key_l3_file: x\n": "set routing_key_l3 or routing_key_l3_file, not both",
		"        routing_key: ${PD_L2}\n        url: ftp://events.pagerduty.com/\n":                         "want an http:// or https:// URL",
		"        routing_key: ${PD_L2}\n        escalation: page\n":                                         "want retrigger or policy",
		"        routing_key: ${PD_L2}\n        comment_as: note\n":                                         "want change or trigger",
		"        routing_key: ${PD_L2}\n        severity: {crit: fatal}\n":                                  "want one of critical, error, warning, info",
		"        routing_key: ${PD_L2}\n        severity: {major: error}\n":                                 `unknown l2agent severity "major"`,
		"        routing_key: " + keyL2 + "\n":                                                              "secrets are never written inline",
	} {
		_, err := parse(t, block)
		require.ErrorContains(t, err, want, block)
	}
}

// TestErrorsHideRoutingKey: the routing key travels in the body; an answer
// that quotes it (in PagerDuty's errors or a proxy's error page) never gets
// it into the error.
func TestErrorsHideRoutingKey(t *testing.T) {
	for _, status := range []int{400, 403, 500} {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			var e Event
			_ = json.NewDecoder(r.Body).Decode(&e)
			w.WriteHeader(status)
			json.NewEncoder(w).Encode(Response{Status: "invalid event", Errors: []string{"routing_key " + e.RoutingKey + " is not known"}})
		}))
		b := backend(t, "        url: "+srv.URL+"\n        routing_key: ${PD_L2}\n")
		_, err := b.Open(context.Background(), ticket("k"))
		srv.Close()
		require.Error(t, err)
		require.NotContains(t, err.Error(), keyL2, "HTTP %d", status)
		require.Contains(t, err.Error(), "routing_key <secret> is not known", "HTTP %d", status)
	}
}
