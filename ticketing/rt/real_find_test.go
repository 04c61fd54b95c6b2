package rt

import (
	"context"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/l2agent/l2agent/configs"
	"github.com/l2agent/l2agent/deploy/testenv"
	"github.com/l2agent/l2agent/internal/alert"
	"github.com/l2agent/l2agent/internal/rest"
	"github.com/l2agent/l2agent/internal/testkit"
	"github.com/l2agent/l2agent/ticketing"
)

// refersTo returns the ids of the tickets ticket id refers to (RT's
// RefersTo links), as the agent's user reads them.
func refersTo(t *testing.T, b *Backend, id string) []string {
	t.Helper()
	var tk struct {
		Links []struct {
			Ref  string     `json:"ref"`
			Type string     `json:"type"`
			ID   flexString `json:"id"`
		} `json:"_hyperlinks"`
	}
	require.NoError(t, b.client.Do(context.Background(), "read links", rest.Request{Method: http.MethodGet, Path: "/ticket/" + id}, &tk))
	var out []string
	for _, l := range tk.Links {
		if l.Ref == "refers-to" && l.Type == "ticket" {
			out = append(out, string(l.ID))
		}
	}
	return out
}

// testFindPerState: Find returns a ticket of the key only while it can
// still take the incident — new, open, stalled, or resolved within
// reuse_resolved — and otherwise the next Open files a new ticket that
// refers to the old one.
func testFindPerState(t *testing.T, env testenv.RT) {
	b := realBackend(t, env, nil)
	ctx := context.Background()
	now := time.Now()
	b.now = func() time.Time { return now }
	key := "web-7/disk/find-per-state"
	ref, err := b.Open(ctx, ticketing.Ticket{Key: key, Title: "find per state", Body: "b", Tier: ticketing.L2})
	require.NoError(t, err)
	find := func() (ticketing.Ref, bool) {
		t.Helper()
		got, ok, err := b.Find(ctx, key)
		require.NoError(t, err)
		return got, ok
	}
	id, _ := strconv.Atoi(ref.ID)
	for _, status := range []string{"new", "open", "stalled"} {
		var said messages
		_, err := b.update(ctx, "set status", ref.ID, map[string]any{"Status": status}, &said)
		require.NoError(t, err)
		require.Equal(t, status, env.Ticket(t, id).Status, "RT said %v", said)
		got, ok := find()
		require.True(t, ok, status)
		require.False(t, got.Resolved, status)
		require.Equal(t, ref, got, status)
	}

	require.NoError(t, b.Resolve(ctx, ref, "fixed"))
	got, ok := find()
	require.True(t, ok, "resolved just now: within reuse_resolved")
	require.True(t, got.Resolved, "said to be resolved: the deliverer reopens it")
	got.Resolved = false
	require.Equal(t, ref, got)

	// Eight days later (the store forgets a resolved incident after seven).
	now = now.Add(8 * 24 * time.Hour)
	_, ok = find()
	require.False(t, ok, "resolved longer ago than reuse_resolved: not taken back")
	next, err := b.Open(ctx, ticketing.Ticket{Key: key, Title: "find per state", Body: "back again", Tier: ticketing.L2})
	require.NoError(t, err)
	require.NotEqual(t, ref.ID, next.ID)
	require.Equal(t, []string{ref.ID}, refersTo(t, b, next.ID))
	nextID, _ := strconv.Atoi(next.ID)
	msgs := env.Messages(t, nextID)
	require.Contains(t, msgs[0].Content, "Earlier ticket of this alert: #"+ref.ID+" "+b.TicketURL(ref.ID)+" (not used again: it was resolved 192h0m")
	require.Equal(t, "resolved", env.Ticket(t, id).Status, "the old ticket is left alone")
	got, ok = find()
	require.True(t, ok)
	require.Equal(t, next, got, "the new ticket is the key's now")

	// A rejected ticket is never taken back, however recent.
	var said messages
	_, err = b.update(ctx, "reject", next.ID, map[string]any{"Status": "rejected"}, &said)
	require.NoError(t, err)
	require.Equal(t, "rejected", env.Ticket(t, nextID).Status, "RT said %v", said)
	_, ok, err = b.Find(ctx, key)
	require.NoError(t, err)
	require.False(t, ok)
	third, err := b.Open(ctx, ticketing.Ticket{Key: key, Title: "find per state", Body: "b", Tier: ticketing.L2})
	require.NoError(t, err)
	require.Equal(t, []string{next.ID}, refersTo(t, b, third.ID), "it refers to the newest old ticket")

	// reuse_resolved: 0s never takes a resolved ticket back.
	zero := configs.Duration(0)
	b = realBackend(t, env, func(o *Options) { o.ReuseResolved = &zero })
	require.NoError(t, b.Resolve(ctx, third, "fixed"))
	_, ok, err = b.Find(ctx, key)
	require.NoError(t, err)
	require.False(t, ok)
}

// testRecurrenceAfterForget is the 7-day recurrence through the agent's
// ticketing: an incident resolved, forgotten by the store after seven
// days, comes back: the agent files a new ticket referring to the old
// resolved one, instead of taking the old one as its ticket in silence.
func testRecurrenceAfterForget(t *testing.T, env testenv.RT) {
	b := realBackend(t, env, nil)
	cfg, err := configs.Parse("agent.yaml", []byte("ticketing:\n  resolve_after: 15m\n"))
	require.NoError(t, err)
	st, err := ticketing.OpenStore(t.TempDir()+"/l2agent.db", false, testkit.QuietLogger())
	require.NoError(t, err)
	svc := ticketing.NewService(cfg.Ticketing, st, []string{"rt"}, map[string]ticketing.Ticketer{"rt": b}, "test", testkit.QuietLogger(), nil)
	t.Cleanup(func() { svc.Stop() })
	ctx := context.Background()

	t0 := time.Now()
	b.now = func() time.Time { return t0 }
	key := `web-7/disk/disk_used_ratio{mountpoint="/recur"}`
	tr := func(from, to alert.State, at time.Time) {
		t.Helper()
		a := alert.Transition{Alert: alert.Alert{Key: key, Host: "web-7", Check: "disk", Metric: "disk_used_ratio", State: to,
			Value: 0.93, Threshold: 0.8, BreachAt: at}, From: from, At: at}
		require.NoError(t, svc.Manager.Handle(a))
		require.Equal(t, 0, svc.Flush(ctx)["rt"], "delivered")
	}
	tick := func(at time.Time) {
		t.Helper()
		require.NoError(t, svc.Manager.Tick(ctx, at))
		require.Equal(t, 0, svc.Flush(ctx)["rt"], "delivered")
	}
	tr(alert.StateOK, alert.StateWarn, t0)
	inc, err := st.Incident(key)
	require.NoError(t, err)
	first := inc.Refs["rt"]
	require.NotEmpty(t, first.ID)
	tr(alert.StateWarn, alert.StateOK, t0.Add(time.Minute))
	tick(t0.Add(20 * time.Minute))
	firstID, _ := strconv.Atoi(first.ID)
	require.Equal(t, "resolved", env.Ticket(t, firstID).Status)

	later := t0.Add(8 * 24 * time.Hour)
	tick(later)
	inc, err = st.Incident(key)
	require.NoError(t, err)
	require.Nil(t, inc, "the store forgot the incident")

	b.now = func() time.Time { return later }
	tr(alert.StateOK, alert.StateWarn, later.Add(time.Minute))
	inc, err = st.Incident(key)
	require.NoError(t, err)
	second := inc.Refs["rt"]
	require.NotEqual(t, first.ID, second.ID, "a new ticket, not the old resolved one")
	tks := env.TicketsWithCF(t, env.CustomField, key)
	require.Len(t, tks, 2)
	require.Equal(t, "resolved", tks[0].Status)
	require.Equal(t, "new", tks[1].Status)
	require.Equal(t, []string{first.ID}, refersTo(t, b, second.ID))
	dead, err := st.DeadLetters("")
	require.NoError(t, err)
	require.Empty(t, dead)
}

// testPreflight: tickets test's checks of the names the config uses,
// against the real RT and the agent's least-privilege user.
func testPreflight(t *testing.T, env testenv.RT) {
	ctx := context.Background()
	run := func(mod func(*Options)) []string {
		var s []string
		realBackend(t, env, mod).Preflight(ctx, func(what string, err error) bool {
			if err != nil {
				s = append(s, fmt.Sprintf("%s: FAILED: %v", what, err))
				return false
			}
			s = append(s, what+": ok")
			return true
		})
		return s
	}
	require.Equal(t, []string{
		"queue " + env.QueueL2 + ": ok", "custom field " + env.CustomField + " on queue " + env.QueueL2 + ": ok",
		"queue " + env.QueueL3 + ": ok", "custom field " + env.CustomField + " on queue " + env.QueueL3 + ": ok",
		"owner " + env.L3Owner + ": ok",
	}, run(nil))

	last := func(s []string) string { return s[len(s)-1] }
	require.Contains(t, last(run(func(o *Options) { o.QueueL3 = "NoSuchQueue" })), "queue NoSuchQueue: FAILED: RT refuses queue \"NoSuchQueue\": it does not exist, or the agent's user lacks SeeQueue")
	require.Contains(t, last(run(func(o *Options) { o.QueueL3 = "General" })), "queue General: FAILED", "the agent has no right on General")
	require.Contains(t, last(run(func(o *Options) { o.CustomField = "NoSuchField" })), "custom field NoSuchField on queue "+env.QueueL2+": FAILED: custom field NoSuchField does not apply")
	s := run(func(o *Options) { o.OwnerL4 = "nobody-here" })
	require.True(t, strings.HasPrefix(last(s), `owner nobody-here: FAILED: no user "nobody-here" in RT`), last(s))
}
