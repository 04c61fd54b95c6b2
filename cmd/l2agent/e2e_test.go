package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/l2agent/l2agent/deploy/testenv"
)

var binary string // built once by TestMain

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "l2agent-e2e")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binary = filepath.Join(dir, "l2agent")
	out, err := exec.Command("go", "build", "-o", binary, ".").CombinedOutput()
	if err != nil {
		fmt.Fprintf(os.Stderr, "build l2agent: %v\n%s", err, out)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// agentProc is the built binary running as a daemon.
type agentProc struct {
	cmd  *exec.Cmd
	url  string
	sock string // the API socket: api.sock in the state dir
	logs *bytes.Buffer
	done chan error
}

func startAgent(t *testing.T, config string) *agentProc {
	t.Helper()
	return startAgentEnv(t, config, nil)
}

// startAgentEnv is startAgent with env added to the test's environment.
func startAgentEnv(t *testing.T, config string, env []string) *agentProc {
	t.Helper()
	port := testenv.FreePort(t)
	// Keys left out keep the embedded default's values; the state dir is the
	// test's, never the host's /var/lib/l2agent.
	dir := t.TempDir()
	cfgPath := filepath.Join(dir, "agent.yaml")
	require.NoError(t, os.WriteFile(cfgPath, []byte("state_dir: "+dir+"\n"+config), 0o600))
	args := []string{"run", fmt.Sprintf("--web.listen-address=127.0.0.1:%d", port), "--config", cfgPath}
	cmd := exec.Command(binary, args...)
	cmd.Env = append(os.Environ(), env...)
	logs := &bytes.Buffer{}
	cmd.Stdout, cmd.Stderr = logs, logs // one writer: exec copies with one goroutine; read only after exit
	require.NoError(t, cmd.Start())
	p := &agentProc{cmd: cmd, url: fmt.Sprintf("http://127.0.0.1:%d", port), sock: filepath.Join(dir, "api.sock"), logs: logs, done: make(chan error, 1)}
	go func() { p.done <- cmd.Wait() }()
	t.Cleanup(func() {
		cmd.Process.Kill()
		<-p.done
		if t.Failed() {
			t.Logf("agent log:\n%s", logs.String())
		}
	})
	require.Eventually(t, func() bool {
		resp, err := http.Get(p.url + "/-/ready")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == 200
	}, 30*time.Second, 50*time.Millisecond, "agent never became ready")
	return p
}

func httpGet(t *testing.T, url string) []byte {
	t.Helper()
	resp, err := http.Get(url)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	require.Equal(t, 200, resp.StatusCode, "%s: %s", url, b)
	return b
}

// socketRequest sends method path to the agent's API socket sock and
// returns the status and body.
func socketRequest(t *testing.T, sock, method, path string) (int, string) {
	t.Helper()
	c := http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, "unix", sock)
	}}}
	req, err := http.NewRequest(method, "http://l2agent"+path, nil)
	require.NoError(t, err)
	resp, err := c.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp.StatusCode, string(b)
}

// socketGet GETs path from the API socket sock; anything but 200 fails.
func socketGet(t *testing.T, sock, path string) []byte {
	t.Helper()
	code, body := socketRequest(t, sock, http.MethodGet, path)
	require.Equal(t, http.StatusOK, code, "%s: %s", path, body)
	return []byte(body)
}

// TestPrometheusScrapesAgent: a real Prometheus (Debian's package) scrapes the
// built binary running its embedded default config.
func TestPrometheusScrapesAgent(t *testing.T) {
	testenv.Need(t, "prometheus")
	a := startAgent(t, "")
	prom := testenv.StartPrometheus(t, []string{strings.TrimPrefix(a.url, "http://")}, time.Second)

	prom.WaitFor(t, `up{job="l2agent"}`, 30*time.Second, func(s []testenv.Sample) bool { return len(s) == 1 && s[0].Value == 1 })
	got := prom.WaitFor(t, `l2agent_disk_used_ratio{mountpoint="/"}`, 30*time.Second, func(s []testenv.Sample) bool { return len(s) == 1 })
	require.Greater(t, got[0].Value, 0.0)
	require.LessOrEqual(t, got[0].Value, 1.0)
	prom.WaitFor(t, `l2agent_alert_state{check="disk",metric="disk_used_ratio",mountpoint="/"}`, 30*time.Second, func(s []testenv.Sample) bool { return len(s) == 1 })
	prom.WaitFor(t, `l2agent_build_info`, 30*time.Second, func(s []testenv.Sample) bool { return len(s) == 1 })
}

// TestRuntimeDefaults: the daemon runs Go code on one thread with GOGC 50
// unless its environment says otherwise (agent.DefaultGOMAXPROCS,
// DefaultGOGC), as its own Go metrics show.
func TestRuntimeDefaults(t *testing.T) {
	if runtime.NumCPU() < 2 {
		t.Skip("one CPU: Go's own default is already 1")
	}
	for _, tc := range []struct {
		env       []string
		procs, gc string
	}{
		{[]string{"GOMAXPROCS=", "GOGC="}, "1", "50"},
		{[]string{"GOMAXPROCS=2", "GOGC=100"}, "2", "100"},
	} {
		body := string(httpGet(t, startAgentEnv(t, "", tc.env).url+"/metrics"))
		require.Contains(t, body, "\ngo_sched_gomaxprocs_threads "+tc.procs+"\n", "env %v", tc.env)
		require.Contains(t, body, "\ngo_gc_gogc_percent "+tc.gc+"\n", "env %v", tc.env)
	}
}

// TestPromtoolCheckMetrics: the agent's exposition passes promtool's linter.
func TestPromtoolCheckMetrics(t *testing.T) {
	testenv.Need(t, "promtool")
	a := startAgent(t, "")
	body := httpGet(t, a.url+"/metrics")
	for _, want := range []string{"l2agent_build_info{", "l2agent_check_duration_seconds{check=\"disk\"}", "l2agent_cpu_utilization_ratio", "l2agent_memory_available_ratio", "l2agent_config_last_reload_successful 1"} {
		require.Contains(t, string(body), want)
	}
	out, err := testenv.Promtool(t, body)
	require.NoError(t, err, "promtool check metrics:\n%s", out)
	require.Empty(t, strings.TrimSpace(out), "promtool check metrics found problems")
}

func TestCheckJSON(t *testing.T) {
	cmd := exec.Command(binary, "check", "--json")
	out, err := cmd.Output()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else {
		require.NoError(t, err)
	}
	var doc struct {
		Host   string `json:"host"`
		State  string `json:"state"`
		Checks []struct {
			Name         string `json:"name"`
			State        string `json:"state"`
			Observations []struct {
				Metric string            `json:"metric"`
				Labels map[string]string `json:"labels"`
				Value  float64           `json:"value"`
			} `json:"observations"`
		} `json:"checks"`
	}
	require.NoError(t, json.Unmarshal(out, &doc), "%s", out)
	names := map[string]int{}
	for _, c := range doc.Checks {
		names[c.Name] = len(c.Observations)
	}
	require.Positive(t, names["disk"])
	require.Positive(t, names["cpu"])
	require.Positive(t, names["memory"])
	want := map[string]int{"ok": 0, "warn": 1, "crit": 2, "unknown": 3}[doc.State]
	require.Equal(t, want, code, "exit code follows the worst state %q", doc.State)
}

func TestCheckExitCodes(t *testing.T) {
	dir := t.TempDir()
	cfg := func(warn, crit string) string {
		p := filepath.Join(dir, warn+crit+".yaml")
		require.NoError(t, os.WriteFile(p, []byte(fmt.Sprintf(`checks:
  - name: mem
    kind: memory
    rules:
      - {metric: memory_total_bytes, warn: %s, crit: %s}
`, warn, crit)), 0o600))
		return p
	}
	for _, tc := range []struct {
		warn, crit string
		code       int
	}{{"1e18", "2e18", 0}, {"1", "1e18", 1}, {"1", "2", 2}} {
		cmd := exec.Command(binary, "check", "--config", cfg(tc.warn, tc.crit), "mem")
		out, _ := cmd.CombinedOutput()
		require.Equal(t, tc.code, cmd.ProcessState.ExitCode(), "%s", out)
		require.Contains(t, string(out), "memory_total_bytes")
		// A Nagios plugin's output: status line | perfdata, long text, | more perfdata.
		first, _, _ := strings.Cut(string(out), "\n")
		status := []string{"OK", "WARNING", "CRITICAL"}[tc.code]
		require.True(t, strings.HasPrefix(first, "MEM "+status+" - "), "%s", out)
		_, perf, ok := strings.Cut(first, " | ")
		require.True(t, ok, "%s", first)
		require.Regexp(t, perfItemRe, perf)
		require.Contains(t, string(out), "\n| ", "the rest of the performance data")
	}

	// A rule with `for` is pending on a one-shot run, and says so: exit 0;
	// --ignore-for fires it at once.
	pending := filepath.Join(dir, "for.yaml")
	require.NoError(t, os.WriteFile(pending, []byte("checks:\n  - name: mem\n    kind: memory\n    rules:\n      - {metric: memory_total_bytes, crit: 1, for: 1h}\n"), 0o600))
	cmd := exec.Command(binary, "check", "--config", pending, "mem")
	out, _ := cmd.CombinedOutput()
	require.Equal(t, 0, cmd.ProcessState.ExitCode(), "%s", out)
	require.Contains(t, string(out), "pending (waiting for the rule's for): mem memory_total_bytes")
	cmd = exec.Command(binary, "check", "--ignore-for", "--config", pending, "mem")
	out, _ = cmd.CombinedOutput()
	require.Equal(t, 2, cmd.ProcessState.ExitCode(), "%s", out)

	cmd = exec.Command(binary, "check", "nosuchcheck")
	out, _ = cmd.CombinedOutput()
	require.Equal(t, 3, cmd.ProcessState.ExitCode())
	require.Contains(t, string(out), `no enabled check named "nosuchcheck"`)
}

func TestConfigValidateAndDefault(t *testing.T) {
	out, err := exec.Command(binary, "config", "default").Output()
	require.NoError(t, err)
	p := filepath.Join(t.TempDir(), "default.yaml")
	require.NoError(t, os.WriteFile(p, out, 0o600))
	res, err := exec.Command(binary, "config", "validate", p).CombinedOutput()
	require.NoError(t, err, "%s", res)
	require.Contains(t, string(res), p+": ok")

	bad := filepath.Join(t.TempDir(), "bad.yaml")
	require.NoError(t, os.WriteFile(bad, []byte("checks:\n  - name: d\n    kind: disk\n    shedule: \"@every 1m\"\n"), 0o600))
	cmd := exec.Command(binary, "config", "validate", bad)
	res, _ = cmd.CombinedOutput()
	require.Equal(t, 1, cmd.ProcessState.ExitCode())
	require.Contains(t, string(res), bad+`:4:5: unknown key "shedule" in checks[0]`)
}

func TestHelp(t *testing.T) {
	for _, args := range [][]string{{"--help"}, {"run", "--help"}, {"check", "--help"}, {"config", "--help"}, {"config", "validate", "--help"}} {
		out, err := exec.Command(binary, args...).CombinedOutput()
		require.NoError(t, err, "%v: %s", args, out)
		require.Contains(t, string(out), "Usage", "%v", args)
	}
	out, err := exec.Command(binary, "version").Output()
	require.NoError(t, err)
	require.True(t, strings.HasPrefix(string(out), "l2agent "), "%s", out)
}

// TestSignals: SIGHUP reloads (an invalid file is rejected and the old config
// keeps running), SIGTERM stops the agent well within 5 s.
func TestSignals(t *testing.T) {
	cfg := "checks:\n  - {name: cpu, kind: cpu, schedule: \"@every 1h\"}\n"
	a := startAgent(t, cfg)
	cfgPath := a.cmd.Args[len(a.cmd.Args)-1]

	require.NoError(t, os.WriteFile(cfgPath, []byte("checks: [{name: x, kind: nope}]\n"), 0o600))
	require.NoError(t, a.cmd.Process.Signal(syscall.SIGHUP))
	require.Eventually(t, func() bool {
		return strings.Contains(string(httpGet(t, a.url+"/metrics")), "l2agent_config_last_reload_successful 0")
	}, 10*time.Second, 50*time.Millisecond)
	require.Contains(t, string(socketGet(t, a.sock, "/api/v1/status")), `"name": "cpu"`)

	require.NoError(t, os.WriteFile(cfgPath, []byte("checks:\n  - {name: mem, kind: memory}\n"), 0o600))
	require.NoError(t, a.cmd.Process.Signal(syscall.SIGHUP))
	require.Eventually(t, func() bool {
		return strings.Contains(string(httpGet(t, a.url+"/metrics")), "l2agent_config_last_reload_successful 1") &&
			strings.Contains(string(socketGet(t, a.sock, "/api/v1/status")), `"name": "mem"`)
	}, 10*time.Second, 50*time.Millisecond)

	require.NoError(t, a.cmd.Process.Signal(syscall.SIGTERM))
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	select {
	case err := <-a.done:
		require.NoError(t, err)
		a.done <- err // for the cleanup
	case <-ctx.Done():
		t.Fatal("agent did not stop within 5s of SIGTERM")
	}
	sc := bufio.NewScanner(strings.NewReader(a.logs.String()))
	var sawStop bool
	for sc.Scan() {
		if strings.Contains(sc.Text(), `msg=stopped`) {
			sawStop = true
		}
	}
	require.True(t, sawStop, "log says it stopped")
}

// TestPathFlags: --path.procfs reads another /proc, as in a container that
// mounts the host's at /host/proc.
func TestPathFlags(t *testing.T) {
	procfs, err := filepath.Abs("../../checks/memory/testdata/procfs")
	require.NoError(t, err)
	out, err := exec.Command(binary, "check", "--json", "--path.procfs", procfs, "memory").Output()
	if _, ok := err.(*exec.ExitError); !ok {
		require.NoError(t, err)
	}
	var doc struct {
		Checks []struct {
			Observations []struct {
				Metric string
				Value  float64
			} `json:"observations"`
		} `json:"checks"`
	}
	require.NoError(t, json.Unmarshal(out, &doc), "%s", out)
	require.Len(t, doc.Checks, 1)
	found := false
	for _, o := range doc.Checks[0].Observations {
		if o.Metric == "memory_total_bytes" {
			require.Equal(t, 24683620.0*1024, o.Value, "MemTotal of the testdata meminfo")
			found = true
		}
	}
	require.True(t, found, "%s", out)
}

// TestTicketsCLI: `tickets test` proves a backend works end to end; `list`
// and `flush` work without a running agent, on the store in the state dir.
func TestTicketsCLI(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "agent.yaml")
	require.NoError(t, os.WriteFile(cfg, []byte(fmt.Sprintf("state_dir: %s\nlisten_address: 127.0.0.1:%d\n", dir, testenv.FreePort(t))), 0o600))
	out, err := exec.Command(binary, "tickets", "test", "--config", cfg, "file").CombinedOutput()
	require.NoError(t, err, "%s", out)
	for _, step := range []string{"open: ok", "find: ok", "comment: ok", "resolve: ok"} {
		require.Contains(t, string(out), step)
	}
	lines, err := os.ReadFile(filepath.Join(dir, "tickets.jsonl"))
	require.NoError(t, err)
	require.Equal(t, 3, strings.Count(string(lines), "\n"), "open, comment, resolve")

	out, err = exec.Command(binary, "tickets", "flush", "--config", cfg).CombinedOutput()
	require.NoError(t, err, "%s", out)
	require.Contains(t, string(out), "file: 0 operation(s) remain")
	out, err = exec.Command(binary, "tickets", "list", "--config", cfg).CombinedOutput()
	require.NoError(t, err, "%s", out)
	require.Contains(t, string(out), "KEY")

	cmd := exec.Command(binary, "tickets", "test", "--config", cfg, "nope")
	out, _ = cmd.CombinedOutput()
	require.Equal(t, 2, cmd.ProcessState.ExitCode())
	require.Contains(t, string(out), `no ticketing backend named "nope"`)
}
