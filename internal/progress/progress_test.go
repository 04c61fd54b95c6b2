package progress

import (
	"bytes"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// fakeClock runs the functions given to after when advance passes their
// time.
type fakeClock struct {
	mu    sync.Mutex
	now   time.Time
	timer []*fakeTimer
}

type fakeTimer struct {
	c       *fakeClock
	at      time.Time
	f       func()
	stopped bool
}

func (t *fakeTimer) Stop() bool {
	t.c.mu.Lock()
	defer t.c.mu.Unlock()
	t.stopped = true
	return true
}

func (c *fakeClock) clock() clock {
	return clock{
		now: func() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.now },
		after: func(d time.Duration, f func()) stopper {
			c.mu.Lock()
			defer c.mu.Unlock()
			t := &fakeTimer{c: c, at: c.now.Add(d), f: f}
			c.timer = append(c.timer, t)
			return t
		},
	}
}

func (c *fakeClock) advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	var due []*fakeTimer
	rest := c.timer[:0]
	for _, t := range c.timer {
		if !t.stopped && !t.at.After(c.now) {
			due = append(due, t)
		} else if !t.stopped {
			rest = append(rest, t)
		}
	}
	c.timer = rest
	c.mu.Unlock()
	for _, t := range due {
		t.f()
	}
}

func logTo(b *bytes.Buffer) *slog.Logger {
	return slog.New(slog.NewTextHandler(b, &slog.HandlerOptions{Level: slog.LevelDebug,
		ReplaceAttr: func(_ []string, a slog.Attr) slog.Attr {
			if a.Key == slog.TimeKey {
				return slog.Attr{}
			}
			return a
		}}))
}

// TestQuickTaskAtDebug: a task under a second ends with one debug line.
func TestQuickTaskAtDebug(t *testing.T) {
	var b bytes.Buffer
	c := &fakeClock{now: time.Unix(0, 0)}
	task := start(c.clock(), logTo(&b), "check run", "check", "cpu")
	c.advance(300 * time.Millisecond)
	require.Equal(t, 300*time.Millisecond, task.End("observations", 3))
	c.advance(time.Minute)
	require.Equal(t, "level=DEBUG msg=done task=\"check run\" check=cpu duration=300ms observations=3\n", b.String())
}

// TestSlowTaskAtInfo: a task still going after a second says so at info,
// again every ten seconds, and ends at info; nothing after its end.
func TestSlowTaskAtInfo(t *testing.T) {
	var b bytes.Buffer
	c := &fakeClock{now: time.Unix(0, 0)}
	task := start(c.clock(), logTo(&b), "diagnostics", "check", "disk")
	c.advance(999 * time.Millisecond)
	require.Empty(t, b.String(), "not yet a second")
	c.advance(time.Millisecond)
	c.advance(10 * time.Second)
	c.advance(4 * time.Second)
	task.End()
	c.advance(time.Minute)
	require.Equal(t, []string{
		`level=INFO msg="still running" task=diagnostics check=disk elapsed=1s`,
		`level=INFO msg="still running" task=diagnostics check=disk elapsed=11s`,
		`level=INFO msg=done task=diagnostics check=disk duration=15s`,
	}, strings.Split(strings.TrimSpace(b.String()), "\n"))
}

// TestForget: a task that did not run leaves no line.
func TestForget(t *testing.T) {
	var b bytes.Buffer
	c := &fakeClock{now: time.Unix(0, 0)}
	start(c.clock(), logTo(&b), "check run").Forget()
	c.advance(time.Minute)
	require.Empty(t, b.String())
}

// TestRealClock: Start works on the real clock (a quick task).
func TestRealClock(t *testing.T) {
	var b bytes.Buffer
	Start(logTo(&b), "x").End()
	require.True(t, strings.HasPrefix(b.String(), "level=DEBUG msg=done task=x duration="), b.String())
}
