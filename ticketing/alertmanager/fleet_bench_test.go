//go:build linux

package alertmanager

// The fleet benchmark (make bench, deploy/testenv/fleet.sh): L2AGENT_FLEET_HOSTS
// simulated agents fire one alert each into a real 2-node Alertmanager
// cluster. Each simulated agent is what a real agent runs for it: its own
// bbolt store and outbox, its own ticketing.Service (manager, deliverer),
// its own Backend posting to both nodes, and its own HTTP transport (a clone
// of http.DefaultTransport, as a real agent's process has: its own
// connections, dialled fresh for the first alert). The agents run in
// L2AGENT_FLEET_WORKERS processes (this test binary run again as
// TestFleetWorker) that run nothing else, so that their getrusage is the
// CPU of the agents' sending code.
//
// Skipped unless L2AGENT_FLEET_HOSTS is set: it is a benchmark, not a test
// of make test (TestRealFleet is).

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"hash/fnv"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/l2agent/l2agent/configs"
	"github.com/l2agent/l2agent/deploy/testenv"
	"github.com/l2agent/l2agent/internal/alert"
	"github.com/l2agent/l2agent/ticketing"
)

const (
	envFleetHosts   = "L2AGENT_FLEET_HOSTS"   // simulated agents; unset: skip
	envFleetWindow  = "L2AGENT_FLEET_WINDOW"  // breaches spread over this (default 30s; 0: all at once)
	envFleetWorkers = "L2AGENT_FLEET_WORKERS" // processes running the agents (default 4)
	envFleetIdle    = "L2AGENT_FLEET_IDLE"    // idle window measured before the breaches (default 10s)
	envFleetProfile = "L2AGENT_FLEET_PROFILE" // a directory: each worker writes a CPU profile of its busy span there
	envFleetSpec    = "L2AGENT_FLEET_SPEC"    // internal: a worker's fleetSpec (JSON)
	fleetAlertName  = "l2agent_used_percent"
)

// fleetSpec is what one worker process runs: hosts [First, Last).
type fleetSpec struct {
	First, Last int
	URLs        []string
	Dir         string        // the agents' state dirs go under it
	Window      time.Duration // breach offsets are in [0, Window)
	Result      string        // the worker writes its fleetResult there
	Profile     string        // a CPU profile of the busy span goes there, if set
}

// fleetResult is what a worker measured.
type fleetResult struct {
	Hosts    []fleetHost
	CPU      time.Duration // user+system CPU of the worker from the breaches' start until every outbox was empty
	Busy     time.Duration // that span
	IdleCPU  time.Duration // user+system CPU over the idle window before
	Idle     time.Duration // that window
	Posts    int64         // POSTs answered 2xx
	Failed   int64         // POSTs not answered 2xx (errors included)
	Bytes    int64         // bodies of the POSTs answered 2xx
	Pending  int           // outbox ops left at the end
	Checked  int           // sampled alerts looked up in the API right after their 2xx
	Visible  int           // of those, found
	CheckLag time.Duration // the longest wait from a 2xx to its lookup
	Done     int64         // when every outbox was empty (Unix ns)
}

// fleetHost is one simulated agent's alert: when it breached and when each
// node answered 2xx to its POST (Unix ns; 0: never).
type fleetHost struct {
	Host   string
	Breach int64
	Seen   []int64
}

// fleetHostName names simulated host i.
func fleetHostName(i int) string { return fmt.Sprintf("host-%05d", i) }

// fleetOffset is when host breaches within window: a hash of the host name,
// as the agent's own jitter spreads a fleet's schedules (jitter_max).
func fleetOffset(host string, window time.Duration) time.Duration {
	if window <= 0 {
		return 0
	}
	h := fnv.New64a()
	_, _ = h.Write([]byte(host))
	return time.Duration(h.Sum64() % uint64(window))
}

func envDuration(t *testing.T, name string, def time.Duration) time.Duration {
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	d, err := time.ParseDuration(v)
	if err != nil || d < 0 {
		t.Fatalf("%s=%q: want a duration such as 30s", name, v)
	}
	return d
}

func envCount(t *testing.T, name string, def int) int {
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 0 {
		t.Fatalf("%s=%q: want a count", name, v)
	}
	return n
}

func cpuTime(t *testing.T) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		t.Fatalf("getrusage: %v", err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// recorder is a simulated agent's HTTP transport: the agent's own clone of
// http.DefaultTransport, noting when each node first answered 2xx to a POST.
// Alertmanager stores the alerts of a POST before it answers (api/v2
// postAlertsHandler calls alerts.Put first), so that is when the alert is
// visible in that node's API; sampled agents check it with a GET.
type recorder struct {
	rt     *http.Transport
	nodes  []string // host:port of each node
	seen   []atomic.Int64
	left   atomic.Int32
	done   func()
	sample bool
	check  func(node int)
	posts  *atomic.Int64
	failed *atomic.Int64
	bytes  *atomic.Int64
}

func (r *recorder) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := r.rt.RoundTrip(req)
	if req.Method != http.MethodPost {
		return resp, err
	}
	if err != nil || resp.StatusCode/100 != 2 {
		r.failed.Add(1)
		return resp, err
	}
	r.posts.Add(1)
	r.bytes.Add(req.ContentLength)
	now := time.Now().UnixNano()
	for i, n := range r.nodes {
		if req.URL.Host == n && r.seen[i].CompareAndSwap(0, now) {
			if r.sample {
				r.check(i)
			}
			if r.left.Add(-1) == 0 {
				r.done()
			}
		}
	}
	return resp, nil
}

// fleetAgent is one simulated agent.
type fleetAgent struct {
	host   string
	offset time.Duration
	svc    *ticketing.Service
	rec    *recorder
}

// alertsOf returns the alerts of GET /api/v2/alerts?filter=… on base.
func alertsOf(ctx context.Context, client *http.Client, base string, filter string) ([]postableAlert, error) {
	u := base + "/api/v2/alerts?filter=" + url.QueryEscape(filter)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, err
	}
	resp, err := client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("GET %s: %w", u, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		return nil, fmt.Errorf("GET %s: HTTP %d %s", u, resp.StatusCode, b)
	}
	var out []postableAlert
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		return nil, fmt.Errorf("GET %s: %w", u, err)
	}
	return out, nil
}

// fleetShared is what the agents of one worker report into.
type fleetShared struct {
	cfg              configs.Ticketing
	log              *slog.Logger
	posts, failed    atomic.Int64
	bytes            atomic.Int64
	delivered        atomic.Int64
	all              chan struct{}
	total            int64
	checks           sync.WaitGroup
	checked, visible atomic.Int64
	sampleClient     *http.Client
	sampleSlot       sync.Mutex // one lookup at a time: Alertmanager answers 503 past --web.get-concurrency
	sampleLag        atomic.Int64
}

// newFleetAgent sets up simulated agent i as the agent sets up its
// ticketing (agent/ticketing.go openService): its store in its own state
// dir, the alertmanager backend, a service over them, started.
func newFleetAgent(spec fleetSpec, sh *fleetShared, i int) (*fleetAgent, error) {
	host := fleetHostName(i)
	dir := filepath.Join(spec.Dir, host)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	store, err := ticketing.OpenStore(filepath.Join(dir, "l2agent.db"), false, sh.log)
	if err != nil {
		return nil, err
	}
	b, err := New("am", Options{URLs: spec.URLs, ResendInterval: configs.Duration(time.Minute),
		Labels: map[string]string{"env": "fleet-bench"}}, 15*time.Second)
	if err != nil {
		return nil, err
	}
	rec := &recorder{rt: http.DefaultTransport.(*http.Transport).Clone(), seen: make([]atomic.Int64, len(spec.URLs)),
		posts: &sh.posts, failed: &sh.failed, bytes: &sh.bytes,
		sample: i == spec.First} // one per worker: a lookup scans every alert of the node, at its cost

	for _, u := range spec.URLs {
		pu, err := url.Parse(u)
		if err != nil {
			return nil, err
		}
		rec.nodes = append(rec.nodes, pu.Host)
	}
	rec.left.Store(int32(len(spec.URLs)))
	rec.done = func() {
		if sh.delivered.Add(1) == sh.total {
			close(sh.all)
		}
	}
	rec.check = func(node int) {
		sh.checks.Add(1)
		at := time.Now()
		go func() {
			defer sh.checks.Done()
			sh.sampleSlot.Lock()
			defer sh.sampleSlot.Unlock()
			if lag := int64(time.Since(at)); lag > sh.sampleLag.Load() {
				sh.sampleLag.Store(lag)
			}
			got, err := alertsOf(context.Background(), sh.sampleClient, spec.URLs[node], `host="`+host+`"`)
			sh.checked.Add(1)
			switch {
			case err != nil:
				sh.log.Warn("sampled lookup", "host", host, "node", node, "err", err)
			case len(got) > 0:
				sh.visible.Add(1)
			default:
				sh.log.Warn("sampled alert not in the API right after its 2xx", "host", host, "node", node)
			}
		}()
	}
	b.client.Transport = rec
	svc := ticketing.NewService(sh.cfg, store, []string{"am"}, map[string]ticketing.Ticketer{"am": b}, "bench", sh.log, nil)
	svc.Start()
	return &fleetAgent{host: host, offset: fleetOffset(host, spec.Window), svc: svc, rec: rec}, nil
}

// fire hands the agent's ticketing the transition of its disk check going
// crit at breach, as the evaluator does.
func (a *fleetAgent) fire(breach time.Time) {
	a.svc.Handle(alert.Transition{Alert: alert.Alert{Key: a.host + "/disk/used_percent", Host: a.host, Check: "disk",
		Metric: "used_percent", Labels: map[string]string{"mount": "/"}, State: alert.StateCrit, Value: 0.93,
		Threshold: 0.9, BreachAt: breach, Details: "disk full", RunbookURL: "https://runbooks.example.com/disk"},
		From: alert.StateOK, At: breach})
}

// TestFleetWorker runs the simulated agents of one worker process of
// TestRealFleetBench: it sets them up, says FLEET-READY, measures its idle
// CPU until the line "go T0" (Unix ns) on stdin, fires each agent's breach
// at T0 + its offset, and measures its CPU until every outbox is empty.
func TestFleetWorker(t *testing.T) {
	raw := os.Getenv(envFleetSpec)
	if raw == "" {
		t.Skip("run by TestRealFleetBench")
	}
	var spec fleetSpec
	if err := json.Unmarshal([]byte(raw), &spec); err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	slog.SetDefault(log)
	sh := &fleetShared{log: log, all: make(chan struct{}), total: int64(spec.Last - spec.First),
		sampleClient: &http.Client{Timeout: 10 * time.Second}}
	sh.cfg.ApplyDefaults(spec.Dir)
	no := false
	sh.cfg.EscalateOnCrit = &no // one firing alert per host, at L2
	var agents []*fleetAgent
	for i := spec.First; i < spec.Last; i++ {
		a, err := newFleetAgent(spec, sh, i)
		if err != nil {
			t.Fatalf("agent %d: %v", i, err)
		}
		agents = append(agents, a)
	}
	slices.SortFunc(agents, func(a, b *fleetAgent) int { return int(a.offset - b.offset) })

	var res fleetResult
	idleFrom, idleCPU := time.Now(), cpuTime(t)
	fmt.Println("FLEET-READY")
	line, err := bufio.NewReader(os.Stdin).ReadString('\n')
	ns, perr := strconv.ParseInt(strings.TrimPrefix(strings.TrimSpace(line), "go "), 10, 64)
	if err != nil || perr != nil {
		t.Fatalf("want \"go T0\" on stdin, got %q: %v %v", line, err, perr)
	}
	busyFrom, busyCPU := time.Now(), cpuTime(t)
	if spec.Profile != "" {
		f, err := os.Create(spec.Profile)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			t.Fatal(err)
		}
	}
	res.Idle, res.IdleCPU = busyFrom.Sub(idleFrom), busyCPU-idleCPU
	t0 := time.Unix(0, ns)
	for _, a := range agents {
		at := t0.Add(a.offset)
		time.Sleep(time.Until(at))
		a.fire(at)
	}
	select {
	case <-sh.all:
	case <-time.After(spec.Window + 2*time.Minute):
		// the parent counts what each node lacks, and fails on it
		log.Warn("agents without a 2xx from every node", "agents", sh.total-sh.delivered.Load(), "of", sh.total)
	}
	deadline := time.Now().Add(time.Minute)
	for _, a := range agents {
		for a.svc.Store.Pending("am") > 0 && time.Now().Before(deadline) {
			time.Sleep(10 * time.Millisecond) // the last outboxes record their delivery
		}
	}
	res.CPU, res.Busy, res.Done = cpuTime(t)-busyCPU, time.Since(busyFrom), time.Now().UnixNano()
	pprof.StopCPUProfile()
	sh.checks.Wait()
	res.Bytes = sh.bytes.Load()
	res.Posts, res.Failed, res.Checked, res.Visible = sh.posts.Load(), sh.failed.Load(), int(sh.checked.Load()), int(sh.visible.Load())
	res.CheckLag = time.Duration(sh.sampleLag.Load())
	for _, a := range agents {
		res.Pending += a.svc.Store.Pending("am")
		h := fleetHost{Host: a.host, Breach: t0.Add(a.offset).UnixNano()}
		for i := range a.rec.seen {
			h.Seen = append(h.Seen, a.rec.seen[i].Load())
		}
		res.Hosts = append(res.Hosts, h)
	}
	out, err := json.Marshal(res)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(spec.Result, out, 0o600); err != nil {
		t.Fatal(err)
	}
	for _, a := range agents {
		if err := a.svc.Stop(); err != nil {
			t.Errorf("%s: stop: %v", a.host, err)
		}
		a.rec.rt.CloseIdleConnections()
	}
}

// fleetWorker is a running worker process.
type fleetWorker struct {
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	ready  chan error
	result string
	stderr string
}

func startFleetWorker(t *testing.T, spec fleetSpec) *fleetWorker {
	raw, err := json.Marshal(spec)
	if err != nil {
		t.Fatal(err)
	}
	w := &fleetWorker{result: spec.Result, stderr: spec.Result + ".stderr", ready: make(chan error, 1)}
	w.cmd = exec.Command(os.Args[0], "-test.run=^TestFleetWorker$", "-test.count=1", "-test.timeout=30m")
	w.cmd.Env = append(os.Environ(), envFleetSpec+"="+string(raw))
	// The runtime settings the agent's daemon runs with unless the
	// environment sets them (agent.DefaultGOGC, agent.DefaultGOMAXPROCS).
	for k, v := range map[string]string{"GOGC": "50", "GOMAXPROCS": "1"} {
		if os.Getenv(k) == "" {
			w.cmd.Env = append(w.cmd.Env, k+"="+v)
		}
	}
	errf, err := os.Create(w.stderr)
	if err != nil {
		t.Fatal(err)
	}
	defer errf.Close()
	w.cmd.Stderr = errf
	out, err := w.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if w.stdin, err = w.cmd.StdinPipe(); err != nil {
		t.Fatal(err)
	}
	if err := w.cmd.Start(); err != nil {
		t.Fatalf("starting a fleet worker: %v", err)
	}
	t.Cleanup(func() { _ = w.cmd.Process.Kill() })
	go func() {
		sc := bufio.NewScanner(out)
		var lines []string
		for sc.Scan() {
			if sc.Text() == "FLEET-READY" {
				w.ready <- nil
				_, _ = io.Copy(io.Discard, out)
				return
			}
			lines = append(lines, sc.Text())
		}
		w.ready <- fmt.Errorf("worker ended before it was ready: %s", strings.Join(lines, "\n"))
	}()
	return w
}

// wait waits for the worker's end and reads its result.
func (w *fleetWorker) wait(t *testing.T) fleetResult {
	var res fleetResult
	err := w.cmd.Wait()
	errs, _ := os.ReadFile(w.stderr)
	if err != nil {
		t.Fatalf("fleet worker: %v; stderr:\n%s", err, errs)
	}
	if len(errs) > 0 {
		t.Logf("fleet worker stderr:\n%s", amTail(string(errs), 4000))
	}
	raw, err := os.ReadFile(w.result)
	if err == nil {
		err = json.Unmarshal(raw, &res)
	}
	if err != nil {
		t.Fatalf("fleet worker result: %v", err)
	}
	return res
}

func amTail(s string, n int) string {
	if len(s) > n {
		return "…" + s[len(s)-n:]
	}
	return s
}

// fleetStateDir is where the agents' stores go: tmpfs when there is one.
// Each host of a real fleet fsyncs its own disk; 10,000 agents on one disk
// would queue 10,000 fsyncs behind each other, a wait no fleet has.
func fleetStateDir(t *testing.T) (string, string) {
	if d, err := os.MkdirTemp("/dev/shm", "l2agent-fleet-"); err == nil {
		t.Cleanup(func() { _ = os.RemoveAll(d) })
		return d, "tmpfs"
	}
	return t.TempDir(), "disk"
}

// TestRealFleetBench: L2AGENT_FLEET_HOSTS simulated agents (see the top of
// this file) each fire one crit alert at a time spread over
// L2AGENT_FLEET_WINDOW into a real 2-node Alertmanager cluster run as in
// production (group_wait 30s, group_interval 5m, log level info). It prints
// one BENCH line; it asserts only that nothing is lost.
func TestRealFleetBench(t *testing.T) {
	hosts := envCount(t, envFleetHosts, 0)
	if hosts == 0 {
		t.Skipf("a benchmark: set %s (make bench runs it with 10000)", envFleetHosts)
	}
	window := envDuration(t, envFleetWindow, 30*time.Second)
	idle := envDuration(t, envFleetIdle, 10*time.Second)
	nw := max(1, min(envCount(t, envFleetWorkers, 4), hosts))
	rcv := newReceiver(t)
	c := testenv.StartAMCluster(t, testenv.AMOptions{Nodes: 2, WebhookURL: rcv.srv.URL, GroupBy: "check",
		GroupWait: 30 * time.Second, GroupInterval: 5 * time.Minute, LogLevel: "info"})
	dir, kind := fleetStateDir(t)

	setup := time.Now()
	var workers []*fleetWorker
	for w := range nw {
		spec := fleetSpec{First: 1 + w*hosts/nw, Last: 1 + (w+1)*hosts/nw, URLs: c.URLs(), Dir: dir,
			Window: window, Result: filepath.Join(dir, fmt.Sprintf("worker%d.json", w))}
		if p := os.Getenv(envFleetProfile); p != "" {
			spec.Profile = filepath.Join(p, fmt.Sprintf("worker%d.pprof", w))
		}
		workers = append(workers, startFleetWorker(t, spec))
	}
	for _, w := range workers {
		select {
		case err := <-w.ready:
			if err != nil {
				t.Fatal(err)
			}
		case <-time.After(10 * time.Minute):
			t.Fatal("fleet workers not ready after 10 minutes")
		}
	}
	setupTook := time.Since(setup)
	time.Sleep(idle) // the idle window the workers measure
	amBefore := amCPU(t, c)
	t0 := time.Now().Add(200 * time.Millisecond)
	if p := os.Getenv(envFleetProfile); p != "" {
		profileAM(t, c, p, window+5*time.Second)
	}
	for _, w := range workers {
		if _, err := fmt.Fprintf(w.stdin, "go %d\n", t0.UnixNano()); err != nil {
			t.Fatal(err)
		}
	}
	var res []fleetResult
	for _, w := range workers {
		res = append(res, w.wait(t))
	}
	amUsed := amCPU(t, c) - amBefore // the nodes' work for the alerts is over: each answered its POSTs
	var wall time.Duration           // from the first breach until every outbox was empty
	for _, r := range res {
		wall = max(wall, time.Unix(0, r.Done).Sub(t0))
	}
	lost := fleetLost(t, c.URLs(), hosts)
	reportFleet(t, fleetReport{hosts: hosts, window: window, state: kind, workers: nw, setup: setupTook,
		wall: wall, lost: lost, res: res, amCPU: amUsed})
	for i, n := range lost {
		if n != 0 {
			t.Errorf("Alertmanager %d lacks %d of the %d alerts", i, n, hosts)
		}
	}
}

// profileAM saves a CPU profile of each node over the next span (its
// /debug/pprof) into dir, in the background; the test waits for them.
func profileAM(t *testing.T, c *testenv.AMCluster, dir string, span time.Duration) {
	var wg sync.WaitGroup
	t.Cleanup(wg.Wait)
	for i, n := range c.Nodes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			u := fmt.Sprintf("%s/debug/pprof/profile?seconds=%d", n.URL, int(span.Seconds())+1)
			resp, err := http.Get(u)
			if err != nil {
				t.Errorf("profile of Alertmanager %d: %v", i, err)
				return
			}
			defer resp.Body.Close()
			b, _ := io.ReadAll(resp.Body)
			if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("alertmanager%d.pprof", i)), b, 0o644); err != nil {
				t.Error(err)
			}
		}()
	}
}

// fleetLost returns, per node, how many of the hosts' alerts its API lacks.
func fleetLost(t *testing.T, urls []string, hosts int) []int {
	client := &http.Client{Timeout: time.Minute}
	var lost []int
	for i, u := range urls {
		got, err := alertsOf(context.Background(), client, u, `alertname="`+fleetAlertName+`"`)
		if err != nil {
			t.Fatalf("Alertmanager %d: %v", i, err)
		}
		seen := map[string]bool{}
		for _, a := range got {
			if a.Labels["env"] == "fleet-bench" {
				seen[a.Labels["host"]] = true
			}
		}
		n := 0
		for h := 1; h <= hosts; h++ {
			if !seen[fleetHostName(h)] {
				n++
			}
		}
		lost = append(lost, n)
	}
	return lost
}

type fleetReport struct {
	hosts, workers int
	window         time.Duration
	state          string
	setup, wall    time.Duration
	lost           []int
	res            []fleetResult
	amCPU          time.Duration
}

// amCPU is the CPU time the cluster's nodes have used so far.
func amCPU(t *testing.T, c *testenv.AMCluster) time.Duration {
	var sum time.Duration
	for _, n := range c.Nodes {
		d, err := n.CPU()
		if err != nil {
			t.Fatal(err)
		}
		sum += d
	}
	return sum
}

func reportFleet(t *testing.T, r fleetReport) {
	var first, both []time.Duration
	var cpu, idleCPU, idle, busy time.Duration
	var posts, failed, bytes int64
	var pending, checked, visible int
	var lag time.Duration
	for _, w := range r.res {
		cpu, idleCPU, posts, failed, bytes = cpu+w.CPU, idleCPU+w.IdleCPU, posts+w.Posts, failed+w.Failed, bytes+w.Bytes
		idle, busy = max(idle, w.Idle), max(busy, w.Busy)
		pending, checked, visible = pending+w.Pending, checked+w.Checked, visible+w.Visible
		lag = max(lag, w.CheckLag)
		for _, h := range w.Hosts {
			var lo, hi int64
			for _, s := range h.Seen {
				if s != 0 && (lo == 0 || s < lo) {
					lo = s
				}
				hi = max(hi, s)
			}
			if lo != 0 {
				first = append(first, time.Duration(lo-h.Breach))
			}
			if !slices.Contains(h.Seen, 0) {
				both = append(both, time.Duration(hi-h.Breach))
			}
		}
	}
	slices.Sort(first)
	slices.Sort(both)
	q := func(d []time.Duration, p float64) string {
		if len(d) == 0 {
			return "-"
		}
		return d[min(len(d)-1, int(p*float64(len(d))))].Round(time.Millisecond).String()
	}
	// idle: what the same processes burn per second with nothing to send
	// (their agents' timers); net: the CPU per alert without it.
	idleRate := float64(idleCPU) / float64(max(idle, 1))
	net := float64(cpu) - idleRate*float64(busy)
	us := func(d float64) string { return strconv.FormatFloat(d/float64(r.hosts)/1e3, 'f', 1, 64) }
	lost := make([]string, len(r.lost))
	for i, n := range r.lost {
		lost[i] = strconv.Itoa(n)
	}
	msg := fmt.Sprintf("alertmanager_fleet hosts=%d nodes=%d window=%s workers=%d state=%s alerts=%d visible=%d posts_2xx=%d posts_failed=%d bytes_per_post=%d pending=%d lost=%s visible_p50=%s visible_p99=%s visible_max=%s both_nodes_p99=%s both_nodes_max=%s visible_after_2xx=%d/%d lookup_lag_max=%s cpu_per_alert_us=%s net_of_idle_us=%s idle_cpu_ms_per_s=%.1f am_cpu_per_alert_us=%s setup=%s wall=%s",
		r.hosts, len(r.lost), r.window, r.workers, r.state, r.hosts, len(first), posts, failed, bytes/max(posts, 1), pending, strings.Join(lost, "/"),
		q(first, 0.5), q(first, 0.99), q(first, 1), q(both, 0.99), q(both, 1), visible, checked, lag.Round(time.Millisecond),
		us(float64(cpu)), us(net), idleRate*1e3, us(float64(r.amCPU)), r.setup.Round(time.Millisecond), r.wall.Round(time.Millisecond))
	t.Log(msg)
	fmt.Println("BENCH", msg)
}

// TestRealAMIngest measures Alertmanager's own limit in a storm: with
// L2AGENT_AM_INGEST=N, N alerts (one per host, the fleet benchmark's)
// posted at once to both nodes of a real cluster by a lean client (bodies
// encoded beforehand, 16 kept-alive connections per node), so that the
// agents' CPU is not on this machine. Not an agent: what the cluster does
// when a fleet's alerts arrive at the same instant. With
// L2AGENT_AM_INGEST_FRESH=1 each POST has a connection of its own, as each
// agent of a fleet dials its own.
func TestRealAMIngest(t *testing.T) {
	n := envCount(t, "L2AGENT_AM_INGEST", 0)
	if n == 0 {
		t.Skip("a benchmark: set L2AGENT_AM_INGEST=10000")
	}
	const conc = 16
	rcv := newReceiver(t)
	c := testenv.StartAMCluster(t, testenv.AMOptions{Nodes: 2, WebhookURL: rcv.srv.URL, GroupBy: "check",
		GroupWait: 30 * time.Second, GroupInterval: 5 * time.Minute, LogLevel: "info"})
	b := newBackend(t, Options{URLs: c.URLs(), Labels: map[string]string{"env": "fleet-bench"}})
	bodies := make([][]byte, n)
	now := time.Now()
	for i := range bodies {
		host := fleetHostName(i + 1)
		tk := ticket(host)
		tk.Body = strings.Repeat("d", 560) // the fleet benchmark's POSTs are about 1 KB
		raw, err := json.Marshal([]postableAlert{b.alert(b.build(tk, ticketing.L2, now), now, false)})
		if err != nil {
			t.Fatal(err)
		}
		bodies[i] = raw
	}
	fresh := os.Getenv("L2AGENT_AM_INGEST_FRESH") == "1"
	tr := &http.Transport{MaxIdleConnsPerHost: conc, MaxConnsPerHost: conc, DisableKeepAlives: fresh}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr, Timeout: time.Minute}
	lat := make([]time.Duration, 0, 2*n)
	var mu sync.Mutex
	var failed atomic.Int64
	amBefore, cpuBefore := amCPU(t, c), cpuTime(t)
	start := time.Now()
	var wg sync.WaitGroup
	for _, u := range b.urls {
		next := make(chan []byte)
		for range conc {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for body := range next {
					resp, err := client.Post(u, "application/json", bytes.NewReader(body))
					if err != nil {
						failed.Add(1)
						continue
					}
					_, _ = io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					if resp.StatusCode/100 != 2 {
						failed.Add(1)
						continue
					}
					d := time.Since(start)
					mu.Lock()
					lat = append(lat, d)
					mu.Unlock()
				}
			}()
		}
		go func() {
			for _, body := range bodies {
				next <- body
			}
			close(next)
		}()
	}
	wg.Wait()
	wall := time.Since(start)
	amUsed, cpuUsed := amCPU(t, c)-amBefore, cpuTime(t)-cpuBefore
	lost := fleetLost(t, c.URLs(), n)
	slices.Sort(lat)
	q := func(p float64) time.Duration {
		if len(lat) == 0 {
			return 0
		}
		return lat[min(len(lat)-1, int(p*float64(len(lat))))].Round(time.Millisecond)
	}
	msg := fmt.Sprintf("alertmanager_ingest alerts=%d nodes=%d conns_per_node=%d fresh_connections=%v bytes_per_post=%d posts_2xx=%d posts_failed=%d lost=%v accepted_p50=%s accepted_p99=%s accepted_max=%s am_cpu_per_alert_us=%.1f client_cpu_per_post_us=%.1f wall=%s",
		n, len(c.Nodes), conc, fresh, len(bodies[0]), len(lat), failed.Load(), lost, q(0.5), q(0.99), q(1),
		float64(amUsed)/float64(n)/1e3, float64(cpuUsed)/float64(max(len(lat), 1))/1e3, wall.Round(time.Millisecond))
	t.Log(msg)
	fmt.Println("BENCH", msg)
	for i, l := range lost {
		if l != 0 {
			t.Errorf("Alertmanager %d lacks %d of the %d alerts", i, l, n)
		}
	}
}
