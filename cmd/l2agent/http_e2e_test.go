package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"golang.org/x/crypto/bcrypt"

	"github.com/l2agent/l2agent/deploy/testenv"
)

// daemon is the built binary running with the flags a test gives, its
// config at cfg naming the listen address (so the CLI finds it) and its log
// in a file (readable while it runs).
type daemon struct {
	cmd       *exec.Cmd
	addr, url string
	cfg, dir  string
	logPath   string
	done      chan error
}

// startDaemon writes config (state_dir and listen_address are added) and
// runs the agent with flags; it returns once it serves HTTP.
func startDaemon(t *testing.T, config string, flags ...string) *daemon {
	t.Helper()
	dir := t.TempDir()
	d := &daemon{addr: fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t)), dir: dir, cfg: filepath.Join(dir, "agent.yaml")}
	d.writeConfig(t, config)
	d.run(t, flags)
	return d
}

// startDaemonOn runs the agent on the config file cfg, as written by the
// test, with flags and --web.listen-address; it returns once it serves HTTP.
func startDaemonOn(t *testing.T, cfg string, flags ...string) *daemon {
	t.Helper()
	d := &daemon{addr: fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t)), dir: filepath.Dir(cfg), cfg: cfg}
	d.run(t, append([]string{"--web.listen-address=" + d.addr}, flags...))
	return d
}

func (d *daemon) run(t *testing.T, flags []string) {
	t.Helper()
	d.url, d.logPath, d.done = "http://"+d.addr, filepath.Join(t.TempDir(), "agent.log"), make(chan error, 1)
	logf, err := os.Create(d.logPath)
	require.NoError(t, err)
	d.cmd = exec.Command(binary, append([]string{"run", "--config", d.cfg}, flags...)...)
	d.cmd.Stdout, d.cmd.Stderr = logf, logf
	require.NoError(t, d.cmd.Start())
	logf.Close()
	go func() { d.done <- d.cmd.Wait() }()
	t.Cleanup(func() {
		d.cmd.Process.Kill()
		d.done <- <-d.done
		if t.Failed() {
			t.Logf("agent log:\n%s", d.log(t))
		}
	})
	require.Eventually(t, func() bool {
		resp, err := http.Get(d.url + "/-/healthy")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return true // 200, or 401 with basic auth: it serves
	}, 30*time.Second, 50*time.Millisecond, "agent never answered")
}

func (d *daemon) writeConfig(t *testing.T, config string) {
	t.Helper()
	require.NoError(t, os.WriteFile(d.cfg, []byte(fmt.Sprintf("state_dir: %s\nlisten_address: %s\n%s", d.dir, d.addr, config)), 0o600))
}

func (d *daemon) log(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile(d.logPath)
	require.NoError(t, err)
	return string(b)
}

// stop sends SIGTERM and waits for the exit.
func (d *daemon) stop(t *testing.T) {
	t.Helper()
	require.NoError(t, d.cmd.Process.Signal(syscall.SIGTERM))
	select {
	case err := <-d.done:
		d.done <- err
	case <-time.After(10 * time.Second):
		t.Fatal("agent did not stop within 10s of SIGTERM")
	}
}

// request sends method path with header and returns the status and body.
func request(t *testing.T, method, url string, header map[string]string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, url, nil)
	require.NoError(t, err)
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := (&http.Client{Timeout: 30 * time.Second}).Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp.StatusCode, string(b)
}

// tickets runs `l2agent tickets ARGS --config cfg` and returns its exit code
// and output.
func tickets(t *testing.T, cfg string, args ...string) (int, string) {
	t.Helper()
	cmd := exec.Command(binary, append(append([]string{"tickets"}, args[0], "--config", cfg), args[1:]...)...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		var ee *exec.ExitError
		require.ErrorAs(t, err, &ee, "%s", out)
	}
	return cmd.ProcessState.ExitCode(), string(out)
}

const lifecycleConfig = "checks:\n  - {name: cpu, kind: cpu, schedule: \"@every 1h\"}\nticketing:\n  backends: [{name: file, kind: file}]\n"

// TestIdleTimeout: keep-alive connections left idle are closed by the agent
// after --web.idle-timeout, and not before.
func TestIdleTimeout(t *testing.T) {
	const idle, conns = 700 * time.Millisecond, 100
	d := startDaemon(t, lifecycleConfig, "--web.idle-timeout="+idle.String())
	type open struct {
		c    net.Conn
		r    *bufio.Reader
		sent time.Time // before the request: the server's idle clock starts later
	}
	var all []open
	for range conns {
		c, err := net.Dial("tcp", d.addr)
		require.NoError(t, err)
		t.Cleanup(func() { c.Close() })
		o := open{c: c, r: bufio.NewReader(c), sent: time.Now()}
		_, err = fmt.Fprintf(c, "GET /-/healthy HTTP/1.1\r\nHost: %s\r\n\r\n", d.addr)
		require.NoError(t, err)
		resp, err := http.ReadResponse(o.r, nil)
		require.NoError(t, err)
		_, err = io.Copy(io.Discard, resp.Body)
		require.NoError(t, err)
		resp.Body.Close()
		require.Equal(t, 200, resp.StatusCode)
		require.False(t, resp.Close, "the connection is kept alive")
		all = append(all, o)
	}
	for i, o := range all {
		require.NoError(t, o.c.SetReadDeadline(time.Now().Add(30*time.Second)))
		_, err := o.r.ReadByte()
		closedAt := time.Now()
		var ne net.Error
		require.False(t, errors.As(err, &ne) && ne.Timeout(), "connection %d still open after 30s", i)
		require.True(t, errors.Is(err, io.EOF) || errors.Is(err, syscall.ECONNRESET), "connection %d: %v", i, err)
		require.GreaterOrEqual(t, closedAt.Sub(o.sent), idle, "connection %d closed before the idle timeout", i)
	}

	out, err := exec.Command(binary, "run", "--help").CombinedOutput()
	require.NoError(t, err)
	require.Contains(t, string(out), "-web.idle-timeout duration")
	require.Contains(t, string(out), "(default 2m0s)")
	for _, bad := range []string{"0s", "-1s"} {
		cmd := exec.Command(binary, "run", "--web.idle-timeout="+bad)
		out, _ := cmd.CombinedOutput()
		require.Equal(t, 2, cmd.ProcessState.ExitCode(), "%s", out)
		require.Contains(t, string(out), "want a positive duration")
	}
}

// sock is the daemon's API socket: api.sock in its state dir.
func (d *daemon) sock() string { return filepath.Join(d.dir, "api.sock") }

// TestLifecycleOffByDefault: without --web.enable-lifecycle, POST /-/reload
// over TCP answers 403 naming the socket and the flag, and changes nothing;
// the API (status, tickets, flush) is not served over TCP at all; SIGHUP
// still reloads; `l2agent tickets flush` (root) flushes the running agent
// through the socket.
func TestLifecycleOffByDefault(t *testing.T) {
	d := startDaemon(t, lifecycleConfig)
	code, body := request(t, http.MethodPost, d.url+"/-/reload", nil)
	require.Equal(t, http.StatusForbidden, code)
	require.Contains(t, body, "--web.enable-lifecycle")
	require.Contains(t, body, "use the unix socket "+d.sock())
	for _, r := range []struct{ method, path string }{{"POST", "/api/v1/tickets/flush"}, {"GET", "/api/v1/status"}, {"GET", "/api/v1/tickets"}} {
		code, body := request(t, r.method, d.url+r.path, nil)
		require.Equal(t, http.StatusForbidden, code, r.path)
		require.Contains(t, body, "Use the unix socket "+d.sock(), r.path)
	}
	d.writeConfig(t, strings.Replace(lifecycleConfig, "name: cpu", "name: cpu2", 1))
	code, _ = request(t, http.MethodPost, d.url+"/-/reload", nil)
	require.Equal(t, http.StatusForbidden, code)
	require.Contains(t, string(socketGet(t, d.sock(), "/api/v1/status")), `"name": "cpu"`, "the refused reload did nothing")

	require.NoError(t, d.cmd.Process.Signal(syscall.SIGHUP))
	require.Eventually(t, func() bool {
		return strings.Contains(string(socketGet(t, d.sock(), "/api/v1/status")), `"name": "cpu2"`)
	}, 10*time.Second, 50*time.Millisecond, "SIGHUP reloads whatever the flags")

	code, out := tickets(t, d.cfg, "flush")
	require.Equal(t, 0, code, "%s", out)
	require.Contains(t, out, "file: 0 operation(s) remain")
	require.Contains(t, d.log(t), "refused a lifecycle request")
	require.Contains(t, d.log(t), "refused an API request over TCP")
}

// TestLifecycleEnabled: with --web.enable-lifecycle POST /-/reload works
// over TCP for curl, and refuses cross-site browser requests and form
// bodies; the API stays off TCP (the flag opens the reload only), and the
// CLI flushes through the socket.
func TestLifecycleEnabled(t *testing.T) {
	d := startDaemon(t, lifecycleConfig, "--web.enable-lifecycle")
	code, body := request(t, http.MethodPost, d.url+"/-/reload", nil)
	require.Equal(t, http.StatusOK, code, body)
	require.Contains(t, body, "config reloaded")
	for _, tc := range []struct {
		header map[string]string
		code   int
	}{
		{map[string]string{"Sec-Fetch-Site": "cross-site"}, http.StatusForbidden},
		{map[string]string{"Origin": "http://evil.example"}, http.StatusForbidden},
		{map[string]string{"Content-Type": "application/x-www-form-urlencoded"}, http.StatusUnsupportedMediaType},
		{map[string]string{"Content-Type": "text/plain"}, http.StatusUnsupportedMediaType},
		{map[string]string{"Sec-Fetch-Site": "same-origin", "Content-Type": "application/json"}, http.StatusOK},
		{map[string]string{"Origin": d.url}, http.StatusOK},
	} {
		code, body := request(t, http.MethodPost, d.url+"/-/reload", tc.header)
		require.Equal(t, tc.code, code, "%v: %s", tc.header, body)
		code, _ = request(t, http.MethodPost, d.url+"/api/v1/tickets/flush", tc.header)
		require.Equal(t, http.StatusForbidden, code, "flush over TCP %v", tc.header)
	}
	code, out := tickets(t, d.cfg, "flush")
	require.Equal(t, 0, code, "%s", out)
	require.Contains(t, out, "file: 0 operation(s) remain")
}

// TestLifecycleBasicAuth: with basic_auth_users in --web.config.file and
// no flag, authenticated requests may reload and read the API over TCP,
// others are refused; the CLI uses the socket, which needs no password.
func TestLifecycleBasicAuth(t *testing.T) {
	hash, err := bcrypt.GenerateFromPassword([]byte("s3cret"), bcrypt.MinCost)
	require.NoError(t, err)
	web := filepath.Join(t.TempDir(), "web.yml")
	require.NoError(t, os.WriteFile(web, []byte(fmt.Sprintf("basic_auth_users:\n  admin: %s\n", hash)), 0o600))
	d := startDaemon(t, lifecycleConfig, "--web.config.file="+web)
	auth := func(user, pass string) map[string]string {
		req, _ := http.NewRequest(http.MethodPost, "/", nil)
		req.SetBasicAuth(user, pass)
		return map[string]string{"Authorization": req.Header.Get("Authorization")}
	}
	code, body := request(t, http.MethodPost, d.url+"/-/reload", auth("admin", "s3cret"))
	require.Equal(t, http.StatusOK, code, body)
	code, _ = request(t, http.MethodPost, d.url+"/-/reload", auth("admin", "wrong"))
	require.Equal(t, http.StatusUnauthorized, code)
	code, _ = request(t, http.MethodPost, d.url+"/-/reload", nil)
	require.Equal(t, http.StatusUnauthorized, code)
	h := auth("admin", "s3cret")
	h["Sec-Fetch-Site"] = "cross-site"
	code, _ = request(t, http.MethodPost, d.url+"/-/reload", h)
	require.Equal(t, http.StatusForbidden, code, "authenticated, but from another site")
	code, body = request(t, http.MethodGet, d.url+"/api/v1/status", auth("admin", "s3cret"))
	require.Equal(t, http.StatusOK, code, body)
	require.Contains(t, body, `"name": "cpu"`)
	code, _ = request(t, http.MethodGet, d.url+"/api/v1/status", auth("admin", "wrong"))
	require.Equal(t, http.StatusUnauthorized, code)

	code, out := tickets(t, d.cfg, "flush")
	require.Equal(t, 0, code, "%s", out)
	require.Contains(t, out, "file: 0 operation(s) remain")
}

// echoRT is a ticket system that refuses every request and quotes it in
// its error page: the Authorization header and the token it carries. The
// first answer is a 500 (retried), the next ones 403 (final, set aside).
func echoRT(t *testing.T, token string) string {
	t.Helper()
	var n atomic.Int32
	srv := http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		status := http.StatusForbidden
		if n.Add(1) == 1 {
			status = http.StatusInternalServerError
		}
		http.Error(w, fmt.Sprintf("denied for Authorization: %s (token %s, %q)", r.Header.Get("Authorization"), token, token), status)
	})}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return "http://" + ln.Addr().String()
}

// TestTicketSystemErrorsHideCredentials: a ticket system that echoes the
// request's credentials in its error answers gets them neither into
// `l2agent tickets test` output, nor the agent's log, nor its store (dead
// letters).
func TestTicketSystemErrorsHideCredentials(t *testing.T) {
	const token = "rt-token-6b2f0c9a1e"
	dir := t.TempDir()
	tokenFile := filepath.Join(dir, "rt.token")
	require.NoError(t, os.WriteFile(tokenFile, []byte(token+"\n"), 0o600))
	config := fmt.Sprintf(`defaults: {jitter_max: 0s}
checks:
  - name: mem
    kind: memory
    schedule: "@every 1s"
    rules:
      - {metric: memory_total_bytes, warn: 1, crit: 1e18}
ticketing:
  backends:
    - name: rt
      kind: rt
      rt: {url: %q, token_file: %q}
`, echoRT(t, token), tokenFile)
	d := startDaemon(t, config)
	require.Eventually(t, func() bool { return strings.Contains(d.log(t), "will not be retried") }, 60*time.Second, 100*time.Millisecond,
		"a delivery was refused and set aside")
	code, out := tickets(t, d.cfg, "test", "rt")
	require.Equal(t, 1, code, "%s", out)
	d.stop(t)

	store, err := os.ReadFile(filepath.Join(d.dir, "l2agent.db"))
	require.NoError(t, err)
	log := d.log(t)
	require.Contains(t, log, "ticket operation failed; retrying", "the 500 was logged")
	for what, text := range map[string]string{"tickets test": out, "log": log, "store": string(store)} {
		require.NotContains(t, text, token, what)
		require.True(t, strings.Contains(text, "Authorization: token <secret>") || strings.Contains(text, `Authorization: token \u003csecret\u003e`),
			"%s quotes the answer, with the token hidden:\n%s", what, text)
	}
}
