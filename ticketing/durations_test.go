package ticketing

import (
	"context"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/l2agent/l2agent/internal/testkit"
)

// textRecorder is a recorder that keeps the texts of resolves and reopens.
type textRecorder struct {
	*recorder
	mu    sync.Mutex
	texts []string
}

func (r *textRecorder) keep(text string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.texts = append(r.texts, text)
}

func (r *textRecorder) Resolve(ctx context.Context, ref Ref, text string) error {
	r.keep(text)
	return r.recorder.Resolve(ctx, ref, text)
}

func (r *textRecorder) Reopen(ctx context.Context, ref Ref, text string) error {
	r.keep(text)
	return r.recorder.Reopen(ctx, ref, text)
}

// TestTextsSayDurationsForPeople: a resolve and a reopen say how long in
// the units people read ("16m", "3h 39m"), not Go's ("16m0s").
func TestTextsSayDurationsForPeople(t *testing.T) {
	st, err := OpenStore(filepath.Join(t.TempDir(), "l2agent.db"), false, testkit.QuietLogger())
	require.NoError(t, err)
	rec := &textRecorder{recorder: newRecorder()}
	svc := NewService(testConfig(), st, []string{"rec"}, map[string]Ticketer{"rec": rec}, "test", testkit.QuietLogger(), nil)
	t.Cleanup(func() { svc.Stop() })
	h := &harness{t: t, svc: svc, rec: rec.recorder, t0: time.Date(2026, 11, 24, 8, 0, 0, 0, time.UTC), key: `web-7/disk/disk_used_ratio{mountpoint="/var"}`}

	require.Equal(t, "open #1 L2", h.step(0, "ok", "warn", 0.85))
	require.Equal(t, "", h.step(5*time.Minute, "warn", "ok", 0.5))
	require.Equal(t, "resolve #1", h.tick(21*time.Minute))
	require.Equal(t, "reopen #1", h.step(4*time.Hour, "ok", "warn", 0.85))
	require.Len(t, rec.texts, 2)
	require.Contains(t, rec.texts[0], "back within its threshold for 16m (value now")
	require.Contains(t, rec.texts[1], ", 3h 39m after it was resolved.")
}
