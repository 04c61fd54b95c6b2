package fsutil

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"
)

// TestReadBeneath reads a tree where each component in turn is replaced by
// something a user could plant: a symbolic link (to a readable file, to a
// directory, a loop), a FIFO, a directory, a device, an oversized file, a
// file of the wrong owner. Nothing but the plain regular file is read.
func TestReadBeneath(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	root := t.TempDir()
	secret := filepath.Join(t.TempDir(), "secret")
	require.NoError(t, os.WriteFile(secret, []byte("ROOT-ONLY"), 0o600))
	mk := func(rel, body string) {
		p := filepath.Join(root, rel)
		require.NoError(t, os.MkdirAll(filepath.Dir(p), 0o755))
		require.NoError(t, os.WriteFile(p, []byte(body), 0o600))
	}
	mk("home/u/.config/Yubico/u2f_keys", "u:kh,pk\n")

	b, st, err := ReadBeneath(ctx, root, "home/u/.config/Yubico/u2f_keys", Beneath{})
	require.NoError(t, err)
	require.Equal(t, "u:kh,pk\n", string(b))
	require.Equal(t, uint32(unix.S_IFREG), st.Mode&unix.S_IFMT)

	// a symbolic link at each component, to where the plain path would go
	for _, comp := range []string{"home", "home/u", "home/u/.config", "home/u/.config/Yubico", "home/u/.config/Yubico/u2f_keys"} {
		t.Run("symlink "+comp, func(t *testing.T) {
			t.Parallel()
			r := t.TempDir()
			require.NoError(t, os.MkdirAll(filepath.Join(r, "real/home/u/.config/Yubico"), 0o755))
			require.NoError(t, os.WriteFile(filepath.Join(r, "real/home/u/.config/Yubico/u2f_keys"), []byte("u:kh,pk\n"), 0o600))
			require.NoError(t, os.MkdirAll(filepath.Dir(filepath.Join(r, "tree", comp)), 0o755))
			if dir := filepath.Dir(comp); dir != "." {
				// the components above comp are real directories holding the rest
				require.NoError(t, os.RemoveAll(filepath.Join(r, "tree", dir)))
				require.NoError(t, os.MkdirAll(filepath.Join(r, "tree", dir), 0o755))
			}
			require.NoError(t, os.Symlink(filepath.Join(r, "real", comp), filepath.Join(r, "tree", comp)))
			// the plain path works through the link: os.ReadFile follows it
			_, err := os.ReadFile(filepath.Join(r, "tree/home/u/.config/Yubico/u2f_keys"))
			require.NoError(t, err)
			b, _, err := ReadBeneath(ctx, filepath.Join(r, "tree"), "home/u/.config/Yubico/u2f_keys", Beneath{})
			require.ErrorIs(t, err, ErrSymlink)
			require.Nil(t, b)
			var ue *UnsafeError
			require.True(t, errors.As(err, &ue))
			require.Equal(t, filepath.Join(r, "tree", comp), ue.Path, "names the component that is a link")
		})
	}

	// a link loop, and a link to a root-only file
	require.NoError(t, os.Symlink("loop2", filepath.Join(root, "loop1")))
	require.NoError(t, os.Symlink("loop1", filepath.Join(root, "loop2")))
	_, _, err = ReadBeneath(ctx, root, "loop1", Beneath{})
	require.ErrorIs(t, err, ErrSymlink)
	_, _, err = ReadBeneath(ctx, root, "loop1/x", Beneath{})
	require.ErrorIs(t, err, ErrSymlink)
	require.NoError(t, os.Symlink(secret, filepath.Join(root, "home/u/.google_authenticator")))
	_, _, err = ReadBeneath(ctx, root, "home/u/.google_authenticator", Beneath{})
	require.ErrorIs(t, err, ErrSymlink)
	require.NotContains(t, err.Error(), "ROOT-ONLY")

	// a FIFO nobody writes to: refused at once by type, the open does not block
	require.NoError(t, unix.Mkfifo(filepath.Join(root, "fifo"), 0o600))
	_, _, err = ReadBeneath(ctx, root, "fifo", Beneath{Timeout: time.Minute})
	require.ErrorIs(t, err, ErrNotRegular)
	require.ErrorContains(t, err, "(FIFO)")

	// a directory, a file where a directory is expected, a device
	_, _, err = ReadBeneath(ctx, root, "home/u/.config", Beneath{})
	require.ErrorIs(t, err, ErrNotRegular)
	require.ErrorContains(t, err, "(directory)")
	_, _, err = ReadBeneath(ctx, root, "home/u/.config/Yubico/u2f_keys/x", Beneath{})
	require.ErrorIs(t, err, ErrNotDir)
	_, _, err = ReadBeneath(ctx, "/dev", "null", Beneath{})
	require.ErrorIs(t, err, ErrNotRegular)
	require.ErrorContains(t, err, "(character device)")

	// oversize: one 2 MB line
	mk("big", strings.Repeat("a", 2<<20))
	_, _, err = ReadBeneath(ctx, root, "big", Beneath{Max: 1 << 20})
	require.ErrorIs(t, err, ErrTooLarge)
	b, _, err = ReadBeneath(ctx, root, "big", Beneath{Max: 2 << 20})
	require.NoError(t, err)
	require.Len(t, b, 2<<20)

	// the wrong owner: Check sees the fstat before anything is read
	wrong := errors.New("owned by someone else")
	_, _, err = ReadBeneath(ctx, root, "home/u/.config/Yubico/u2f_keys", Beneath{Check: func(st *unix.Stat_t) error {
		if int(st.Uid) != os.Getuid()+1 {
			return wrong
		}
		return nil
	}})
	require.ErrorIs(t, err, wrong)

	// paths that climb out or are absolute
	for _, rel := range []string{"../etc/passwd", "home/../../x", "/etc/passwd", "a\x00b"} {
		_, _, err = ReadBeneath(ctx, root, rel, Beneath{})
		require.ErrorIs(t, err, ErrBadPath, rel)
	}
	_, _, err = ReadBeneath(ctx, root, "missing", Beneath{})
	require.ErrorIs(t, err, os.ErrNotExist)
}

// TestReadBeneathTimeout abandons a read that blocks (here the check
// callback, standing in for an open or read stalled in the kernel by a FUSE
// file system its user controls) and counts it until it returns.
func TestReadBeneathTimeout(t *testing.T) {
	root := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(root, "f"), []byte("x"), 0o600))
	release := make(chan struct{})
	entered := make(chan struct{})
	before := Stuck()
	_, _, err := ReadBeneath(context.Background(), root, "f", Beneath{Timeout: time.Millisecond, Check: func(*unix.Stat_t) error {
		close(entered)
		<-release
		return nil
	}})
	<-entered
	require.ErrorIs(t, err, ErrTimeout)
	require.Equal(t, before+1, Stuck())
	// the same file again: refused at once, no second goroutine blocked
	_, _, err = ReadBeneath(context.Background(), root, "f", Beneath{Timeout: time.Hour})
	require.ErrorIs(t, err, ErrTimeout)
	require.ErrorContains(t, err, "an earlier read of it is still blocked")
	require.Equal(t, before+1, Stuck())
	close(release)
	require.Eventually(t, func() bool { return Stuck() == before }, 10*time.Second, time.Millisecond)

}

// TestReadBeneathBusy refuses at once while MaxStuck reads are blocked.
func TestReadBeneathBusy(t *testing.T) {
	root := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(root, "f"), []byte("x"), 0o600))
	release := make(chan struct{})
	block := Beneath{Timeout: time.Millisecond, Check: func(*unix.Stat_t) error { <-release; return nil }}
	for i := 0; Stuck() < MaxStuck; i++ {
		name := fmt.Sprintf("f%d", i)
		require.NoError(t, os.WriteFile(filepath.Join(root, name), []byte("x"), 0o600))
		_, _, err := ReadBeneath(context.Background(), root, name, block)
		require.ErrorIs(t, err, ErrTimeout)
	}
	_, _, err := ReadBeneath(context.Background(), root, "f", Beneath{})
	require.ErrorIs(t, err, ErrBusy)
	close(release)
	require.Eventually(t, func() bool { return Stuck() == 0 }, 10*time.Second, time.Millisecond)
	b, _, err := ReadBeneath(context.Background(), root, "f", Beneath{})
	require.NoError(t, err)
	require.Equal(t, "x", string(b))
}

// TestListBeneath lists a directory without following a link to it, and
// gives each entry's lstat.
func TestListBeneath(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	root := t.TempDir()
	other := t.TempDir()
	require.NoError(t, os.MkdirAll(filepath.Join(root, "u/.yubico"), 0o700))
	require.NoError(t, os.WriteFile(filepath.Join(root, "u/.yubico/challenge-123"), []byte("x"), 0o600))
	require.NoError(t, os.Symlink("/etc/passwd", filepath.Join(root, "u/.yubico/challenge-link")))
	require.NoError(t, os.WriteFile(filepath.Join(root, "u/.yubico/other"), []byte("x"), 0o600))
	require.NoError(t, os.WriteFile(filepath.Join(other, "challenge-9"), []byte("x"), 0o600))
	require.NoError(t, os.Symlink(other, filepath.Join(root, "u/.elsewhere")))

	es, err := ListBeneath(ctx, root, "u/.yubico", func(n string) bool { return strings.HasPrefix(n, "challenge") }, Beneath{})
	require.NoError(t, err)
	got := map[string]string{}
	for _, e := range es {
		got[e.Name] = FileType(e.Stat.Mode)
	}
	require.Equal(t, map[string]string{"challenge-123": "regular file", "challenge-link": "symbolic link"}, got)

	_, err = ListBeneath(ctx, root, "u/.elsewhere", func(string) bool { return true }, Beneath{})
	require.ErrorIs(t, err, ErrSymlink)
	_, err = ListBeneath(ctx, root, "u/.yubico/other", func(string) bool { return true }, Beneath{})
	require.ErrorIs(t, err, ErrNotDir)
	_, err = ListBeneath(ctx, root, "u/.yubico", func(string) bool { return true }, Beneath{Max: 2})
	require.ErrorIs(t, err, ErrTooLarge)
}
