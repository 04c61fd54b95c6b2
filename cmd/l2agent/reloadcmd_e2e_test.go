package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/l2agent/l2agent/deploy/testenv"
)

// runtimeAgent is the built binary run as the unit runs it: RUNTIME_DIRECTORY set, stderr a
// file that JOURNAL_STREAM names (the journal's stream under systemd).
type runtimeAgent struct {
	*agentProc
	cfg, runDir, logPath string
}

func startRuntimeAgent(t *testing.T, config string) *runtimeAgent {
	t.Helper()
	dir := t.TempDir()
	a := &runtimeAgent{cfg: filepath.Join(dir, "agent.yaml"), runDir: filepath.Join(dir, "run"), logPath: filepath.Join(dir, "journal")}
	require.NoError(t, os.Mkdir(a.runDir, 0o755))
	require.NoError(t, os.WriteFile(a.cfg, []byte("state_dir: "+dir+"\n"+config), 0o600))
	logf, err := os.Create(a.logPath)
	require.NoError(t, err)
	defer logf.Close()
	var st syscall.Stat_t
	require.NoError(t, syscall.Fstat(int(logf.Fd()), &st))
	port := testenv.FreePort(t)
	cmd := exec.Command(binary, "run", "--config", a.cfg, fmt.Sprintf("--web.listen-address=127.0.0.1:%d", port))
	cmd.Env = append(os.Environ(), "RUNTIME_DIRECTORY="+a.runDir, fmt.Sprintf("JOURNAL_STREAM=%d:%d", st.Dev, st.Ino))
	cmd.Stdout, cmd.Stderr = logf, logf
	require.NoError(t, cmd.Start())
	a.agentProc = &agentProc{cmd: cmd, url: fmt.Sprintf("http://127.0.0.1:%d", port), sock: filepath.Join(a.runDir, "api.sock"), done: make(chan error, 1)}
	go func() { a.done <- cmd.Wait() }()
	t.Cleanup(func() {
		cmd.Process.Kill()
		<-a.done
		if t.Failed() {
			b, _ := os.ReadFile(a.logPath)
			t.Logf("agent log:\n%s", b)
		}
	})
	waitHTTP(t, a.url+"/-/ready")
	return a
}

// reload runs `l2agent reload` as ExecReload does (RUNTIME_DIRECTORY set), with args after
// --pid PID.
func (a *runtimeAgent) reload(t *testing.T, args ...string) (code int, stderr string) {
	t.Helper()
	cmd := exec.Command(binary, append([]string{"reload", "--pid", fmt.Sprint(a.cmd.Process.Pid)}, args...)...)
	cmd.Env = append(os.Environ(), "RUNTIME_DIRECTORY="+a.runDir, "JOURNAL_STREAM=")
	var errb bytes.Buffer
	cmd.Stderr = &errb
	err := cmd.Run()
	if ee, ok := err.(*exec.ExitError); ok {
		return ee.ExitCode(), errb.String()
	}
	require.NoError(t, err)
	return 0, errb.String()
}

// TestReloadCommand: `l2agent reload` returns once the new config is in force, fails with the
// errors when it is rejected (the running config kept), and the daemon's log lines carry
// their journal priorities.
func TestReloadCommand(t *testing.T) {
	a := startRuntimeAgent(t, "checks:\n  - {name: cpu, kind: cpu, schedule: \"@every 1h\"}\n")
	state := filepath.Dir(a.cfg)

	// Accepted: the new check is in the status the moment the command returns.
	require.NoError(t, os.WriteFile(a.cfg, []byte("state_dir: "+state+"\nchecks:\n  - {name: mem, kind: memory, schedule: \"@every 1h\"}\n"), 0o600))
	code, stderr := a.reload(t)
	require.Equal(t, 0, code, stderr)
	require.Empty(t, stderr)
	status := string(socketGet(t, a.sock, "/api/v1/status"))
	require.Contains(t, status, `"name": "mem"`)
	require.NotContains(t, status, `"name": "cpu"`)
	require.Contains(t, string(httpGet(t, a.url+"/metrics")), "l2agent_config_last_reload_successful 1")

	// Rejected: exit 1 with the error at its line, the running config kept.
	require.NoError(t, os.WriteFile(a.cfg, []byte("checks: [{name: x, kind: nope}]\n"), 0o600))
	code, stderr = a.reload(t)
	require.Equal(t, 1, code, stderr)
	require.Contains(t, stderr, "config rejected, the running config is kept")
	require.Contains(t, stderr, a.cfg+":1:")
	require.Contains(t, stderr, "nope")
	require.Contains(t, string(httpGet(t, a.url+"/metrics")), "l2agent_config_last_reload_successful 0")
	require.Contains(t, string(socketGet(t, a.sock, "/api/v1/status")), `"name": "mem"`)

	var st reloadStatus
	b, err := os.ReadFile(filepath.Join(a.runDir, "reload.json"))
	require.NoError(t, err)
	require.NoError(t, json.Unmarshal(b, &st))
	require.Equal(t, reloadStatus{PID: a.cmd.Process.Pid, Seq: 2, Done: true, OK: false, Error: st.Error, Time: st.Time}, st)

	// A plain SIGHUP still reloads (and is counted), so the next command waits for its own.
	require.NoError(t, os.WriteFile(a.cfg, []byte("state_dir: "+state+"\nchecks:\n  - {name: disk, kind: disk, schedule: \"@every 1h\"}\n"), 0o600))
	require.NoError(t, a.cmd.Process.Signal(syscall.SIGHUP))
	code, stderr = a.reload(t)
	require.Equal(t, 0, code, stderr)
	require.Contains(t, string(socketGet(t, a.sock, "/api/v1/status")), `"name": "disk"`)

	log, err := os.ReadFile(a.logPath)
	require.NoError(t, err)
	requireLine(t, string(log), "<3>", "config reload failed")
	requireLine(t, string(log), "<6>", "config reloaded")
	requireLine(t, string(log), "<6>", "SIGHUP: reloading config")
}

func requireLine(t *testing.T, log, prefix, msg string) {
	t.Helper()
	for _, l := range strings.Split(log, "\n") {
		if strings.Contains(l, msg) {
			require.True(t, strings.HasPrefix(l, prefix), "%q: want prefix %s", l, prefix)
			return
		}
	}
	t.Fatalf("no line with %q in:\n%s", msg, log)
}

// TestReloadCommandFails: the command fails, and says why, when there is nobody to answer.
func TestReloadCommandFails(t *testing.T) {
	dir := t.TempDir()
	run := func(env string, args ...string) (int, string) {
		cmd := exec.Command(binary, append([]string{"reload"}, args...)...)
		cmd.Env = append(os.Environ(), env)
		out, err := cmd.CombinedOutput()
		if ee, ok := err.(*exec.ExitError); ok {
			return ee.ExitCode(), string(out)
		}
		require.NoError(t, err)
		return 0, string(out)
	}
	code, out := run("RUNTIME_DIRECTORY="+dir, "--help")
	require.Equal(t, 0, code, out)
	require.Contains(t, out, "Usage: l2agent reload")

	code, out = run("RUNTIME_DIRECTORY=" + dir)
	require.Equal(t, 2, code, out)
	require.Contains(t, out, "--pid is required")

	code, out = run("RUNTIME_DIRECTORY=", "--pid", "1")
	require.Equal(t, 2, code, out)
	require.Contains(t, out, "RUNTIME_DIRECTORY is not set")

	// A daemon that writes no status (run without RUNTIME_DIRECTORY): no answer in time.
	a := startAgent(t, "checks:\n  - {name: cpu, kind: cpu, schedule: \"@every 1h\"}\n")
	start := time.Now()
	code, out = run("RUNTIME_DIRECTORY="+dir, "--pid", fmt.Sprint(a.cmd.Process.Pid), "--timeout", "300ms")
	require.Equal(t, 1, code, out)
	require.Contains(t, out, "no answer from l2agent")
	require.Less(t, time.Since(start), 10*time.Second)

	// A process that is gone.
	gone := exec.Command("true")
	require.NoError(t, gone.Run())
	code, out = run("RUNTIME_DIRECTORY="+dir, "--pid", fmt.Sprint(gone.Process.Pid))
	require.Equal(t, 1, code, out)
	require.Contains(t, out, "is gone")
}
