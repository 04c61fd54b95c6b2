package diskcleanup

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"

	"github.com/l2agent/l2agent/configs"
	"github.com/l2agent/l2agent/internal/testkit"
	"github.com/l2agent/l2agent/remediate"
)

// makeFiles creates dirs directories of perDir empty files under root,
// with two goroutines.
func makeFiles(t *testing.T, root string, dirs, perDir int) {
	t.Helper()
	var wg sync.WaitGroup
	errs := make(chan error, 2)
	for w := range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for d := w; d < dirs; d += 2 {
				dir := filepath.Join(root, fmt.Sprintf("d%04d", d))
				if err := os.Mkdir(dir, 0o755); err != nil {
					errs <- err
					return
				}
				dfd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
				if err != nil {
					errs <- err
					return
				}
				for i := range perDir {
					fd, err := unix.Openat(dfd, fmt.Sprintf("f%06d.log", i), unix.O_CREAT|unix.O_WRONLY|unix.O_CLOEXEC, 0o644)
					if err != nil {
						errs <- err
						break
					}
					unix.Close(fd)
				}
				unix.Close(dfd)
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
}

// TestDiskCleanupEntryBound: 800,000 files under a 200,000-entry bound.
// The bound ends the whole walk: the plan holds at most 200,000 files,
// the heap stays bounded, the plan and the outcome say how far the walk
// got, and a later run takes the next files.
func TestDiskCleanupEntryBound(t *testing.T) {
	if os.Geteuid() != 0 {
		testkit.RequireCI(t, "disk_cleanup test needs root to mount a tmpfs")
	}
	root := filepath.Join(t.TempDir(), "spool")
	require.NoError(t, os.MkdirAll(root, 0o755))
	require.NoError(t, syscall.Mount("tmpfs", root, "tmpfs", 0, "size=64m,nr_inodes=1000000,mode=0755"))
	t.Cleanup(func() { _ = syscall.Unmount(root, syscall.MNT_DETACH) })
	const dirs, perDir, bound = 800, 1000, 200000
	makeFiles(t, root, dirs, perDir)

	d := newDiskCleanup(&Settings{AllowPaths: []string{root}},
		&Params{Globs: []string{"*.log"}, OlderThan: configs.Duration(24 * time.Hour)}, remediate.Env{Procfs: "/proc"})
	d.now = func() time.Time { return time.Now().Add(48 * time.Hour) } // every file is old enough
	require.Equal(t, bound, d.maxEntries)

	runtime.GC()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	p, err := d.Plan(context.Background(), remediate.Alert{})
	require.NoError(t, err)
	runtime.ReadMemStats(&after)
	dp := p.Data.(diskPlan)
	// Directory entries count the directories too: the root's 800 entries,
	// 199 directories of 1000 files and 200 files of d0199 fill the bound.
	require.LessOrEqual(t, len(dp.Files), bound, "the plan is bounded")
	require.Equal(t, bound-dirs, len(dp.Files))
	heap := after.HeapSys - before.HeapSys // HeapSys never shrinks: it bounds the peak
	t.Logf("plan: %d files, heap grown by %d MiB (HeapSys), %d MiB allocated in all", len(dp.Files), heap>>20, (after.TotalAlloc-before.TotalAlloc)>>20)
	require.Less(t, heap, uint64(128<<20), "peak heap bounded")
	require.Contains(t, p.Text, fmt.Sprintf("delete %d file(s)", bound-dirs))
	require.Contains(t, p.Text, "PARTIAL: walk stopped at its entry limit (200000 entries) while reading "+root+"/d0199, after 201 directories: files past it were not looked at; a later run continues")
	require.NotContains(t, p.Text, "complete walk")

	o, err := d.Apply(context.Background(), p)
	require.NoError(t, err)
	t.Log(o.Result)
	require.True(t, strings.HasPrefix(o.Result, fmt.Sprintf("deleted %d of %d planned files", bound-dirs, bound-dirs)), o.Result)
	require.Contains(t, o.Result, "the walk ended at its entry limit again: files past it are for a later run")
	left, err := os.ReadDir(filepath.Join(root, "d0198"))
	require.NoError(t, err)
	require.Empty(t, left)
	left, err = os.ReadDir(filepath.Join(root, "d0199"))
	require.NoError(t, err)
	require.Len(t, left, perDir-200, "the walk stopped inside d0199")
	left, err = os.ReadDir(filepath.Join(root, "d0200"))
	require.NoError(t, err)
	require.Len(t, left, perDir, "past the bound: untouched")

	p, err = d.Plan(context.Background(), remediate.Alert{})
	require.NoError(t, err)
	require.Len(t, p.Data.(diskPlan).Files, bound-dirs, "a later run takes the next files")
	require.True(t, strings.HasPrefix(p.Data.(diskPlan).Files[0].Rel, "d0199/"), "it starts where the last run stopped")
}
