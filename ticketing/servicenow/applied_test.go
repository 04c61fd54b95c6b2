package servicenow

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/l2agent/l2agent/internal/ticketingtest"
	"github.com/l2agent/l2agent/ticketing"
)

// TestExactlyOnce: a crash or a lost answer after ServiceNow applied any
// operation of an incident's life leaves every operation in its work notes
// once.
func TestExactlyOnce(t *testing.T) {
	f, b := newFake(t, basicAuth, testOptions())
	ticketingtest.ExactlyOnce(t, b, f)
}

// TestApplied: the lookup asks sys_journal_field for the incident's work
// notes holding the marker, and finds only the operation's own.
func TestApplied(t *testing.T) {
	f, b := newFake(t, basicAuth, testOptions())
	ctx := context.Background()
	ref, err := b.Open(ctx, ticketing.Ticket{Key: testKey, Title: "disk full", Body: "details", Severity: "warn"})
	require.NoError(t, err)
	other, err := b.Open(ctx, ticketing.Ticket{Key: testKey + "x", Title: "disk full", Body: "details", Severity: "warn"})
	require.NoError(t, err)
	t0 := time.Now()
	op := func(ev uint64) ticketing.Op { return ticketing.Op{Key: testKey, Event: ev, Created: t0} }
	require.NoError(t, b.Resolve(ctx, ref, "Resolved: ok for 15m\n\n"+ticketing.Marker(op(4))))
	require.NoError(t, b.Comment(ctx, other, ticketing.Marker(op(5))))
	f.Take()

	found, err := b.Applied(ctx, ref, op(4))
	require.NoError(t, err)
	require.True(t, found)
	q := f.Last().Query
	require.Equal(t, "element_id="+ref.ID+"^element=work_notes^valueLIKE"+ticketing.Marker(op(4)), q.Get("sysparm_query"))
	require.NotContains(t, ticketing.Marker(op(4)), "^", "the marker needs no escaping in an encoded query")
	require.NotContains(t, ticketing.Marker(op(4)), "=")

	for name, o := range map[string]ticketing.Op{
		"another event":                op(44),
		"another life, same event":     {Key: testKey, Event: 4, Created: t0.Add(time.Second)},
		"the marker of another ticket": op(5),
	} {
		found, err := b.Applied(ctx, ref, o)
		require.NoError(t, err, name)
		require.False(t, found, name)
	}

	f.journalDenied = true
	_, err = b.Applied(ctx, ref, op(4))
	var de *ticketing.DeliveryError
	require.ErrorAs(t, err, &de)
	require.False(t, de.Retryable, "no read access to sys_journal_field: the deliverer sends the op again rather than lose it")
	_, err = b.Applied(ctx, ticketing.Ref{ID: "INC0000001"}, op(4))
	require.ErrorAs(t, err, &de)
	require.Equal(t, "bad_ref", de.Reason)
}
