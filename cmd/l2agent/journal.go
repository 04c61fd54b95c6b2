package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"sync"
	"syscall"
)

// Severities in the journal. Under systemd, stderr is a stream to journald, which stores every
// line at the unit's default priority (info) unless the line starts with a syslog priority
// such as "<4>" (sd-daemon(3); SyslogLevelPrefix=yes is the default). When stderr is that
// stream, each log line gets the prefix of its level, so `journalctl -p warning -u l2agent`
// shows the warnings and errors; elsewhere stderr is plain text as ever.

// Syslog priorities (sd-daemon.h).
const (
	priErr     = 3
	priWarning = 4
	priInfo    = 6
	priDebug   = 7
)

// priority is the syslog priority of a log level.
func priority(l slog.Level) int {
	switch {
	case l >= slog.LevelError:
		return priErr
	case l >= slog.LevelWarn:
		return priWarning
	case l >= slog.LevelInfo:
		return priInfo
	}
	return priDebug
}

// isJournal reports whether w is the journal stream systemd gave this process:
// $JOURNAL_STREAM names the device and inode of that stream, and w must be the very file (a
// child whose stderr was redirected inherits the variable but not the stream).
func isJournal(w io.Writer) bool {
	js := os.Getenv("JOURNAL_STREAM")
	f, ok := w.(*os.File)
	if js == "" || !ok {
		return false
	}
	var st syscall.Stat_t
	if err := syscall.Fstat(int(f.Fd()), &st); err != nil {
		return false
	}
	return js == fmt.Sprintf("%d:%d", st.Dev, st.Ino)
}

// newHandlerFunc makes a slog handler writing to w (slog.NewTextHandler, slog.NewJSONHandler).
type newHandlerFunc func(w io.Writer, opts *slog.HandlerOptions) slog.Handler

func textHandler(w io.Writer, o *slog.HandlerOptions) slog.Handler { return slog.NewTextHandler(w, o) }
func jsonHandler(w io.Writer, o *slog.HandlerOptions) slog.Handler {
	safe := *o
	if prev := o.ReplaceAttr; prev != nil {
		safe.ReplaceAttr = func(groups []string, a slog.Attr) slog.Attr { return jsonSafe(groups, prev(groups, a)) }
	} else {
		safe.ReplaceAttr = jsonSafe
	}
	return slog.NewJSONHandler(w, &safe)
}

// jsonSafe escapes, in string values, the characters that encoding/json
// writes raw and a terminal or log viewer acts on: DEL, the C1 controls
// (NEL, the 8-bit CSI) and the bidirectional overrides a host's names may
// carry ("\u0085"). JSON escapes every other control character itself.
func jsonSafe(_ []string, a slog.Attr) slog.Attr {
	if a.Value.Kind() != slog.KindString || !strings.ContainsFunc(a.Value.String(), rawInJSON) {
		return a
	}
	var b strings.Builder
	for _, r := range a.Value.String() {
		if rawInJSON(r) {
			fmt.Fprintf(&b, "\\u%04x", r)
			continue
		}
		b.WriteRune(r)
	}
	return slog.String(a.Key, b.String())
}

func rawInJSON(r rune) bool {
	return r == 0x7f || r >= 0x80 && r <= 0x9f || r == 0x200e || r == 0x200f ||
		r >= 0x202a && r <= 0x202e || r >= 0x2066 && r <= 0x2069
}

// logHandler is mk's handler on w, with each line prefixed by its priority when w is the
// journal.
func logHandler(w io.Writer, opts *slog.HandlerOptions, mk newHandlerFunc) slog.Handler {
	if !isJournal(w) {
		return mk(w, opts)
	}
	return newPriorityHandler(w, opts, mk)
}

// priorityHandler sends each record to the handler of its priority; the four share the
// level and the writer, each writes its lines with its own prefix.
type priorityHandler struct {
	byPri map[int]slog.Handler
}

func newPriorityHandler(w io.Writer, opts *slog.HandlerOptions, mk newHandlerFunc) *priorityHandler {
	mu := new(sync.Mutex)
	h := &priorityHandler{byPri: map[int]slog.Handler{}}
	for _, p := range []int{priErr, priWarning, priInfo, priDebug} {
		h.byPri[p] = mk(&prefixWriter{mu: mu, w: w, prefix: fmt.Appendf(nil, "<%d>", p)}, opts)
	}
	return h
}

func (h *priorityHandler) Enabled(ctx context.Context, l slog.Level) bool {
	return h.byPri[priority(l)].Enabled(ctx, l)
}

func (h *priorityHandler) Handle(ctx context.Context, r slog.Record) error {
	return h.byPri[priority(r.Level)].Handle(ctx, r)
}

func (h *priorityHandler) WithAttrs(as []slog.Attr) slog.Handler {
	return h.derive(func(x slog.Handler) slog.Handler { return x.WithAttrs(as) })
}

func (h *priorityHandler) WithGroup(name string) slog.Handler {
	return h.derive(func(x slog.Handler) slog.Handler { return x.WithGroup(name) })
}

func (h *priorityHandler) derive(f func(slog.Handler) slog.Handler) slog.Handler {
	n := &priorityHandler{byPri: make(map[int]slog.Handler, len(h.byPri))}
	for p, x := range h.byPri {
		n.byPri[p] = f(x)
	}
	return n
}

// prefixWriter writes every line with prefix in front, in one write per call, under a lock
// shared by the writers of one stream so that lines never interleave.
type prefixWriter struct {
	mu     *sync.Mutex
	w      io.Writer
	prefix []byte
	midway bool // the last write ended inside a line
}

func (p *prefixWriter) Write(b []byte) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	var out []byte
	for rest := b; len(rest) > 0; {
		if !p.midway {
			out = append(out, p.prefix...)
		}
		line, tail, found := bytes.Cut(rest, []byte{'\n'})
		out = append(out, line...)
		if found {
			out = append(out, '\n')
		}
		p.midway, rest = !found, tail
	}
	if _, err := p.w.Write(out); err != nil {
		return 0, err
	}
	return len(b), nil
}

// journalLines is w with every line prefixed by priority pri when w is the journal (the
// errors of `l2agent reload`, which runs as the unit's ExecReload), else w itself.
func journalLines(w io.Writer, pri int) io.Writer {
	if !isJournal(w) {
		return w
	}
	return &prefixWriter{mu: new(sync.Mutex), w: w, prefix: fmt.Appendf(nil, "<%d>", pri)}
}
