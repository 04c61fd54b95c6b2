package servicenow

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/l2agent/l2agent/ticketing"
)

// TestUpdate: the short description follows the title and urgency and
// impact the severity; only what differs is sent; a value someone chose is
// kept.
func TestUpdate(t *testing.T) {
	f, b := newFake(t, basicAuth, testOptions())
	ctx := context.Background()
	ref, err := b.Open(ctx, ticketing.Ticket{Key: testKey, Title: "disk /var 85.0% (warn ≥ 80.0%)", Severity: "warn", Tier: ticketing.L2})
	require.NoError(t, err)
	in := f.inc[ref.ID]
	path := tablePath + "/" + ref.ID
	f.Take()

	crit := ticketing.Ticket{Key: testKey, Title: "disk /var 95.0% (crit ≥ 90.0%)", Severity: "crit", Tier: ticketing.L2, Retitle: true}
	require.NoError(t, b.Update(ctx, ref, crit))
	reqs := f.Requests()
	require.Len(t, reqs, 2)
	require.Equal(t, "GET "+path, reqs[0].Method+" "+reqs[0].Path)
	require.Equal(t, []string{"short_description,urgency,impact"}, reqs[0].Query["sysparm_fields"])
	require.Equal(t, "PATCH "+path, reqs[1].Method+" "+reqs[1].Path)
	require.Equal(t, map[string]any{"short_description": crit.Title, "urgency": "1", "impact": "1"}, reqs[1].Body)
	require.Equal(t, crit.Title, in["short_description"])
	f.Take()

	require.NoError(t, b.Update(ctx, ref, crit), "again")
	require.Equal(t, []string{"GET " + path}, f.Take(), "nothing differs: nothing sent")

	in["urgency"] = "3" // set by hand
	warn := ticketing.Ticket{Key: testKey, Title: "disk /var 85.0% (warn ≥ 80.0%) [flapping]", Severity: "warn", Tier: ticketing.L2}
	require.NoError(t, b.Update(ctx, ref, warn))
	require.Equal(t, map[string]any{"short_description": warn.Title, "impact": "2"}, f.Last().Body, "urgency 3 was chosen by someone: kept")
	require.Equal(t, "3", in["urgency"])
	require.Equal(t, "2", in["impact"])
}

// TestUpdateRefused: a business rule that keeps the old short description
// answers 200; the backend sees it in the answer and says so, finally.
func TestUpdateRefused(t *testing.T) {
	f, b := newFake(t, bearerToken, testOptions())
	ctx := context.Background()
	ref, err := b.Open(ctx, ticketing.Ticket{Key: testKey, Title: "old", Severity: "warn"})
	require.NoError(t, err)
	f.ruled["short_description"] = true
	err = b.Update(ctx, ref, ticketing.Ticket{Key: testKey, Title: "new", Severity: "warn"})
	reason, retry, _ := ticketing.Classify(err)
	require.False(t, retry)
	require.Equal(t, "api", reason)
	require.ErrorContains(t, err, `short_description is "old", not "new"`)

	err = b.Update(ctx, ticketing.Ref{ID: "INC0000001"}, ticketing.Ticket{Title: "x"})
	reason, _, _ = ticketing.Classify(err)
	require.Equal(t, "bad_ref", reason)
}
