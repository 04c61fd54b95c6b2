// Package ctxutil holds small helpers around context.Context.
package ctxutil

import (
	"context"
	"time"
)

// Sleep waits for d or until ctx ends, whichever comes first; it returns
// context.Cause(ctx) when ctx ended first.
func Sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return context.Cause(ctx)
	case <-t.C:
		return nil
	}
}
