package antivirus

import (
	"bytes"
	"context"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/l2agent/l2agent/internal/procfs"
	"github.com/l2agent/l2agent/internal/textfmt"
)

// Any other EDR/AV (a vendor sensor): it is up when every configured
// process runs and every configured systemd unit is active.

func (c *antivirusCheck) collectProcessEngine(ctx context.Context, pe ProcessEngine, procs procTable) avResult {
	r := avResult{Engine: pe.Name, Up: true}
	var lines []string
	for _, name := range pe.Processes {
		if pids := procs.find(name); len(pids) > 0 {
			lines = append(lines, fmt.Sprintf("process %s running (pid %d)", name, pids[0]))
		} else {
			r.Up = false
			lines = append(lines, fmt.Sprintf("process %s NOT running", name))
		}
	}
	if len(pe.Units) > 0 {
		states, err := c.unitStates(ctx, pe.Units)
		for _, u := range pe.Units {
			switch s := states[u]; {
			case err != nil:
				r.Up = false
				lines = append(lines, fmt.Sprintf("unit %s: state unknown: %v", u, err))
			case s == "active":
				lines = append(lines, fmt.Sprintf("unit %s active", u))
			default:
				r.Up = false
				lines = append(lines, fmt.Sprintf("unit %s NOT active (%s)", u, textfmt.Sanitize(s)))
			}
		}
	}
	r.UpDetails = strings.Join(lines, "\n")
	return r
}

// unitStates asks `systemctl is-active UNIT...`, which prints one state a
// line in the order asked (exit code 3 when any is not active).
func (c *antivirusCheck) unitStates(ctx context.Context, units []string) (map[string]string, error) {
	argv := append([]string{c.opts.Systemctl, "is-active", "--"}, units...)
	out, err := c.command(ctx, argv...)
	if err != nil {
		return nil, err
	}
	states := strings.Fields(string(out.Stdout))
	if len(states) != len(units) {
		return nil, out.ExitError(argv)
	}
	m := make(map[string]string, len(units))
	for i, u := range units {
		m[u] = states[i]
	}
	return m, nil
}

// procTable maps process names to pids: both the kernel's comm (at most 15
// bytes) and the base name of argv[0], so that long names and scripts run
// by an interpreter are found.
type procTable map[string][]int

// find returns the pids of name, matching a comm truncated to 15 bytes.
func (t procTable) find(name string) []int {
	if pids := t[name]; len(pids) > 0 {
		return pids
	}
	if len(name) > 15 {
		return t[name[:15]]
	}
	return nil
}

// runningProcesses scans <procfs>/<pid>/stat and cmdline of every live
// process (zombies excluded).
func runningProcesses(ctx context.Context, procDir string) (procTable, error) {
	procs, err := procfs.Scan(ctx, procDir)
	if err != nil {
		return nil, err
	}
	t := procTable{}
	for _, pid := range slices.Sorted(maps.Keys(procs)) {
		p := procs[pid]
		if p.State == 'Z' || p.State == 'X' {
			continue
		}
		t[p.Comm] = append(t[p.Comm], pid)
		if p.KernelThread() {
			continue // no program, no cmdline: nothing more to read
		}
		if b, err := os.ReadFile(filepath.Join(procDir, strconv.Itoa(pid), "cmdline")); err == nil {
			argv0, _, _ := bytes.Cut(b, []byte{0})
			if base := filepath.Base(string(argv0)); len(argv0) > 0 && base != p.Comm {
				t[base] = append(t[base], pid)
			}
		}
	}
	return t, nil
}
