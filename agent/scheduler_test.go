package agent

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/l2agent/l2agent/checks"
	"github.com/l2agent/l2agent/configs"
	"github.com/l2agent/l2agent/internal/alert"
	"github.com/l2agent/l2agent/internal/testkit"
)

// Test check kinds: one that hangs until released, one that panics, one that
// counts its runs and reports a settable value.
var (
	release   = make(chan struct{})
	countRuns atomic.Int64
	value     atomic.Int64 // in thousandths
)

type funcCheck struct {
	name string
	run  func(ctx context.Context) ([]checks.Observation, error)
}

func (c funcCheck) Name() string                                          { return c.name }
func (c funcCheck) Run(ctx context.Context) ([]checks.Observation, error) { return c.run(ctx) }

func init() {
	checks.Register("test_hang", func(c configs.Check, _ checks.Env) (checks.Check, error) {
		return funcCheck{c.Name, func(context.Context) ([]checks.Observation, error) {
			<-release // ignores its context on purpose
			return nil, nil
		}}, nil
	}, nil, checks.MetricInfo{Name: "test_hang_value", Help: "never reported"})
	checks.Register("test_panic", func(c configs.Check, _ checks.Env) (checks.Check, error) {
		return funcCheck{c.Name, func(context.Context) ([]checks.Observation, error) {
			panic("boom")
		}}, nil
	}, nil, checks.MetricInfo{Name: "test_panic_value", Help: "never reported"})
	checks.Register("test_count", func(c configs.Check, _ checks.Env) (checks.Check, error) {
		return funcCheck{c.Name, func(context.Context) ([]checks.Observation, error) {
			countRuns.Add(1)
			return []checks.Observation{{Metric: "test_value", Labels: map[string]string{"slot": "a"}, Value: float64(value.Load()) / 1000}}, nil
		}}, nil
	}, nil, checks.MetricInfo{Name: "test_value", Help: "A test value."})
}

func writeConfig(t *testing.T, body string) string {
	t.Helper()
	dir := t.TempDir()
	p := filepath.Join(dir, "agent.yaml")
	// Tests never touch the host's /var/lib/l2agent.
	require.NoError(t, os.WriteFile(p, []byte("state_dir: "+dir+"\n"+body), 0o600))
	return p
}

func newTestAgent(t *testing.T, body string) (*Agent, *httptest.Server) {
	t.Helper()
	a, err := New(Options{ConfigFile: writeConfig(t, body), Logger: testkit.QuietLogger(), EnableLifecycle: true, ReloadInterval: time.Millisecond})
	require.NoError(t, err)
	srv := httptest.NewServer(a.Handler())
	require.NoError(t, a.Start(false))
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		a.Stop(ctx)
		srv.Close()
	})
	return a, srv
}

func get(t *testing.T, url string) string {
	t.Helper()
	c := http.Client{Timeout: 5 * time.Second}
	resp, err := c.Get(url)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return string(b)
}

func TestHungAndPanickingChecksDoNotStopOthers(t *testing.T) {
	released := false
	t.Cleanup(func() {
		if !released {
			close(release)
		}
	})
	a, srv := newTestAgent(t, `
hostname: t1
defaults: {jitter_max: 0s}
checks:
  - {name: hang, kind: test_hang, schedule: "@every 1s", timeout: 300ms}
  - {name: boom, kind: test_panic, schedule: "@every 1s"}
  - name: count
    kind: test_count
    schedule: "@every 1s"
    rules: [{metric: test_value, warn: 1}]
`)
	start := countRuns.Load()
	// The counting check keeps its schedule while the other two misbehave.
	require.Eventually(t, func() bool { return countRuns.Load()-start >= 3 }, 15*time.Second, 50*time.Millisecond)

	st := a.Status()
	byName := map[string]CheckResult{}
	for _, c := range st.Checks {
		byName[c.Name] = c
	}
	require.Equal(t, alert.StateUnknown, byName["hang"].State)
	require.Contains(t, byName["hang"].Error, "check timed out after 300ms")
	require.Equal(t, alert.StateUnknown, byName["boom"].State)
	require.Contains(t, byName["boom"].Error, "check panicked")
	require.Equal(t, alert.StateOK, byName["count"].State)
	require.GreaterOrEqual(t, byName["boom"].Errors, uint64(2), "a panic does not stop the schedule")
	// A hung run is abandoned at its timeout: later runs start afresh (and
	// time out in turn) instead of being skipped for ever; the goroutines
	// left blocked are counted.
	require.Eventually(t, func() bool {
		h := a.checkResultByName("hang")
		return h.Runs >= 3 && h.Errors >= 3 && h.Abandoned >= 3 && h.Stuck >= 3
	}, 15*time.Second, 50*time.Millisecond)
	metrics := get(t, srv.URL+"/metrics")
	require.Regexp(t, `l2agent_check_runs_abandoned_total\{check="hang"\} [1-9]`, metrics)
	require.Regexp(t, `l2agent_check_runs_stuck\{check="hang"\} [1-9]`, metrics)
	require.Contains(t, metrics, `l2agent_check_runs_abandoned_total{check="count"} 0`)

	// A scrape answers while the hung check is still hung.
	body := get(t, srv.URL+"/metrics")
	require.Contains(t, body, `l2agent_alert_state{check="hang",metric=""} -1`)
	require.Contains(t, body, `l2agent_alert_state{check="boom",metric=""} -1`)
	require.Contains(t, body, `l2agent_alert_state{check="count",metric="test_value",slot="a"} 0`)
	require.Contains(t, body, `l2agent_test_value{slot="a"} 0`)
	require.Contains(t, body, `l2agent_check_up{check="hang"} 0`)
	require.Contains(t, body, `l2agent_check_up{check="count"} 1`)
	require.Contains(t, get(t, srv.URL+"/-/ready"), "Ready")

	// Once the blocked reads return, the stuck gauge goes back to 0.
	close(release)
	released = true
	require.Eventually(t, func() bool { return a.checkResultByName("hang").Stuck == 0 }, 10*time.Second, 20*time.Millisecond)
}

// TestStuckRunsAreBounded: a check that never returns is abandoned run
// after run, up to maxStuck goroutines; past that a run fails at once with
// the reason (the check's state is unknown, never silently skipped).
func TestStuckRunsAreBounded(t *testing.T) {
	block := make(chan struct{})
	defer close(block)
	var calls atomic.Int64
	r := &runner{cfg: configs.Check{Name: "stuck", Timeout: configs.Duration(5 * time.Millisecond)},
		check: funcCheck{"stuck", func(context.Context) ([]checks.Observation, error) {
			calls.Add(1)
			<-block
			return nil, nil
		}}}
	for i := range maxStuck {
		res, ran := r.runOnce(context.Background())
		require.True(t, ran, "run %d starts afresh", i)
		require.True(t, res.abandoned, "run %d", i)
		require.ErrorIs(t, res.err, ErrTimeout)
	}
	res, ran := r.runOnce(context.Background())
	require.True(t, ran)
	require.False(t, res.abandoned)
	require.ErrorContains(t, res.err, "8 earlier runs ignored their timeout and are still stuck")
	require.Equal(t, int64(maxStuck), calls.Load(), "no goroutine past the bound")
	require.Equal(t, uint64(maxStuck), r.abandoned)
	require.Equal(t, int64(maxStuck), r.stuck.Load())
}

// TestCancelledRunIsNotAbandoned: a check that honours its context is
// waited for, not counted as abandoned.
func TestCancelledRunIsNotAbandoned(t *testing.T) {
	r := &runner{cfg: configs.Check{Name: "polite", Timeout: configs.Duration(5 * time.Millisecond)},
		check: funcCheck{"polite", func(ctx context.Context) ([]checks.Observation, error) {
			<-ctx.Done()
			return nil, ctx.Err()
		}}}
	res, ran := r.runOnce(context.Background())
	require.True(t, ran)
	require.ErrorIs(t, res.err, ErrTimeout)
	require.False(t, res.abandoned)
	require.Zero(t, r.abandoned)
	require.Zero(t, r.stuck.Load())
}

func (a *Agent) checkResultByName(name string) CheckResult {
	for _, c := range a.Results() {
		if c.Name == name {
			return c
		}
	}
	return CheckResult{}
}

func TestReload(t *testing.T) {
	body := `
hostname: t2
defaults: {jitter_max: 0s}
checks:
  - {name: count, kind: test_count, schedule: "@every 1h"}
`
	a, srv := newTestAgent(t, body)
	require.Eventually(t, a.Ready, 5*time.Second, 20*time.Millisecond)

	// An invalid config is rejected, the old one keeps running.
	require.NoError(t, os.WriteFile(a.opts.ConfigFile, []byte("checks:\n  - {name: x, kind: nope}\n"), 0o600))
	resp, err := http.Post(srv.URL+"/-/reload", "", nil)
	require.NoError(t, err)
	msg, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	require.Equal(t, http.StatusBadRequest, resp.StatusCode)
	require.Contains(t, string(msg), `unknown check kind "nope"`)
	require.Contains(t, get(t, srv.URL+"/metrics"), "l2agent_config_last_reload_successful 0")
	require.Equal(t, "count", a.Results()[0].Name)

	// A valid one replaces the checks.
	require.NoError(t, os.WriteFile(a.opts.ConfigFile, []byte(strings.Replace(body, "name: count", "name: count2", 1)), 0o600))
	resp, err = http.Post(srv.URL+"/-/reload", "", nil)
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.Contains(t, get(t, srv.URL+"/metrics"), "l2agent_config_last_reload_successful 1")
	require.Eventually(t, func() bool { return a.checkResultByName("count2").Runs >= 1 }, 5*time.Second, 20*time.Millisecond)
	require.Len(t, a.Results(), 1)
	for _, al := range a.eval.Alerts() {
		require.NotEqual(t, "count", al.Check, "alerts of a removed check are dropped")
	}
}

func TestStopCancelsRunningChecks(t *testing.T) {
	started := make(chan struct{}, 1)
	checks.Register("test_block", func(c configs.Check, _ checks.Env) (checks.Check, error) {
		return funcCheck{c.Name, func(ctx context.Context) ([]checks.Observation, error) {
			started <- struct{}{}
			<-ctx.Done() // honours its context
			return nil, ctx.Err()
		}}, nil
	}, nil, checks.MetricInfo{Name: "test_block_value", Help: "never reported"})
	a, err := New(Options{ConfigFile: writeConfig(t, `
checks: [{name: block, kind: test_block, timeout: 1h}]
`), Logger: testkit.QuietLogger()})
	require.NoError(t, err)
	require.NoError(t, a.Start(false))
	<-started
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	require.NoError(t, a.Stop(ctx), "a check that honours ctx is cancelled by Stop")
}

func TestJitter(t *testing.T) {
	o1 := jitterOffset("web-1", 30*time.Second)
	require.Equal(t, o1, jitterOffset("web-1", 30*time.Second), "deterministic")
	distinct := map[time.Duration]bool{}
	for _, h := range []string{"web-1", "web-2", "web-3", "db-1", "db-2"} {
		o := jitterOffset(h, 30*time.Second)
		require.GreaterOrEqual(t, o, time.Duration(0))
		require.Less(t, o, 30*time.Second)
		distinct[o] = true
	}
	require.Greater(t, len(distinct), 3, "hosts get different phases")
	require.Zero(t, jitterOffset("web-1", 0))

	s, err := jittered("@every 30s", "web-1", time.Minute)
	require.NoError(t, err)
	off := jitterOffset("web-1", 15*time.Second) // capped at half the interval
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	n1 := s.Next(t0)
	require.Equal(t, t0.Add(off), n1)
	require.Equal(t, n1.Add(30*time.Second), s.Next(n1), "runs stay 30s apart")

	c, err := jittered("0 * * * *", "web-1", 10*time.Minute)
	require.NoError(t, err)
	n := c.Next(t0)
	require.Equal(t, 0, n.Hour())
	require.Less(t, n.Sub(t0), 10*time.Minute)
	require.Equal(t, time.Hour, c.Next(n).Sub(n))
}

// TestJitterOneWakeUp: the embedded default's checks on one host run at the
// same instants when they share an interval (one wake-up of the agent for
// all of them), and every run of the others falls on one of those.
func TestJitterOneWakeUp(t *testing.T) {
	cfg := configs.Default()
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for _, host := range []string{"web-1", "db-7", "k8s-node-0042", "vm"} {
		a := &Agent{host: host, cfg: cfg}
		rs, err := a.buildRunners(cfg, nil)
		require.NoError(t, err)
		require.Len(t, rs, 6)
		var grid time.Time // the 30s checks' first run after t0
		for _, r := range rs {
			if r.cfg.Schedule != "@every 30s" {
				continue
			}
			if grid.IsZero() {
				grid = r.sched.Next(t0)
			}
			require.Equal(t, grid, r.sched.Next(t0), "%s: %s", host, r.cfg.Name)
		}
		require.False(t, grid.IsZero())
		for _, r := range rs {
			n := r.sched.Next(t0)
			if off := n.Sub(grid) % (30 * time.Second); off != 0 {
				// Offsets are capped at half the interval: 15 s for the 30 s
				// checks, 30 s (jitter_max) for the others; above 15 s they
				// differ by 15 s.
				require.Equal(t, 15*time.Second, off.Abs(), "%s: %s runs at %s, the 30s checks at %s", host, r.cfg.Name, n, grid)
			}
		}
	}
}

func writeFile(p, body string) error { return os.WriteFile(p, []byte(body), 0o600) }

func stopAgent(t *testing.T, a *Agent) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	require.NoError(t, a.Stop(ctx))
}

// mountTmpfs mounts a tmpfs of size in a temp dir for the test. It needs
// root: without it the test is skipped, or fails in CI (which runs as root).
func mountTmpfs(t *testing.T, size, name string) string {
	t.Helper()
	if os.Geteuid() != 0 {
		if os.Getenv("CI") == "true" {
			t.Fatal("this test needs root to mount a tmpfs, and CI runs as root")
		}
		t.Skip("needs root to mount a tmpfs")
	}
	mnt := t.TempDir()
	out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size="+size, name, mnt).CombinedOutput()
	require.NoError(t, err, "mount tmpfs: %s", out)
	t.Cleanup(func() { exec.Command("umount", "-l", mnt).Run() })
	return mnt
}

// TestReloadsCoalescedAndOnlyChangedRerun: 200 reload requests at once
// make at most a few reloads (one per ReloadInterval, the rest folded in),
// every request answered; a check whose config did not change keeps its
// schedule (one run, the one at start), one whose config changed runs again.
func TestReloadsCoalescedAndOnlyChangedRerun(t *testing.T) {
	body := `
hostname: t3
defaults: {jitter_max: 0s}
checks:
  - {name: hourly, kind: test_count, schedule: "@every 1h"}
  - {name: other, kind: test_count, schedule: "@every 1h"}
`
	a, err := New(Options{ConfigFile: writeConfig(t, body), Logger: testkit.QuietLogger()})
	require.NoError(t, err)
	srv := httptest.NewServer(a.Handler())
	defer srv.Close()
	require.NoError(t, a.Start(false))
	defer stopAgent(t, a)
	require.Eventually(t, a.Ready, 5*time.Second, 20*time.Millisecond)

	errs := make(chan error, 200)
	for range 200 {
		go func() { errs <- a.RequestReload(context.Background()) }()
	}
	for range 200 {
		require.NoError(t, <-errs)
	}
	require.LessOrEqual(t, a.reloaded.Load(), uint64(3), "200 requests coalesced")
	require.GreaterOrEqual(t, a.reloaded.Load(), uint64(1))
	metrics := get(t, srv.URL+"/metrics")
	require.Contains(t, metrics, `l2agent_check_runs_total{check="hourly"} 1`+"\n")
	require.Contains(t, metrics, `l2agent_check_runs_total{check="other"} 1`+"\n")
	hourlyRun := a.checkResultByName("hourly").LastRun

	// Only the changed check runs again.
	before := time.Now()
	require.NoError(t, os.WriteFile(a.opts.ConfigFile, []byte("state_dir: "+a.Config().StateDir+"\n"+
		strings.Replace(body, `{name: other, kind: test_count, schedule: "@every 1h"}`, `{name: other, kind: test_count, schedule: "@every 1h", timeout: 7s}`, 1)), 0o600))
	require.NoError(t, a.RequestReload(context.Background()))
	require.Eventually(t, func() bool { return a.checkResultByName("other").LastRun.After(before) }, 5*time.Second, 20*time.Millisecond)
	require.Equal(t, hourlyRun, a.checkResultByName("hourly").LastRun)
	require.Contains(t, get(t, srv.URL+"/metrics"), `l2agent_check_runs_total{check="hourly"} 1`+"\n")
}
