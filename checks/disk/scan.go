package disk

// The diagnostics walk: openat-style, one directory descriptor at a time,
// O_NOFOLLOW on every component, never leaving the mount it starts on
// (mount ID, not only st_dev), bounded in entries, depth, time and memory.

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/l2agent/l2agent/internal/textfmt"
)

// maxWalkDepth bounds how deep the walk goes (and so the directory
// descriptors it holds open at once); deeper directories are not entered
// and the report says how many.
const maxWalkDepth = 64

// dirScan is the result of scanDirs.
type dirScan struct {
	maxDepth, maxEntries, top int
	sizes                     map[string]uint64 // allocated bytes by path relative to the root, depth 1..maxDepth
	files                     []fileSize        // the top largest regular files, largest first
	entries                   int               // directory entries visited
	unreadable                int               // directories that could not be read
	otherMount                int               // directories on another filesystem or mount, not entered
	changed                   int               // entries that changed between listing and opening
	tooDeep                   int               // directories deeper than maxWalkDepth, not entered
	stopped                   string            // why the scan was cut short; "" if complete
	elapsed                   time.Duration
	err                       error // the root could not be opened

	ctx context.Context
	dev uint64
	mnt uint64          // the root's mount ID; 0 if the kernel cannot tell
	ino map[uint64]bool // inodes with several links, counted once
}

// fileSize is one of the largest files.
type fileSize struct {
	rel  string
	size uint64
}

// scanDirs sums the allocated size (st_blocks*512, so sparse files count what
// they use) of every directory under root, within root's mount and without
// following symlinks, and keeps the sums of the directories at most maxDepth
// below root and the top largest files. Every directory is opened relative
// to its parent's descriptor with O_NOFOLLOW, so a directory swapped for a
// symlink during the walk is never followed. It stops after maxEntries
// entries or when ctx ends.
func scanDirs(ctx context.Context, root string, maxDepth, maxEntries, top int) *dirScan {
	return scanDirsIn(ctx, "/", root, maxDepth, maxEntries, top)
}

// scanDirsIn is scanDirs of root under base: base (the configured rootfs,
// the admin's) is opened as it is, every component of root below it
// without following symlinks.
func scanDirsIn(ctx context.Context, base, root string, maxDepth, maxEntries, top int) *dirScan {
	root = filepath.Join(base, root)
	s := &dirScan{maxDepth: maxDepth, maxEntries: maxEntries, top: top, sizes: map[string]uint64{}, ctx: ctx, ino: map[uint64]bool{}}
	start := time.Now()
	defer func() { s.elapsed = time.Since(start) }()
	fd, err := openDirNoFollow(base, strings.TrimPrefix(root, filepath.Clean(base)))
	if err != nil {
		s.err = fmt.Errorf("read %s: %w", root, err)
		return s
	}
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		unix.Close(fd)
		s.err = fmt.Errorf("read %s: %w", root, err)
		return s
	}
	s.dev, s.mnt = uint64(st.Dev), mountID(fd)
	s.walk(fd, "", 0, 0)
	return s
}

// subdir is a directory listed by walk, to be entered after the listing.
type subdir struct {
	name     string
	own      uint64
	dev, ino uint64
}

// walk returns the allocated bytes of the directory open as fd (which it
// closes) and everything under it; own is the allocation of the directory
// itself.
func (s *dirScan) walk(fd int, rel string, depth int, own uint64) uint64 {
	total, subdirs := s.list(fd, rel, own)
	for _, d := range subdirs {
		if s.stop() {
			break
		}
		cfd, ok := s.open(fd, d, depth)
		if ok {
			total += s.walk(cfd, path.Join(rel, d.name), depth+1, d.own)
		}
	}
	unix.Close(fd)
	if depth >= 1 && depth <= s.maxDepth {
		s.sizes[rel] = total
	}
	return total
}

// list reads the directory fd, adding the files' allocation to own, and
// returns the total and the subdirectories on the root's filesystem.
func (s *dirScan) list(fd int, rel string, own uint64) (uint64, []subdir) {
	dup, err := unix.Dup(fd)
	if err != nil {
		s.unreadable++
		return own, nil
	}
	f := os.NewFile(uintptr(dup), "/"+rel)
	defer f.Close()
	total := own
	var subdirs []subdir
	for s.stopped == "" {
		names, err := f.Readdirnames(256)
		for _, name := range names {
			if s.stop() {
				break
			}
			s.entries++
			var st unix.Stat_t
			if unix.Fstatat(fd, name, &st, unix.AT_SYMLINK_NOFOLLOW) != nil {
				s.changed++ // removed since listed
				continue
			}
			if uint64(st.Dev) != s.dev {
				s.otherMount++ // another filesystem mounted here
				continue
			}
			size := uint64(st.Blocks) * 512
			switch {
			case st.Mode&unix.S_IFMT == unix.S_IFDIR:
				subdirs = append(subdirs, subdir{name: name, own: size, dev: uint64(st.Dev), ino: st.Ino})
			case st.Nlink > 1 && s.ino[st.Ino]: // counted under another name
			default:
				if st.Nlink > 1 {
					s.ino[st.Ino] = true
				}
				total += size
				if st.Mode&unix.S_IFMT == unix.S_IFREG {
					s.keepFile(rel, name, size)
				}
			}
		}
		if err != nil {
			if !errors.Is(err, io.EOF) {
				s.unreadable++
			}
			break
		}
	}
	return total, subdirs
}

// open opens the subdirectory d of the directory fd with O_NOFOLLOW and
// keeps it only when it is still the directory listed, on the root's mount.
func (s *dirScan) open(fd int, d subdir, depth int) (int, bool) {
	if depth+1 > maxWalkDepth {
		s.tooDeep++
		return -1, false
	}
	cfd, err := unix.Openat(fd, d.name, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC|unix.O_NONBLOCK, 0)
	if err != nil {
		if errors.Is(err, unix.ELOOP) || errors.Is(err, unix.ENOTDIR) || errors.Is(err, unix.ENOENT) {
			s.changed++ // swapped for a symlink or a file since listed
		} else {
			s.unreadable++
		}
		return -1, false
	}
	var st unix.Stat_t
	if unix.Fstat(cfd, &st) != nil || uint64(st.Dev) != d.dev || st.Ino != d.ino {
		unix.Close(cfd)
		s.changed++
		return -1, false
	}
	if s.mnt != 0 && mountID(cfd) != s.mnt {
		unix.Close(cfd)
		s.otherMount++ // a bind mount (of this filesystem or another)
		return -1, false
	}
	return cfd, true
}

// keepFile keeps rel/name among the top largest files.
func (s *dirScan) keepFile(rel, name string, size uint64) {
	if s.top <= 0 || len(s.files) == s.top && size <= s.files[len(s.files)-1].size {
		return
	}
	i, _ := slices.BinarySearchFunc(s.files, size, func(f fileSize, size uint64) int { return cmp.Compare(size, f.size) })
	s.files = slices.Insert(s.files, i, fileSize{rel: path.Join(rel, name), size: size})
	if len(s.files) > s.top {
		s.files = s.files[:s.top]
	}
}

// stop reports whether the scan must end, recording why.
func (s *dirScan) stop() bool {
	switch {
	case s.stopped != "":
	case s.entries >= s.maxEntries:
		s.stopped = fmt.Sprintf("entry limit (%d) reached", s.maxEntries)
	case errors.Is(s.ctx.Err(), context.DeadlineExceeded):
		s.stopped = "time limit reached"
	case s.ctx.Err() != nil:
		s.stopped = "cancelled: " + context.Cause(s.ctx).Error()
	}
	return s.stopped != ""
}

// format lists the top largest directories and files, largest first, with
// mp as the root of the paths shown, and says whether the scan was complete.
func (s *dirScan) format(mp string, top int) string {
	rels := slices.SortedFunc(maps.Keys(s.sizes), func(a, b string) int {
		return cmp.Or(cmp.Compare(s.sizes[b], s.sizes[a]), cmp.Compare(a, b))
	})
	var b strings.Builder
	fmt.Fprintf(&b, "Largest directories under %s (allocated size, up to %d levels deep, this mount only):\n", textfmt.Line(mp), s.maxDepth)
	for _, rel := range rels[:min(top, len(rels))] {
		fmt.Fprintf(&b, "%10s  %s\n", textfmt.HumanBytes(s.sizes[rel]), textfmt.Line(path.Join(mp, rel)))
	}
	if len(rels) == 0 {
		b.WriteString("  (no subdirectories)\n")
	}
	if len(s.files) > 0 {
		b.WriteString("Largest files:\n")
		for _, f := range s.files[:min(top, len(s.files))] {
			fmt.Fprintf(&b, "%10s  %s\n", textfmt.HumanBytes(f.size), textfmt.Line(path.Join(mp, f.rel)))
		}
	}
	for _, n := range []struct {
		n    int
		what string
	}{
		{s.unreadable, "directories could not be read and are not counted"},
		{s.otherMount, "directories are other mounts (bind mounts included) and are not counted"},
		{s.changed, "entries changed during the scan (a directory swapped for a symlink is never followed)"},
		{s.tooDeep, fmt.Sprintf("directories are deeper than %d levels and are not counted", maxWalkDepth)},
	} {
		if n.n > 0 {
			fmt.Fprintf(&b, "%d %s.\n", n.n, n.what)
		}
	}
	if s.stopped != "" {
		fmt.Fprintf(&b, "PARTIAL scan: %s after %d entries in %s; sizes are lower bounds.\n", s.stopped, s.entries, s.elapsed.Round(time.Millisecond))
	} else {
		fmt.Fprintf(&b, "Complete scan: %d entries in %s.\n", s.entries, s.elapsed.Round(time.Millisecond))
	}
	return b.String()
}

// openDirNoFollow opens the directory p below base one component at a
// time, refusing symlinks on the way; base itself is opened as it is.
func openDirNoFollow(base, p string) (int, error) {
	fd, err := unix.Open(base, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return -1, err
	}
	for c := range strings.SplitSeq(strings.Trim(p, "/"), "/") {
		if c == "" || c == "." {
			continue
		}
		nfd, err := unix.Openat(fd, c, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC|unix.O_NONBLOCK, 0)
		unix.Close(fd)
		if err != nil {
			if errors.Is(err, unix.ELOOP) || errors.Is(err, unix.ENOTDIR) { // O_DIRECTORY|O_NOFOLLOW on a symlink: ENOTDIR
				return -1, fmt.Errorf("component %q is a symlink or not a directory: refusing to follow it", textfmt.Line(c))
			}
			return -1, err
		}
		fd = nfd
	}
	return fd, nil
}

// mountID is the mount ID of an open descriptor: statx(STATX_MNT_ID)
// (Linux 5.8), else /proc/self/fdinfo (3.15); 0 when unknown.
func mountID(fd int) uint64 {
	var stx unix.Statx_t
	if unix.Statx(fd, "", unix.AT_EMPTY_PATH, unix.STATX_MNT_ID, &stx) == nil && stx.Mask&unix.STATX_MNT_ID != 0 {
		return stx.Mnt_id
	}
	b, err := os.ReadFile("/proc/self/fdinfo/" + strconv.Itoa(fd))
	if err != nil {
		return 0
	}
	return parseFdinfoMntID(string(b))
}

// parseFdinfoMntID reads the "mnt_id:" line of /proc/<pid>/fdinfo/<fd>; 0
// when there is none.
func parseFdinfoMntID(b string) uint64 {
	for line := range strings.SplitSeq(b, "\n") {
		if v, ok := strings.CutPrefix(line, "mnt_id:"); ok {
			id, _ := strconv.ParseUint(strings.TrimSpace(v), 10, 64)
			return id
		}
	}
	return 0
}
