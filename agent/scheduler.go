package agent

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"

	"github.com/robfig/cron/v3"

	"github.com/l2agent/l2agent/checks"
	"github.com/l2agent/l2agent/configs"
	"github.com/l2agent/l2agent/internal/command"
)

// ErrTimeout is the cause of a run cancelled by its check's timeout.
var ErrTimeout = errors.New("check timed out")

// runner owns one configured check: its schedule, its guard against
// overlapping runs, and the figures of its last run.
type runner struct {
	cfg        configs.Check
	check      checks.Check
	sched      cron.Schedule
	infrequent bool // runs every infrequentRun or less often

	running    atomic.Bool  // a run is in flight, within its timeout
	stuck      atomic.Int64 // abandoned runs whose goroutine has not returned
	reconciled atomic.Bool  // its first successful run was reconciled with ticketing

	mu          sync.RWMutex
	obs         []checks.Observation
	lastRun     time.Time
	lastSuccess time.Time
	duration    time.Duration
	lastErr     string
	runs        uint64
	errors      uint64
	skipped     uint64
	abandoned   uint64 // runs abandoned at their timeout (see runOnce)
	firstDone   bool
	childMaxRSS int64 // largest peak RSS of a program the last run ran (command.Peak); 0: none
}

// result is what one run produced.
type result struct {
	obs       []checks.Observation
	err       error
	abandoned bool  // its goroutine was left blocked (see runOnce)
	childRSS  int64 // largest peak RSS of the programs it ran, in bytes
}

// maxStuck is how many abandoned runs of one check may be stuck at once
// (each holds a goroutine, and often a file descriptor or a child process):
// past it, a run fails at once with the reason instead of starting another.
const maxStuck = 8

// Run states, for the hand-over between runOnce and the check's goroutine.
const (
	runGoing int32 = iota
	runFinished
	runAbandoned
)

// runOnce runs the check with its timeout. A run still going at its timeout
// gets a grace of up to a second to honour its cancelled context; after that
// it is abandoned: runOnce returns the timeout error, the goroutine is
// counted (l2agent_check_runs_abandoned_total, l2agent_check_runs_stuck
// until it returns) and the next scheduled run starts afresh. Only a run
// within its timeout makes a later one be skipped. A panic becomes an error.
func (r *runner) runOnce(parent context.Context) (res result, ran bool) {
	if !r.running.CompareAndSwap(false, true) {
		r.mu.Lock()
		r.skipped++
		r.mu.Unlock()
		return result{}, false
	}
	defer r.running.Store(false)
	if n := r.stuck.Load(); n >= maxStuck {
		return result{err: fmt.Errorf("not run: %d earlier runs ignored their timeout and are still stuck (a hung read or child process)", n)}, true
	}
	timeout := r.cfg.Timeout.D()
	ctx, cancel := context.WithTimeoutCause(parent, timeout, ErrTimeout)
	defer cancel()
	var state atomic.Int32
	done := make(chan result, 1)
	peak := new(command.Peak)
	ctx = command.WithPeak(ctx, peak)
	go func() {
		res := r.call(ctx)
		res.childRSS = peak.Bytes()
		if state.CompareAndSwap(runGoing, runFinished) {
			done <- res
			return
		}
		r.stuck.Add(-1) // abandoned earlier; it has returned now
	}()
	select {
	case res = <-done:
	case <-ctx.Done():
		abandoned := r.abandonAfterGrace(&state, done, min(time.Second, timeout))
		res = result{err: context.Cause(ctx), abandoned: abandoned, childRSS: peak.Bytes()}
		if errors.Is(res.err, ErrTimeout) {
			res.err = fmt.Errorf("%w after %s", ErrTimeout, timeout)
		}
	}
	if res.err == nil && ctx.Err() != nil { // finished, but only after the deadline
		res = result{err: fmt.Errorf("%w after %s", ErrTimeout, timeout)}
	}
	return res, true
}

// abandonAfterGrace waits up to grace for a cancelled run to return; a run
// that does not is abandoned and counted; it says which.
func (r *runner) abandonAfterGrace(state *atomic.Int32, done <-chan result, grace time.Duration) bool {
	t := time.NewTimer(grace)
	defer t.Stop()
	select {
	case <-done: // it honoured the cancellation
	case <-t.C:
		if state.CompareAndSwap(runGoing, runAbandoned) {
			r.stuck.Add(1)
			r.mu.Lock()
			r.abandoned++
			r.mu.Unlock()
			return true
		}
	}
	return false
}

// call runs the check once; a panic becomes an error.
func (r *runner) call(ctx context.Context) (res result) {
	defer func() {
		if p := recover(); p != nil {
			res = result{err: fmt.Errorf("check panicked: %v\n%s", p, firstLines(debug.Stack(), 12))}
		}
	}()
	obs, err := r.check.Run(ctx)
	return result{obs: obs, err: err}
}

func firstLines(b []byte, n int) string {
	lines := 0
	for i, c := range b {
		if c == '\n' {
			lines++
			if lines == n {
				return string(b[:i])
			}
		}
	}
	return string(b)
}

func (r *runner) record(res result, start time.Time, d time.Duration) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.runs++
	r.lastRun, r.duration, r.firstDone = start, d, true
	r.childMaxRSS = res.childRSS
	if res.err != nil {
		r.errors++
		r.lastErr = res.err.Error()
		r.obs = nil // stale values would mislead; the alert state says unknown
		return
	}
	r.lastErr = ""
	r.lastSuccess = start.Add(d)
	r.obs = res.obs
}

// jitterOffset is a deterministic delay in [0, max) derived from the host
// name, so that a fleet does not run its checks in step. It is the same for
// every check of a host: checks with the same interval run together, one
// wake-up of the agent for all of them rather than one each.
func jitterOffset(host string, max time.Duration) time.Duration {
	if max <= 0 {
		return 0
	}
	h := fnv.New64a()
	h.Write([]byte(host))
	return time.Duration(h.Sum64() % uint64(max))
}

// jittered builds a schedule from spec with a host-derived offset. An
// "@every D" schedule is aligned to the wall clock (multiples of D since the
// epoch) plus the offset, so each host keeps a fixed phase across restarts;
// other specs are shifted by the offset. The offset stays below half the
// interval so that it never reorders runs.
func jittered(spec, host string, max time.Duration) (cron.Schedule, error) {
	s, err := configs.ParseSchedule(spec)
	if err != nil {
		return nil, err
	}
	if every, ok := s.(cron.ConstantDelaySchedule); ok {
		return alignedEvery{period: every.Delay, offset: jitterOffset(host, min(max, every.Delay/2))}, nil
	}
	now := time.Now()
	next := s.Next(now)
	period := s.Next(next).Sub(next)
	return shifted{s: s, offset: jitterOffset(host, min(max, period/2))}, nil
}

type alignedEvery struct {
	period, offset time.Duration
}

func (a alignedEvery) Next(t time.Time) time.Time {
	next := t.Truncate(a.period).Add(a.offset)
	for !next.After(t) {
		next = next.Add(a.period)
	}
	return next
}

type shifted struct {
	s      cron.Schedule
	offset time.Duration
}

func (s shifted) Next(t time.Time) time.Time { return s.s.Next(t.Add(-s.offset)).Add(s.offset) }
