// Package antivirus is the antivirus check (kind "antivirus"): whether the
// engine runs and answers, the age of its signatures, real-time protection
// and the newest scan, for ClamAV, Microsoft Defender (mdatp) and any other
// EDR/AV watched by its processes and systemd units. It registers itself
// from init(); checks/all links it in.
package antivirus

import (
	"context"
	"fmt"
	"net"
	"os"
	"slices"
	"time"

	"github.com/l2agent/l2agent/checks"
	"github.com/l2agent/l2agent/configs"
	"github.com/l2agent/l2agent/internal/command"
	"github.com/l2agent/l2agent/internal/fsutil"
	"github.com/l2agent/l2agent/internal/textfmt"
)

func init() {
	checks.Register("antivirus", newAntivirusCheck, func() configs.Options { return &Options{} },
		checks.MetricInfo{Name: "antivirus_up", Help: "1 if the antivirus engine is running and answers (clamd PING, mdatp healthy, required processes and units running)."},
		checks.MetricInfo{Name: "antivirus_signature_age_seconds", Help: "Age of the engine's signature database (ClamAV: build time in the database headers; Defender: definitions_updated)."},
		checks.MetricInfo{Name: "antivirus_realtime_protection", Help: "1 if on-access/real-time scanning is active (ClamAV: clamonacc running; Defender: real_time_protection_enabled)."},
		checks.MetricInfo{Name: "antivirus_last_scan_timestamp_seconds", Help: "End time of the newest scan in the configured scan logs."},
		checks.MetricInfo{Name: "antivirus_infected_files", Help: "Infected files found by the newest scan in the configured scan logs."},
		checks.MetricInfo{Name: "antivirus_signature_update_timestamp_seconds", Help: "Time of the last successful signature update (ClamAV: freshclam's log)."},
		checks.MetricInfo{Name: "antivirus_engine_info", Help: "1, with the engine version and signature version as labels."},
	)
}

// avResult is what one engine reported. Unknown values are nil or zero.
type avResult struct {
	Engine           string
	Up               bool
	UpDetails        string
	SignatureTime    time.Time
	SignatureDetails string
	Realtime         *bool
	RealtimeDetails  string
	LastScan         time.Time
	Infected         *int
	InfectedDetails  string
	LastUpdate       time.Time
	Version          string
	SignatureVersion string
}

// antivirusCheck reports the health of the configured (or installed)
// antivirus engines. A fault of one engine is data, not a failed run.
type antivirusCheck struct {
	name string
	env  checks.Env
	opts Options
	run  command.Runner
	now  func() time.Time
	dial func(ctx context.Context, network, addr string) (net.Conn, error)
}

func newAntivirusCheck(c configs.Check, env checks.Env) (checks.Check, error) {
	o := *c.Options.(*Options)
	o = o.WithDefaults()
	for _, e := range o.Engines {
		if !slices.Contains(Engines, e) {
			return nil, fmt.Errorf("unknown antivirus engine %q", e)
		}
	}
	if env.Paths.Rootfs == "" {
		env.Paths.Rootfs = "/"
	}
	if env.Paths.Procfs == "" {
		env.Paths.Procfs = "/proc"
	}
	var d net.Dialer
	return &antivirusCheck{name: c.Name, env: env, opts: o, run: command.CaptureIn(env.CommandRoot()), now: time.Now, dial: d.DialContext}, nil
}

// Name implements Check.
func (c *antivirusCheck) Name() string { return c.name }

// engines returns the engines to check: the configured ones, or those
// installed.
func (c *antivirusCheck) engines() []string {
	if len(c.opts.Engines) > 0 {
		return c.opts.Engines
	}
	var es []string
	if _, err := os.Stat(c.rootPath(c.opts.ClamAV.ClamdConf)); err == nil {
		es = append(es, "clamav")
	}
	if _, err := os.Stat(c.programPath(c.opts.MDATP.Path)); err == nil {
		es = append(es, "mdatp")
	}
	return es
}

// Run implements Check.
func (c *antivirusCheck) Run(ctx context.Context) ([]checks.Observation, error) {
	var results []avResult
	engines := c.engines()
	for _, e := range engines {
		var r avResult
		switch e {
		case "clamav":
			r = c.collectClamAV(ctx)
		case "mdatp":
			r = c.collectMDATP(ctx)
		}
		results = append(results, r)
	}
	if len(c.opts.Processes) > 0 {
		procs, err := runningProcesses(ctx, c.env.Paths.Procfs)
		if err != nil {
			return nil, err
		}
		for _, pe := range c.opts.Processes {
			results = append(results, c.collectProcessEngine(ctx, pe, procs))
		}
	}
	if ctx.Err() != nil {
		return nil, context.Cause(ctx) // a partial picture would show engines down
	}
	if len(results) == 0 {
		return []checks.Observation{{Metric: "antivirus_up", Labels: map[string]string{"engine": "none"}, Value: 0,
			Details: fmt.Sprintf("No antivirus engine found: no %s, no %s, and no processes: configured.",
				c.rootPath(c.opts.ClamAV.ClamdConf), c.opts.MDATP.Path),
			ReportOnly: c.noEngineReportOnly()}}, nil
	}
	now := c.now()
	var obs []checks.Observation
	for _, r := range results {
		l := func() map[string]string { return map[string]string{"engine": r.Engine} }
		add := func(metric string, v float64, details string) {
			obs = append(obs, checks.Observation{Metric: metric, Labels: l(), Value: v, Details: textfmt.Truncate(details, checks.MaxDetails)})
		}
		add("antivirus_up", checks.BoolValue(r.Up), r.UpDetails)
		if !r.SignatureTime.IsZero() {
			add("antivirus_signature_age_seconds", max(0, now.Sub(r.SignatureTime).Seconds()), r.SignatureDetails)
		}
		if r.Realtime != nil {
			add("antivirus_realtime_protection", checks.BoolValue(*r.Realtime), r.RealtimeDetails)
		}
		if !r.LastScan.IsZero() {
			add("antivirus_last_scan_timestamp_seconds", unixSeconds(r.LastScan), "")
		}
		if r.Infected != nil {
			add("antivirus_infected_files", float64(*r.Infected), r.InfectedDetails)
		}
		if !r.LastUpdate.IsZero() {
			add("antivirus_signature_update_timestamp_seconds", unixSeconds(r.LastUpdate), "")
		}
		if r.Version != "" || r.SignatureVersion != "" {
			obs = append(obs, checks.Observation{Metric: "antivirus_engine_info", Value: 1,
				Labels: map[string]string{"engine": r.Engine, "version": r.Version, "signature_version": r.SignatureVersion}})
		}
	}
	return obs, nil
}

// notRequired is why a host without any engine files no ticket while
// antivirus is not required.
const notRequired = "antivirus is not required by the config (antivirus: {required: false}): a host without an engine is reported, not ticketed"

// noEngineReportOnly is the ReportOnly of the engine="none" series: set
// unless the config requires antivirus.
func (c *antivirusCheck) noEngineReportOnly() string {
	if c.opts.Required {
		return ""
	}
	return notRequired
}

func unixSeconds(t time.Time) float64 { return float64(t.UnixNano()) / 1e9 }

// rootPath returns p as seen through the configured rootfs, following the
// host's symbolic links inside it (its /var/run → /run).
func (c *antivirusCheck) rootPath(p string) string {
	if c.env.Paths.Rootfs == "/" {
		return p
	}
	return fsutil.InRoot(c.env.Paths.Rootfs, p)
}

// programPath is where the agent finds a program the check runs: as it is,
// unless programs run chrooted into the rootfs (paths.chroot).
func (c *antivirusCheck) programPath(p string) string {
	if c.env.CommandRoot() == "" {
		return p
	}
	return c.rootPath(p)
}

// command runs argv bounded by the engine timeout.
func (c *antivirusCheck) command(ctx context.Context, argv ...string) (command.Output, error) {
	ctx, cancel := context.WithTimeout(ctx, c.opts.Timeout.D())
	defer cancel()
	return c.run(ctx, argv...)
}
