// Package procfs reads what several checks need from a procfs tree (its root
// is a parameter, so tests point it at testdata/): the process table, the top
// processes by CPU or resident memory for a ticket's diagnostics, and
// pressure stall information (PSI).
package procfs

import (
	"bufio"
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/l2agent/l2agent/internal/ctxutil"
	"github.com/l2agent/l2agent/internal/textfmt"
)

// userHZ is the unit of the times in /proc/<pid>/stat. The kernel exports
// USER_HZ, which is 100 on every architecture Linux runs on today.
const userHZ = 100

// maxCommand bounds the command shown for a process, in bytes.
const maxCommand = 120

// Stat is the part of /proc/<pid>/stat the process listings use.
type Stat struct {
	PID          int
	Comm         string
	State        byte
	Flags        uint64 // the kernel's PF_* flags
	UTime, STime uint64 // clock ticks (userHZ)
	RSSPages     uint64
}

// pfKthread is PF_KTHREAD of include/linux/sched.h.
const pfKthread = 0x00200000

// KernelThread tells whether the process is a kernel thread (no program,
// an empty cmdline).
func (s Stat) KernelThread() bool { return s.Flags&pfKthread != 0 }

// parseStat parses one /proc/<pid>/stat line (see proc(5)). The command
// name may contain spaces and parentheses, so it runs from the first '(' to
// the last ')'.
func parseStat(s string) (Stat, error) {
	open, end := strings.IndexByte(s, '('), strings.LastIndexByte(s, ')')
	if open < 0 || end < open {
		return Stat{}, errors.New("no (comm) field")
	}
	pid, err := strconv.Atoi(strings.TrimSpace(s[:open]))
	if err != nil || pid <= 0 {
		return Stat{}, fmt.Errorf("bad pid %q", s[:open])
	}
	// f[0] is field 3 of proc(5): state; flags is 9, utime 14, stime 15, rss 24.
	f := strings.Fields(s[end+1:])
	if len(f) < 22 {
		return Stat{}, fmt.Errorf("%d fields after comm, want at least 22", len(f))
	}
	if len(f[0]) != 1 {
		return Stat{}, fmt.Errorf("bad state %q", f[0])
	}
	st := Stat{PID: pid, Comm: s[open+1 : end], State: f[0][0]}
	for _, v := range []struct {
		dst *uint64
		i   int
	}{{&st.Flags, 6}, {&st.UTime, 11}, {&st.STime, 12}, {&st.RSSPages, 21}} {
		if *v.dst, err = strconv.ParseUint(f[v.i], 10, 64); err != nil {
			return Stat{}, fmt.Errorf("field %d: %w", v.i+3, err)
		}
	}
	return st, nil
}

// Proc is one process as seen in one scan of procfs.
type Proc struct {
	Stat
	UID uint32 // owner of /proc/<pid>: the effective uid
}

// ticks is the CPU time the process has used, user and system.
func (p Proc) ticks() uint64 { return p.UTime + p.STime }

// Scan reads <procfs>/<pid>/stat of every process. Processes that exit
// during the scan, or that procfs hides (hidepid), are left out.
func Scan(ctx context.Context, procfs string) (map[int]Proc, error) {
	entries, err := os.ReadDir(procfs)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", procfs, err)
	}
	procs := make(map[int]Proc, len(entries))
	for _, e := range entries {
		if ctx.Err() != nil {
			return nil, context.Cause(ctx)
		}
		if pid, err := strconv.Atoi(e.Name()); err != nil || pid <= 0 {
			continue
		}
		b, err := os.ReadFile(filepath.Join(procfs, e.Name(), "stat"))
		if err != nil {
			continue
		}
		st, err := parseStat(string(b))
		if err != nil {
			continue
		}
		p := Proc{Stat: st}
		if fi, err := e.Info(); err == nil {
			if sys, ok := fi.Sys().(*syscall.Stat_t); ok {
				p.UID = sys.Uid
			}
		}
		procs[st.PID] = p
	}
	return procs, nil
}

// rankedProc is a process with the share of one core it used between scans.
type rankedProc struct {
	Proc
	CPU float64 // 1 = one core fully busy
}

// rankCPU ranks the processes of after by the CPU time they used since
// before, over elapsed; ties go to the larger lifetime CPU time. A process
// absent from before (or whose pid was reused) is charged all its time.
func rankCPU(before, after map[int]Proc, elapsed time.Duration) []rankedProc {
	ranked := make([]rankedProc, 0, len(after))
	for pid, a := range after {
		d := a.ticks()
		if b, ok := before[pid]; ok && b.ticks() <= d {
			d -= b.ticks()
		}
		ranked = append(ranked, rankedProc{Proc: a, CPU: float64(d) / userHZ / elapsed.Seconds()})
	}
	slices.SortFunc(ranked, func(x, y rankedProc) int {
		return cmp.Or(cmp.Compare(y.CPU, x.CPU), cmp.Compare(y.ticks(), x.ticks()), cmp.Compare(x.PID, y.PID))
	})
	return ranked
}

// TopByCPU lists the n processes that used the most CPU over interval,
// sampling <procfs>/<pid>/stat before and after.
func TopByCPU(ctx context.Context, procfs, rootfs string, n int, interval time.Duration) (string, error) {
	before, err := Scan(ctx, procfs)
	if err != nil {
		return "", err
	}
	start := time.Now()
	if err := ctxutil.Sleep(ctx, interval); err != nil {
		return "", err
	}
	after, err := Scan(ctx, procfs)
	if err != nil {
		return "", err
	}
	ranked := rankCPU(before, after, time.Since(start))
	return formatProcs(procfs, rootfs, ranked[:min(n, len(ranked))], true), nil
}

// TopByRSS lists the n processes with the largest resident set.
func TopByRSS(ctx context.Context, procfs, rootfs string, n int) (string, error) {
	procs, err := Scan(ctx, procfs)
	if err != nil {
		return "", err
	}
	ranked := make([]rankedProc, 0, len(procs))
	for _, p := range procs {
		ranked = append(ranked, rankedProc{Proc: p})
	}
	slices.SortFunc(ranked, func(x, y rankedProc) int {
		return cmp.Or(cmp.Compare(y.RSSPages, x.RSSPages), cmp.Compare(x.PID, y.PID))
	})
	return formatProcs(procfs, rootfs, ranked[:min(n, len(ranked))], false), nil
}

// formatProcs renders a process table, one line per process, with user names
// from <rootfs>/etc/passwd and commands from <procfs>/<pid>/cmdline.
func formatProcs(procfs, rootfs string, ps []rankedProc, withCPU bool) string {
	users := userNames(rootfs)
	page := uint64(os.Getpagesize())
	var b strings.Builder
	if withCPU {
		fmt.Fprintf(&b, "%8s %-10s %7s %10s  %s\n", "PID", "USER", "CPU%", "RSS", "COMMAND")
	} else {
		fmt.Fprintf(&b, "%8s %-10s %10s  %s\n", "PID", "USER", "RSS", "COMMAND")
	}
	for _, p := range ps {
		user, ok := users[p.UID]
		if !ok {
			user = strconv.FormatUint(uint64(p.UID), 10)
		}
		fmt.Fprintf(&b, "%8d %-10s ", p.PID, user)
		if withCPU {
			fmt.Fprintf(&b, "%6.1f%% ", p.CPU*100)
		}
		fmt.Fprintf(&b, "%10s  %s\n", textfmt.HumanBytes(p.RSSPages*page), cmdline(procfs, p.Proc))
	}
	return b.String()
}

// cmdline returns the command line of p, bounded and with control characters
// replaced, or its [comm] when it has none (kernel threads, zombies).
func cmdline(procfs string, p Proc) string {
	var raw []byte
	if f, err := os.Open(filepath.Join(procfs, strconv.Itoa(p.PID), "cmdline")); err == nil {
		raw, _ = io.ReadAll(io.LimitReader(f, 4*maxCommand))
		f.Close()
	}
	s := strings.TrimSpace(strings.ReplaceAll(string(raw), "\x00", " "))
	if s == "" {
		s = "[" + p.Comm + "]"
	}
	s = textfmt.Sanitize(s)
	if len(s) > maxCommand {
		s = textfmt.Head(s, maxCommand) + "…"
	}
	return s
}

// userNames maps uids to names from <rootfs>/etc/passwd; it is empty when the
// file cannot be read, and the listings then show numeric uids.
func userNames(rootfs string) map[uint32]string {
	names := map[uint32]string{}
	f, err := os.Open(filepath.Join(rootfs, "etc", "passwd"))
	if err != nil {
		return names
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		// name:password:uid:gid:gecos:home:shell
		f := strings.SplitN(sc.Text(), ":", 4)
		if len(f) < 4 {
			continue
		}
		if uid, err := strconv.ParseUint(f[2], 10, 32); err == nil {
			if _, dup := names[uint32(uid)]; !dup {
				names[uint32(uid)] = f[0]
			}
		}
	}
	return names
}
