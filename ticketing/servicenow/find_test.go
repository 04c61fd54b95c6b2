package servicenow

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/l2agent/l2agent/configs"
	"github.com/l2agent/l2agent/internal/alert"
	"github.com/l2agent/l2agent/internal/testkit"
	"github.com/l2agent/l2agent/ticketing"
)

// TestFindOnlyUsable: Find returns an incident that can take the alert's
// incident again (open, or Resolved within reuse_resolved), never a
// Closed or Canceled one; when it finds only such, the next Open names the
// newest in its description.
func TestFindOnlyUsable(t *testing.T) {
	f, b := newFake(t, basicAuth, testOptions())
	ctx := context.Background()
	find := func() (ticketing.Ref, bool) {
		t.Helper()
		ref, found, err := b.Find(ctx, testKey)
		require.NoError(t, err)
		return ref, found
	}
	first, err := b.Open(ctx, ticketing.Ticket{Key: testKey, Title: "disk full", Body: "details", Severity: "warn"})
	require.NoError(t, err)
	require.NoError(t, b.Resolve(ctx, first, "ok"))
	f.clock.Add(23 * time.Hour)
	ref, found := find()
	require.True(t, found, "resolved 23h ago, within reuse_resolved (24h)")
	require.True(t, ref.Resolved, "said to be Resolved: the deliverer reopens it")
	ref.Resolved = false
	require.Equal(t, first, ref)

	f.clock.Add(2 * time.Hour)
	_, found = find()
	require.False(t, found, "resolved 25h ago")
	second, err := b.Open(ctx, ticketing.Ticket{Key: testKey, Title: "disk full", Body: "details", Severity: "warn"})
	require.NoError(t, err)
	require.NotEqual(t, first.ID, second.ID)
	require.Equal(t, "details\n\nEarlier incident of this alert: INC0000001 "+first.URL+" (not used again: it was Resolved 25h0m0s ago, longer than reuse_resolved (24h0m0s)).",
		f.inc[second.ID]["description"])

	ref, found = find()
	require.True(t, found, "New")
	require.Equal(t, second, ref)
	latest := second
	for _, c := range []struct{ state, why string }{{"7", "it is Closed"}, {"8", "it is Canceled"}} {
		f.inc[latest.ID]["state"] = c.state
		_, found = find()
		require.False(t, found, c.state)
		next, err := b.Open(ctx, ticketing.Ticket{Key: testKey, Title: "disk full", Body: "details", Severity: "warn"})
		require.NoError(t, err)
		require.Contains(t, f.inc[next.ID]["description"], f.inc[latest.ID]["number"].(string)+" "+latest.URL+" (not used again: "+c.why+")", "the newest")
		f.inc[next.ID]["state"] = "8"
		latest = next
	}

	third, err := b.Open(ctx, ticketing.Ticket{Key: testKey, Title: "disk full", Body: "details", Severity: "warn"})
	require.NoError(t, err)
	require.Equal(t, "details", f.inc[third.ID]["description"], "an Open not after such a Find names nothing")
	ref, found = find()
	require.True(t, found)
	require.Equal(t, third, ref, "the open one, though older ones are Closed and Canceled")

	// reuse_resolved: 0 never takes a Resolved incident.
	f0, b0 := newFake(t, basicAuth, Options{AssignmentGroupL2: "Service Desk", ReuseResolved: new(configs.Duration)})
	r0, err := b0.Open(ctx, ticketing.Ticket{Key: testKey, Title: "t", Severity: "warn"})
	require.NoError(t, err)
	require.NoError(t, b0.Resolve(ctx, r0, "ok"))
	f0.clock.Add(time.Second)
	_, found, err = b0.Find(ctx, testKey)
	require.NoError(t, err)
	require.False(t, found)
}

// TestRecurrenceAfterTheStoreForgot: the agent's store drops an incident a
// while after it was resolved (7 days by default); when its alert fires
// again after that, the agent opens a new incident that names the old
// one, instead of taking the old, resolved incident back in silence.
func TestRecurrenceAfterTheStoreForgot(t *testing.T) {
	f, b := newFake(t, basicAuth, testOptions())
	log := testkit.QuietLogger()
	st, err := ticketing.OpenStore(filepath.Join(t.TempDir(), "l2agent.db"), false, log)
	require.NoError(t, err)
	var cfg configs.Ticketing
	cfg.ApplyDefaults(t.TempDir())
	svc := ticketing.NewService(cfg, st, []string{"snow"}, map[string]ticketing.Ticketer{"snow": b}, "test", log, nil)
	t.Cleanup(func() { svc.Stop() })
	ctx := context.Background()

	t0 := f.clock.Now()
	tr := func(at time.Duration, from, to alert.State) alert.Transition {
		return alert.Transition{Alert: alert.Alert{Key: testKey, Host: "web-7", Check: "disk", Metric: "disk_used_ratio",
			Labels: map[string]string{"mountpoint": "/var"}, State: to, Value: 0.85, Threshold: map[alert.State]float64{alert.StateWarn: 0.8}[to], BreachAt: t0.Add(at)},
			From: from, At: t0.Add(at), Reason: "disk_used_ratio 85%"}
	}
	require.NoError(t, svc.Manager.HandleBatch([]alert.Transition{tr(0, alert.StateOK, alert.StateWarn), tr(time.Minute, alert.StateWarn, alert.StateOK)}))
	require.NoError(t, svc.Manager.Tick(ctx, t0.Add(20*time.Minute)))
	require.Equal(t, 0, svc.Flush(ctx)["snow"])
	require.Equal(t, 1, f.Tickets(testKey))
	first := f.order[0]
	require.Equal(t, "6", f.inc[first]["state"])

	f.clock.Add(8 * 24 * time.Hour)
	require.NoError(t, svc.Manager.Tick(ctx, f.clock.Now()))
	inc, err := st.Incident(testKey)
	require.NoError(t, err)
	require.Nil(t, inc, "forgotten by the store")

	require.NoError(t, svc.Manager.HandleBatch([]alert.Transition{tr(8*24*time.Hour+time.Minute, alert.StateOK, alert.StateWarn)}))
	require.Equal(t, 0, svc.Flush(ctx)["snow"])
	require.Equal(t, 2, f.Tickets(testKey), "a new incident, not the old resolved one")
	second := f.order[1]
	require.Equal(t, "1", f.inc[second]["state"])
	// Named once: by the incident history ("This happened before"), which
	// has it, else by the backend's own note ("Earlier incident of this alert").
	desc, _ := f.inc[second]["description"].(string)
	require.Equal(t, 1, strings.Count(desc, "sys_id%3D"+first), desc)
	inc, err = st.Incident(testKey)
	require.NoError(t, err)
	require.Equal(t, second, inc.Refs["snow"].ID)
}
