package main

import (
	"bytes"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/l2agent/l2agent/internal/progress"
)

// TestTerminalProgress: on a terminal, what takes a second or more shows as
// short lines for people; other records go to the log as before, from its
// level on.
func TestTerminalProgress(t *testing.T) {
	var term, logs bytes.Buffer
	log := slog.New(&terminalHandler{out: &lockedWriter{w: &term}, next: slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelError})})
	check := log.With("check", "patches")
	check.Info(progress.Running, progress.Key, "check run", progress.Elapsed, time.Second)
	check.Info(progress.Done, progress.Key, "check run", progress.Duration, 3214*time.Millisecond, "observations", 6)
	check.Debug(progress.Done, progress.Key, "check run", progress.Duration, 20*time.Millisecond) // quick: not shown
	check.Warn("alert state changed", "to", "warn")                                               // below the log's level
	check.Error("check failed", "err", "boom")
	require.Equal(t, "check run check=patches: still running (1s)\ncheck run check=patches observations=6: done in 3.2s\n", term.String())
	require.Contains(t, logs.String(), `level=ERROR msg="check failed" check=patches err=boom`)
	require.NotContains(t, logs.String(), "task=")
}

// TestInteractive: progress lines go to a terminal, never into a pipe or a
// file that a script reads.
func TestInteractive(t *testing.T) {
	require.False(t, interactive(&bytes.Buffer{}))
	f, err := os.Create(filepath.Join(t.TempDir(), "err.log"))
	require.NoError(t, err)
	defer f.Close()
	require.False(t, interactive(f))
	r, w, err := os.Pipe()
	require.NoError(t, err)
	defer r.Close()
	defer w.Close()
	require.False(t, interactive(w))
	var buf bytes.Buffer
	cliLogger(&buf, slog.LevelWarn).Info(progress.Running, progress.Key, "x", progress.Elapsed, time.Second)
	require.Empty(t, buf.String(), "not interactive: the log's level holds")
}
