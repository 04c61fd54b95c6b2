package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// diskFileConfig is a disk check on the tmpfs at mnt with the backends
// given (YAML list items), resolving after 2 s.
func diskFileConfig(stateDir, mnt, backends string) string {
	return fmt.Sprintf(`hostname: web-7
state_dir: %s
defaults: {jitter_max: 0s}
checks:
  - name: disk
    kind: disk
    schedule: "@every 1s"
    disk: {include_mountpoints: ['^%s$']}
    rules:
      - {metric: disk_used_ratio, warn: 0.5, crit: 0.9, clear: 0.05}
ticketing:
  resolve_after: 2s
  interval: 500ms
  backends:
%s`, stateDir, mnt, backends)
}

// fileEvents reads the events of key from a file backend's JSON lines.
func fileEvents(t *testing.T, path, key string) []string {
	t.Helper()
	f, err := os.Open(path)
	if os.IsNotExist(err) {
		return nil
	}
	require.NoError(t, err)
	defer f.Close()
	var out []string
	tickets := map[string]bool{} // opened for key; later events name only the ticket
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var e struct{ Event, Key, Ticket string }
		require.NoError(t, json.Unmarshal(sc.Bytes(), &e))
		if e.Event == "open" && e.Key == key {
			tickets[e.Ticket] = true
		}
		if tickets[e.Ticket] {
			out = append(out, e.Event)
		}
	}
	return out
}

// hookReceiver records the events a webhook backend posts.
type hookReceiver struct {
	mu     sync.Mutex
	events []string // "event key"
	idems  []struct{ key, event string }
}

func (h *hookReceiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	b, _ := io.ReadAll(r.Body)
	var p struct{ Event, Key string }
	if json.Unmarshal(b, &p) != nil || r.Header.Get("Idempotency-Key") == "" {
		http.Error(w, "bad payload", http.StatusBadRequest)
		return
	}
	h.mu.Lock()
	h.events = append(h.events, p.Event+" "+p.Key)
	h.idems = append(h.idems, struct{ key, event string }{r.Header.Get("Idempotency-Key"), p.Event})
	h.mu.Unlock()
	w.WriteHeader(http.StatusAccepted)
}

func (h *hookReceiver) of(key string) []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	var out []string
	for _, e := range h.events {
		if ev, k, _ := strings.Cut(e, " "); k == key {
			out = append(out, ev)
		}
	}
	return out
}

// TestReloadAddsBackend: a webhook backend added to a running agent by
// SIGHUP is sent the ticket of the incident open now, then its life cycle;
// the file backend in force before goes on; nothing is opened twice.
func TestReloadAddsBackend(t *testing.T) {
	needRoot(t)
	dir := t.TempDir()
	mnt := filepath.Join(dir, "mnt")
	mountTmpfs(t, mnt, "8m", "l2agent-reload")
	key := diskKey(mnt, "l2agent-reload")
	hook := &hookReceiver{}
	srv := httptest.NewServer(hook)
	t.Cleanup(srv.Close)
	secret := filepath.Join(dir, "hook.secret")
	require.NoError(t, os.WriteFile(secret, []byte("s3cret\n"), 0o600))
	cfg := filepath.Join(dir, "agent.yaml")
	fileBackend := "    - {name: file, kind: file}\n"
	require.NoError(t, os.WriteFile(cfg, []byte(diskFileConfig(dir, mnt, fileBackend)), 0o600))
	jsonl := filepath.Join(dir, "tickets.jsonl")

	a := startRTAgent(t, cfg)
	waitHTTP(t, a.url+"/-/ready")
	fillTo(t, mnt, 5000)
	require.Eventually(t, func() bool { return len(fileEvents(t, jsonl, key)) == 1 }, 30*time.Second, 100*time.Millisecond)

	withHook := fileBackend + fmt.Sprintf("    - {name: hook, kind: webhook, webhook: {url: %q, secret_file: %q}}\n", srv.URL, secret)
	require.NoError(t, os.WriteFile(cfg, []byte(diskFileConfig(dir, mnt, withHook)), 0o600))
	require.NoError(t, a.cmd.Process.Signal(syscall.SIGHUP))
	require.Eventually(t, func() bool { return slicesEqual(hook.of(key), "open") }, 30*time.Second, 100*time.Millisecond,
		"the added backend gets the open incident's ticket")
	m := metricsText(t, a.url)
	require.Contains(t, m, "l2agent_config_last_reload_successful 1")
	require.Contains(t, m, `l2agent_ticketing_up{backend="hook"} 1`)

	require.NoError(t, os.Remove(filepath.Join(mnt, "spool", "app", "data")))
	require.Eventually(t, func() bool { return slicesEqual(hook.of(key), "open", "resolve") }, 30*time.Second, 100*time.Millisecond)
	require.Eventually(t, func() bool { return slicesEqual(fileEvents(t, jsonl, key), "open", "resolve") }, 30*time.Second, 100*time.Millisecond)
}

func slicesEqual(got []string, want ...string) bool {
	return strings.Join(got, ",") == strings.Join(want, ",")
}

// TestReloadRejectsBrokenBackend: a backend that cannot be built (its token
// file is missing) rejects the reload — non-200, the metric 0 — and the
// running backends go on.
func TestReloadRejectsBrokenBackend(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "agent.yaml")
	fileBackend := "    - {name: file, kind: file}\n"
	require.NoError(t, os.WriteFile(cfg, []byte(diskFileConfig(dir, "/nonexistent", fileBackend)), 0o600))
	a := startDaemonOn(t, cfg, "--web.enable-lifecycle") // POST /-/reload is off without it
	waitHTTP(t, a.url+"/-/ready")

	broken := fileBackend + fmt.Sprintf("    - {name: rt, kind: rt, rt: {url: http://127.0.0.1:1, token_file: %q}}\n", filepath.Join(dir, "missing.token"))
	require.NoError(t, os.WriteFile(cfg, []byte(diskFileConfig(dir, "/nonexistent", broken)), 0o600))
	resp, err := http.Post(a.url+"/-/reload", "", nil)
	require.NoError(t, err)
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	require.NotEqual(t, http.StatusOK, resp.StatusCode, "%s", body)
	require.Contains(t, string(body), "missing.token")
	m := metricsText(t, a.url)
	require.Contains(t, m, "l2agent_config_last_reload_successful 0")
	require.NotContains(t, m, `backend="rt"`)
}

// TestUnwritableStateDir: a state dir the agent cannot write (a read-only
// mount: root too is refused) leaves checks and metrics running, and says
// so: /-/ready answers 503 with the reason, l2agent_ticketing_up is 0.
func TestUnwritableStateDir(t *testing.T) {
	needRoot(t)
	dir := t.TempDir()
	state := filepath.Join(dir, "state")
	require.NoError(t, os.MkdirAll(state, 0o755))
	out, err := exec.Command("mount", "-t", "tmpfs", "-o", "ro,size=1m", "l2agent-rostate", state).CombinedOutput()
	require.NoError(t, err, "%s", out)
	t.Cleanup(func() { exec.Command("umount", "-l", state).Run() })
	cfg := filepath.Join(dir, "agent.yaml")
	require.NoError(t, os.WriteFile(cfg, []byte(diskFileConfig(state, "/nonexistent", "    - {name: file, kind: file}\n")), 0o600))
	a := startRTAgent(t, cfg)

	var body string
	require.Eventually(t, func() bool {
		resp, err := http.Get(a.url + "/-/ready")
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		body = string(b)
		return resp.StatusCode == http.StatusServiceUnavailable && strings.Contains(body, "ticketing cannot work")
	}, 30*time.Second, 100*time.Millisecond, "last /-/ready answer: %s", body)
	require.Contains(t, body, "read-only file system")
	m := metricsText(t, a.url)
	require.Contains(t, m, `l2agent_ticketing_up{backend="file"} 0`)
	require.Contains(t, m, `l2agent_check_up{check="disk"} 1`, "checks keep running")
	require.Equal(t, http.StatusOK, get(t, a.url+"/-/healthy"))
}

func get(t *testing.T, url string) int {
	t.Helper()
	resp, err := http.Get(url)
	require.NoError(t, err)
	resp.Body.Close()
	return resp.StatusCode
}
