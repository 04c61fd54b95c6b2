package agent

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/l2agent/l2agent/internal/testkit"
	"github.com/l2agent/l2agent/ticketing/file"
)

// TestRealDiskTicketLifeCycle: a real tmpfs filled past warn then crit, freed
// and refilled, with the file backend: one ticket opened at L2, escalated to
// L3, resolved, and reopened — the same ticket throughout.
func TestRealDiskTicketLifeCycle(t *testing.T) {
	mnt := mountTmpfs(t, "8m", "l2agent-tickets")

	cfgPath := writeConfig(t, fmt.Sprintf(`
hostname: web-7
defaults: {jitter_max: 0s}
checks:
  - name: disk
    kind: disk
    schedule: "@every 1s"
    disk: {include_mountpoints: ['^%s$']}
    rules:
      - {metric: disk_used_ratio, warn: 0.5, crit: 0.9, clear: 0.05, runbook_url: "https://runbooks.example/disk"}
ticketing:
  resolve_after: 2s
  interval: 500ms
  backends: [{name: file, kind: file}]
`, mnt))
	a, err := New(Options{ConfigFile: cfgPath, Logger: testkit.QuietLogger()})
	require.NoError(t, err)
	require.NoError(t, a.Start(false))
	t.Cleanup(func() { stopAgent(t, a) })
	path := filepath.Join(filepath.Dir(cfgPath), "tickets.jsonl")

	events := func() []file.Line {
		f, err := os.Open(path)
		if os.IsNotExist(err) {
			return nil
		}
		require.NoError(t, err)
		defer f.Close()
		var ls []file.Line
		sc := bufio.NewScanner(f)
		sc.Buffer(nil, 1<<20)
		for sc.Scan() {
			var l file.Line
			require.NoError(t, json.Unmarshal(sc.Bytes(), &l))
			ls = append(ls, l)
		}
		return ls
	}
	waitFor := func(event, tier string) file.Line {
		t.Helper()
		var got file.Line
		require.Eventually(t, func() bool {
			for _, l := range events() {
				if l.Event == event && (tier == "" || l.Tier == tier) {
					got = l
					return true
				}
			}
			return false
		}, 20*time.Second, 50*time.Millisecond, "no %s event; have %+v", event, events())
		return got
	}
	fill := func(kib int) {
		require.NoError(t, os.MkdirAll(filepath.Join(mnt, "spool", "app"), 0o755))
		require.NoError(t, os.WriteFile(filepath.Join(mnt, "spool", "app", "data"), make([]byte, kib*1024), 0o644))
	}

	fill(5000) // ~61 %: warn
	opened := waitFor("open", "L2")
	require.Contains(t, opened.Title, "[l2agent] web-7: disk "+mnt+" disk_used_ratio")
	require.Contains(t, opened.Body, "Diagnostics:")
	require.Contains(t, opened.Body, filepath.Join(mnt, "spool"), "the largest directory is named")
	require.Contains(t, opened.Body, "https://runbooks.example/disk")

	fill(7700) // ~94 %: crit
	esc := waitFor("escalate", "L3")
	require.Equal(t, opened.Ticket, esc.Ticket)

	require.NoError(t, os.Remove(filepath.Join(mnt, "spool", "app", "data")))
	res := waitFor("resolve", "")
	require.Equal(t, opened.Ticket, res.Ticket)

	fill(5000)
	re := waitFor("reopen", "")
	require.Equal(t, opened.Ticket, re.Ticket, "the same ticket is reopened")
	opens := 0
	for _, l := range events() {
		if l.Event == "open" {
			opens++
		}
	}
	require.Equal(t, 1, opens, "exactly one ticket for the key")
}
