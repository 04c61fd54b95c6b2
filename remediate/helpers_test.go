package remediate

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	_ "github.com/l2agent/l2agent/checks/all" // registers the check kinds the default config names
	"github.com/l2agent/l2agent/configs"
	_ "github.com/l2agent/l2agent/ticketing/all" // and its ticket backend
)

// parseRemediation parses a remediation: block with the config loader, so
// that defaults and validation are the real ones.
func parseRemediation(t *testing.T, yaml string) configs.Remediation {
	t.Helper()
	cfg, err := configs.Parse("test.yaml", []byte(yaml))
	require.NoError(t, err)
	return cfg.Remediation
}

// clock is a settable fake clock.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock(s string) *clock {
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		panic(err)
	}
	return &clock{t: t}
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// standIn writes an executable shell script that records its argv (NUL
// separated, $0 first) to <dir>/argv, runs extra, and exits with code. It
// is run by its absolute path, never through a shell by l2agent.
func standIn(t *testing.T, name, extra string, code int) (path, argvFile string) {
	t.Helper()
	dir := t.TempDir()
	path = filepath.Join(dir, name)
	argvFile = filepath.Join(dir, "argv")
	script := "#!/bin/sh\nprintf '%s\\0' \"$0\" \"$@\" > '" + argvFile + "'\n" + extra + "\nexit " + strconv.Itoa(code) + "\n"
	require.NoError(t, os.WriteFile(path, []byte(script), 0o755))
	return path, argvFile
}

// recordedArgv reads what a stand-in recorded.
func recordedArgv(t *testing.T, argvFile string) []string {
	t.Helper()
	b, err := os.ReadFile(argvFile)
	require.NoError(t, err, "the stand-in did not run")
	return strings.Split(strings.TrimSuffix(string(b), "\x00"), "\x00")
}

// fakeAction is an action whose behaviour the test sets.
type fakeAction struct {
	name     string
	mu       sync.Mutex
	plans    int
	applies  int
	applyErr error
	hang     bool // Apply blocks until ctx ends
}

func (f *fakeAction) Name() string { return f.name }

func (f *fakeAction) Plan(ctx context.Context, a Alert) (Plan, error) {
	f.mu.Lock()
	f.plans++
	f.mu.Unlock()
	return Plan{Action: f.name, Text: "would fix " + a.Key}, nil
}

func (f *fakeAction) Apply(ctx context.Context, p Plan) (Outcome, error) {
	f.mu.Lock()
	f.applies++
	f.mu.Unlock()
	if f.hang {
		<-ctx.Done()
		return Outcome{Result: "interrupted"}, ctx.Err()
	}
	if f.applyErr != nil {
		return Outcome{Result: "broke"}, f.applyErr
	}
	return Outcome{Success: true, Result: "fixed", Output: "all good", FreedBytes: 100}, nil
}

func (f *fakeAction) counts() (int, int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.plans, f.applies
}

// setAction replaces an action of the engine (its default and in rules).
func (e *Engine) setAction(name string, a Action) {
	e.actions[name] = a
	for i := range e.rules {
		if e.rules[i].rule.Action == name {
			e.rules[i].action = a
		}
	}
}

// requireCI fails in CI (where the real component must be there), else skips.
func requireCI(t *testing.T, format string, args ...any) {
	t.Helper()
	if os.Getenv("CI") == "true" {
		t.Fatalf(format, args...)
	}
	t.Skipf(format, args...)
}
