package main

import (
	"bytes"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"

	"github.com/stretchr/testify/require"
)

// journalFile is a file standing in for the journal stream: JOURNAL_STREAM names it, as
// systemd names the stream it gives a service.
func journalFile(t *testing.T) *os.File {
	t.Helper()
	f, err := os.Create(filepath.Join(t.TempDir(), "journal"))
	require.NoError(t, err)
	t.Cleanup(func() { f.Close() })
	var st syscall.Stat_t
	require.NoError(t, syscall.Fstat(int(f.Fd()), &st))
	t.Setenv("JOURNAL_STREAM", fmt.Sprintf("%d:%d", st.Dev, st.Ino))
	return f
}

func readAll(t *testing.T, f *os.File) string {
	t.Helper()
	b, err := os.ReadFile(f.Name())
	require.NoError(t, err)
	return string(b)
}

func TestLogPrioritiesUnderJournald(t *testing.T) {
	for format, group := range map[string]string{"logfmt": "g.k=3", "json": `"g":{"k":3}`} {
		t.Run(format, func(t *testing.T) {
			f := journalFile(t)
			log, _, err := newLogger(f, "debug", format)
			require.NoError(t, err)
			log = log.With("component", "test").WithGroup("g")
			log.Debug("d", "k", 1)
			log.Info("i", "k", 2)
			log.Warn("w", "k", 3)
			log.Error("e", "k", "multi\nline")
			log.Log(t.Context(), slog.LevelError+4, "above error")
			lines := strings.Split(strings.TrimSuffix(readAll(t, f), "\n"), "\n")
			require.Len(t, lines, 5, "one line per record:\n%s", strings.Join(lines, "\n"))
			for i, want := range []string{"<7>", "<6>", "<4>", "<3>", "<3>"} {
				require.True(t, strings.HasPrefix(lines[i], want), "line %d: %q, want prefix %s", i, lines[i], want)
				require.Contains(t, lines[i], "component", "attrs of With kept")
			}
			require.Contains(t, lines[2], group, "group kept")
		})
	}
}

func TestLogPlainElsewhere(t *testing.T) {
	f := journalFile(t)
	other, err := os.Create(filepath.Join(t.TempDir(), "stderr"))
	require.NoError(t, err)
	defer other.Close()
	// JOURNAL_STREAM names another file (stderr redirected after systemd started us).
	log, _, err := newLogger(other, "info", "logfmt")
	require.NoError(t, err)
	log.Warn("w")
	out := readAll(t, other)
	require.True(t, strings.HasPrefix(out, "time="), "no prefix: %q", out)
	require.Empty(t, readAll(t, f))

	// No JOURNAL_STREAM, or a writer that is no file.
	t.Setenv("JOURNAL_STREAM", "")
	require.False(t, isJournal(f))
	var buf bytes.Buffer
	log, _, err = newLogger(&buf, "info", "json")
	require.NoError(t, err)
	log.Error("e")
	require.True(t, strings.HasPrefix(buf.String(), "{"), "%q", buf.String())
}

func TestLevelFilterUnderJournald(t *testing.T) {
	f := journalFile(t)
	log, lv, err := newLogger(f, "warn", "logfmt")
	require.NoError(t, err)
	log.Info("hidden")
	log.Warn("shown")
	lv.Set(slog.LevelInfo) // a reload may lower the level
	log.Info("now shown")
	out := readAll(t, f)
	require.NotContains(t, out, "hidden")
	require.Contains(t, out, "<4>time=")
	require.Contains(t, out, "<6>time=")
}

func TestPrefixWriter(t *testing.T) {
	var buf bytes.Buffer
	w := journalLines(&buf, priErr)
	require.Same(t, &buf, w, "not the journal: unchanged")

	p := &prefixWriter{mu: new(sync.Mutex), w: &buf, prefix: []byte("<3>")}
	for _, s := range []string{"a\nb\n", "c", "d\n", "\n"} {
		n, err := p.Write([]byte(s))
		require.NoError(t, err)
		require.Equal(t, len(s), n)
	}
	require.Equal(t, "<3>a\n<3>b\n<3>cd\n<3>\n", buf.String())
}

// TestJSONLogEscapesRawControls: the JSON log escapes what encoding/json
// writes raw (DEL, C1, bidi overrides) in a host's names; newlines stay as
// JSON writes them.
func TestJSONLogEscapesRawControls(t *testing.T) {
	var b bytes.Buffer
	log := slog.New(jsonHandler(&b, &slog.HandlerOptions{}))
	log.Info("alert", "mountpoint", "/srv/a\u0085b\u009b2J\u202ec\x7fd", "details", "line 1\nline 2")
	out := b.String()
	require.Contains(t, out, `"mountpoint":"/srv/a\\u0085b\\u009b2J\\u202ec\\u007fd"`)
	require.Contains(t, out, `"details":"line 1\nline 2"`)
	for _, r := range []rune{0x85, 0x9b, 0x202e, 0x7f} {
		require.NotContains(t, out, string(r))
	}
}
