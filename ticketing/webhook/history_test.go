package webhook

import (
	"context"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/l2agent/l2agent/ticketing"
)

// The open, escalate and reopen events carry "This happened before" as
// structured fields (history); a comment does not.
func TestWebhookHistoryFields(t *testing.T) {
	rcv := &receiver{secret: []byte("s3cret"), seen: map[string]bool{}}
	srv := httptest.NewServer(rcv)
	defer srv.Close()
	b := New(srv.URL, "s3cret", 5*time.Second)
	key := `web-7/disk/disk_used_ratio{mountpoint="/var"}`
	past := &ticketing.Past{Last30d: 1, Last90d: 1, Other: []ticketing.PastEntry{{Outcome: ticketing.EndUnreported, Labels: map[string]string{"mountpoint": "/srv"}}},
		LastFix: &ticketing.PastFix{Action: "disk_cleanup", Result: "ok"}}
	ev := func(seq uint64) context.Context {
		return ticketing.WithEvent(context.Background(), ticketing.Event{Key: key, Seq: seq, Past: past})
	}
	ref, err := b.Open(ev(1), ticketing.Ticket{Key: key, Title: "t", Tier: ticketing.L2, Past: past})
	require.NoError(t, err)
	require.NoError(t, b.Escalate(ev(2), ref, ticketing.L3, ticketing.Ticket{Key: key, Title: "t", Past: past}))
	require.NoError(t, b.Comment(ev(3), ref, "c"))
	require.NoError(t, b.Reopen(ev(4), ref, "o"))
	require.Len(t, rcv.events, 4)
	for i, e := range rcv.events {
		if e.Event == "comment" {
			require.Nil(t, e.History)
			continue
		}
		require.Equal(t, past, e.History, "event %d %s", i, e.Event)
	}
	require.Equal(t, key, rcv.events[3].Key)
}
