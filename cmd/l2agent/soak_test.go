package main

import (
	"fmt"
	"io"
	"log"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/l2agent/l2agent/deploy/testenv"
)

// soakPlan is how hard the soak test shakes the agent. The short plan runs
// in `make test`; `make soak` runs the full one (L2AGENT_SOAK=full).
type soakPlan struct {
	mounts, steps, kills, restarts, reloads int
	outage, storm                           time.Duration
	outages                                 int
	pace                                    time.Duration // the longest pause between two steps
}

var (
	soakShort = soakPlan{mounts: 3, steps: 40, kills: 10, restarts: 2, reloads: 2, outages: 1, outage: 15 * time.Second, storm: 10 * time.Second, pace: 1500 * time.Millisecond}
	soakFull  = soakPlan{mounts: 6, steps: 900, kills: 200, restarts: 20, reloads: 10, outages: 2, outage: 2 * time.Minute, storm: time.Minute, pace: 3 * time.Second}
)

// rtProxy stands in front of Request Tracker and answers 429 during a storm.
type rtProxy struct {
	storm atomic.Bool
	rp    *httputil.ReverseProxy
	n429  atomic.Int64
}

func (p *rtProxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if p.storm.Load() {
		p.n429.Add(1)
		w.Header().Set("Retry-After", "1")
		http.Error(w, "too many requests", http.StatusTooManyRequests)
		return
	}
	p.rp.ServeHTTP(w, r)
}

// soak is one run: RT behind the proxy, a webhook receiver always in force
// (the second witness of every operation), a third backend that reloads add
// and remove, tmpfs mounts whose fill changes at random, and the agent.
type soak struct {
	t       *testing.T
	plan    soakPlan
	rng     *rand.Rand
	rt      testenv.RT
	proxy   *rtProxy
	hook    *hookReceiver
	extra   *hookReceiver
	hookURL string
	xURL    string
	dir     string
	cfg     string
	mnts    []string
	fill    []int // KiB written to each mount now
	fired   map[string]bool
	agent   *rtAgent
	extraOn bool
	counts  map[string]int
}

// TestSoak: the built binary against a real Request Tracker and a webhook
// receiver while mounts fill and empty at random and the agent is killed
// (kill -9) and restarted, stopped gracefully, reloaded with a backend added
// and removed, while RT is down and while it answers 429. At the end an
// independent client (RT's REST 2.0 as root) checks, for every alert key
// that fired: exactly one ticket; resolved when the mount is below warn,
// open otherwise; every operation the webhook received (the agent's events)
// in RT exactly once — none missing, none doubled.
func TestSoak(t *testing.T) {
	needRoot(t)
	plan := soakShort
	if os.Getenv("L2AGENT_SOAK") == "full" {
		plan = soakFull
	}
	seed := uint64(time.Now().UnixNano())
	if s, err := strconv.ParseUint(os.Getenv("L2AGENT_SOAK_SEED"), 10, 64); err == nil {
		seed = s
	}
	t.Logf("soak: seed %d (L2AGENT_SOAK_SEED=%d replays it), plan %+v", seed, seed, plan)
	s := newSoak(t, plan, seed)
	start := time.Now()
	s.chaos()
	chaos := time.Since(start)
	s.settle()
	converged := s.converge()
	s.check()
	t.Logf("soak figures: %d steps in %s (%v); converged %s after the last step; %d keys fired; 429 answers: %d",
		plan.steps, chaos.Round(time.Second), s.counts, converged.Round(time.Second), len(s.fired), s.proxy.n429.Load())
}

func newSoak(t *testing.T, plan soakPlan, seed uint64) *soak {
	s := &soak{t: t, plan: plan, rng: rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)), dir: t.TempDir(),
		hook: &hookReceiver{}, extra: &hookReceiver{}, fired: map[string]bool{}, counts: map[string]int{}}
	s.rt = testenv.StartRT(t)
	target, err := url.Parse(s.rt.URL)
	require.NoError(t, err)
	s.proxy = &rtProxy{rp: httputil.NewSingleHostReverseProxy(target)}
	s.proxy.rp.ErrorLog = log.New(io.Discard, "", 0) // RT down is the point: the agent logs it
	for _, h := range []struct {
		u *string
		h http.Handler
	}{{nil, s.proxy}, {&s.hookURL, s.hook}, {&s.xURL, s.extra}} {
		srv := httptest.NewServer(h.h)
		t.Cleanup(srv.Close)
		if h.u != nil {
			*h.u = srv.URL
		} else {
			s.rt.URL = srv.URL // the agent talks to the proxy; the checks use RT itself
		}
	}
	for i := range plan.mounts {
		mnt := filepath.Join(s.dir, fmt.Sprintf("m%d", i))
		mountTmpfs(t, mnt, "8m", fmt.Sprintf("l2soak-%d", i))
		s.mnts = append(s.mnts, mnt)
	}
	s.fill = make([]int, plan.mounts)
	s.cfg = filepath.Join(s.dir, "agent.yaml")
	s.writeConfig()
	s.agent = startRTAgent(t, s.cfg)
	waitHTTP(t, s.agent.url+"/-/ready")
	return s
}

func (s *soak) writeConfig() {
	tokenFile := filepath.Join(s.dir, "rt.token")
	require.NoError(s.t, os.WriteFile(tokenFile, []byte(s.rt.Token+"\n"), 0o600))
	secret := filepath.Join(s.dir, "hook.secret")
	require.NoError(s.t, os.WriteFile(secret, []byte("soak\n"), 0o600))
	extra := ""
	if s.extraOn {
		extra = fmt.Sprintf("    - {name: extra, kind: webhook, webhook: {url: %q, secret_file: %q}}\n", s.xURL, secret)
	}
	cfg := fmt.Sprintf(`hostname: web-7
state_dir: %s
log: {format: json}
defaults: {jitter_max: 0s}
checks:
  - name: disk
    kind: disk
    schedule: "@every 1s"
    disk: {include_mountpoints: ['^%s/m[0-9]+$'], diagnostics: {timeout: 2s}}
    rules:
      - {metric: disk_used_ratio, warn: 0.5, crit: 0.9, clear: 0.05}
ticketing:
  resolve_after: 2s
  interval: 500ms
  flapping: {count: 1000000, window: 1h}
  backends:
    - name: rt
      kind: rt
      timeout: 20s
      rt: {url: %q, token_file: %q, queue_l2: %q, queue_l3: %q, custom_field: %q, owner_l3: %q}
    - {name: hook, kind: webhook, webhook: {url: %q, secret_file: %q}}
%s`, s.dir, s.dir, s.rt.URL, tokenFile, s.rt.QueueL2, s.rt.QueueL3, s.rt.CustomField, s.rt.L3Owner, s.hookURL, secret, extra)
	require.NoError(s.t, os.WriteFile(s.cfg, []byte(cfg), 0o600))
}

// setFill writes kib KiB to mount i (0: empties it).
func (s *soak) setFill(i, kib int) {
	if kib == 0 {
		require.NoError(s.t, os.RemoveAll(filepath.Join(s.mnts[i], "spool")))
	} else {
		fillTo(s.t, s.mnts[i], kib)
		s.fired[diskKey(s.mnts[i], fmt.Sprintf("l2soak-%d", i))] = true
	}
	s.fill[i] = kib
}

// chaos runs the plan's steps: each changes a mount's fill, or kills,
// restarts or reloads the agent, or takes RT away; the outages and the storm
// come at random steps.
func (s *soak) chaos() {
	p := s.plan
	at := func(n int) map[int]bool { // n distinct random steps
		m := map[int]bool{}
		for len(m) < n {
			m[s.rng.IntN(p.steps)] = true
		}
		return m
	}
	kills, restarts, reloads, outages, storm := at(p.kills), at(p.restarts), at(p.reloads), at(p.outages), s.rng.IntN(p.steps)
	levels := []int{0, 0, 5000, 7700} // empty, warn (~61 %), crit (~94 %)
	for step := range p.steps {
		s.setFill(s.rng.IntN(p.mounts), levels[s.rng.IntN(len(levels))])
		s.counts["fill"]++
		switch {
		case kills[step]:
			s.kill()
		case restarts[step]:
			s.restart()
		case reloads[step]:
			s.reload()
		case outages[step]:
			s.outage()
		case step == storm:
			s.storm()
		}
		time.Sleep(time.Duration(s.rng.Int64N(int64(p.pace)))) // chaos pacing, not a timing assertion
	}
}

func (s *soak) kill() {
	require.NoError(s.t, s.agent.cmd.Process.Kill())
	s.agent.wait(s.t)
	s.agent = startRTAgent(s.t, s.cfg)
	s.counts["kill -9"]++
}

func (s *soak) restart() {
	require.NoError(s.t, s.agent.cmd.Process.Signal(syscall.SIGTERM))
	s.agent.wait(s.t)
	s.agent = startRTAgent(s.t, s.cfg)
	s.counts["graceful restart"]++
}

func (s *soak) reload() {
	s.extraOn = !s.extraOn
	s.writeConfig()
	require.NoError(s.t, s.agent.cmd.Process.Signal(syscall.SIGHUP))
	s.counts["reload"]++
}

// outage stops RT for plan.outage while the steps go on.
func (s *soak) outage() {
	s.rt.Stop(s.t)
	s.counts["RT outage"]++
	end := time.Now().Add(s.plan.outage)
	for time.Now().Before(end) {
		s.setFill(s.rng.IntN(s.plan.mounts), []int{0, 5000, 7700}[s.rng.IntN(3)])
		time.Sleep(time.Duration(s.rng.Int64N(int64(s.plan.pace))))
	}
	s.rt.Start(s.t)
}

// storm answers 429 for plan.storm while the steps go on.
func (s *soak) storm() {
	s.proxy.storm.Store(true)
	s.counts["429 storm"]++
	end := time.Now().Add(s.plan.storm)
	for time.Now().Before(end) {
		s.setFill(s.rng.IntN(s.plan.mounts), []int{0, 5000, 7700}[s.rng.IntN(3)])
		time.Sleep(time.Duration(s.rng.Int64N(int64(s.plan.pace))))
	}
	s.proxy.storm.Store(false)
}

// settle gives every mount its final fill.
func (s *soak) settle() {
	for i := range s.mnts {
		s.setFill(i, []int{0, 5000, 7700}[s.rng.IntN(3)])
	}
}

var soakMarker = regexp.MustCompile(`l2agent event (\d+) \([0-9a-f]{8}\)`)

// converge waits until RT shows the final state of every key and nothing
// waits in the agent's outboxes.
func (s *soak) converge() time.Duration {
	start := time.Now()
	var why string
	deadline := start.Add(5 * time.Minute)
	for time.Now().Before(deadline) {
		if why = s.pending(); why == "" {
			return time.Since(start)
		}
		time.Sleep(500 * time.Millisecond) // polling RT and the agent, not waiting for timing
	}
	s.t.Fatalf("soak: not converged within 5m: %s", why)
	return 0
}

// pending says what is not yet in its final state; "" when all is: the
// agent has evaluated every mount at its final fill, nothing waits in its
// outboxes, and RT shows each fired key's ticket open or resolved as the
// fill says.
func (s *soak) pending() string {
	m := metricsText(s.t, s.agent.url)
	for i, mnt := range s.mnts {
		want := map[int]string{0: "0", 5000: "2", 7700: "3"}[s.fill[i]] // ok, warn, crit
		if got := alertState(m, mnt); got != want {
			return fmt.Sprintf("the agent has %s at alert state %q, not yet %s for %d KiB", mnt, got, want, s.fill[i])
		}
	}
	for _, b := range []string{"rt", "hook"} {
		if !strings.Contains(m, `l2agent_ticket_outbox_pending{backend="`+b+`"} 0`) {
			return "outbox of " + b + " not empty"
		}
	}
	for i, mnt := range s.mnts {
		key := diskKey(mnt, fmt.Sprintf("l2soak-%d", i))
		if !s.fired[key] {
			continue
		}
		ts := s.rt.TicketsWithCF(s.t, s.rt.CustomField, key)
		require.LessOrEqual(s.t, len(ts), 1, "never more than one ticket for %s: %+v", key, ts)
		if len(ts) == 0 {
			return "no ticket yet for " + key
		}
		resolved := ts[0].Status == "resolved"
		if want := s.fill[i] == 0; resolved != want {
			return fmt.Sprintf("ticket #%d of %s is %s with the mount at %d KiB", ts[0].ID, key, ts[0].Status, s.fill[i])
		}
	}
	return ""
}

// check compares, key by key, the operations RT shows (by their markers)
// with those the webhook received: the same events, each once in RT. The
// two backends deliver independently, so an operation of the last check
// runs may still be on its way to one of them: the sets are compared until
// they agree or 2 minutes pass (then one lost it). An event twice in RT
// fails at once: a double never goes away.
func (s *soak) check() {
	for i, mnt := range s.mnts {
		key := diskKey(mnt, fmt.Sprintf("l2soak-%d", i))
		if !s.fired[key] {
			continue
		}
		deadline := time.Now().Add(2 * time.Minute)
		for reads := 1; ; reads++ {
			id, status, inRT := s.rtEvents(key)
			witnessed := sortedKeys(s.hook.eventsOf(key))
			if got := sortedKeys(inRT); slices.Equal(got, witnessed) || time.Now().After(deadline) {
				require.Equal(s.t, witnessed, got, "%s: the operations the webhook received are those in RT ticket #%d", key, id)
				s.t.Logf("soak: %s: ticket #%d %s, %d operations, each once (the two witnesses agreed at read %d)", key, id, status, len(inRT), reads)
				break
			}
			time.Sleep(500 * time.Millisecond) // polling both witnesses, not waiting for timing
		}
	}
}

// rtEvents reads key's one ticket in RT and counts the events its messages
// carry, failing on any event there twice.
func (s *soak) rtEvents(key string) (id int, status string, inRT map[int]int) {
	ts := s.rt.TicketsWithCF(s.t, s.rt.CustomField, key)
	require.Len(s.t, ts, 1, "exactly one ticket for %s", key)
	inRT = map[int]int{}
	for _, msg := range s.rt.Messages(s.t, ts[0].ID) {
		for _, m := range soakMarker.FindAllStringSubmatch(msg.Content, -1) {
			n, _ := strconv.Atoi(m[1])
			inRT[n]++
		}
	}
	for n, c := range inRT {
		require.Equal(s.t, 1, c, "%s: event %d is in RT ticket #%d %d times", key, n, ts[0].ID, c)
	}
	return ts[0].ID, ts[0].Status, inRT
}

// alertState is the agent's l2agent_alert_state of the disk_used_ratio of
// mountpoint mnt in the metrics text m ("" when absent).
func alertState(m, mnt string) string {
	for _, line := range strings.Split(m, "\n") {
		if strings.HasPrefix(line, "l2agent_alert_state{") && strings.Contains(line, `metric="disk_used_ratio"`) &&
			strings.Contains(line, `mountpoint="`+mnt+`"`) {
			return line[strings.LastIndexByte(line, ' ')+1:]
		}
	}
	return ""
}

func sortedKeys(m map[int]int) []int {
	out := make([]int, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Ints(out)
	return out
}

// eventsOf counts the distinct operations other than opens received for
// key, by event number (a resend carries the same Idempotency-Key).
func (h *hookReceiver) eventsOf(key string) map[int]int {
	h.mu.Lock()
	defer h.mu.Unlock()
	out := map[int]int{}
	for _, idem := range h.idems {
		j := strings.LastIndexByte(idem.key, '#')
		if j < 0 || idem.key[:j] != key || idem.event == "open" {
			continue
		}
		n, err := strconv.Atoi(idem.key[j+1:])
		if err == nil {
			out[n] = 1
		}
	}
	return out
}
