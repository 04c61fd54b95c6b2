package agent

import (
	"bytes"
	"context"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/l2agent/l2agent/remediate"
)

// logBuffer is a log that tests read while the agent writes it.
type logBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuffer) lines() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return strings.Split(strings.TrimSpace(l.b.String()), "\n")
}

func (l *logBuffer) logger(level slog.Level) *slog.Logger {
	return slog.New(slog.NewTextHandler(l, &slog.HandlerOptions{Level: level}))
}

func stopAtEnd(t *testing.T, a *Agent) {
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		a.Stop(ctx)
	})
}

// TestOneListeningLine: start-up says where it listens once, at any level:
// exporter-toolkit's own "Listening on" and "TLS is disabled." lines do not
// repeat it at info.
func TestOneListeningLine(t *testing.T) {
	for _, level := range []slog.Level{slog.LevelInfo, slog.LevelDebug} {
		var logs logBuffer
		a, err := New(Options{ConfigFile: writeConfig(t, "checks:\n  - {name: count, kind: test_count, schedule: \"@every 1h\"}\n"),
			ListenAddress: "127.0.0.1:0", Logger: logs.logger(level)})
		require.NoError(t, err)
		require.NoError(t, a.Start(true))
		stopAtEnd(t, a)
		// An answer means web.Serve is serving: it logged what it logs first.
		resp, err := http.Get("http://" + a.Addr() + "/-/healthy")
		require.NoError(t, err)
		resp.Body.Close()
		var listening, toolkitInfo []string
		for _, l := range logs.lines() {
			if regexp.MustCompile(`(?i)listening`).MatchString(l) {
				listening = append(listening, l)
			}
			if strings.Contains(l, "component=web") && strings.Contains(l, "level=INFO") {
				toolkitInfo = append(toolkitInfo, l)
			}
		}
		require.Len(t, listening, 1, "at %s: %q", level, listening)
		require.Contains(t, listening[0], "msg=listening address="+a.Addr())
		require.Empty(t, toolkitInfo, "at %s", level)
	}
}

// TestComponentOnce: no line says component= twice (the remediation engine
// tags its own lines).
func TestComponentOnce(t *testing.T) {
	var logs logBuffer
	cfg := writeConfig(t, "checks:\n  - {name: count, kind: test_count, schedule: \"@every 1h\"}\n")
	// An audit log that cannot be read: the engine warns as it starts.
	require.NoError(t, os.Mkdir(filepath.Join(filepath.Dir(cfg), remediate.AuditFile), 0o700))
	a, err := New(Options{ConfigFile: cfg, Logger: logs.logger(slog.LevelDebug)})
	require.NoError(t, err)
	require.NotNil(t, a.Remediation())
	var warned bool
	for _, l := range logs.lines() {
		require.LessOrEqual(t, strings.Count(l, "component="), 1, l)
		warned = warned || strings.Contains(l, "cannot read the audit log") && strings.Contains(l, "component=remediate")
	}
	require.True(t, warned, "%q", logs.lines())
}

// TestCheckRunsLogged: every check run is in the log at debug, with how
// long it took and what it saw.
func TestCheckRunsLogged(t *testing.T) {
	var logs logBuffer
	a, err := New(Options{ConfigFile: writeConfig(t, "checks:\n  - {name: count, kind: test_count, schedule: \"@every 1h\"}\n"),
		Logger: logs.logger(slog.LevelDebug)})
	require.NoError(t, err)
	_, err = a.RunAll(context.Background())
	require.NoError(t, err)
	var runs []string
	for _, l := range logs.lines() {
		if strings.Contains(l, `task="check run"`) {
			runs = append(runs, l)
		}
	}
	require.Len(t, runs, 1, "%q", logs.lines())
	require.Regexp(t, `level=DEBUG msg=done check=count task="check run" duration=\S+ observations=1$`, runs[0])
}
