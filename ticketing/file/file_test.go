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

func TestFileBackendLinesParse(t *testing.T) {
	p := filepath.Join(t.TempDir(), "sub", "tickets.jsonl")
	b, err := New(p)
	require.NoError(t, err)
	ctx := context.Background()
	key := `web-7/disk/disk_used_ratio{mountpoint="/var"}`
	_, found, err := b.Find(ctx, key)
	require.NoError(t, err)
	require.False(t, found)
	ref, err := b.Open(ctx, ticketing.Ticket{Key: key, Title: "t", Body: "b\nline 2", Tier: ticketing.L2})
	require.NoError(t, err)
	require.Equal(t, "1", ref.ID)
	require.NoError(t, b.Comment(ctx, ref, "c"))
	require.NoError(t, b.Escalate(ctx, ref, ticketing.L3, ticketing.Ticket{Key: key, Title: "t"}))
	require.NoError(t, b.Resolve(ctx, ref, "r"))
	require.NoError(t, b.Reopen(ctx, ref, "o"))
	got, found, err := b.Find(ctx, key)
	require.NoError(t, err)
	require.True(t, found)
	require.Equal(t, ref.ID, got.ID)
	ref2, err := b.Open(ctx, ticketing.Ticket{Key: "other", Tier: ticketing.L2})
	require.NoError(t, err)
	require.Equal(t, "2", ref2.ID, "numbers follow each other, whatever the lines between")

	f, err := os.Open(p)
	require.NoError(t, err)
	defer f.Close()
	var events []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var l Line
		require.NoError(t, json.Unmarshal(sc.Bytes(), &l), "every line is JSON")
		events = append(events, l.Event+" "+l.Ticket+" "+l.Key)
	}
	require.Equal(t, []string{"open 1 " + key, "comment 1 " + key, "escalate 1 " + key, "resolve 1 " + key, "reopen 1 " + key, "open 2 other"}, events,
		"every line carries its key: a search by alert key finds them all")
}

// TestFileBackendOldNumbers: a file written when ticket numbers were line
// numbers (#1, #3) keeps them: Find and the events of its tickets work, and
// a new ticket takes the next free number.
func TestFileBackendOldNumbers(t *testing.T) {
	p := filepath.Join(t.TempDir(), "tickets.jsonl")
	old := `{"time":"2026-11-24T08:00:00Z","event":"open","ticket":"1","key":"a","tier":"L2","title":"a"}
{"time":"2026-11-24T08:01:00Z","event":"comment","ticket":"1","key":"","text":"c"}
{"time":"2026-11-24T08:02:00Z","event":"open","ticket":"3","key":"b","tier":"L2","title":"b"}
`
	require.NoError(t, os.WriteFile(p, []byte(old), 0o640))
	b, err := New(p)
	require.NoError(t, err)
	ctx := context.Background()
	got, found, err := b.Find(ctx, "b")
	require.NoError(t, err)
	require.True(t, found)
	require.Equal(t, "3", got.ID)
	require.NoError(t, b.Resolve(ctx, got, "fixed"))
	ref, err := b.Open(ctx, ticketing.Ticket{Key: "c", Tier: ticketing.L2})
	require.NoError(t, err)
	require.Equal(t, "4", ref.ID, "after the highest number, never one in use")
	// A ticket the file has no open of (the file was rotated): the key of
	// the event being delivered.
	ctx = ticketing.WithEvent(ctx, ticketing.Event{Key: "gone", Seq: 9})
	require.NoError(t, b.Reopen(ctx, ticketing.Ref{ID: "2"}, "again"))

	ls, err := b.lines()
	require.NoError(t, err)
	require.Len(t, ls, 6)
	require.Equal(t, Line{Event: "resolve", Ticket: "3", Key: "b", Text: "fixed"}, withoutTime(ls[3]))
	require.Equal(t, Line{Event: "reopen", Ticket: "2", Key: "gone", Text: "again"}, withoutTime(ls[5]))
}

func withoutTime(l Line) Line {
	l.Time = time.Time{}
	return l
}
