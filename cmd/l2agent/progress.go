package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"sync"

	"github.com/l2agent/l2agent/internal/progress"
	"github.com/l2agent/l2agent/internal/textfmt"
)

// cliLogger is the log of a one-shot command (check, tickets) on stderr:
// records from level on, as text. When stderr is interactive it also shows
// the progress of what takes a second or more (internal/progress), as
// short lines:
//
//	check run check=patches: still running (1s)
//	check run check=patches observations=6: done in 3.2s
func cliLogger(stderr io.Writer, level slog.Level) *slog.Logger {
	text := slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level})
	if !interactive(stderr) {
		return slog.New(text)
	}
	return slog.New(&terminalHandler{out: &lockedWriter{w: stderr}, next: text})
}

// interactive reports whether w is a terminal (a character device: also
// /dev/null, where the lines are lost anyway), not a pipe or a file.
func interactive(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}

type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) line(s string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	io.WriteString(l.w, s+"\n")
}

// terminalHandler writes progress lines at info and above for people and
// hands every other record to next.
type terminalHandler struct {
	out   *lockedWriter
	next  slog.Handler
	attrs []slog.Attr // from WithAttrs, for the progress lines
}

func (h *terminalHandler) Enabled(ctx context.Context, l slog.Level) bool {
	return l >= slog.LevelInfo || h.next.Enabled(ctx, l)
}

func (h *terminalHandler) Handle(ctx context.Context, r slog.Record) error {
	if line, ok := progressLine(h.attrs, r); ok {
		h.out.line(line)
		return nil
	}
	if !h.next.Enabled(ctx, r.Level) {
		return nil
	}
	return h.next.Handle(ctx, r)
}

func (h *terminalHandler) WithAttrs(as []slog.Attr) slog.Handler {
	return &terminalHandler{out: h.out, next: h.next.WithAttrs(as), attrs: append(h.attrs[:len(h.attrs):len(h.attrs)], as...)}
}

func (h *terminalHandler) WithGroup(name string) slog.Handler {
	return &terminalHandler{out: h.out, next: h.next.WithGroup(name), attrs: h.attrs}
}

// progressLine renders a progress record at info or above ("check run
// check=patches: still running (1s)"); ok is false for any other record.
func progressLine(with []slog.Attr, r slog.Record) (line string, ok bool) {
	if r.Level < slog.LevelInfo {
		return "", false
	}
	var task, took string
	var kv []string
	add := func(a slog.Attr) {
		switch a.Key {
		case progress.Key:
			task = a.Value.String()
		case progress.Elapsed, progress.Duration:
			if a.Value.Kind() != slog.KindDuration {
				kv = append(kv, a.Key+"="+a.Value.String())
			} else if a.Key == progress.Elapsed {
				took = " (" + textfmt.Duration(a.Value.Duration()) + ")"
			} else {
				took = " in " + textfmt.Duration(a.Value.Duration())
			}
		default:
			kv = append(kv, a.Key+"="+a.Value.String())
		}
	}
	for _, a := range with {
		add(a)
	}
	r.Attrs(func(a slog.Attr) bool { add(a); return true })
	if task == "" {
		return "", false
	}
	label := strings.Join(append([]string{task}, kv...), " ")
	return fmt.Sprintf("%s: %s%s", label, r.Message, took), true
}
