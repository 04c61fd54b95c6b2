// Package agent wires the l2agent daemon: the scheduler that runs checks,
// the evaluator that turns observations into alert states, the metrics
// snapshot and the HTTP server. cmd/l2agent only wraps it.
package agent

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"runtime"
	"runtime/debug"
	"slices"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/exporter-toolkit/web"
	"github.com/robfig/cron/v3"

	"github.com/l2agent/l2agent/checks"
	"github.com/l2agent/l2agent/configs"
	"github.com/l2agent/l2agent/internal/alert"
	"github.com/l2agent/l2agent/internal/version"
	"github.com/l2agent/l2agent/remediate"
	"github.com/l2agent/l2agent/ticketing"
)

// The version every HTTP client names in its User-Agent is the one
// `l2agent version` prints.
func init() { version.Set(readBuildInfo().Version) }

// Options configure an Agent.
type Options struct {
	ConfigFile    string        // empty: the embedded default
	ListenAddress string        // overrides the config's listen_address when set
	Paths         configs.Paths // each root set here overrides the config's paths
	// WebConfigFile is an exporter-toolkit web config (TLS, basic auth), as
	// node_exporter's --web.config.file.
	WebConfigFile string
	Logger        *slog.Logger // default: slog.Default()
	LogLevel      *slog.LevelVar
	Sinks         []Sink // receive every transition, after the log
	// DiagnoseTimeout bounds the diagnostics taken when an alert fires.
	DiagnoseTimeout time.Duration
	// EnableLifecycle turns on POST /-/reload over TCP for any client
	// (--web.enable-lifecycle); off, only requests authenticated by the web
	// config's basic_auth_users may use it. The rest of the detailed API
	// (flush, replay) is never opened by it: see tcpGuard.
	EnableLifecycle bool
	// ReloadInterval is the least time between two reloads asked for by
	// SIGHUP or POST /-/reload (RequestReload); more requests meanwhile are
	// folded into the next one. DefaultReloadInterval when not positive.
	ReloadInterval time.Duration
	// IdleTimeout closes keep-alive connections idle this long
	// (--web.idle-timeout); DefaultIdleTimeout when not positive.
	IdleTimeout time.Duration
}

// Agent is the daemon. New, Start, Reload and Stop drive it, from main or
// from tests.
type Agent struct {
	opts   Options
	log    *slog.Logger
	host   string
	eval   *Evaluator
	reg    *prometheus.Registry
	build  buildInfo
	start  time.Time
	reload reloadMetrics
	snap   snapshotCache
	burst  burstRelease // returns a burst of scrapes' heap to the OS (metrics.go)
	// pagedOut is when the agent's code was last paged out (UnixNano; 0:
	// never), see maybePageOut.
	pagedOut atomic.Int64

	mu      sync.RWMutex
	cfg     *configs.Config
	runners []*runner
	cron    *cron.Cron

	ctx    context.Context // cancelled by Stop; parent of every run
	cancel context.CancelFunc
	wg     sync.WaitGroup // scheduled jobs in flight (not hung check goroutines)
	wgMu   sync.Mutex     // orders wg.Add before Stop's cancel and Wait

	srv       *http.Server
	listener  net.Listener
	sock      *apiSocket // the detailed API's unix socket; nil until Start(true)
	reloads   reloadGate
	reloaded  atomic.Uint64                     // reloads run (each answers every request it coalesced)
	tickets   atomic.Pointer[ticketing.Service] // nil without ticket backends
	ticketErr atomic.Pointer[string]            // why configured ticketing cannot work
	tmetrics  *ticketing.Metrics

	// procCfg is the config in force for the procedures tickets show, read
	// without a.mu (a reload holds it while ticketing renders).
	procCfg    atomic.Pointer[configs.Config]
	alertState atomic.Pointer[string] // the evaluator's state file; nil: not kept (one-shot runs)
	saveMu     sync.Mutex             // one save of the alert state at a time

	remediation atomic.Pointer[remediate.Engine] // nil when it could not be set up
	kpi         *ticketing.KPI
	pipeline    pipeline // a check run's stages, composed in pipeline.go
}

// New loads the configuration and builds the checks; it starts nothing.
func New(opts Options) (*Agent, error) {
	cfg, err := loadConfig(opts)
	if err != nil {
		return nil, err
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.DiagnoseTimeout == 0 {
		opts.DiagnoseTimeout = 10 * time.Second
	}
	host := cfg.Hostname
	if host == "" {
		if host, err = os.Hostname(); err != nil {
			return nil, fmt.Errorf("hostname: %w", err)
		}
	}
	a := &Agent{
		opts:  opts,
		log:   opts.Logger,
		host:  host,
		eval:  NewEvaluator(host),
		reg:   prometheus.NewRegistry(),
		build: readBuildInfo(),
		start: time.Now(),
		cfg:   cfg,
	}
	a.procCfg.Store(cfg)
	a.ctx, a.cancel = context.WithCancel(context.Background())
	a.pipeline = a.compose()
	a.setLogLevel(cfg)
	runners, err := a.buildRunners(cfg, nil)
	if err != nil {
		return nil, err
	}
	a.runners = runners
	a.registerMetrics()
	a.kpi = ticketing.NewKPI(a.reg)
	a.tmetrics = ticketing.NewMetrics(a.reg)
	a.opts.Sinks = append(a.opts.Sinks, ticketSink{a})
	// The engine tags its own lines component=remediate.
	if e, err := remediate.New(cfg.Remediation, cfg.StateDir, a.log, a.reg, time.Now); err != nil {
		a.log.Error("remediation disabled", "err", err)
	} else {
		a.remediation.Store(e)
	}
	return a, nil
}

// loadConfig loads the config file and applies the command-line overrides.
func loadConfig(opts Options) (*configs.Config, error) {
	cfg, err := configs.Load(opts.ConfigFile)
	if err != nil {
		return nil, err
	}
	for _, p := range []struct {
		dst *string
		v   string
	}{
		{&cfg.Paths.Procfs, opts.Paths.Procfs}, {&cfg.Paths.Sysfs, opts.Paths.Sysfs}, {&cfg.Paths.Rootfs, opts.Paths.Rootfs},
	} {
		if p.v != "" {
			*p.dst = p.v
		}
	}
	// One state dir for every component, resolved once: a non-root run
	// with the default one falls back to a per-user dir.
	if dir := StateDir(cfg); dir != cfg.StateDir {
		log := opts.Logger
		if log == nil {
			log = slog.Default()
		}
		log.Warn("state_dir not writable; using a per-user one", "state_dir", cfg.StateDir, "using", dir)
		cfg.MoveStateDir(dir)
	}
	return cfg, nil
}

// Host is the hostname used in alert keys.
func (a *Agent) Host() string { return a.host }

// Config returns the configuration in force.
func (a *Agent) Config() *configs.Config {
	a.mu.RLock()
	defer a.mu.RUnlock()
	return a.cfg
}

// Evaluator gives read access to alert states.
func (a *Agent) Evaluator() *Evaluator { return a.eval }

func (a *Agent) setLogLevel(cfg *configs.Config) {
	if a.opts.LogLevel == nil {
		return
	}
	var l slog.Level
	if err := l.UnmarshalText([]byte(cfg.Log.Level)); err == nil {
		a.opts.LogLevel.Set(l)
	}
}

func (a *Agent) env(cfg *configs.Config) checks.Env {
	return checks.Env{Paths: cfg.Paths, Hostname: a.host, Logger: a.log}
}

// buildRunners makes a runner per enabled check. A check whose configuration
// is unchanged from one of old keeps its runner, so its history (disk fill
// samples) and its in-flight guard survive a reload.
func (a *Agent) buildRunners(cfg *configs.Config, old []*runner) ([]*runner, error) {
	var out []*runner
	var errs []error
	for _, c := range cfg.Checks {
		if c.Disabled {
			continue
		}
		if i := slices.IndexFunc(old, func(r *runner) bool { return reflect.DeepEqual(r.cfg, c) }); i >= 0 &&
			reflect.DeepEqual(cfg.Paths, a.cfg.Paths) && cfg.Defaults.JitterMax == a.cfg.Defaults.JitterMax {
			out = append(out, old[i])
			continue
		}
		ch, err := checks.New(c, a.env(cfg))
		if err != nil {
			errs = append(errs, err)
			continue
		}
		sched, err := jittered(c.Schedule, a.host, cfg.Defaults.JitterMax.D())
		if err != nil {
			errs = append(errs, fmt.Errorf("check %q: schedule: %w", c.Name, err))
			continue
		}
		next := sched.Next(time.Now())
		out = append(out, &runner{cfg: c, check: ch, sched: sched, infrequent: sched.Next(next).Sub(next) >= infrequentRun})
	}
	return out, errors.Join(errs...)
}

// Start runs every check once, starts the schedule and, when listen is
// true, the HTTP server. It returns once the server listens.
func (a *Agent) Start(listen bool) error {
	if listen {
		setRuntimeDefaults(a.log)
		addr := a.opts.ListenAddress
		if addr == "" {
			addr = a.Config().ListenAddress
		}
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			return fmt.Errorf("listen on %s: %w", addr, err)
		}
		if a.opts.WebConfigFile != "" {
			if err := web.Validate(a.opts.WebConfigFile); err != nil {
				ln.Close()
				return fmt.Errorf("web config %s: %w", a.opts.WebConfigFile, err)
			}
		}
		sock, err := a.listenSocket(APISocket(a.Config()), a.Config().API.Group)
		if errors.Is(err, fs.ErrPermission) || errors.Is(err, syscall.EROFS) {
			// The directory cannot hold it (a read-only or foreign state
			// dir): metrics, health and tickets go on; the API is off.
			a.log.Error("API socket unavailable; the detailed API and the CLI's requests to the running agent are off (set api.socket to a writable place)", "err", err)
			sock, err = nil, nil
		}
		if err != nil {
			ln.Close()
			return err
		}
		a.sock, a.listener = sock, ln
		a.srv = &http.Server{
			Handler:           a.Handler(),
			ReadHeaderTimeout: 10 * time.Second,
			IdleTimeout:       a.opts.idleTimeout(),
			ErrorLog:          slog.NewLogLogger(a.log.Handler(), slog.LevelError),
		}
		webCfg := a.opts.WebConfigFile
		go func() {
			err := web.Serve(ln, a.srv, &web.FlagConfig{WebConfigFile: &webCfg}, toolkitLog(a.log))
			if err != nil && !errors.Is(err, http.ErrServerClosed) {
				a.log.Error("HTTP server stopped", "err", err)
			}
		}()
		attrs := []any{"address", ln.Addr().String()}
		if sock != nil {
			attrs = append(attrs, "api_socket", sock.path)
		}
		if webCfg != "" {
			attrs = append(attrs, "web_config", webCfg) // TLS and basic auth as it says
		}
		a.log.Info("listening", attrs...) // the one line: the toolkit's own are at debug (toolkitLog)
	}
	a.restoreAlerts(a.Config())
	a.startTicketing(a.Config())
	a.mu.Lock()
	a.startSchedule(nil)
	a.mu.Unlock()
	return nil
}

// DefaultGOGC is the garbage collector's target the daemon runs with unless
// the environment sets GOGC (Go's default is 100). The agent's live heap is
// about 3 MiB; with 100 a burst of concurrent scrapes let the heap grow to
// twice its size between collections, and the peak RSS passed
// node_exporter's. 50 keeps the peak about 3 MiB lower at no measurable
// cost per scrape (25 saved 0.5 MiB more but cost about 0.1 ms of CPU per
// scrape); see the Performance section of agent/README.md. GOMEMLIMIT is
// left to the environment.
const DefaultGOGC = 50

// DefaultGOMAXPROCS is how many threads run the daemon's Go code at once
// unless the environment sets GOMAXPROCS (Go's default is one per CPU), as
// node_exporter does since 1.5. The agent's work is a few milliseconds a
// minute, mostly waiting on files and programs; with one thread per CPU,
// every wake-up also woke idle threads to look for work, which cost more
// CPU than the work (idle CPU 8.5–11.9 against 5.1–5.9 ms per minute on
// 2 CPUs, measured side by side; see the Performance section of
// agent/README.md). Blocking system calls and programs run never count
// against it, and one CPU serves more than 1,900 scrapes a second.
const DefaultGOMAXPROCS = 1

// setRuntimeDefaults sets the daemon's GOGC and GOMAXPROCS, each unless the
// environment sets it.
func setRuntimeDefaults(log *slog.Logger) {
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(DefaultGOGC)
		log.Debug("garbage collector target set", "GOGC", DefaultGOGC)
	}
	if os.Getenv("GOMAXPROCS") == "" {
		runtime.GOMAXPROCS(DefaultGOMAXPROCS)
		log.Debug("threads running Go code set", "GOMAXPROCS", DefaultGOMAXPROCS)
	}
}

// Addr is the address the HTTP server listens on.
func (a *Agent) Addr() string {
	if a.listener == nil {
		return ""
	}
	return a.listener.Addr().String()
}

// startSchedule must be called with a.mu held. Each runner not in kept
// runs once now (every one at start; after a reload, those whose config
// changed); a kept one waits for its next scheduled time.
func (a *Agent) startSchedule(kept []*runner) {
	c := cron.New(cron.WithLogger(cron.DiscardLogger))
	for _, r := range a.runners {
		c.Schedule(r.sched, cron.FuncJob(func() { a.runScheduled(r) }))
		if slices.Contains(kept, r) {
			continue
		}
		a.log.Info("check scheduled", "check", r.cfg.Name, "kind", r.cfg.Kind, "schedule", r.cfg.Schedule, "timeout", r.cfg.Timeout.D())
		go a.runScheduled(r) // once now
	}
	c.Start()
	a.cron = c
}

func (a *Agent) runScheduled(r *runner) {
	// Add under wgMu, and only before Stop cancels: never an Add racing
	// Stop's Wait.
	a.wgMu.Lock()
	if a.ctx.Err() != nil {
		a.wgMu.Unlock()
		return
	}
	a.wg.Add(1)
	a.wgMu.Unlock()
	defer a.wg.Done()
	a.RunCheck(a.ctx, r)
	if r.infrequent {
		// A check that runs every few minutes or hours (apt's simulated
		// upgrade, clamd, sshd -T) leaves a transient heap behind; return it
		// to the OS now rather than keep it until the scavenger gets to it:
		// the agent's idle footprint is what a fleet pays for.
		debug.FreeOSMemory()
	}
	a.maybePageOut(r.infrequent)
}

// pageOutEvery is the least time between two page-outs of the agent's code
// after its first one (pageOutCode): what the agent goes on using comes back
// within a minute, read again (10–30 ms of CPU measured),
// so repeating it often would only cost page faults.
const pageOutEvery = 6 * time.Hour

// maybePageOut pages out the agent's code once every check has finished its
// first run (start-up and first runs touch code that is not used again),
// then after an infrequent check's run at most every pageOutEvery.
func (a *Agent) maybePageOut(infrequent bool) {
	last := a.pagedOut.Load()
	switch {
	case last == 0 && !a.firstRunsDone():
		return
	case last != 0 && (!infrequent || time.Since(time.Unix(0, last)) < pageOutEvery):
		return
	}
	if !a.pagedOut.CompareAndSwap(last, time.Now().UnixNano()) {
		return // another run did it
	}
	if n, err := pageOutCode(); err != nil {
		a.log.Debug("page out code", "err", err, "bytes", n)
	}
}

// infrequentRun is the interval from which a check counts as infrequent.
const infrequentRun = 5 * time.Minute

// RunCheck runs one check now through the pipeline (see pipeline.go) and
// returns the transitions it caused.
func (a *Agent) RunCheck(ctx context.Context, r *runner) []alert.Transition {
	return a.pipeline.run(ctx, r).ts
}

func (r *runner) lastError() string {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return r.lastErr
}

// Ready reports whether every check has finished (or timed out) its first
// run and ticketing, when configured, works.
func (a *Agent) Ready() bool { return a.NotReady() == "" }

// NotReady says why the agent is not ready; "" when it is.
func (a *Agent) NotReady() string {
	if msg := a.ticketErr.Load(); msg != nil {
		return "ticketing cannot work: " + *msg
	}
	if svc := a.tickets.Load(); svc != nil {
		if err := svc.Err(); err != nil {
			return "ticketing cannot record decisions: " + err.Error()
		}
	}
	if !a.firstRunsDone() {
		return "checks have not all finished their first run"
	}
	return ""
}

// firstRunsDone reports whether every check has finished (or timed out)
// its first run.
func (a *Agent) firstRunsDone() bool {
	a.mu.RLock()
	defer a.mu.RUnlock()
	for _, r := range a.runners {
		if !r.firstDoneLocked() {
			return false
		}
	}
	return true
}

// Reload re-reads the config file. An invalid config, or one whose
// ticketing cannot be put in force, is rejected and the running one is kept;
// l2agent_config_last_reload_successful says which.
func (a *Agent) Reload() error {
	a.reloaded.Add(1)
	n, err := a.reloadConfig()
	if err != nil {
		a.reload.successful.Set(0)
		a.log.Error("config reload failed; keeping the running config", "file", a.opts.ConfigFile, "err", err)
		return err
	}
	a.snap.invalidate()
	a.reload.successful.Set(1)
	a.reload.timestamp.SetToCurrentTime()
	a.log.Info("config reloaded", "file", a.opts.ConfigFile, "checks", n)
	return nil
}

// reloadConfig loads the config file and puts it in force; it returns the
// number of checks.
func (a *Agent) reloadConfig() (int, error) {
	cfg, err := loadConfig(a.opts)
	if err != nil {
		return 0, err
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	runners, err := a.buildRunners(cfg, a.runners)
	if err != nil {
		return 0, err
	}
	old, oldCfg := a.runners, a.cfg
	if err := a.reloadTicketing(oldCfg, cfg); err != nil {
		return 0, err
	}
	if cfg.ListenAddress != oldCfg.ListenAddress && a.opts.ListenAddress == "" {
		a.log.Warn("listen_address changed; it takes effect on restart", "old", oldCfg.ListenAddress, "new", cfg.ListenAddress)
	}
	if a.sock != nil && (APISocket(cfg) != a.sock.path || cfg.API.Group != oldCfg.API.Group) {
		a.log.Warn("api.socket or api.group changed; it takes effect on restart", "socket", a.sock.path)
	}
	for _, r := range a.runners {
		if !slices.ContainsFunc(runners, func(n *runner) bool { return n.cfg.Name == r.cfg.Name }) {
			a.eval.Forget(r.cfg.Name)
		}
	}
	if a.cron != nil {
		a.cron.Stop()
	}
	a.reloadRemediation(oldCfg, cfg)
	a.cfg, a.runners = cfg, runners
	a.procCfg.Store(cfg)
	a.setLogLevel(cfg)
	if a.alertState.Load() != nil {
		path := filepath.Join(cfg.StateDir, AlertStateFile)
		a.alertState.Store(&path)
	}
	a.saveAlerts() // without the forgotten checks
	if svc := a.tickets.Load(); svc != nil {
		svc.ReconcileChecks(checkNames(cfg), time.Now())
	}
	if a.cron != nil {
		a.startSchedule(old)
	}
	return len(cfg.Checks), nil
}

// reloadRemediation rebuilds the remediation engine when its policy or the
// state dir (its audit log and cooldowns) changed.
func (a *Agent) reloadRemediation(old, cfg *configs.Config) {
	if reflect.DeepEqual(cfg.Remediation, old.Remediation) && cfg.StateDir == old.StateDir {
		return
	}
	e, err := remediate.New(cfg.Remediation, cfg.StateDir, a.log, a.reg, time.Now) // tagged component=remediate by the engine
	if err != nil {
		a.log.Error("remediation not reloaded; keeping the running policy", "err", err)
		return
	}
	a.remediation.Store(e)
}

// Stop stops the schedule and the HTTP server and cancels running checks.
// It waits for in-flight runs up to ctx's deadline; a check that ignores its
// context is abandoned.
func (a *Agent) Stop(ctx context.Context) error {
	a.wgMu.Lock()
	a.cancel()
	a.wgMu.Unlock()
	a.mu.Lock()
	if a.cron != nil {
		a.cron.Stop()
	}
	a.mu.Unlock()
	var err error
	if a.srv != nil {
		err = a.srv.Shutdown(ctx)
	}
	if a.sock != nil {
		err = errors.Join(err, a.sock.srv.Shutdown(ctx)) // removes the socket file
	}
	done := make(chan struct{})
	go func() { a.wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-ctx.Done():
		err = errors.Join(err, fmt.Errorf("stop: checks still running: %w", ctx.Err()))
	}
	if svc := a.tickets.Swap(nil); svc != nil {
		err = errors.Join(err, svc.Stop()) // the outbox keeps what is not delivered
	}
	return err
}

// RunAll runs every enabled check once, in parallel, and returns the alerts
// (one-shot mode for `l2agent check`). names limits it to those checks.
func (a *Agent) RunAll(ctx context.Context, names ...string) ([]CheckResult, error) {
	a.mu.RLock()
	runners := slices.Clone(a.runners)
	a.mu.RUnlock()
	if len(names) > 0 {
		var sel []*runner
		for _, n := range names {
			i := slices.IndexFunc(runners, func(r *runner) bool { return r.cfg.Name == n })
			if i < 0 {
				return nil, fmt.Errorf("no enabled check named %q", n)
			}
			sel = append(sel, runners[i])
		}
		runners = sel
	}
	out := make([]CheckResult, len(runners))
	var wg sync.WaitGroup
	for i, r := range runners {
		wg.Add(1)
		go func() {
			defer wg.Done()
			a.RunCheck(ctx, r)
			out[i] = a.checkResult(r)
		}()
	}
	wg.Wait()
	return out, nil
}

// CheckResult is one check's last run and its alerts.
type CheckResult struct {
	Name         string               `json:"name"`
	Kind         string               `json:"kind"`
	Schedule     string               `json:"schedule"`
	State        alert.State          `json:"state"` // worst state of its alerts that are not report-only; unknown when the run failed
	LastRun      time.Time            `json:"last_run,omitzero"`
	LastSuccess  time.Time            `json:"last_success,omitzero"`
	Duration     float64              `json:"duration_seconds"`
	Error        string               `json:"error,omitempty"`
	Runs         uint64               `json:"runs"`
	Errors       uint64               `json:"errors"`
	Skipped      uint64               `json:"skipped"`
	Abandoned    uint64               `json:"abandoned"` // runs abandoned at their timeout
	Stuck        int64                `json:"stuck"`     // of which still blocked
	Observations []checks.Observation `json:"observations,omitempty"`
	Alerts       []alert.Alert        `json:"alerts,omitempty"`
}

func (a *Agent) checkResult(r *runner) CheckResult {
	r.mu.RLock()
	cr := CheckResult{
		Name: r.cfg.Name, Kind: r.cfg.Kind, Schedule: r.cfg.Schedule,
		LastRun: r.lastRun, LastSuccess: r.lastSuccess, Duration: r.duration.Seconds(),
		Error: r.lastErr, Runs: r.runs, Errors: r.errors, Skipped: r.skipped,
		Abandoned: r.abandoned, Stuck: r.stuck.Load(),
		Observations: slices.Clone(r.obs),
	}
	r.mu.RUnlock()
	cr.State = alert.StateOK
	if !r.firstDoneLocked() || cr.Error != "" {
		cr.State = alert.StateUnknown
	}
	for _, al := range a.eval.Alerts() {
		if al.Check != r.cfg.Name || al.Metric == "" {
			continue
		}
		cr.Alerts = append(cr.Alerts, al)
		if al.ReportOnly == "" { // a policy the config does not require is no failure of the check
			cr.State = alert.Worst(cr.State, al.State)
		}
	}
	return cr
}

func (r *runner) firstDoneLocked() bool {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return r.firstDone
}

// Results returns every check's last result.
func (a *Agent) Results() []CheckResult {
	a.mu.RLock()
	runners := slices.Clone(a.runners)
	a.mu.RUnlock()
	out := make([]CheckResult, len(runners))
	for i, r := range runners {
		out[i] = a.checkResult(r)
	}
	return out
}
