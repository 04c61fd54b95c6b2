package file

import (
	"bufio"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

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
	require.Equal(t, "6", ref2.ID)

	f, err := os.Open(p)
	require.NoError(t, err)
	defer f.Close()
	var events []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var l Line
		require.NoError(t, json.Unmarshal(sc.Bytes(), &l), "every line is JSON")
		events = append(events, l.Event+" "+l.Ticket)
	}
	require.Equal(t, []string{"open 1", "comment 1", "escalate 1", "resolve 1", "reopen 1", "open 6"}, events)
}
