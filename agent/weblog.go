package agent

import (
	"context"
	"log/slog"
)

// toolkitLog is the logger handed to exporter-toolkit's web.Serve. The
// toolkit logs its own start-up lines ("Listening on", "TLS is
// disabled.") beside the agent's one "listening" line: its "Listening on"
// is dropped, its other information lines go to debug, and its warnings
// and errors (a web config it cannot read) stay as they are.
func toolkitLog(log *slog.Logger) *slog.Logger {
	return slog.New(toolkitHandler{log.With("component", "web").Handler()})
}

type toolkitHandler struct{ next slog.Handler }

func demote(l slog.Level) slog.Level {
	if l == slog.LevelInfo {
		return slog.LevelDebug
	}
	return l
}

func (h toolkitHandler) Enabled(ctx context.Context, l slog.Level) bool {
	return h.next.Enabled(ctx, demote(l))
}

func (h toolkitHandler) Handle(ctx context.Context, r slog.Record) error {
	if r.Message == "Listening on" {
		return nil
	}
	r.Level = demote(r.Level)
	return h.next.Handle(ctx, r)
}

func (h toolkitHandler) WithAttrs(as []slog.Attr) slog.Handler {
	return toolkitHandler{h.next.WithAttrs(as)}
}

func (h toolkitHandler) WithGroup(name string) slog.Handler {
	return toolkitHandler{h.next.WithGroup(name)}
}
