package agent

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// apiGet GETs path from a's API through a real API socket (root-only, made
// for the test) and returns the body; it fails the test on any status but
// 200.
func apiGet(t *testing.T, a *Agent, path string) string {
	t.Helper()
	code, body := apiDo(t, a, http.MethodGet, path)
	require.Equal(t, http.StatusOK, code, "%s: %s", path, body)
	return body
}

var testSockets sync.Map // *Agent → *apiSocket

// apiDo sends a request to a's API socket.
func apiDo(t *testing.T, a *Agent, method, path string) (int, string) {
	t.Helper()
	v, ok := testSockets.Load(a)
	if !ok {
		s, err := a.listenSocket(filepath.Join(t.TempDir(), "api.sock"), "")
		require.NoError(t, err)
		t.Cleanup(func() { s.srv.Close() })
		v, _ = testSockets.LoadOrStore(a, s)
	}
	sock := v.(*apiSocket).path
	c := http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
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

// TestAPINotOverTCP: over TCP the detailed API answers 403 naming the
// socket, unless basic auth was configured and sent; the socket serves it,
// and its file is mode 0600 (no group) or 0660 (api.group).
func TestAPINotOverTCP(t *testing.T) {
	a := webAgent(t, Options{})
	h := a.Handler()
	for _, tc := range []struct{ method, path string }{
		{"GET", "/api/v1/status"}, {"GET", "/api/v1/tickets"}, {"POST", "/api/v1/tickets/flush"}, {"GET", "/api/v1/anything"},
	} {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(tc.method, tc.path, nil))
		require.Equal(t, http.StatusForbidden, rec.Code, tc.path)
		require.Contains(t, rec.Body.String(), "Use the unix socket "+a.SocketPath(), tc.path)
		require.NotContains(t, rec.Body.String(), `"checks"`)
	}
	require.Contains(t, apiGet(t, a, "/api/v1/status"), `"name": "count"`)
	require.Contains(t, apiGet(t, a, "/api/v1/tickets"), `"pending"`)
	code, body := apiDo(t, a, http.MethodPost, "/api/v1/tickets/flush")
	require.Equal(t, http.StatusOK, code, "an allowed peer on the socket may flush without the flag: %s", body)
	v, _ := testSockets.Load(a)
	fi, err := os.Stat(v.(*apiSocket).path)
	require.NoError(t, err)
	require.Equal(t, os.FileMode(0o600), fi.Mode().Perm(), "no api.group: root only")
}

// TestPeerAllowed: root, the agent's own user and members of the group
// (primary or supplementary) pass; everyone else, and unread credentials,
// do not.
func TestPeerAllowed(t *testing.T) {
	me := uint32(os.Geteuid())
	other := uint32(64000)
	if me == other {
		other++
	}
	require.True(t, peer{uid: 0, gid: 0}.allowed(-1))
	require.True(t, peer{uid: me, gid: 12345}.allowed(-1))
	require.False(t, peer{uid: other, gid: 4}.allowed(-1), "no group configured")
	require.True(t, peer{uid: other, gid: 4}.allowed(4), "primary group")
	require.True(t, peer{uid: other, gid: 100, groups: []uint32{27, 4}}.allowed(4), "supplementary group")
	require.False(t, peer{uid: other, gid: 100, groups: []uint32{27}}.allowed(4))
	require.False(t, peer{uid: 0, err: io.EOF}.allowed(4), "credentials not read")
}

// TestSocketPeerCredentials: the credentials read from a real connection
// are this process's.
func TestSocketPeerCredentials(t *testing.T) {
	path := filepath.Join(t.TempDir(), "s.sock")
	ln, err := net.Listen("unix", path)
	require.NoError(t, err)
	defer ln.Close()
	got := make(chan peer, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			got <- peer{err: err}
			return
		}
		got <- peerOf(c)
		c.Close()
	}()
	c, err := net.Dial("unix", path)
	require.NoError(t, err)
	defer c.Close()
	p := <-got
	require.NoError(t, p.err)
	require.Equal(t, uint32(os.Getuid()), p.uid)
	require.Equal(t, uint32(os.Getgid()), p.gid)
	groups, err := os.Getgroups()
	require.NoError(t, err)
	for _, g := range groups {
		require.Contains(t, p.groups, uint32(g))
	}
}

// TestStaleSocketReplaced: a socket left by a crash is replaced; any other
// file in the way is an error, never removed.
func TestStaleSocketReplaced(t *testing.T) {
	a := webAgent(t, Options{})
	dir := t.TempDir()
	stale := filepath.Join(dir, "api.sock")
	ln, err := net.Listen("unix", stale)
	require.NoError(t, err)
	ln.(*net.UnixListener).SetUnlinkOnClose(false)
	ln.Close()
	s, err := a.listenSocket(stale, "")
	require.NoError(t, err)
	s.srv.Close()
	file := filepath.Join(dir, "file")
	require.NoError(t, os.WriteFile(file, []byte("keep"), 0o600))
	_, err = a.listenSocket(file, "")
	require.ErrorContains(t, err, "is in the way")
	b, err := os.ReadFile(file)
	require.NoError(t, err)
	require.Equal(t, "keep", strings.TrimSpace(string(b)))
}

// TestSocketGroupWithoutChown: an agent that may not give the socket to
// api.group (here: an unprivileged process, a group it is not in) falls
// back to mode 0666 and the peer credential check, and says so; with the
// group of its own it gives it 0660.
func TestSocketGroupWithoutChown(t *testing.T) {
	a := webAgent(t, Options{})
	path := filepath.Join(t.TempDir(), "f")
	require.NoError(t, os.WriteFile(path, nil, 0o600))
	mode, err := a.socketGroup(path, "own", os.Getegid())
	require.NoError(t, err)
	require.Equal(t, os.FileMode(0o660), mode)
	mode, err = a.socketGroup(path, "", -1)
	require.NoError(t, err)
	require.Equal(t, os.FileMode(0o600), mode)
	if os.Geteuid() != 0 {
		mode, err = a.socketGroup(path, "other", 64123)
		require.NoError(t, err)
		require.Equal(t, os.FileMode(0o666), mode)
	}
}
