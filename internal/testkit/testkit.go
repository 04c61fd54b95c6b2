// Package testkit holds helpers shared by the tests of several packages.
// (Not named testutil, which prometheus/client_golang's tests already use.)
package testkit

import (
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// QuietLogger returns a logger that writes nowhere.
func QuietLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// RequireCI fails in CI (CI=true, where the real component must be
// there), else skips.
func RequireCI(t testing.TB, format string, args ...any) {
	t.Helper()
	if os.Getenv("CI") == "true" {
		t.Fatalf(format, args...)
	}
	t.Skipf(format, args...)
}

// Clock is a settable fake clock, safe for concurrent use.
type Clock struct {
	mu sync.Mutex
	t  time.Time
}

// NewClock returns a clock at an RFC 3339 time; it panics on a bad one.
func NewClock(rfc3339 string) *Clock {
	t, err := time.Parse(time.RFC3339, rfc3339)
	if err != nil {
		panic(err)
	}
	return &Clock{t: t}
}

// Now is the clock's time.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

// Add moves the clock by d.
func (c *Clock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// StandIn writes an executable shell script, named name in a new temporary
// directory, that records its argv (NUL separated, $0 first) to argvFile,
// runs extra and exits with code. The code under test runs it by its
// absolute path, never through a shell.
func StandIn(t testing.TB, name, extra string, code int) (path, argvFile string) {
	t.Helper()
	dir := t.TempDir()
	path = filepath.Join(dir, name)
	argvFile = filepath.Join(dir, "argv")
	script := "#!/bin/sh\nprintf '%s\\0' \"$0\" \"$@\" > '" + argvFile + "'\n" + extra + "\nexit " + strconv.Itoa(code) + "\n"
	require.NoError(t, os.WriteFile(path, []byte(script), 0o755))
	return path, argvFile
}

// RecordedArgv reads what a stand-in recorded; it fails when the stand-in
// did not run.
func RecordedArgv(t testing.TB, argvFile string) []string {
	t.Helper()
	b, err := os.ReadFile(argvFile)
	require.NoError(t, err, "the stand-in did not run")
	return strings.Split(strings.TrimSuffix(string(b), "\x00"), "\x00")
}
