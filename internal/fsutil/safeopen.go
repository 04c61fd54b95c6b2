package fsutil

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"
)

// Errors of ReadBeneath and ListBeneath, wrapped in an *UnsafeError that
// names the component concerned.
var (
	ErrSymlink    = errors.New("is a symbolic link (not followed)")
	ErrNotRegular = errors.New("is not a regular file")
	ErrNotDir     = errors.New("is not a directory")
	ErrTooLarge   = errors.New("is larger than the limit")
	ErrTimeout    = errors.New("did not answer in time (read abandoned)")
	ErrBusy       = errors.New("too many earlier reads still blocked")
	ErrBadPath    = errors.New("is not a plain relative path")
	ErrChanged    = errors.New("was replaced while it was opened")
)

// UnsafeError is why a file below a trusted root was not read: Path is the
// trusted root joined with the components up to the one that failed.
type UnsafeError struct {
	Path string
	Err  error
}

func (e *UnsafeError) Error() string { return e.Path + ": " + e.Err.Error() }
func (e *UnsafeError) Unwrap() error { return e.Err }

// Beneath says how ReadBeneath and ListBeneath treat a file a user controls.
type Beneath struct {
	// Check is called with the fstat of the opened file (or directory)
	// before a byte of it is read; an error refuses it. Owner and mode
	// checks belong here.
	Check func(st *unix.Stat_t) error
	// Max is the most bytes read (ReadBeneath) or entries listed
	// (ListBeneath); a bigger file or directory is ErrTooLarge. Default 1 MiB
	// or 10,000 entries.
	Max int64
	// Timeout bounds the whole open and read, within ctx. Default 2s.
	Timeout time.Duration
}

// MaxStuck is how many abandoned reads may still be blocked in the kernel
// (a FUSE file system its user stalls, a hung NFS server) before ReadBeneath
// and ListBeneath refuse at once with ErrBusy instead of starting another.
// A path whose earlier read is still blocked is refused at once with
// ErrTimeout, so one stalled file holds one goroutine, however many runs.
const MaxStuck = 32

var (
	stuck      atomic.Int64
	stuckMu    sync.Mutex
	stuckPaths = map[string]int{} // path -> abandoned reads of it still blocked
)

// Stuck returns how many abandoned reads are still blocked in the kernel.
func Stuck() int64 { return stuck.Load() }

// unstick counts an abandoned read of where as returned (d -1) or as
// abandoned (d 1).
func unstick(where string, d int) {
	stuckMu.Lock()
	defer stuckMu.Unlock()
	stuck.Add(int64(d))
	if stuckPaths[where] += d; stuckPaths[where] <= 0 {
		delete(stuckPaths, where)
	}
}

// ReadBeneath reads the regular file at rel below the directory root, for
// a file whose path a user controls (their home directory, a tree they can
// write). root is trusted and opened as it is; every component of rel is
// opened relative to the previous one with O_NOFOLLOW (a symbolic link is
// ErrSymlink, never followed), the file itself also with O_NONBLOCK (a FIFO
// does not block the open), all with O_CLOEXEC. The opened file is fstat'ed:
// it must be a regular file (ErrNotRegular) that b.Check accepts, no larger
// than b.Max (ErrTooLarge); only then is it read. The whole runs in its own
// goroutine: past b.Timeout or ctx, ReadBeneath returns ErrTimeout and
// leaves the goroutine to finish (counted by Stuck). It returns the bytes
// and the fstat of the file.
func ReadBeneath(ctx context.Context, root, rel string, b Beneath) ([]byte, *unix.Stat_t, error) {
	type result struct {
		data []byte
		st   *unix.Stat_t
	}
	max := b.Max
	if max <= 0 {
		max = 1 << 20
	}
	r, err := bounded(ctx, root, rel, b.Timeout, func() (result, error) {
		fd, st, err := openBeneath(root, rel, unix.O_RDONLY|unix.O_NONBLOCK|unix.O_NOCTTY, b.Check, unix.S_IFREG)
		if err != nil {
			return result{}, err
		}
		defer unix.Close(fd)
		if st.Size > max {
			return result{}, &UnsafeError{Path: filepath.Join(root, rel), Err: fmt.Errorf("%w: %d bytes, at most %d are read", ErrTooLarge, st.Size, max)}
		}
		data, err := readFD(fd, max)
		if err != nil {
			return result{}, &UnsafeError{Path: filepath.Join(root, rel), Err: err}
		}
		return result{data, st}, nil
	})
	return r.data, r.st, err
}

// Entry is a name in a directory listed by ListBeneath, with its lstat.
type Entry struct {
	Name string
	Stat unix.Stat_t
}

// ListBeneath lists the directory at rel below root ("" or "." for root
// itself) as ReadBeneath reads a file: each component opened with
// O_NOFOLLOW, the directory fstat'ed and given to b.Check, at most b.Max
// entries (else ErrTooLarge), within b.Timeout. It returns the entries
// whose name match accepts, each with its fstatat(AT_SYMLINK_NOFOLLOW).
func ListBeneath(ctx context.Context, root, rel string, match func(name string) bool, b Beneath) ([]Entry, error) {
	max := b.Max
	if max <= 0 {
		max = 10000
	}
	return bounded(ctx, root, rel, b.Timeout, func() ([]Entry, error) {
		fd, _, err := openBeneath(root, rel, unix.O_RDONLY|unix.O_DIRECTORY, b.Check, unix.S_IFDIR)
		if err != nil {
			return nil, err
		}
		dir := os.NewFile(uintptr(fd), filepath.Join(root, rel))
		defer dir.Close()
		names, err := dir.Readdirnames(int(max) + 1)
		if err != nil && len(names) == 0 && !errors.Is(err, io.EOF) {
			return nil, &UnsafeError{Path: dir.Name(), Err: err}
		}
		if int64(len(names)) > max {
			return nil, &UnsafeError{Path: dir.Name(), Err: fmt.Errorf("%w: more than %d entries", ErrTooLarge, max)}
		}
		var out []Entry
		for _, n := range names {
			if !match(n) {
				continue
			}
			e := Entry{Name: n}
			if err := unix.Fstatat(fd, n, &e.Stat, unix.AT_SYMLINK_NOFOLLOW); err != nil {
				continue // gone since the listing
			}
			out = append(out, e)
		}
		return out, nil
	})
}

// bounded runs work in its own goroutine and waits for it at most timeout
// (default 2s) or until ctx ends; an abandoned work is counted in stuck
// until it returns.
func bounded[T any](ctx context.Context, root, rel string, timeout time.Duration, work func() (T, error)) (T, error) {
	var zero T
	where := filepath.Join(root, rel)
	stuckMu.Lock()
	again := stuckPaths[where] > 0
	stuckMu.Unlock()
	if again { // one stalled file costs one blocked goroutine, not one per run
		return zero, &UnsafeError{Path: where, Err: fmt.Errorf("%w: an earlier read of it is still blocked", ErrTimeout)}
	}
	if stuck.Load() >= MaxStuck {
		return zero, &UnsafeError{Path: where, Err: fmt.Errorf("%w (%d)", ErrBusy, stuck.Load())}
	}
	if timeout <= 0 {
		timeout = 2 * time.Second
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	type result struct {
		v   T
		err error
	}
	const running, done, abandoned = 0, 1, 2
	var state atomic.Int32
	ch := make(chan result, 1)
	go func() {
		v, err := work()
		ch <- result{v, err}
		if !state.CompareAndSwap(running, done) {
			unstick(where, -1)
		}
	}()
	select {
	case r := <-ch:
		return r.v, r.err
	case <-ctx.Done():
		if state.CompareAndSwap(running, abandoned) {
			unstick(where, 1)
			return zero, &UnsafeError{Path: where, Err: fmt.Errorf("%w after %s", ErrTimeout, timeout)}
		}
		r := <-ch // finished just now
		return r.v, r.err
	}
}

// openBeneath opens rel below root, component by component with
// O_NOFOLLOW, the last one with flags; it fstats the result, wants the file
// type typ, and gives the stat to check.
func openBeneath(root, rel string, flags int, check func(*unix.Stat_t) error, typ uint32) (int, *unix.Stat_t, error) {
	parts, err := components(rel)
	if err != nil {
		return -1, nil, &UnsafeError{Path: filepath.Join(root, rel), Err: err}
	}
	rflags := unix.O_PATH | unix.O_DIRECTORY | unix.O_CLOEXEC
	if len(parts) == 0 {
		rflags = flags | unix.O_CLOEXEC
	}
	fd, err := unix.Open(root, rflags, 0)
	if err != nil {
		return -1, nil, &UnsafeError{Path: root, Err: err}
	}
	where := root
	for i, p := range parts {
		fl := unix.O_PATH | unix.O_DIRECTORY
		if i == len(parts)-1 {
			fl = flags
		}
		where = filepath.Join(where, p)
		next, err := unix.Openat(fd, p, fl|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
		if err != nil {
			err = openErr(fd, p, err)
			unix.Close(fd)
			return -1, nil, &UnsafeError{Path: where, Err: err}
		}
		unix.Close(fd)
		fd = next
	}
	st := new(unix.Stat_t)
	if err := unix.Fstat(fd, st); err != nil {
		unix.Close(fd)
		return -1, nil, &UnsafeError{Path: where, Err: err}
	}
	if st.Mode&unix.S_IFMT != typ {
		unix.Close(fd)
		want := ErrNotRegular
		if typ == unix.S_IFDIR {
			want = ErrNotDir
		}
		return -1, nil, &UnsafeError{Path: where, Err: fmt.Errorf("%w (%s)", want, FileType(st.Mode))}
	}
	if check != nil {
		if err := check(st); err != nil {
			unix.Close(fd)
			return -1, nil, &UnsafeError{Path: where, Err: err}
		}
	}
	return fd, st, nil
}

// openErr says why opening name in dir failed: with O_NOFOLLOW a symbolic
// link is ELOOP, or ENOTDIR with O_DIRECTORY, which a lstat tells apart from
// a file that is not a directory.
func openErr(dir int, name string, err error) error {
	if errors.Is(err, unix.ELOOP) {
		return ErrSymlink
	}
	if errors.Is(err, unix.ENOTDIR) {
		var st unix.Stat_t
		if unix.Fstatat(dir, name, &st, unix.AT_SYMLINK_NOFOLLOW) != nil {
			return err
		}
		switch st.Mode & unix.S_IFMT {
		case unix.S_IFLNK:
			return ErrSymlink
		case unix.S_IFDIR: // a link then, swapped back since
			return ErrChanged
		}
		return fmt.Errorf("%w (%s)", ErrNotDir, FileType(st.Mode))
	}
	return err
}

// components splits a relative path into names, refusing "..", absolute
// paths and NUL bytes; "" and "." are no component.
func components(rel string) ([]string, error) {
	if strings.HasPrefix(rel, "/") || strings.ContainsRune(rel, 0) {
		return nil, ErrBadPath
	}
	var parts []string
	for _, p := range strings.Split(rel, "/") {
		switch p {
		case "", ".":
			continue
		case "..":
			return nil, ErrBadPath
		}
		parts = append(parts, p)
	}
	return parts, nil
}

// readFD reads at most max bytes from fd; more is ErrTooLarge (the file grew
// after the fstat).
func readFD(fd int, max int64) ([]byte, error) {
	var buf []byte
	chunk := make([]byte, min(max+1, 32*1024))
	for {
		n, err := unix.Read(fd, chunk)
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil {
			return nil, err
		}
		if n == 0 {
			return buf, nil
		}
		buf = append(buf, chunk[:n]...)
		if int64(len(buf)) > max {
			return nil, fmt.Errorf("%w: grew past %d bytes while read", ErrTooLarge, max)
		}
	}
}

// FileType names the type of a stat mode: "regular file", "directory",
// "symbolic link", "FIFO", "socket", "character device", "block device".
func FileType(mode uint32) string {
	switch mode & unix.S_IFMT {
	case unix.S_IFREG:
		return "regular file"
	case unix.S_IFDIR:
		return "directory"
	case unix.S_IFLNK:
		return "symbolic link"
	case unix.S_IFIFO:
		return "FIFO"
	case unix.S_IFSOCK:
		return "socket"
	case unix.S_IFCHR:
		return "character device"
	case unix.S_IFBLK:
		return "block device"
	}
	return fmt.Sprintf("type %o", mode&unix.S_IFMT)
}
