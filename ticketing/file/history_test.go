package file

import (
	"bufio"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/l2agent/l2agent/ticketing"
)

// The open and reopen lines carry "This happened before" as structured
// fields (history), as the manager gives it; other lines do not.
func TestFileBackendHistoryFields(t *testing.T) {
	p := filepath.Join(t.TempDir(), "tickets.jsonl")
	b, err := New(p)
	require.NoError(t, err)
	key := `web-7/disk/disk_used_ratio{mountpoint="/var"}`
	past := &ticketing.Past{Last30d: 2, Last90d: 3, SameKey: []ticketing.PastEntry{{Began: time.Date(2026, 11, 1, 8, 0, 0, 0, time.UTC),
		DurationSeconds: 600, Outcome: ticketing.EndCleared, Severity: "warn", Tickets: map[string]ticketing.Ref{"file": {ID: "1"}}}}}
	ctx := context.Background()
	ref, err := b.Open(ctx, ticketing.Ticket{Key: key, Title: "t", Tier: ticketing.L2, Past: past})
	require.NoError(t, err)
	require.NoError(t, b.Resolve(ctx, ref, "r"))
	require.NoError(t, b.Reopen(ticketing.WithEvent(ctx, ticketing.Event{Key: key, Seq: 3, Past: past}), ref, "o"))

	f, err := os.Open(p)
	require.NoError(t, err)
	defer f.Close()
	var raw []map[string]any
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var m map[string]any
		require.NoError(t, json.Unmarshal(sc.Bytes(), &m))
		raw = append(raw, m)
	}
	require.Len(t, raw, 3)
	want := map[string]any{"last_30d": 2.0, "last_90d": 3.0, "other_last_30d": 0.0, "other_last_90d": 0.0,
		"same_key": []any{map[string]any{"began": "2026-11-01T08:00:00Z", "duration_seconds": 600.0, "outcome": "cleared", "severity": "warn",
			"tickets": map[string]any{"file": map[string]any{"id": "1"}}}}}
	require.Equal(t, want, raw[0]["history"], "open")
	require.NotContains(t, raw[1], "history", "resolve")
	require.Equal(t, want, raw[2]["history"], "reopen")
}
