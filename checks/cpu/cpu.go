// Package cpu is the cpu check (kind "cpu"): utilization and iowait since
// the previous run, load per core and CPU pressure, and the processes that
// use the most CPU for a ticket's diagnostics. It registers itself from
// init(); checks/all links it in.
package cpu

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/l2agent/l2agent/checks"
	"github.com/l2agent/l2agent/configs"
	"github.com/l2agent/l2agent/internal/ctxutil"
	"github.com/l2agent/l2agent/internal/procfs"
	"github.com/l2agent/l2agent/internal/textfmt"
)

func init() {
	checks.Register("cpu", newCPUCheck, func() configs.Options { return &Options{} },
		checks.MetricInfo{Name: "cpu_utilization_ratio", Help: "Share of CPU time not idle or waiting for I/O since the previous run, over all CPUs."},
		checks.MetricInfo{Name: "cpu_iowait_ratio", Help: "Share of CPU time idle while waiting for I/O since the previous run, over all CPUs."},
		checks.MetricInfo{Name: "cpu_load_per_core", Help: "Load average over the window, divided by the number of logical CPUs."},
		checks.MetricInfo{Name: "cpu_pressure_some_ratio", Help: "Share of the last 60s in which some runnable tasks waited for a CPU (PSI some avg60)."},
	)
}

// cpuCheck reports CPU utilization from <procfs>/stat, load from
// <procfs>/loadavg and CPU pressure from <procfs>/pressure/cpu.
type cpuCheck struct {
	name      string
	env       checks.Env
	top       int           // processes listed by Diagnose
	firstGap  time.Duration // between the two readings of the first run
	sampleGap time.Duration // between the two process scans of Diagnose

	mu   sync.Mutex
	prev *cpuTimes // reading of the previous run
}

func newCPUCheck(c configs.Check, env checks.Env) (checks.Check, error) {
	o := *c.Options.(*Options)
	o.ApplyDefaults("")
	top := o.TopProcesses
	return &cpuCheck{name: c.Name, env: env, top: top, firstGap: time.Second, sampleGap: 500 * time.Millisecond}, nil
}

// Name implements Check.
func (c *cpuCheck) Name() string { return c.name }

// Run implements Check. Utilization is measured between the previous run and
// this one; the first run takes two readings firstGap apart.
func (c *cpuCheck) Run(ctx context.Context) ([]checks.Observation, error) {
	cur, n, err := c.times()
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	prev := c.prev
	c.mu.Unlock()
	if prev == nil {
		if err := ctxutil.Sleep(ctx, c.firstGap); err != nil {
			return nil, err
		}
		first := cur
		prev = &first
		if cur, n, err = c.times(); err != nil {
			return nil, err
		}
	}
	c.mu.Lock()
	c.prev = &cur
	c.mu.Unlock()

	var obs []checks.Observation
	if util, iowait, ok := cpuRatios(*prev, cur); ok {
		obs = append(obs,
			checks.Observation{Metric: "cpu_utilization_ratio", Value: util},
			checks.Observation{Metric: "cpu_iowait_ratio", Value: iowait})
	}

	path := filepath.Join(c.env.Paths.Procfs, "loadavg")
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	loads, err := parseLoadavg(string(b))
	if err != nil {
		return nil, fmt.Errorf("parse %s: %w", path, err)
	}
	for i, w := range []string{"1m", "5m", "15m"} {
		obs = append(obs, checks.Observation{Metric: "cpu_load_per_core", Labels: map[string]string{"window": w}, Value: loads[i] / float64(n)})
	}

	p, ok, err := procfs.ReadPSI(c.env.Paths.Procfs, "cpu")
	if err != nil {
		c.env.Log().Warn("no CPU pressure", "err", err)
	} else if ok {
		obs = append(obs, checks.Observation{Metric: "cpu_pressure_some_ratio", Value: p.Some.Avg60 / 100})
	}
	return obs, nil
}

// times reads the total CPU times and the number of online CPUs from
// <procfs>/stat.
func (c *cpuCheck) times() (cpuTimes, int, error) {
	path := filepath.Join(c.env.Paths.Procfs, "stat")
	f, err := os.Open(path)
	if err != nil {
		return cpuTimes{}, 0, fmt.Errorf("read %s: %w", path, err)
	}
	defer f.Close()
	t, n, err := parseStat(f)
	if err != nil {
		return cpuTimes{}, 0, fmt.Errorf("read %s: %w", path, err)
	}
	return t, n, nil
}

// cpuRatios returns the busy and iowait shares of the CPU time between two
// readings; ok is false when no time passed. Guest time is already part of
// user time in /proc/stat, so it is not added again. A counter that went
// backwards (iowait can) counts as zero.
func cpuRatios(prev, cur cpuTimes) (util, iowait float64, ok bool) {
	d := func(a, b uint64) float64 {
		if b < a {
			return 0
		}
		return float64(b - a)
	}
	idle, io := d(prev.Idle, cur.Idle), d(prev.Iowait, cur.Iowait)
	busy := d(prev.User, cur.User) + d(prev.Nice, cur.Nice) + d(prev.System, cur.System) +
		d(prev.Irq, cur.Irq) + d(prev.Softirq, cur.Softirq) + d(prev.Steal, cur.Steal)
	total := busy + idle + io
	if total <= 0 {
		return 0, 0, false
	}
	return busy / total, io / total, true
}

// parseLoadavg parses the 1, 5 and 15 minute load averages of a
// /proc/loadavg line such as "0.52 0.58 0.59 2/1234 5678".
func parseLoadavg(s string) ([3]float64, error) {
	var l [3]float64
	f := strings.Fields(s)
	if len(f) < 3 {
		return l, fmt.Errorf("want 3 load averages, got %q", s)
	}
	for i := range l {
		v, err := strconv.ParseFloat(f[i], 64)
		if err != nil || v < 0 {
			return l, fmt.Errorf("bad load average %q", f[i])
		}
		l[i] = v
	}
	return l, nil
}

// Diagnose implements checks.Diagnoser: the processes that use the most CPU now.
func (c *cpuCheck) Diagnose(ctx context.Context, _ checks.Observation) (string, error) {
	s, err := procfs.TopByCPU(ctx, c.env.Paths.Procfs, c.env.Paths.Rootfs, c.top, c.sampleGap)
	if err != nil {
		return "", err
	}
	return textfmt.Truncate(fmt.Sprintf("Top processes by CPU over %s (100%% = one core):\n%s", c.sampleGap, s), checks.MaxDetails), nil
}
