package helper_test

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	_ "github.com/l2agent/l2agent/checks/all" // the check kinds the default config names
	"github.com/l2agent/l2agent/configs"
	"github.com/l2agent/l2agent/internal/alert"
	"github.com/l2agent/l2agent/remediate"
	_ "github.com/l2agent/l2agent/remediate/all"
	"github.com/l2agent/l2agent/remediate/helper"
	_ "github.com/l2agent/l2agent/ticketing/all"
)

// fixture is a helper serving on a unix socket in a temp dir, each
// connection with the options of the moment, and a log dir disk_cleanup
// may clean.
type fixture struct {
	t        *testing.T
	sock     string
	config   string // the policy file the helper loads for each request
	stateDir string // the helper's audit log
	logs     string // allow_paths of disk_cleanup

	mu   sync.Mutex
	opts helper.Options
	errs []error
}

func newFixture(t *testing.T) *fixture {
	dir := t.TempDir()
	f := &fixture{t: t, sock: filepath.Join(dir, "h.sock"), config: filepath.Join(dir, "agent.yaml"),
		stateDir: filepath.Join(dir, "helper-state"), logs: filepath.Join(dir, "log")}
	require.NoError(t, os.MkdirAll(f.logs, 0o755))
	f.opts = helper.Options{ConfigFile: f.config, StateDir: f.stateDir, AllowUIDs: []uint32{uint32(os.Getuid())}, ReadTimeout: 5 * time.Second}
	l, err := net.ListenUnix("unix", &net.UnixAddr{Name: f.sock, Net: "unix"})
	require.NoError(t, err)
	var wg sync.WaitGroup
	t.Cleanup(func() { l.Close(); wg.Wait() })
	wg.Go(func() {
		for {
			c, err := l.AcceptUnix()
			if err != nil {
				return
			}
			f.mu.Lock()
			o := f.opts
			f.mu.Unlock()
			err = helper.ServeConn(context.Background(), c, o)
			c.Close()
			f.mu.Lock()
			f.errs = append(f.errs, err)
			f.mu.Unlock()
		}
	})
	return f
}

// policy writes the helper's config: disk_cleanup in f.logs, with extra
// keys of its action block.
func (f *fixture) policy(extra string) {
	y := fmt.Sprintf(`state_dir: %s
remediation:
  actions:
    disk_cleanup:
      allow_paths: [%s]
      params: {globs: ["*.gz"], older_than: 7d}
%s`, filepath.Join(filepath.Dir(f.config), "agent-state"), f.logs, extra)
	require.NoError(f.t, os.WriteFile(f.config, []byte(y), 0o600))
}

// oldLog makes a rotated log 30 days old in f.logs.
func (f *fixture) oldLog(name string) string {
	p := filepath.Join(f.logs, name)
	require.NoError(f.t, os.WriteFile(p, make([]byte, 64<<10), 0o644))
	old := time.Now().Add(-30 * 24 * time.Hour)
	require.NoError(f.t, os.Chtimes(p, old, old))
	return p
}

func (f *fixture) set(change func(*helper.Options)) {
	f.mu.Lock()
	defer f.mu.Unlock()
	change(&f.opts)
}

func (f *fixture) call(req remediate.Request) remediate.Response {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	resp, err := remediate.Call(ctx, f.sock, req)
	require.NoError(f.t, err)
	return resp
}

func (f *fixture) audit() []remediate.Record {
	recs, err := remediate.ReadAudit(filepath.Join(f.stateDir, remediate.AuditFile), 0)
	require.NoError(f.t, err)
	return recs
}

var diskAlert = alert.Alert{Key: "h/disk/disk_used_ratio", Check: "disk", Metric: "disk_used_ratio", State: alert.StateCrit}

func TestHelperAppliesUnderItsOwnPolicy(t *testing.T) {
	f := newFixture(t)
	f.policy("      enabled: true\n")
	old := f.oldLog("a.log.1.gz")
	resp := f.call(remediate.Request{Mode: remediate.ModeApply, Action: "disk_cleanup", Alert: diskAlert})
	require.Empty(t, resp.Result, resp.Reason)
	require.Empty(t, resp.Error)
	require.NotNil(t, resp.Outcome)
	require.True(t, resp.Outcome.Success, resp.Outcome.Result)
	require.Contains(t, resp.Outcome.Effect, "freed")
	require.NoFileExists(t, old)
	recs := f.audit()
	require.Len(t, recs, 1)
	require.Equal(t, remediate.ResultSuccess, recs[0].Result)
	require.Equal(t, fmt.Sprintf("uid %d pid %d", os.Getuid(), os.Getpid()), recs[0].Peer)
}

// The peer's uid is not among those allowed: refused before the request is read.
func TestHelperRefusesPeer(t *testing.T) {
	f := newFixture(t)
	f.policy("      enabled: true\n")
	old := f.oldLog("a.log.1.gz")
	f.set(func(o *helper.Options) { o.AllowUIDs = []uint32{uint32(os.Getuid()) + 1} })
	resp := f.call(remediate.Request{Mode: remediate.ModeApply, Action: "disk_cleanup", Alert: diskAlert})
	require.Equal(t, remediate.ResultNotAllowed, resp.Result)
	require.Contains(t, resp.Reason, fmt.Sprintf("uid %d may not use", os.Getuid()))
	require.FileExists(t, old)
}

func TestHelperRefusesUnknownActionAndMode(t *testing.T) {
	f := newFixture(t)
	f.policy("      enabled: true\n")
	resp := f.call(remediate.Request{Mode: remediate.ModeApply, Action: "rm_rf", Alert: diskAlert})
	require.Equal(t, remediate.ResultNotAllowed, resp.Result)
	require.Contains(t, resp.Reason, `unknown action "rm_rf"`)
	resp = f.call(remediate.Request{Mode: "exec", Action: "disk_cleanup", Alert: diskAlert})
	require.Equal(t, remediate.ResultNotAllowed, resp.Result)
	require.Contains(t, resp.Reason, `unknown mode "exec"`)
}

// Params that name a path outside allow_paths (what a compromised agent
// would send) are refused, in a plan as in an apply, and nothing changes.
func TestHelperRefusesPathOutsideAllowlist(t *testing.T) {
	f := newFixture(t)
	f.policy("      enabled: true\n")
	outside := t.TempDir()
	victim := filepath.Join(outside, "keep.gz")
	require.NoError(t, os.WriteFile(victim, []byte("x"), 0o644))
	old := time.Now().Add(-30 * 24 * time.Hour)
	require.NoError(t, os.Chtimes(victim, old, old))
	params := fmt.Sprintf("paths: [%s]\nglobs: ['*.gz']\nolder_than: 1d\n", outside)
	for _, mode := range []string{remediate.ModePlan, remediate.ModeApply} {
		resp := f.call(remediate.Request{Mode: mode, Action: "disk_cleanup", Alert: diskAlert, Params: params})
		require.Equal(t, remediate.ResultNotAllowed, resp.Result, mode)
		require.Contains(t, resp.Reason, "outside allow_paths", mode)
	}
	require.FileExists(t, victim)
	// A key the params type does not have is refused too.
	resp := f.call(remediate.Request{Mode: remediate.ModeApply, Action: "disk_cleanup", Alert: diskAlert, Params: "globs: ['*']\nolder_than: 1d\nrecursive_root: /\n"})
	require.Equal(t, remediate.ResultNotAllowed, resp.Result)
	require.Contains(t, resp.Reason, "recursive_root")
	recs := f.audit()
	require.Len(t, recs, 2, "every refused apply is audited")
	require.Equal(t, remediate.ResultNotAllowed, recs[0].Result)
}

func TestHelperRefusesOversizedRequest(t *testing.T) {
	f := newFixture(t)
	f.policy("      enabled: true\n")
	conn, err := net.Dial("unix", f.sock)
	require.NoError(t, err)
	defer conn.Close()
	big := `{"mode":"apply","action":"disk_cleanup","params":"` + strings.Repeat("x", remediate.MaxRequest) + `"}` + "\n"
	go conn.Write([]byte(big)) // the helper stops reading at the bound: the rest may never be read
	require.NoError(t, conn.SetReadDeadline(time.Now().Add(30*time.Second)))
	buf := make([]byte, 4096)
	n, _ := conn.Read(buf)
	require.Contains(t, string(buf[:n]), "request larger than")
	require.Contains(t, string(buf[:n]), `"result":"not_allowed"`)
}

// A request that never comes is given up at the read deadline.
func TestHelperReadDeadline(t *testing.T) {
	f := newFixture(t)
	f.policy("      enabled: true\n")
	f.set(func(o *helper.Options) { o.ReadTimeout = 50 * time.Millisecond })
	conn, err := net.Dial("unix", f.sock)
	require.NoError(t, err)
	defer conn.Close()
	require.NoError(t, conn.SetReadDeadline(time.Now().Add(30*time.Second)))
	buf := make([]byte, 4096)
	n, _ := conn.Read(buf) // no request sent: the helper answers and closes
	require.Contains(t, string(buf[:n]), "i/o timeout")
}

// The helper loads the policy for each request: a change of the file is in
// force at the next one, whatever the agent's copy says.
func TestHelperPolicyReload(t *testing.T) {
	f := newFixture(t)
	f.policy("      enabled: false\n")
	old := f.oldLog("a.log.1.gz")
	resp := f.call(remediate.Request{Mode: remediate.ModeApply, Action: "disk_cleanup", Alert: diskAlert})
	require.Equal(t, remediate.ResultNotAllowed, resp.Result)
	require.Contains(t, resp.Reason, "not enabled")
	require.FileExists(t, old)

	f.policy("      enabled: true\n      dry_run: true\n")
	resp = f.call(remediate.Request{Mode: remediate.ModeApply, Action: "disk_cleanup", Alert: diskAlert})
	require.Equal(t, remediate.ResultDryRun, resp.Result)
	require.FileExists(t, old)

	f.policy("      enabled: true\n      max_runs: {count: 1, window: 1h}\n")
	resp = f.call(remediate.Request{Mode: remediate.ModeApply, Action: "disk_cleanup", Alert: diskAlert})
	require.Empty(t, resp.Result, resp.Reason)
	require.NoFileExists(t, old)
	// The rate limit holds across helper runs (restored from its own audit log).
	f.oldLog("b.log.1.gz")
	resp = f.call(remediate.Request{Mode: remediate.ModeApply, Action: "disk_cleanup", Alert: diskAlert})
	require.Equal(t, remediate.ResultSkippedRateLimit, resp.Result)

	require.NoError(t, os.WriteFile(f.config, []byte("checks: [{name: x, kind: nope}]\n"), 0o600))
	resp = f.call(remediate.Request{Mode: remediate.ModeApply, Action: "disk_cleanup", Alert: diskAlert})
	require.Contains(t, resp.Error, "load the policy")
}

// The agent's engine with remediation.helper set sends its actions to the
// helper and keeps its own policy and audit; both logs have the run.
func TestEngineDelegatesToHelper(t *testing.T) {
	f := newFixture(t)
	f.policy("      enabled: true\n")
	old := f.oldLog("a.log.1.gz")
	agentCfg, err := configs.Load(f.config)
	require.NoError(t, err)
	agentCfg.Remediation.Helper = f.sock
	agentDir := t.TempDir()
	e, err := remediate.New(agentCfg.Remediation, agentDir, nil, nil, nil)
	require.NoError(t, err)
	require.Equal(t, f.sock, e.Helper())

	p, err := e.Plan(context.Background(), "disk_cleanup", diskAlert)
	require.NoError(t, err)
	require.Contains(t, p.Text, "a.log.1.gz")
	require.FileExists(t, old)

	at, attempted := e.Run(context.Background(), "disk_cleanup", diskAlert, func(context.Context) (bool, error) { return true, nil })
	require.True(t, attempted)
	require.True(t, at.Success, at.Result)
	require.NoFileExists(t, old)
	agentRecs, err := remediate.ReadAudit(filepath.Join(agentDir, remediate.AuditFile), 0)
	require.NoError(t, err)
	require.Len(t, agentRecs, 1)
	require.Equal(t, "alert cleared", agentRecs[0].Reason)
	helperRecs := f.audit()
	require.Len(t, helperRecs, 1)
	require.Equal(t, "applied; the agent verifies", helperRecs[0].Reason)

	// The helper's policy, not the agent's, decides: disabled there, refused.
	f.policy("      enabled: false\n")
	f.oldLog("c.log.1.gz")
	at, attempted = e.Run(context.Background(), "disk_cleanup", alert.Alert{Key: "other", Check: "disk", State: alert.StateCrit}, nil)
	require.True(t, attempted)
	require.False(t, at.Success)
	require.Contains(t, at.Result, "the remediation helper refused: not_allowed")
	require.FileExists(t, filepath.Join(f.logs, "c.log.1.gz"))
}

func TestHelperSocketSetting(t *testing.T) {
	yes := func(string) bool { return true }
	no := func(string) bool { return false }
	require.Equal(t, configs.DefaultHelperSocket, configs.Remediation{}.HelperSocket(yes))
	require.Equal(t, "", configs.Remediation{}.HelperSocket(no))
	require.Equal(t, "", configs.Remediation{Helper: "off"}.HelperSocket(yes))
	require.Equal(t, "/x.sock", configs.Remediation{Helper: "/x.sock"}.HelperSocket(no))
	_, err := configs.Parse("t.yaml", []byte("remediation: {helper: rel/x.sock}\n"))
	require.ErrorContains(t, err, "remediation.helper")
}
