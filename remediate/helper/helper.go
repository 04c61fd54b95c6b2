// Package helper is the privileged side of remediation: `l2agent
// remediate-helper`, started by systemd for each connection to
// l2agent-remediate.socket (Accept=yes), serves one request of the
// unprivileged agent (or of root's CLI) and exits.
//
// It trusts nothing the agent says beyond which action to plan or apply
// for which alert: it checks the peer's credentials (SO_PEERCRED), reads
// one bounded request before a deadline, loads the policy itself from the
// root-owned config, re-checks the action, its params against the
// allowlists, dry run and rate limits (remediate.Engine.Serve), confines
// itself with Landlock to the action's own paths before applying, writes
// its own audit log and answers with the outcome.
package helper

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"slices"
	"strconv"
	"time"

	"golang.org/x/sys/unix"

	"github.com/l2agent/l2agent/configs"
	"github.com/l2agent/l2agent/remediate"
)

// Defaults of the packaged units.
const (
	DefaultConfig   = "/etc/l2agent/agent.yaml"
	DefaultStateDir = "/var/lib/l2agent-remediate"
	DefaultUser     = "l2agent"
	// ReadTimeout bounds reading the request.
	ReadTimeout = 10 * time.Second
)

// Options configure one helper run.
type Options struct {
	ConfigFile string // the policy: the agent's config, root-owned
	StateDir   string // the helper's audit log, root-owned
	// AllowUIDs may ask; anyone else is refused before reading a byte.
	AllowUIDs []uint32
	// Landlock: confine the process to the action's write paths before
	// applying (where the kernel has Landlock; else it says so in the log).
	Landlock    bool
	ReadTimeout time.Duration
	Log         *slog.Logger
	Env         remediate.Env // DefaultEnv unless a test points it elsewhere
}

// Peer is who is on the other end of a unix socket.
type Peer struct{ UID, GID, PID int32 }

func (p Peer) String() string { return fmt.Sprintf("uid %d pid %d", p.UID, p.PID) }

// PeerCred reads the credentials of conn's peer (SO_PEERCRED: as it was
// when it connected, set by the kernel).
func PeerCred(conn *net.UnixConn) (Peer, error) {
	raw, err := conn.SyscallConn()
	if err != nil {
		return Peer{}, fmt.Errorf("peer credentials: %w", err)
	}
	var cred *unix.Ucred
	var cerr error
	if err := raw.Control(func(fd uintptr) { cred, cerr = unix.GetsockoptUcred(int(fd), unix.SOL_SOCKET, unix.SO_PEERCRED) }); err != nil {
		return Peer{}, fmt.Errorf("peer credentials: %w", err)
	}
	if cerr != nil {
		return Peer{}, fmt.Errorf("peer credentials: %w", cerr)
	}
	return Peer{UID: int32(cred.Uid), GID: int32(cred.Gid), PID: cred.Pid}, nil
}

// ServeConn serves the one request on conn and answers it. The error is
// for the helper's log (and exit status); the peer has its answer.
func ServeConn(ctx context.Context, conn *net.UnixConn, o Options) error {
	log := o.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	peer, err := PeerCred(conn)
	if err != nil {
		return err
	}
	log = log.With("peer_uid", peer.UID, "peer_pid", peer.PID)
	if !slices.Contains(o.AllowUIDs, uint32(peer.UID)) {
		log.Warn("refused: this peer may not ask the remediation helper", "allowed_uids", fmt.Sprint(o.AllowUIDs))
		answer(conn, remediate.Response{Result: remediate.ResultNotAllowed, Reason: "uid " + strconv.Itoa(int(peer.UID)) + " may not use the remediation helper"})
		return fmt.Errorf("peer %s refused", peer)
	}
	rt := o.ReadTimeout
	if rt <= 0 {
		rt = ReadTimeout
	}
	conn.SetReadDeadline(time.Now().Add(rt))
	req, err := remediate.ReadRequest(conn)
	if err != nil {
		log.Warn("refused: bad request", "err", err)
		answer(conn, remediate.Response{Result: remediate.ResultNotAllowed, Reason: err.Error()})
		return err
	}
	conn.SetReadDeadline(time.Time{})
	log = log.With("mode", req.Mode, "action", req.Action, "key", req.Alert.Key)
	e, err := loadPolicy(o, log)
	if err != nil {
		log.Error("cannot load the policy", "err", err)
		answer(conn, remediate.Response{Error: err.Error()})
		return err
	}
	var confine remediate.Confine
	if o.Landlock {
		confine = func(action string, s configs.Options, p configs.Params) error {
			ps, full := WritePaths(action, s, p)
			if full {
				log.Warn("not confined by Landlock: the action writes anywhere a package may", "action", action)
				return nil
			}
			ps = append(ps, o.StateDir, "/dev/null")
			abi, err := RestrictWrites(ps)
			if errors.Is(err, ErrNoLandlock) {
				log.Warn("Landlock unavailable: the action runs in the unit's sandbox only", "err", err)
				return nil
			}
			if err == nil {
				log.Info("confined by Landlock", "abi", abi, "writable", fmt.Sprint(ps))
			}
			return err
		}
	}
	resp := e.Serve(ctx, req, peer.String(), confine)
	log.Info("answered", "result", resp.Result, "reason", resp.Reason, "error", resp.Error)
	return answer(conn, resp)
}

// loadPolicy loads the remediation policy from the config file, never
// delegating (this is where actions run).
func loadPolicy(o Options, log *slog.Logger) (*remediate.Engine, error) {
	cfg, err := configs.Load(o.ConfigFile)
	if err != nil {
		return nil, fmt.Errorf("load the policy: %w", err)
	}
	rc := cfg.Remediation
	rc.Helper = "off"
	env := o.Env
	if env.Procfs == "" {
		env = remediate.DefaultEnv
	}
	e, err := remediate.NewWithEnv(rc, o.StateDir, log, nil, time.Now, env)
	if err != nil {
		return nil, fmt.Errorf("load the policy: %w", err)
	}
	return e, nil
}

func answer(conn *net.UnixConn, resp remediate.Response) error {
	conn.SetWriteDeadline(time.Now().Add(ReadTimeout))
	b, err := json.Marshal(resp)
	if err != nil {
		return fmt.Errorf("encode the answer: %w", err)
	}
	if _, err := conn.Write(append(b, '\n')); err != nil {
		return fmt.Errorf("send the answer: %w", err)
	}
	return nil
}
