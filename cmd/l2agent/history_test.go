package main

import (
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/l2agent/l2agent/agent"
	"github.com/l2agent/l2agent/configs"
	"github.com/l2agent/l2agent/deploy/testenv"
	"github.com/l2agent/l2agent/internal/alert"
	"github.com/l2agent/l2agent/internal/testkit"
	"github.com/l2agent/l2agent/ticketing"
)

// TestTicketsHistoryCLI: `tickets history` lists the store's history
// newest first, all of it, of one key or of one check; --json has the
// records.
func TestTicketsHistoryCLI(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "agent.yaml")
	require.NoError(t, os.WriteFile(cfg, []byte(fmt.Sprintf("state_dir: %s\nlisten_address: 127.0.0.1:%d\n", dir, testenv.FreePort(t))), 0o600))
	store, err := ticketing.OpenStore(filepath.Join(dir, agent.StoreFile), false, testkit.QuietLogger())
	require.NoError(t, err)
	t0 := time.Date(2026, 11, 2, 8, 0, 0, 0, time.UTC)
	hc := configs.History{MaxPerKey: 10, MaxTotal: 10}
	varKey, cpuKey := `web-7/disk/disk_used_ratio{mountpoint="/var"}`, "web-7/cpu/cpu_usage_ratio"
	require.NoError(t, store.AddPast(ticketing.PastIncident{Key: varKey, Host: "web-7", Check: "disk", Metric: "disk_used_ratio", Began: t0, Cleared: t0.Add(42 * time.Minute),
		Ended: t0.Add(time.Hour), Severity: alert.StateCrit, Tier: ticketing.L3, Outcome: ticketing.EndCleared, Refs: map[string]ticketing.Ref{"rt": {ID: "41"}},
		Attempts: []ticketing.PastAttempt{{At: t0, Action: "disk_cleanup", Result: "failed: still 93%"}}}, hc, t0.Add(time.Hour)))
	t1 := t0.Add(24 * time.Hour)
	require.NoError(t, store.AddPast(ticketing.PastIncident{Key: cpuKey, Host: "web-7", Check: "cpu", Metric: "cpu_usage_ratio", Began: t1,
		Ended: t1.Add(time.Hour), Severity: alert.StateWarn, Outcome: ticketing.EndFixed, FixedBy: "service_restart"}, hc, t1))
	require.NoError(t, store.Close())

	code, out, errs := runCLI("tickets", "history", "--config", cfg)
	require.Equal(t, 0, code, errs)
	lines := strings.Split(strings.TrimSpace(out), "\n")
	require.Len(t, lines, 3, out)
	require.Regexp(t, `^BEGAN \(UTC\)\s+DURATION\s+OUTCOME`, lines[0])
	require.Regexp(t, `^2026-11-03 08:00\s+1h\s+fixed\s+warn\s+-\s+web-7/cpu/cpu_usage_ratio\s+-\s+-$`, lines[1], "newest first")
	require.Regexp(t, `^2026-11-02 08:00\s+42m\s+cleared\s+crit\s+L3\s+\S+\s+rt #41\s+disk_cleanup: failed: still 93%$`, lines[2])

	code, out, errs = runCLI("tickets", "history", "disk", "--json", "--config", cfg)
	require.Equal(t, 0, code, errs)
	var got []ticketing.PastIncident
	require.NoError(t, json.Unmarshal([]byte(out), &got), out)
	require.Len(t, got, 1, "by check")
	require.Equal(t, varKey, got[0].Key)
	require.Equal(t, "41", got[0].Refs["rt"].ID)

	code, out, errs = runCLI("tickets", "history", "--config", cfg, cpuKey)
	require.Equal(t, 0, code, errs)
	require.Equal(t, 2, strings.Count(out, "\n"), "by key:\n%s", out)

	code, out, errs = runCLI("tickets", "history", "--help")
	require.Equal(t, 0, code, errs)
	require.Equal(t, 1, strings.Count(out, "Usage: l2agent tickets history"), out)

	code, _, errs = runCLI("tickets", "history", "--config", cfg, "a", "b")
	require.Equal(t, 2, code)
	require.Contains(t, errs, `unexpected arguments ["b"]`)
}

// TestTicketsHistoryFromAgent: while an agent holds the store, `tickets
// history` asks it (GET /api/v1/tickets/history at listen_address).
func TestTicketsHistoryFromAgent(t *testing.T) {
	dir := t.TempDir()
	store, err := ticketing.OpenStore(filepath.Join(dir, agent.StoreFile), false, testkit.QuietLogger())
	require.NoError(t, err)
	defer store.Close() // held: the CLI cannot open it
	at := time.Date(2026, 11, 2, 8, 0, 0, 0, time.UTC)
	served := []ticketing.PastIncident{{Key: "web-7/cpu/cpu_usage_ratio", Host: "web-7", Check: "cpu", Began: at, Ended: at.Add(time.Hour), Outcome: ticketing.EndCleared}}
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		require.Equal(t, "/api/v1/tickets/history", r.URL.Path)
		json.NewEncoder(w).Encode(served)
	}))
	sock := filepath.Join(dir, "api.sock") // the agent's API socket, where the CLI asks
	l, err := net.Listen("unix", sock)
	require.NoError(t, err)
	srv.Listener = l
	srv.Start()
	defer srv.Close()
	cfg := filepath.Join(dir, "agent.yaml")
	require.NoError(t, os.WriteFile(cfg, []byte(fmt.Sprintf("state_dir: %s\napi: {socket: %s}\n", dir, sock)), 0o600))
	code, out, errs := runCLI("tickets", "history", "--config", cfg)
	require.Equal(t, 0, code, errs)
	require.Regexp(t, `\n2026-11-02 08:00\s+1h\s+cleared\s+\S+\s+-\s+web-7/cpu/cpu_usage_ratio\s`, out)

	srv.Close() // no agent answers, and the store is locked: say so
	code, _, errs = runCLI("tickets", "history", "--config", cfg)
	require.Equal(t, 1, code)
	require.Contains(t, errs, "store is in use by another process")
}
