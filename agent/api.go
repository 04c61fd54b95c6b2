package agent

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/http"
	"os"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
	"unsafe"

	"github.com/l2agent/l2agent/configs"
)

// The detailed API (/api/v1/*: status, tickets, flush and what follows;
// POST /-/reload) tells what the agent's files keep from local users:
// directory names inside root-only trees, other users' file names and
// command lines, which admins lack 2FA. It is served in full on a unix
// socket that only root and the members of api.group may use (mode 0660,
// and each connection's peer credentials checked); over TCP it answers only
// requests authenticated by the web config's basic_auth_users. /metrics and
// the health endpoints stay open on TCP, as node_exporter's.

// APISocket is the path of the API socket for cfg: api.socket, else api.sock
// in $RUNTIME_DIRECTORY (its first entry) when set, else in the state dir.
func APISocket(cfg *configs.Config) string {
	if cfg.API.Socket != "" {
		return cfg.API.Socket
	}
	if dir, _, _ := strings.Cut(os.Getenv("RUNTIME_DIRECTORY"), ":"); dir != "" {
		return filepath.Join(dir, configs.APISocketName)
	}
	return filepath.Join(StateDir(cfg), configs.APISocketName)
}

// detailed says whether path is part of the detailed API.
func detailed(path string) bool {
	return strings.HasPrefix(path, "/api/") || path == "/-/reload"
}

// tcpGuard serves h over TCP: the detailed API answers only requests the
// web config's basic_auth_users authenticated (the exporter-toolkit checked
// the password before this runs), others get 403 naming the socket; POST
// /-/reload is guarded by stateChanging (it also answers any client with
// --web.enable-lifecycle, rate-limited and re-running only changed checks).
func (a *Agent) tcpGuard(h http.Handler, socket string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// POST /-/reload says itself what it takes (stateChanging).
		if !detailed(r.URL.Path) || r.URL.Path == "/-/reload" || a.authenticated(r) {
			h.ServeHTTP(w, r)
			return
		}
		a.log.Warn("refused an API request over TCP: not authenticated", "path", r.URL.Path, "remote", r.RemoteAddr)
		http.Error(w, fmt.Sprintf("%s is not served over TCP without authentication: it shows what the agent's files keep from local users. "+
			"Use the unix socket %s (root and the members of the config's api.group), e.g. 'l2agent tickets list' or "+
			"curl --unix-socket %s http://l2agent%s; or set basic_auth_users in the file of --web.config.file and authenticate.",
			r.URL.Path, socket, socket, r.URL.Path), http.StatusForbidden)
	})
}

// authenticated says whether r carries basic auth credentials that the
// exporter-toolkit checked: the web config asks for them and r has them
// (a request with wrong ones never gets here). The file is read at every
// request, as the toolkit does, so that removing the users takes effect.
func (a *Agent) authenticated(r *http.Request) bool {
	if a.opts.WebConfigFile == "" {
		return false
	}
	if _, _, ok := r.BasicAuth(); !ok {
		return false
	}
	return webConfigHasUsers(a.opts.WebConfigFile)
}

// peerKey is the context key of a socket connection's peer credentials.
type peerKey struct{}

// peer is who is on the other end of a socket connection (SO_PEERCRED, and
// SO_PEERGROUPS for its supplementary groups), as of its connect(2).
type peer struct {
	uid, gid uint32
	groups   []uint32
	err      error // the credentials could not be read: refused
}

// peerOf reads the credentials of a unix socket connection.
func peerOf(c net.Conn) peer {
	uc, ok := c.(*net.UnixConn)
	if !ok {
		return peer{err: errors.New("not a unix socket connection")}
	}
	raw, err := uc.SyscallConn()
	if err != nil {
		return peer{err: fmt.Errorf("peer credentials: %w", err)}
	}
	var p peer
	cerr := raw.Control(func(fd uintptr) {
		cred, err := syscall.GetsockoptUcred(int(fd), syscall.SOL_SOCKET, syscall.SO_PEERCRED)
		if err != nil {
			p.err = fmt.Errorf("SO_PEERCRED: %w", err)
			return
		}
		p.uid, p.gid = cred.Uid, cred.Gid
		p.groups, p.err = peerGroups(int(fd))
	})
	if cerr != nil {
		p.err = errors.Join(p.err, fmt.Errorf("peer credentials: %w", cerr))
	}
	return p
}

// soPeerGroups is SO_PEERGROUPS (Linux 4.13), not in package syscall.
const soPeerGroups = 59

// peerGroups reads the peer's supplementary groups (SO_PEERGROUPS).
func peerGroups(fd int) ([]uint32, error) {
	buf := make([]uint32, 64)
	for {
		n := uint32(len(buf) * 4)
		_, _, e := syscall.Syscall6(syscall.SYS_GETSOCKOPT, uintptr(fd), syscall.SOL_SOCKET, soPeerGroups,
			uintptr(unsafe.Pointer(&buf[0])), uintptr(unsafe.Pointer(&n)), 0)
		switch {
		case e == 0:
			return buf[:n/4], nil
		case e == syscall.ERANGE && int(n/4) > len(buf) && n/4 <= 65536:
			buf = make([]uint32, n/4)
		default:
			return nil, fmt.Errorf("SO_PEERGROUPS: %w", e)
		}
	}
}

// allowed says whether p may use the API: root, the agent's own user, or a
// member (primary or supplementary) of gid; gid < 0: no group.
func (p peer) allowed(gid int) bool {
	if p.err != nil {
		return false
	}
	if p.uid == 0 || p.uid == uint32(os.Geteuid()) {
		return true
	}
	return gid >= 0 && (p.gid == uint32(gid) || slices.Contains(p.groups, uint32(gid)))
}

// SocketPath is the API socket's path: the one listening, else the one the
// config names.
func (a *Agent) SocketPath() string {
	if a.sock != nil {
		return a.sock.path
	}
	return APISocket(a.Config())
}

// apiSocket is the listening socket of the detailed API.
type apiSocket struct {
	path string
	gid  int // the group that may use it; -1: root only
	srv  *http.Server
	ln   net.Listener
}

// listenSocket creates the API socket at path for group (mode 0660): a
// stale socket left by a crash is replaced, any other file there is an
// error. A group that does not exist leaves the socket to root, with a
// warning.
func (a *Agent) listenSocket(path, group string) (*apiSocket, error) {
	gid := -1
	if group != "" {
		g, err := user.LookupGroup(group)
		if err != nil {
			a.log.Warn("api.group not found; the API socket is for root only", "group", group, "err", err)
		} else if gid, err = strconv.Atoi(g.Gid); err != nil {
			return nil, fmt.Errorf("api.group %s: gid %q: %w", group, g.Gid, err)
		}
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o750); err != nil {
		return nil, fmt.Errorf("API socket: %w", err)
	}
	if fi, err := os.Lstat(path); err == nil {
		if fi.Mode().Type() != fs.ModeSocket {
			return nil, fmt.Errorf("API socket %s: a %s is in the way", path, fi.Mode().Type())
		}
		if err := os.Remove(path); err != nil { // stale, from a crashed agent
			return nil, fmt.Errorf("API socket: remove the stale one: %w", err)
		}
	}
	// Created with the umask's mode (never wider than 0777 &^ umask, and
	// connect needs write permission), then narrowed to what it must be.
	ln, err := net.Listen("unix", path)
	if err != nil {
		return nil, fmt.Errorf("API socket: %w", err)
	}
	ln.(*net.UnixListener).SetUnlinkOnClose(true)
	mode, err := a.socketGroup(path, group, gid)
	if err != nil {
		ln.Close()
		return nil, err
	}
	if err := os.Chmod(path, mode); err != nil {
		ln.Close()
		return nil, fmt.Errorf("API socket: %w", err)
	}
	s := &apiSocket{path: path, gid: gid, ln: ln}
	s.srv = &http.Server{
		Handler:           a.socketGuard(a.routes(), gid),
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       a.opts.idleTimeout(),
		ConnContext: func(ctx context.Context, c net.Conn) context.Context {
			return context.WithValue(ctx, peerKey{}, peerOf(c))
		},
	}
	go func() {
		if err := s.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			a.log.Error("API socket stopped", "err", err)
		}
	}()
	return s, nil
}

// socketGroup gives the socket to group gid and returns the mode it must
// have: 0600 without a group, 0660 with one. An agent that may not give
// the file away (no CAP_CHOWN and not itself in the group: add the group to
// the unit's SupplementaryGroups=) makes it 0666 and leaves the decision to
// the peer credential check (socketGuard), with a warning.
func (a *Agent) socketGroup(path, group string, gid int) (os.FileMode, error) {
	if gid < 0 {
		return 0o600, nil
	}
	err := os.Lchown(path, -1, gid)
	if err == nil {
		return 0o660, nil
	}
	if errors.Is(err, syscall.EPERM) {
		a.log.Warn("cannot give the API socket to api.group (the agent has no CAP_CHOWN and is not in the group); mode 0666, the peer credentials decide who may use it",
			"socket", path, "group", group)
		return 0o666, nil
	}
	return 0, fmt.Errorf("API socket: give it to group %s: %w", group, err)
}

// socketGuard serves h to the peers allowed on the socket; the file's mode
// keeps the others from connecting at all, this is the second lock.
func (a *Agent) socketGuard(h http.Handler, gid int) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p, _ := r.Context().Value(peerKey{}).(peer)
		if !p.allowed(gid) {
			a.log.Warn("refused an API request on the socket", "path", r.URL.Path, "uid", p.uid, "gid", p.gid, "err", p.err)
			http.Error(w, "the l2agent API is for root and the members of the config's api.group", http.StatusForbidden)
			return
		}
		h.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), onSocketKey{}, true)))
	})
}

// onSocketKey marks a request that came through the socket from an
// allowed peer: the state-changing endpoints take it as authenticated.
type onSocketKey struct{}

func onSocket(r *http.Request) bool {
	ok, _ := r.Context().Value(onSocketKey{}).(bool)
	return ok
}
