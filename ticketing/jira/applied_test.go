package jira

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/l2agent/l2agent/internal/ticketingtest"
	"github.com/l2agent/l2agent/ticketing"
)

// TestExactlyOnce: a crash or a lost answer after Jira applied any
// operation of an incident's life leaves every operation in the issue once;
// on Cloud with a search that never shows a change made during the test
// (eventual consistency at its worst: reconcileIssues only).
func TestExactlyOnce(t *testing.T) {
	for _, v3 := range []bool{true, false} {
		t.Run(fmt.Sprint("v3=", v3), func(t *testing.T) {
			c := fakeConfig{cloud: v3}
			if v3 {
				c.lag = time.Hour
			}
			f, b := newFakeWith(t, c)
			ticketingtest.ExactlyOnce(t, b, f)
		})
	}
}

// TestApplied: the lookup reads the comments newest first, page by page,
// and finds only the operation's own marker.
func TestApplied(t *testing.T) {
	for _, v3 := range []bool{true, false} {
		t.Run(fmt.Sprint("v3=", v3), func(t *testing.T) {
			f, b := newFake(t, v3, false)
			ctx := context.Background()
			ref, err := b.Open(ctx, ticketing.Ticket{Key: testKey, Title: "disk full", Body: "details"})
			require.NoError(t, err)
			t0 := time.Now()
			op := func(ev uint64) ticketing.Op { return ticketing.Op{Key: testKey, Event: ev, Created: t0} }
			require.NoError(t, b.Resolve(ctx, ref, "Resolved: ok for 15m\n\n"+ticketing.Marker(op(4))))
			for i := 0; i < appliedPageSize+1; i++ { // the marker is on the second page
				require.NoError(t, b.Comment(ctx, ref, fmt.Sprint("a person's comment ", i)))
			}
			f.Take()
			found, err := b.Applied(ctx, ref, op(4))
			require.NoError(t, err)
			require.True(t, found)
			reqs := f.Requests()
			require.Len(t, reqs, 2, "two pages")
			require.Equal(t, []string{"-created"}, reqs[1].Query["orderBy"])
			require.Equal(t, []string{strconv.Itoa(appliedPageSize)}, reqs[1].Query["startAt"])

			for name, o := range map[string]ticketing.Op{
				"another event": op(44),
				"same event, another life of the incident": {Key: testKey, Event: 4, Created: t0.Add(time.Second)},
			} {
				found, err := b.Applied(ctx, ref, o)
				require.NoError(t, err, name)
				require.False(t, found, name)
			}
			_, err = b.Applied(ctx, ticketing.Ref{ID: "OPS-99"}, op(4))
			var de *ticketing.DeliveryError
			require.ErrorAs(t, err, &de)
			require.False(t, de.Retryable, "an issue that is gone: the op is sent (and fails) as before")
		})
	}
}

func TestCommentText(t *testing.T) {
	require.Equal(t, "plain\ntext", commentText(json.RawMessage(`"plain\ntext"`)))
	doc, err := json.Marshal(ADF("line 1\nline 2\n\nl2agent event 3 (0a0b0c0d)"))
	require.NoError(t, err)
	require.Equal(t, "line 1\nline 2\nl2agent event 3 (0a0b0c0d)\n", commentText(doc))
	require.Equal(t, "", commentText(json.RawMessage(`{`)))
}
