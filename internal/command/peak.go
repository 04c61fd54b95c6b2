package command

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"
	"syscall"

	"golang.org/x/sys/unix"
)

// Peak records the largest peak resident set size among the programs run
// with a context carrying it (WithPeak): what the agent exports per check as
// l2agent_check_child_max_rss_bytes, to size a container's memory limit.
//
// It is wait4's ru_maxrss, and Linux counts in it, at exec, the peak of the
// memory the program was forked with: Go starts programs with vfork, so
// that is the agent's own peak RSS. For a program smaller than the agent
// the figure is thus the agent's peak (an upper bound); for a larger one
// (apt-get, dnf, zypper) it is the program's own peak.
type Peak struct{ max atomic.Int64 }

type peakKey struct{}

// WithPeak returns ctx carrying p: Run records in it the peak RSS of every
// program it runs with that context.
func WithPeak(ctx context.Context, p *Peak) context.Context {
	return context.WithValue(ctx, peakKey{}, p)
}

// Bytes is the largest peak RSS recorded, in bytes; 0 when no program ran.
func (p *Peak) Bytes() int64 { return p.max.Load() }

// record notes the peak RSS of a program that ended (wait4's ru_maxrss: the
// largest of the program and of the descendants it waited for).
func (p *Peak) record(st *os.ProcessState) {
	if p == nil || st == nil {
		return
	}
	ru, ok := st.SysUsage().(*syscall.Rusage)
	if !ok {
		return
	}
	b := ru.Maxrss * 1024 // kilobytes on Linux
	for {
		cur := p.max.Load()
		if b <= cur || p.max.CompareAndSwap(cur, b) {
			return
		}
	}
}

func peakOf(ctx context.Context) *Peak {
	p, _ := ctx.Value(peakKey{}).(*Peak)
	return p
}

// MaxData is the RLIMIT_DATA every program run gets (its heap and private
// writable mappings), so that a runaway package manager fails on its own
// instead of taking the host's or the pod's memory: far above what the
// checks' programs need (apt-get -s about 70 MiB on Debian 12), well below
// what would hurt a host. 0 leaves the agent's own limit.
const MaxData = 1 << 30

// limitData sets RLIMIT_DATA of the started process pid (prlimit(2)). It is
// set right after the start, while the program is still loading (os/exec
// cannot set a limit between fork and exec): what it allocated in those
// microseconds is not undone, every allocation after is bounded. It bounds a
// runaway program; it is no exact budget. A hard limit the agent already
// has at or below limit (systemd's LimitDATA=) is inherited and left as it
// is. A failure (a seccomp filter without prlimit64) leaves the program
// unbounded, with a warning logged once: a check does not fail for it.
func limitData(pid int, limit uint64) {
	if limit == 0 {
		return
	}
	var own unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_DATA, &own); err == nil && own.Max <= limit {
		return
	}
	err := unix.Prlimit(pid, unix.RLIMIT_DATA, &unix.Rlimit{Cur: limit, Max: limit}, nil)
	if err != nil && !errors.Is(err, unix.ESRCH) { // ESRCH: it has ended already
		limitWarn.Do(func() {
			slog.Warn("programs run without a memory bound: prlimit(RLIMIT_DATA) failed", "err", err)
		})
	}
}

var limitWarn sync.Once
