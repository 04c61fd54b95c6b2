package jira

import (
	"context"
	"net/http"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/l2agent/l2agent/ticketing"
)

// TestUpdate: the summary follows the title and the priority the tier;
// only what differs is edited; a priority someone chose is kept.
func TestUpdate(t *testing.T) {
	for _, v3 := range []bool{true, false} {
		f, b := newFake(t, v3, false)
		api := map[bool]string{true: "/rest/api/3", false: "/rest/api/2"}[v3]
		ctx := context.Background()
		ref, err := b.Open(ctx, ticketing.Ticket{Key: testKey, Title: "disk /var 95.0% (crit ≥ 90.0%)", Body: "b", Severity: "crit", Tier: ticketing.L2})
		require.NoError(t, err)
		is := f.issues[ref.ID]
		f.Take()

		warn := ticketing.Ticket{Key: testKey, Title: "disk /var 85.0% (warn ≥ 80.0%)", Severity: "warn", Tier: ticketing.L2, Retitle: true}
		require.NoError(t, b.Update(ctx, ref, warn))
		reqs := f.Requests()
		require.Len(t, reqs, 2)
		require.Equal(t, "GET "+api+"/issue/OPS-1", reqs[0].Method+" "+reqs[0].Path)
		require.Equal(t, []string{"summary,priority"}, reqs[0].Query["fields"])
		require.Equal(t, "PUT "+api+"/issue/OPS-1", reqs[1].Method+" "+reqs[1].Path)
		require.Equal(t, []map[string]any{{"summary": warn.Title}}, is.Edits, "the priority of L2 is already right")
		f.Take()

		require.NoError(t, b.Update(ctx, ref, warn), "again")
		require.Equal(t, []string{"GET " + api + "/issue/OPS-1"}, f.Take(), "nothing differs: nothing sent")

		// A ticket found at L3 (say after a lost state) still at the L2 priority.
		l3 := warn
		l3.Tier, l3.Title = ticketing.L3, warn.Title+" [flapping]"
		require.NoError(t, b.Update(ctx, ref, l3))
		require.Equal(t, map[string]any{"summary": l3.Title, "priority": map[string]any{"name": "High"}}, is.Edits[1])

		is.Fields["priority"] = map[string]any{"name": "Highest"} // chosen by someone
		l3.Title = warn.Title
		require.NoError(t, b.Update(ctx, ref, l3))
		require.Equal(t, map[string]any{"summary": warn.Title}, is.Edits[2], "a priority someone chose is kept")
		require.Equal(t, map[string]any{"name": "Highest"}, is.Fields["priority"])
	}
}

// TestUpdateRejected: an edit Jira rejects (the summary too long after a
// bug, a field not on the screen) is a final error quoting Jira.
func TestUpdateRejected(t *testing.T) {
	f, b := newFake(t, true, true)
	ctx := context.Background()
	ref, err := b.Open(ctx, ticketing.Ticket{Key: testKey, Title: "t", Body: "b"})
	require.NoError(t, err)
	f.Inject(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPut {
			jerr(w, 400, "Field 'priority' cannot be set. It is not on the appropriate screen, or unknown.")
			return
		}
		r.SetPathValue("key", ref.ID) // Inject answers before the routes
		f.withIssue(f.get)(w, r)
	})
	err = b.Update(ctx, ref, ticketing.Ticket{Key: testKey, Title: "new", Tier: ticketing.L3})
	reason, retry, _ := ticketing.Classify(err)
	require.False(t, retry)
	require.Equal(t, "http_4xx", reason)
	require.ErrorContains(t, err, "not on the appropriate screen")
}
