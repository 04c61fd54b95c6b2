package main

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/l2agent/l2agent/deploy/testenv"
	"github.com/l2agent/l2agent/internal/textfmt"
	"github.com/l2agent/l2agent/ticketing"
)

// newTicket waits for a ticket of key that is not in seen and for which
// cond holds, and returns it (newest first).
func newTicket(t *testing.T, rt testenv.RT, key string, seen []int, what string, cond func(testenv.RTTicket) bool) testenv.RTTicket {
	t.Helper()
	var last []testenv.RTTicket
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		last = rt.TicketsWithCF(t, rt.CustomField, key)
		var fresh []testenv.RTTicket
		for _, tk := range last {
			if !slices.Contains(seen, tk.ID) {
				fresh = append(fresh, tk)
			}
		}
		require.LessOrEqual(t, len(fresh), 1, "one new ticket at a time: %+v", fresh)
		if len(fresh) == 1 && cond(fresh[0]) {
			return fresh[0]
		}
		time.Sleep(200 * time.Millisecond) // polling RT, not waiting for timing
	}
	t.Fatalf("%s: not reached within 60s; tickets: %+v", what, last)
	return testenv.RTTicket{}
}

// TestRTHistory: a tmpfs filled and emptied four times, the agent
// restarted (gracefully, or killed with kill -9) between the incidents,
// and a second mount filled once: every recurrence after the reopen window
// is a new RT ticket, and the fourth one's text, read back with RT's REST 2
// API, lists the three before it (their RT ticket numbers, durations and
// outcomes), counts them, and lists the other mount's incident as "same
// check, other mount". `l2agent tickets history` shows the same five.
func TestRTHistory(t *testing.T) {
	needRoot(t)
	rt := testenv.StartRT(t)
	dir := t.TempDir()
	mnt, other := filepath.Join(dir, "var"), filepath.Join(dir, "srv")
	mountTmpfs(t, mnt, "8m", "l2agent-hist")
	mountTmpfs(t, other, "8m", "l2agent-hist2")
	cfg := rtConfig(t, rt, dir, "^"+dir+"/(var|srv)$")
	b, err := os.ReadFile(cfg)
	require.NoError(t, err)
	// Each recurrence after the reopen window: a new ticket every time.
	require.NoError(t, os.WriteFile(cfg, []byte(strings.Replace(string(b), "  resolve_after: 2s\n", "  resolve_after: 2s\n  reopen_window: 1ms\n", 1)), 0o600))
	key, otherKey := diskKey(mnt, "l2agent-hist"), diskKey(other, "l2agent-hist2")

	var seen []int
	var walls []time.Duration // fill → resolved seen in RT, per incident of key
	episode := func(n int, mp, k string, stop func(*rtAgent)) testenv.RTTicket {
		t.Helper()
		a := startRTAgent(t, cfg)
		waitHTTP(t, a.url+"/-/ready")
		began := time.Now()
		fillTo(t, mp, 5000) // ~61 %: warn
		tk := newTicket(t, rt, k, seen, fmt.Sprintf("incident %d opened", n), func(x testenv.RTTicket) bool { return true })
		require.NoError(t, os.Remove(filepath.Join(mp, "spool", "app", "data")))
		newTicket(t, rt, k, seen, fmt.Sprintf("incident %d resolved", n), func(x testenv.RTTicket) bool { return x.Status == "resolved" })
		if k == key {
			walls = append(walls, time.Since(began))
		}
		waitOutboxEmpty(t, a.url, "rt")
		if stop != nil {
			stop(a)
		}
		seen = append(seen, tk.ID)
		return tk
	}
	graceful := func(a *rtAgent) { require.NoError(t, a.cmd.Process.Signal(syscall.SIGTERM)); a.wait(t) }
	kill9 := func(a *rtAgent) { require.NoError(t, a.cmd.Process.Kill()); a.wait(t) }

	first := episode(1, mnt, key, graceful)
	second := episode(2, mnt, key, kill9)
	otherTk := episode(0, other, otherKey, graceful)
	third := episode(3, mnt, key, graceful)

	a := startRTAgent(t, cfg)
	waitHTTP(t, a.url+"/-/ready")
	fillTo(t, mnt, 5000)
	fourth := newTicket(t, rt, key, seen, "incident 4 opened", func(x testenv.RTTicket) bool { return true })
	msgs := rt.Messages(t, fourth.ID)
	require.NotEmpty(t, msgs)
	require.Equal(t, "Create", msgs[0].Type)
	text := msgs[0].Content
	t.Logf("fourth ticket #%d:\n%s", fourth.ID, text)

	require.Contains(t, metricsText(t, a.url), `l2agent_incident_repeats_total{check="disk"} 1`, "the fourth ticket is a repeat")
	require.Contains(t, metricsText(t, a.url), `l2agent_incident_starts_total{check="disk"} 1`)
	kill9(a)

	// The history as the store keeps it (`tickets history` opens the store
	// read-only when no agent runs).
	out, err := exec.Command(binary, "tickets", "history", "--json", "--config", cfg).CombinedOutput()
	require.NoError(t, err, "%s", out)
	var hist []ticketing.PastIncident
	require.NoError(t, json.Unmarshal(out, &hist), "%s", out)
	require.Len(t, hist, 4, "three incidents of %s and one of %s", mnt, other)

	_, section, ok := strings.Cut(text, "\nThis happened before (UTC):\n")
	require.True(t, ok, "the fourth ticket says this happened before:\n%s", text)
	section, _, _ = strings.Cut(section, "\n\n")
	lines := strings.Split(section, "\n")
	require.Len(t, lines, 6, "3 incidents of this mount, 1 of the other, 2 headers:\n%s", section)
	require.Equal(t, "  This alert: 3 time(s) in 30 days, 3 in 90 days. Last:", lines[0])
	require.Equal(t, "  Same check, other mount: 1 time(s) in 30 days, 1 in 90 days. Last:", lines[4])
	entry := regexp.MustCompile(`^    (\d{4}-\d\d-\d\d \d\d:\d\d)  (\S+)\s+cleared\s+(?:(\S+)\s+)?rt #(\d+) ` + regexp.QuoteMeta(rt.URL) + `/Ticket/Display\.html\?id=(\d+)$`)
	for i, tk := range []testenv.RTTicket{third, second, first, otherTk} { // newest first, this mount's, then the other's
		line := lines[1+i]
		if i == 3 {
			line = lines[5]
		}
		m := entry.FindStringSubmatch(line)
		require.NotNil(t, m, "line %q", line)
		require.Equal(t, fmt.Sprint(tk.ID), m[4], "RT ticket number")
		require.Equal(t, m[4], m[5], "its link")
		var rec ticketing.PastIncident
		for _, h := range hist {
			if h.Refs["rt"].ID == m[4] {
				rec = h
			}
		}
		require.Equal(t, ticketing.EndCleared, rec.Outcome)
		require.Equal(t, textfmt.Duration(rec.Duration()), m[2], "duration of #%s", m[4])
		require.Equal(t, rec.Began.UTC().Format("2006-01-02 15:04"), m[1])
		if i < 3 {
			require.Empty(t, m[3], "this mount's incidents name no mount")
			require.Equal(t, key, rec.Key)
			require.Positive(t, rec.Duration())
			require.LessOrEqual(t, rec.Duration(), walls[2-i], "lasted no longer than from the fill to the resolve seen in RT")
		} else {
			require.Equal(t, other, m[3], "the other mount is named")
			require.Equal(t, otherKey, rec.Key)
		}
	}

	if p := os.Getenv("L2AGENT_SAVE_TICKET"); p != "" { // for the README
		os.WriteFile(p, []byte(fmt.Sprintf("Subject: %s\nQueue: %s  Priority: %d\n\n%s", fourth.Subject, fourth.Queue, fourth.Priority, text)), 0o644)
	}
}
