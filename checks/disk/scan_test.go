package disk

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"

	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"

	"github.com/l2agent/l2agent/internal/checktest"
)

// TestScanLargestFiles: one big file at a mount's root is named, not
// "(no subdirectories)" alone.
func TestScanLargestFiles(t *testing.T) {
	t.Parallel()
	root := t.TempDir()
	writeFile(t, filepath.Join(root, "huge.img"), 3<<20)
	writeFile(t, filepath.Join(root, "small"), 4<<10)
	s := scanDirs(context.Background(), root, 3, 1000, 10)
	require.NoError(t, s.err)
	txt := s.format("/data", 10)
	require.Contains(t, txt, "  (no subdirectories)\nLargest files:\n   3.0 MiB  /data/huge.img\n   4.0 KiB  /data/small\n")
	s = scanDirs(context.Background(), root, 3, 1000, 1)
	require.Len(t, s.files, 1, "only the top files are kept")
}

// TestScanDepthBound: directories deeper than maxWalkDepth are not entered,
// and the report says so.
func TestScanDepthBound(t *testing.T) {
	t.Parallel()
	root := t.TempDir()
	deep := root
	for range maxWalkDepth + 3 {
		deep = filepath.Join(deep, "d")
	}
	writeFile(t, filepath.Join(deep, "f"), 1<<20)
	s := scanDirs(context.Background(), root, 3, 1000, 10)
	require.Equal(t, 1, s.tooDeep)
	require.Empty(t, s.files, "the file below the bound was not reached")
	require.Contains(t, s.format("/data", 10), "1 directories are deeper than 64 levels and are not counted.")
}

// TestScanBindMountNotCounted: a bind mount of the same filesystem inside
// the mount has the same st_dev; the mount ID tells it apart.
func TestScanBindMountNotCounted(t *testing.T) {
	checktest.NeedRoot(t)
	t.Parallel()
	mnt := t.TempDir()
	mountTmpfs(t, mnt, "16m")
	writeFile(t, filepath.Join(mnt, "big", "file"), 2<<20)
	require.NoError(t, os.Mkdir(filepath.Join(mnt, "inner"), 0o755))
	require.NoError(t, syscall.Mount(filepath.Join(mnt, "big"), filepath.Join(mnt, "inner"), "", syscall.MS_BIND, ""))
	t.Cleanup(func() { require.NoError(t, syscall.Unmount(filepath.Join(mnt, "inner"), syscall.MNT_DETACH)) })

	s := scanDirs(context.Background(), mnt, 3, 1000, 10)
	require.NoError(t, s.err)
	t.Log("\n" + s.format(mnt, 10))
	require.NotContains(t, s.sizes, "inner", "the bind mount is not entered")
	require.Equal(t, 1, s.otherMount)
	require.Len(t, s.files, 1, "the file is counted once, under big")
	require.Equal(t, "big/file", s.files[0].rel)
}

// TestScanSwapLoop swaps a directory with a symlink into a 0700 tree (on
// the same filesystem, outside the bind-mounted part being scanned) while
// the scan runs, again and again: a name from inside that tree never
// appears, however the swap and the walk interleave.
func TestScanSwapLoop(t *testing.T) {
	checktest.NeedRoot(t)
	t.Parallel()
	fs := t.TempDir()
	mountTmpfs(t, fs, "16m")
	const known = "KNOWN-secret-name"
	writeFile(t, filepath.Join(fs, "secret", "y", known, known+".file"), 64<<10)
	require.NoError(t, os.Chmod(filepath.Join(fs, "secret"), 0o700))
	pub := filepath.Join(fs, "pub")
	writeFile(t, filepath.Join(pub, "x", "y", "decoy", "f"), 4<<10)
	require.NoError(t, os.Symlink(filepath.Join(fs, "secret"), filepath.Join(pub, "xl")))
	view := t.TempDir() // pub bind-mounted: the mount being scanned
	require.NoError(t, syscall.Mount(pub, view, "", syscall.MS_BIND, ""))
	t.Cleanup(func() { require.NoError(t, syscall.Unmount(view, syscall.MNT_DETACH)) })

	var stop atomic.Bool
	var swaps atomic.Int64
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for !stop.Load() {
			if unix.Renameat2(unix.AT_FDCWD, filepath.Join(pub, "x"), unix.AT_FDCWD, filepath.Join(pub, "xl"), unix.RENAME_EXCHANGE) == nil {
				swaps.Add(1)
			}
		}
	}()
	changed := 0
	for range 3000 {
		s := scanDirs(context.Background(), view, 5, 1000, 10)
		require.NoError(t, s.err)
		txt := s.format(view, 10)
		require.NotContains(t, txt, known, "a name from the 0700 tree leaked:\n%s", txt)
		changed += s.changed
	}
	stop.Store(true)
	wg.Wait()
	t.Logf("%d swaps, %d entries seen changing", swaps.Load(), changed)
	require.Positive(t, swaps.Load())
	require.Positive(t, changed, "the race was exercised")
}

func TestParseFdinfoMntID(t *testing.T) {
	t.Parallel()
	require.Equal(t, uint64(29), parseFdinfoMntID("pos:\t0\nflags:\t02100000\nmnt_id:\t29\nino:\t2\n"))
	require.Zero(t, parseFdinfoMntID("pos:\t0\n"))
	require.Zero(t, parseFdinfoMntID("mnt_id:\tx\n"))
	f, err := os.Open(".")
	require.NoError(t, err)
	defer f.Close()
	require.Positive(t, mountID(int(f.Fd())))
}

func FuzzParseFdinfoMntID(f *testing.F) {
	f.Add("pos:\t0\nflags:\t02100000\nmnt_id:\t29\nino:\t2\n")
	f.Add("mnt_id: 18446744073709551615\n")
	f.Fuzz(func(t *testing.T, s string) {
		if id := parseFdinfoMntID(s); id != 0 && !strings.Contains(s, "mnt_id:") {
			t.Fatalf("mount ID %d from %q", id, s)
		}
	})
}

// TestScanRootComponents: the rootfs is the admin's and may be a symlink;
// no component of the mountpoint below it is followed.
func TestScanRootComponents(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "host", "real", "sub", "f"), 8<<10)
	require.NoError(t, os.Symlink(filepath.Join(dir, "host"), filepath.Join(dir, "rootfs")))
	require.NoError(t, os.Symlink("real", filepath.Join(dir, "host", "link")))
	s := scanDirsIn(context.Background(), filepath.Join(dir, "rootfs"), "/real", 3, 100, 3)
	require.NoError(t, s.err)
	require.Contains(t, s.sizes, "sub")
	s = scanDirsIn(context.Background(), filepath.Join(dir, "rootfs"), "/link/sub", 3, 100, 3)
	require.ErrorContains(t, s.err, `component "link" is a symlink or not a directory: refusing to follow it`)
}
