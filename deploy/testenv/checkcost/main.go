// Command checkcost runs each check of an agent config in-process, N times
// in a row, and prints what one run costs: CPU time of the process and of
// the children it waited for (getrusage), heap allocated, and the largest
// peak RSS among its children. It is a measuring tool for `make bench` and
// for finding where the agent's idle CPU goes, not a test: nothing is
// asserted.
//
//	go run ./deploy/testenv/checkcost [-config FILE] [-runs N] [-cpuprofile FILE] [check...]
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"runtime"
	"runtime/pprof"
	"slices"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/l2agent/l2agent/checks"
	_ "github.com/l2agent/l2agent/checks/all"
	"github.com/l2agent/l2agent/configs"
	_ "github.com/l2agent/l2agent/remediate/all"
	_ "github.com/l2agent/l2agent/ticketing/all"
)

func main() {
	cfgFile := flag.String("config", "", "agent config (default: the embedded one)")
	runs := flag.Int("runs", 20, "runs of each check")
	cpuProfile := flag.String("cpuprofile", "", "write a CPU profile of all runs to this file")
	flag.Parse()
	if err := run(*cfgFile, *runs, *cpuProfile, flag.Args()); err != nil {
		fmt.Fprintln(os.Stderr, "checkcost:", err)
		os.Exit(1)
	}
}

func run(cfgFile string, runs int, cpuProfile string, names []string) error {
	cfg, err := configs.Load(cfgFile)
	if err != nil {
		return err
	}
	host, _ := os.Hostname()
	env := checks.Env{Paths: cfg.Paths, Hostname: host}
	if cpuProfile != "" {
		f, err := os.Create(cpuProfile)
		if err != nil {
			return fmt.Errorf("create CPU profile: %w", err)
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return fmt.Errorf("start CPU profile: %w", err)
		}
		defer pprof.StopCPUProfile()
	}
	tw := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "check\truns\terrors\twall ms/run\tagent CPU ms/run\tchildren CPU ms/run\theap KiB/run\tallocs/run\tchildren max RSS so far MiB\t")
	for _, c := range cfg.Checks {
		if c.Disabled || len(names) > 0 && !slices.Contains(names, c.Name) {
			continue
		}
		ch, err := checks.New(c, env)
		if err != nil {
			return fmt.Errorf("check %s: %w", c.Name, err)
		}
		// One run first: a check's first run may differ (cpu takes two readings).
		ctx, cancel := context.WithTimeout(context.Background(), c.Timeout.D())
		_, _ = ch.Run(ctx)
		cancel()
		m := measure(ch, c.Timeout.D(), runs)
		fmt.Fprintf(tw, "%s\t%d\t%d\t%.2f\t%.3f\t%.3f\t%.1f\t%.0f\t%.1f\t\n", c.Name, runs, m.errors,
			ms(m.wall)/float64(runs), ms(m.self)/float64(runs), ms(m.children)/float64(runs),
			float64(m.bytes)/1024/float64(runs), float64(m.mallocs)/float64(runs), float64(m.childMaxRSS)/(1<<20))
	}
	return tw.Flush()
}

type cost struct {
	errors               int
	wall, self, children time.Duration
	bytes, mallocs       uint64
	childMaxRSS          int64
}

func measure(ch checks.Check, timeout time.Duration, runs int) cost {
	var c cost
	var m0, m1 runtime.MemStats
	s0, k0 := rusage(syscall.RUSAGE_SELF), rusage(syscall.RUSAGE_CHILDREN)
	runtime.ReadMemStats(&m0)
	start := time.Now()
	for range runs {
		ctx, cancel := context.WithTimeout(context.Background(), timeout)
		if _, err := ch.Run(ctx); err != nil {
			c.errors++
		}
		cancel()
	}
	c.wall = time.Since(start)
	runtime.ReadMemStats(&m1)
	s1, k1 := rusage(syscall.RUSAGE_SELF), rusage(syscall.RUSAGE_CHILDREN)
	c.self, c.children = cpu(s1)-cpu(s0), cpu(k1)-cpu(k0)
	c.bytes, c.mallocs = m1.TotalAlloc-m0.TotalAlloc, m1.Mallocs-m0.Mallocs
	c.childMaxRSS = k1.Maxrss * 1024 // the largest of every child so far, not only this check's
	return c
}

func rusage(who int) syscall.Rusage {
	var ru syscall.Rusage
	_ = syscall.Getrusage(who, &ru)
	return ru
}

func cpu(ru syscall.Rusage) time.Duration {
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
