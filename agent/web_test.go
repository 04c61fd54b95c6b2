package agent

import (
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/l2agent/l2agent/internal/testkit"
)

// webAgent is a started agent (no listener) with the given options; its
// config has one check and the file ticket backend.
func webAgent(t *testing.T, opts Options) *Agent {
	t.Helper()
	opts.ConfigFile = writeConfig(t, "checks:\n  - {name: count, kind: test_count, schedule: \"@every 1h\"}\nticketing:\n  backends: [{name: file, kind: file}]\n")
	opts.Logger = testkit.QuietLogger()
	if opts.ReloadInterval == 0 {
		opts.ReloadInterval = time.Millisecond
	}
	a, err := New(opts)
	require.NoError(t, err)
	require.NoError(t, a.Start(false))
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		a.Stop(ctx)
	})
	return a
}

func post(h http.Handler, path string, header map[string]string) *httptest.ResponseRecorder {
	req := httptest.NewRequest(http.MethodPost, "http://127.0.0.1:10061"+path, nil)
	for k, v := range header {
		req.Header.Set(k, v)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec
}

// TestLifecycleOffByDefault: without EnableLifecycle (and without a web
// config asking for basic auth) the state-changing endpoints answer 403
// naming the flag, and do nothing.
func TestLifecycleOffByDefault(t *testing.T) {
	a := webAgent(t, Options{})
	require.NoError(t, os.WriteFile(a.opts.ConfigFile, []byte("checks:\n  - {name: other, kind: test_count, schedule: \"@every 1h\"}\n"), 0o600))
	h := a.Handler()
	rec := post(h, "/-/reload", nil)
	require.Equal(t, http.StatusForbidden, rec.Code)
	for _, says := range []string{"POST /-/reload is off over TCP: use the unix socket " + a.SocketPath(), "start l2agent with --web.enable-lifecycle", "basic_auth_users", "SIGHUP"} {
		require.Contains(t, rec.Body.String(), says)
	}
	rec = post(h, "/api/v1/tickets/flush", nil)
	require.Equal(t, http.StatusForbidden, rec.Code)
	require.Contains(t, rec.Body.String(), "not served over TCP without authentication")
	require.Equal(t, "count", a.Results()[0].Name, "nothing was reloaded")
	// Reads of the API are not served over TCP either (TestAPINotOverTCP).
	rec = httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/api/v1/tickets", nil))
	require.Equal(t, http.StatusForbidden, rec.Code)
}

// TestLifecycleRefusesCrossSite: with the endpoints on, a cross-site
// browser request (Sec-Fetch-Site, or an Origin that is not the Host) and a
// body a cross-site form could send are refused; curl's request, a
// same-origin one and JSON pass.
func TestLifecycleRefusesCrossSite(t *testing.T) {
	a := webAgent(t, Options{EnableLifecycle: true})
	h := a.Handler()
	for _, tc := range []struct {
		header map[string]string
		code   int
		says   string
	}{
		{nil, 200, "config reloaded"},
		{map[string]string{"Sec-Fetch-Site": "cross-site"}, 403, "cross-origin"},
		{map[string]string{"Sec-Fetch-Site": "same-site"}, 403, "cross-origin"},
		{map[string]string{"Sec-Fetch-Site": "same-origin"}, 200, "config reloaded"},
		{map[string]string{"Sec-Fetch-Site": "none"}, 200, "config reloaded"},
		{map[string]string{"Origin": "http://evil.example"}, 403, "cross-origin"},
		{map[string]string{"Origin": "http://127.0.0.1:10062"}, 403, "cross-origin"},
		{map[string]string{"Origin": "http://127.0.0.1:10061"}, 200, "config reloaded"},
		{map[string]string{"Origin": "http://evil.example", "Sec-Fetch-Site": "same-origin"}, 200, "config reloaded"},
		{map[string]string{"Content-Type": "application/x-www-form-urlencoded"}, 415, "HTML form"},
		{map[string]string{"Content-Type": "multipart/form-data; boundary=x"}, 415, "HTML form"},
		{map[string]string{"Content-Type": " Text/Plain;charset=UTF-8"}, 415, "HTML form"},
		{map[string]string{"Content-Type": "application/json"}, 200, "config reloaded"},
	} {
		rec := post(h, "/-/reload", tc.header)
		require.Equal(t, tc.code, rec.Code, "%v: %s", tc.header, rec.Body)
		require.Contains(t, rec.Body.String(), tc.says, "%v", tc.header)
	}
	// The flag opens POST /-/reload over TCP, not the API (TestAPINotOverTCP);
	// through the socket, flush refuses cross-site requests too.
	require.Equal(t, http.StatusForbidden, post(h, "/api/v1/tickets/flush", nil).Code)
	sh := a.socketGuard(a.routes(), -1)
	rec := postAs(sh, "/api/v1/tickets/flush", map[string]string{"Sec-Fetch-Site": "cross-site"}, peer{uid: 0})
	require.Equal(t, http.StatusForbidden, rec.Code)
	require.Contains(t, rec.Body.String(), "cross-origin")
	rec = postAs(sh, "/api/v1/tickets/flush", nil, peer{uid: 0})
	require.Equal(t, http.StatusOK, rec.Code, "%s", rec.Body)
	require.JSONEq(t, `{"pending": {"file": 0}}`, rec.Body.String())
	rec = postAs(sh, "/api/v1/tickets/flush", nil, peer{uid: 64001, gid: 64001})
	require.Equal(t, http.StatusForbidden, rec.Code, "a peer neither root nor in api.group")
}

// postAs posts to h as if through the socket from p.
func postAs(h http.Handler, path string, header map[string]string, p peer) *httptest.ResponseRecorder {
	req := httptest.NewRequest(http.MethodPost, "http://l2agent"+path, nil)
	req = req.WithContext(context.WithValue(req.Context(), peerKey{}, p))
	for k, v := range header {
		req.Header.Set(k, v)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec
}

// TestLifecycleWithBasicAuth: when the web config sets basic_auth_users
// (the exporter-toolkit checks the password before the handler runs), an
// authenticated request may use the endpoints without the flag; the web
// config is read at each request, as the toolkit does.
func TestLifecycleWithBasicAuth(t *testing.T) {
	web := filepath.Join(t.TempDir(), "web.yml")
	require.NoError(t, os.WriteFile(web, []byte("basic_auth_users:\n  admin: $2y$10$QOauhQNbBCuQDKes6eFzPeMqBSjb7Mr5DUmpZ/VcEd00UAV/LDeSi\n"), 0o600))
	a := webAgent(t, Options{WebConfigFile: web})
	h := a.Handler()
	auth := map[string]string{"Authorization": "Basic YWRtaW46ZmFrZXBhc3N3b3Jk"}
	require.Equal(t, http.StatusOK, post(h, "/-/reload", auth).Code)
	require.Equal(t, http.StatusForbidden, post(h, "/-/reload", nil).Code, "no credentials")
	auth["Sec-Fetch-Site"] = "cross-site"
	require.Equal(t, http.StatusForbidden, post(h, "/-/reload", auth).Code, "authenticated, but cross-site")
	delete(auth, "Sec-Fetch-Site")

	// Authenticated requests read the API over TCP; others get 403.
	req := httptest.NewRequest(http.MethodGet, "/api/v1/status", nil)
	req.Header.Set("Authorization", auth["Authorization"])
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	require.Equal(t, http.StatusOK, rec.Code)
	require.Contains(t, rec.Body.String(), `"name": "count"`)
	rec = httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/api/v1/status", nil))
	require.Equal(t, http.StatusForbidden, rec.Code)

	require.NoError(t, os.WriteFile(web, []byte("tls_server_config: {}\n"), 0o600))
	rec = post(h, "/-/reload", auth)
	require.Equal(t, http.StatusForbidden, rec.Code, "basic auth removed from the web config")
	require.Contains(t, rec.Body.String(), "--web.enable-lifecycle")
}

func TestIdleTimeoutOption(t *testing.T) {
	require.Equal(t, DefaultIdleTimeout, Options{}.idleTimeout())
	require.Equal(t, DefaultIdleTimeout, Options{IdleTimeout: -time.Second}.idleTimeout())
	require.Equal(t, 3*time.Second, Options{IdleTimeout: 3 * time.Second}.idleTimeout())
}

func TestSimpleContentType(t *testing.T) {
	for ct, want := range map[string]bool{"": false, "application/json": false, "application/x-www-form-urlencoded": true,
		"MULTIPART/FORM-DATA; boundary=a": true, "text/plain": true, "text/plain;charset=utf-8": true, "text/html": false} {
		require.Equal(t, want, simpleContentType(ct), "%q", ct)
	}
}
