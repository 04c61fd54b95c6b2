// Package memory is the memory check (kind "memory"): available memory,
// swap use, OOM kills and memory pressure, and the processes with the
// largest resident set for a ticket's diagnostics. It registers itself from
// init(); checks/all links it in.
package memory

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"

	"github.com/l2agent/l2agent/checks"
	"github.com/l2agent/l2agent/configs"
	"github.com/l2agent/l2agent/internal/procfs"
	"github.com/l2agent/l2agent/internal/textfmt"
)

func init() {
	checks.Register("memory", newMemoryCheck, func() configs.Options { return &Options{} },
		checks.MetricInfo{Name: "memory_available_ratio", Help: "Share of memory available for new work without swapping (MemAvailable/MemTotal)."},
		checks.MetricInfo{Name: "memory_available_bytes", Help: "Memory available for new work without swapping (MemAvailable), in bytes."},
		checks.MetricInfo{Name: "memory_total_bytes", Help: "Usable RAM (MemTotal), in bytes."},
		checks.MetricInfo{Name: "memory_swap_used_ratio", Help: "Share of swap in use; 0 when there is no swap."},
		checks.MetricInfo{Name: "memory_oom_kills_total", Help: "Processes killed by the kernel OOM killer since boot."},
		checks.MetricInfo{Name: "memory_pressure_some_ratio", Help: "Share of the last 60s in which some tasks stalled on memory (PSI some avg60)."},
		checks.MetricInfo{Name: "memory_pressure_full_ratio", Help: "Share of the last 60s in which all non-idle tasks stalled on memory (PSI full avg60)."},
	)
}

// memoryCheck reports memory and swap use from <procfs>/meminfo, OOM kills
// from <procfs>/vmstat and memory pressure from <procfs>/pressure/memory.
type memoryCheck struct {
	name string
	env  checks.Env
	top  int // processes listed by Diagnose
}

func newMemoryCheck(c configs.Check, env checks.Env) (checks.Check, error) {
	o := *c.Options.(*Options)
	o.ApplyDefaults("")
	top := o.TopProcesses
	return &memoryCheck{name: c.Name, env: env, top: top}, nil
}

// Name implements Check.
func (c *memoryCheck) Name() string { return c.name }

// Run implements Check.
func (c *memoryCheck) Run(context.Context) ([]checks.Observation, error) {
	dir := c.env.Paths.Procfs
	mi, err := readKeyValues(filepath.Join(dir, "meminfo"), meminfoKeys)
	if err != nil {
		return nil, err
	}
	total := mi["MemTotal"] * 1024
	if total == 0 {
		return nil, fmt.Errorf("read %s: no MemTotal", filepath.Join(dir, "meminfo"))
	}
	avail, ok := mi["MemAvailable"]
	if !ok {
		// Before Linux 3.14: the estimate free(1) used to make.
		avail = mi["MemFree"] + mi["Buffers"] + mi["Cached"]
	}
	avail *= 1024
	swapUsed := 0.0
	if st := mi["SwapTotal"]; st > 0 {
		swapUsed = float64(st-min(mi["SwapFree"], st)) / float64(st)
	}
	obs := []checks.Observation{
		{Metric: "memory_available_ratio", Value: float64(avail) / float64(total)},
		{Metric: "memory_available_bytes", Value: float64(avail)},
		{Metric: "memory_total_bytes", Value: float64(total)},
		{Metric: "memory_swap_used_ratio", Value: swapUsed},
	}

	vm, err := readKeyValues(filepath.Join(dir, "vmstat"), vmstatKeys)
	if err != nil {
		c.env.Log().Warn("no OOM kill count", "err", err)
	} else if n, ok := vm["oom_kill"]; ok { // Linux 4.13 and later
		obs = append(obs, checks.Observation{Metric: "memory_oom_kills_total", Value: float64(n)})
	}

	p, ok, err := procfs.ReadPSI(dir, "memory")
	if err != nil {
		c.env.Log().Warn("no memory pressure", "err", err)
	} else if ok {
		obs = append(obs, checks.Observation{Metric: "memory_pressure_some_ratio", Value: p.Some.Avg60 / 100})
		if p.Full != nil {
			obs = append(obs, checks.Observation{Metric: "memory_pressure_full_ratio", Value: p.Full.Avg60 / 100})
		}
	}
	return obs, nil
}

// Diagnose implements checks.Diagnoser: the processes with the largest resident set.
func (c *memoryCheck) Diagnose(ctx context.Context, _ checks.Observation) (string, error) {
	s, err := procfs.TopByRSS(ctx, c.env.Paths.Procfs, c.env.Paths.Rootfs, c.top)
	if err != nil {
		return "", err
	}
	return textfmt.Truncate("Top processes by resident memory:\n"+s, checks.MaxDetails), nil
}

// meminfoKeys are the meminfo lines the check uses; vmstatKeys the vmstat
// ones. The other lines (about 50 and 180) are not kept.
var (
	meminfoKeys = []string{"MemTotal", "MemAvailable", "MemFree", "Buffers", "Cached", "SwapTotal", "SwapFree"}
	vmstatKeys  = []string{"oom_kill"}
)

// readKeyValues reads the values of keys from a file of "key value [unit]"
// or "key: value [unit]" lines, such as meminfo and vmstat, ignoring units
// and lines it cannot parse. A file without any such line is an error.
func readKeyValues(path string, keys []string) (map[string]uint64, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	defer f.Close()
	kv, err := parseKeyValues(f, keys)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	return kv, nil
}

// parseKeyValues is readKeyValues' parser. It reads line by line in one
// buffer and converts only the lines of keys: it runs every 30 s.
func parseKeyValues(r io.Reader, keys []string) (map[string]uint64, error) {
	kv := make(map[string]uint64, len(keys))
	br := bufio.NewReaderSize(r, 4096)
	lines := 0
	for {
		line, err := br.ReadSlice('\n')
		if err == bufio.ErrBufferFull {
			return nil, fmt.Errorf("a line longer than %d bytes", br.Size())
		}
		if err != nil && (err != io.EOF || len(line) == 0) {
			if err == io.EOF {
				break
			}
			return nil, err
		}
		key, val, ok := keyValue(line)
		if !ok {
			continue
		}
		want := slices.Index(keys, string(key))
		if want < 0 && lines > 0 {
			continue // a line of no interest, and the file is known to have some
		}
		n, err := strconv.ParseUint(string(val), 10, 64)
		if err != nil {
			continue
		}
		lines++
		if want >= 0 {
			kv[keys[want]] = n
		}
	}
	if lines == 0 {
		return nil, errors.New("no key value lines")
	}
	return kv, nil
}

// keyValue splits "key value ..." or "key: value ..." into its first two
// fields, without the key's trailing colon.
func keyValue(line []byte) (key, val []byte, ok bool) {
	next := func() []byte {
		line = bytes.TrimLeft(line, asciiSpace)
		i := bytes.IndexAny(line, asciiSpace)
		if i < 0 {
			i = len(line)
		}
		f := line[:i]
		line = line[i:]
		return f
	}
	key, val = next(), next()
	if len(key) == 0 || len(val) == 0 {
		return nil, nil, false
	}
	return bytes.TrimSuffix(key, []byte{':'}), val, true
}

// asciiSpace is what the kernel's files separate fields with.
const asciiSpace = " \t\n\v\f\r"
