// Package progress reports operations that may take long (a check run, a
// diagnostics scan, a ticket system's answer) in the log, so that a slow
// one is never silent:
//
//	level=INFO msg="still running" task="check run" check=patches elapsed=1s
//	level=INFO msg=done task="check run" check=patches duration=3.214s observations=4
//
// Every task ends with a "done" line: at debug when it took less than
// Threshold, at info from Threshold on. One still going after Threshold
// says so at info, and again every Every. Every line carries the key
// Key (the task), which is how a terminal front end (cmd/l2agent) picks
// them out of the log.
package progress

import (
	"context"
	"log/slog"
	"sync"
	"time"
)

const (
	// Threshold is how long a task runs before it is reported at info.
	Threshold = time.Second
	// Every is how often a task still running is reported again.
	Every = 10 * time.Second

	// Key is the attribute that names the task on each of its lines.
	Key = "task"
	// Running and Done are the messages of the lines.
	Running = "still running"
	Done    = "done"
	// Elapsed and Duration are the keys of the time a task has run: so
	// far, and in all.
	Elapsed  = "elapsed"
	Duration = "duration"
)

// clock is time, replaced in tests.
type clock struct {
	now   func() time.Time
	after func(time.Duration, func()) stopper
}

type stopper interface{ Stop() bool }

var realClock = clock{now: time.Now, after: func(d time.Duration, f func()) stopper { return time.AfterFunc(d, f) }}

// Task is one operation being timed. Its methods are safe for concurrent
// use; End or Forget must be called once it is over.
type Task struct {
	log   *slog.Logger
	clk   clock
	start time.Time
	attrs []any

	mu    sync.Mutex
	timer stopper
	over  bool
}

// Start times task (a short noun: "check run", "diagnostics"); attrs
// (key-value pairs, as for slog) go on each of its lines.
func Start(log *slog.Logger, task string, attrs ...any) *Task {
	return start(realClock, log, task, attrs...)
}

func start(clk clock, log *slog.Logger, task string, attrs ...any) *Task {
	t := &Task{log: log, clk: clk, start: clk.now(), attrs: append([]any{Key, task}, attrs...)}
	t.mu.Lock()
	t.timer = clk.after(Threshold, t.running)
	t.mu.Unlock()
	return t
}

// running reports the task still running and schedules the next report.
func (t *Task) running() {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.over {
		return
	}
	elapsed := t.clk.now().Sub(t.start).Round(time.Second)
	t.log.Info(Running, append(t.attrs[:len(t.attrs):len(t.attrs)], Elapsed, elapsed)...)
	t.timer = t.clk.after(Every, t.running)
}

// End reports the task done, at debug when it took less than Threshold,
// else at info, with attrs after its own; it returns how long it took.
func (t *Task) End(attrs ...any) time.Duration {
	d := t.stop()
	level := slog.LevelDebug
	if d >= Threshold {
		level = slog.LevelInfo
	}
	all := append(append(t.attrs[:len(t.attrs):len(t.attrs)], Duration, d.Round(time.Millisecond)), attrs...)
	t.log.Log(context.Background(), level, Done, all...)
	return d
}

// Forget ends the task without a line: it did not really run.
func (t *Task) Forget() { t.stop() }

func (t *Task) stop() time.Duration {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.over = true
	t.timer.Stop()
	return t.clk.now().Sub(t.start)
}
