package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/l2agent/l2agent/agent"
	"github.com/l2agent/l2agent/deploy/testenv"
	"github.com/l2agent/l2agent/internal/testkit"
	"github.com/l2agent/l2agent/ticketing"
)

// deadStore writes, in the store of dir, two ops of backend "file" that
// were refused for good.
func deadStore(t *testing.T, dir string) {
	t.Helper()
	store, err := ticketing.OpenStore(filepath.Join(dir, agent.StoreFile), false, testkit.QuietLogger())
	require.NoError(t, err)
	var outs []ticketing.Outcome
	for i, key := range []string{"web-7/disk/a", "web-7/disk/b"} {
		op := ticketing.Op{Seq: uint64(i + 1), Key: key, Kind: ticketing.OpOpen, Event: 1, Created: time.Now(),
			Ticket: ticketing.Ticket{Key: key, Title: "disk " + key, Host: "web-7", Check: "disk", Severity: "warn", Tier: ticketing.L2}}
		outs = append(outs, ticketing.Outcome{Op: op, Dead: "open " + key + ": HTTP 401: token revoked"})
	}
	require.NoError(t, store.Commit("file", outs))
	require.NoError(t, store.Close())
}

// Without a running agent, the CLI lists and replays the dead letters in
// the store itself; the replayed ops wait in the outbox, in order.
func TestDeadLettersCLIOffline(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "agent.yaml")
	require.NoError(t, os.WriteFile(cfg, []byte(fmt.Sprintf("state_dir: %s\nlisten_address: 127.0.0.1:%d\nticketing:\n  backends: [{name: file, kind: file}]\n", dir, testenv.FreePort(t))), 0o600))
	deadStore(t, dir)

	code, out, errs := runCLI("tickets", "deadletters", "--config", cfg)
	require.Equal(t, 0, code, errs)
	require.Regexp(t, `file\s+1\s+open\s+web-7/disk/a\s+\S+\s+open web-7/disk/a: HTTP 401: token revoked`, out)
	require.Regexp(t, `file\s+2\s+open\s+web-7/disk/b`, out)

	code, out, errs = runCLI("tickets", "deadletters", "--json", "--config", cfg, "other")
	require.Equal(t, 0, code, errs)
	require.JSONEq(t, `{"dead_letters": []}`, out)

	code, _, errs = runCLI("tickets", "replay", "--config", cfg, "file")
	require.Equal(t, 2, code)
	require.Contains(t, errs, "then --all or the numbers")
	code, _, errs = runCLI("tickets", "replay", "--config", cfg, "file", "9")
	require.Equal(t, 1, code)
	require.Contains(t, errs, `backend "file" has no dead letter 9`)

	code, out, errs = runCLI("tickets", "replay", "--config", cfg, "file", "2")
	require.Equal(t, 0, code, errs)
	require.Contains(t, out, "file 2: open web-7/disk/b back in the outbox")
	code, out, errs = runCLI("tickets", "replay", "--all", "--config", cfg, "file")
	require.Equal(t, 0, code, errs)
	require.Contains(t, out, "1 operation(s) replayed; delivered when the agent starts")

	store, err := ticketing.OpenStore(filepath.Join(dir, agent.StoreFile), true, testkit.QuietLogger())
	require.NoError(t, err)
	defer store.Close()
	var keys []string
	for after := uint64(0); ; {
		op, ok, err := store.Next("file", after)
		require.NoError(t, err)
		if !ok {
			break
		}
		require.Empty(t, op.Dead)
		keys, after = append(keys, op.Key), op.Seq
	}
	require.Equal(t, []string{"web-7/disk/b", "web-7/disk/a"}, keys, "in the order they were replayed")
	dead, err := store.DeadLetters("")
	require.NoError(t, err)
	require.Empty(t, dead)
}

// With the agent running, the CLI asks it (the store is the agent's): the
// replay is refused while the lifecycle endpoints are off, and with them
// on the agent delivers the replayed ops at once.
func TestDeadLettersCLIThroughAgent(t *testing.T) {
	dir := t.TempDir()
	addr := fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t))
	cfg := filepath.Join(dir, "agent.yaml")
	require.NoError(t, os.WriteFile(cfg, []byte(fmt.Sprintf("state_dir: %s\nlisten_address: %s\n%s", dir, addr, lifecycleConfig)), 0o600))
	deadStore(t, dir)

	// The agent listens where the config says, so that the CLI finds it.
	d := &daemon{addr: addr, dir: dir, cfg: cfg}
	d.run(t, nil)
	code, out := tickets(t, cfg, "deadletters", "--json")
	require.Equal(t, 0, code, out)
	var doc agent.DeadLetters
	require.NoError(t, json.Unmarshal([]byte(out), &doc), out)
	require.Len(t, doc.DeadLetters, 2)
	// Root asks through the agent's API socket (TestAPIAccessByUser: who may).
	code, out = tickets(t, cfg, "replay", "file", "1", "2")
	require.Equal(t, 0, code, out)
	require.Contains(t, out, "2 operation(s) replayed; the running agent delivers them now")
	require.Eventually(t, func() bool {
		b, _ := os.ReadFile(filepath.Join(dir, "tickets.jsonl"))
		return strings.Contains(string(b), "web-7/disk/a") && strings.Contains(string(b), "web-7/disk/b")
	}, 10*time.Second, 50*time.Millisecond, "the agent delivers the replayed opens")
	code, out = tickets(t, cfg, "deadletters")
	require.Equal(t, 0, code, out)
	require.Contains(t, out, "no dead letters")
}
