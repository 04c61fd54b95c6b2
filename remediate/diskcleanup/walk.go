package diskcleanup

// The walk: openat-style, one directory descriptor at a time, never
// following a symlink and never leaving the root's filesystem and mount.

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// walkRoots walks every root and calls visit for each regular file that
// matches the globs, is older than cutoff, has one link and is not open for
// writing.
func (d *diskCleanup) walkRoots(ctx context.Context, roots []string, cutoff time.Time, stats *walkStats, visit func(dirfd int, f diskFile, name string)) error {
	type opened struct {
		root  string
		fd    int
		dev   uint64
		mntID string
	}
	var ops []opened
	defer func() {
		for _, o := range ops {
			syscall.Close(o.fd)
		}
	}()
	devs := map[uint64]bool{}
	for _, r := range roots {
		fd, err := openDirNoFollow(r)
		if err != nil {
			return fmt.Errorf("open %s: %w", r, err)
		}
		var st syscall.Stat_t
		if err := syscall.Fstat(fd, &st); err != nil {
			syscall.Close(fd)
			return fmt.Errorf("stat %s: %w", r, err)
		}
		ops = append(ops, opened{root: r, fd: fd, dev: uint64(st.Dev), mntID: mountID(fd)})
		devs[uint64(st.Dev)] = true
	}
	writers := openForWriting(ctx, d.ev.Procfs, devs, d.maxFDs)
	for _, o := range ops {
		if stats.stopped {
			stats.notWalked = append(stats.notWalked, o.root)
			continue
		}
		w := &walker{d: d, ctx: ctx, root: o.root, dev: o.dev, mntID: o.mntID, cutoff: cutoff, writers: writers, stats: stats, visit: visit}
		fd, err := syscall.Dup(o.fd)
		if err != nil {
			return err
		}
		w.dir(fd, "", 0)
		if err := ctx.Err(); err != nil {
			return err
		}
	}
	return nil
}

type walker struct {
	d       *diskCleanup
	ctx     context.Context
	root    string
	dev     uint64
	mntID   string
	cutoff  time.Time
	writers map[[2]uint64]bool
	stats   *walkStats
	visit   func(dirfd int, f diskFile, name string)
}

// dir walks the directory open as fd (which it closes), rel below the root.
func (w *walker) dir(fd int, rel string, depth int) {
	f := os.NewFile(uintptr(fd), w.root+"/"+rel)
	defer f.Close()
	w.stats.dirs++
	names := w.readNames(f, rel)
	dirfd := int(f.Fd())
	for _, name := range names {
		if w.ctx.Err() != nil {
			return
		}
		relName := name
		if rel != "" {
			relName = rel + "/" + name
		}
		w.entry(dirfd, name, relName, depth)
	}
}

// readNames reads the names in the directory f (rel below the root),
// sorted. The entry bound is the whole walk's: it reads at most the entries
// left under it, and once it is reached the walk stops everywhere (stats
// says where), so neither the names held nor the plan grow past it.
func (w *walker) readNames(f *os.File, rel string) []string {
	var names []string
	for {
		left := w.d.maxEntries - w.stats.entries
		if left <= 0 {
			if more, _ := f.Readdirnames(1); len(more) > 0 { // else the directory ended at the bound
				w.stats.stop(w.root + "/" + rel)
			}
			break
		}
		chunk, err := f.Readdirnames(min(1024, left))
		names = append(names, chunk...)
		w.stats.entries += len(chunk)
		if err == io.EOF {
			break
		}
		if err != nil {
			w.stats.errorf("read %s: %v", showPath(w.root+"/"+rel), err)
			break
		}
	}
	slices.Sort(names)
	return names
}

// entry looks at name in dirfd (relName below the root, depth levels down)
// without following it: it enters a directory, visits a regular file and
// counts anything else.
func (w *walker) entry(dirfd int, name, relName string, depth int) {
	w.d.hook("lstat", w.root+"/"+relName)
	st, err := lstatAt(dirfd, name)
	if err != nil {
		if errors.Is(err, syscall.ENOENT) {
			w.stats.changed++
		} else {
			w.stats.errorf("stat %s: %v", showPath(w.root+"/"+relName), err)
		}
		return
	}
	switch st.Mode & syscall.S_IFMT {
	case syscall.S_IFDIR:
		w.subdir(dirfd, name, relName, &st, depth)
	case syscall.S_IFREG:
		w.file(dirfd, name, relName, &st)
	case syscall.S_IFLNK:
		w.stats.symlinks++
	default:
		w.stats.other++
	}
}

// subdir walks the directory name in dirfd, which lstat saw as st, if it is
// on the root's filesystem and within maxDepth.
func (w *walker) subdir(dirfd int, name, relName string, st *syscall.Stat_t, depth int) {
	if uint64(st.Dev) != w.dev {
		w.stats.otherMount++
		return
	}
	if depth+1 > w.d.maxDepth {
		w.stats.tooDeep++
		return
	}
	if w.stats.stopped {
		return // past the entry bound: nothing more is entered
	}
	w.d.hook("opendir", w.root+"/"+relName)
	cfd, ok := w.openSubdir(dirfd, name, relName, st)
	if !ok {
		return
	}
	w.dir(cfd, relName, depth+1)
}

// openSubdir opens the directory name in dirfd with O_NOFOLLOW, so that a
// symlink swapped in after the lstat is never followed, and keeps it open
// only when it is still the inode lstat saw (st), on the root's filesystem
// and mount.
func (w *walker) openSubdir(dirfd int, name, relName string, st *syscall.Stat_t) (int, bool) {
	cfd, err := syscall.Openat(dirfd, name, syscall.O_RDONLY|syscall.O_DIRECTORY|syscall.O_NOFOLLOW|syscall.O_CLOEXEC, 0)
	if err != nil {
		if errors.Is(err, syscall.ELOOP) || errors.Is(err, syscall.ENOTDIR) || errors.Is(err, syscall.ENOENT) {
			w.stats.changed++ // swapped for a symlink or a file after the lstat
		} else {
			w.stats.errorf("open %s: %v", showPath(w.root+"/"+relName), err)
		}
		return -1, false
	}
	var cst syscall.Stat_t
	if err := syscall.Fstat(cfd, &cst); err != nil || cst.Ino != st.Ino || cst.Dev != st.Dev {
		syscall.Close(cfd)
		w.stats.changed++
		return -1, false
	}
	if uint64(cst.Dev) != w.dev || (w.mntID != "" && mountID(cfd) != w.mntID) {
		syscall.Close(cfd)
		w.stats.otherMount++
		return -1, false
	}
	return cfd, true
}

// file visits the regular file name in dirfd, which lstat saw as st, if it
// matches the globs, is older than the cutoff, has one link and is not open
// for writing.
func (w *walker) file(dirfd int, name, relName string, st *syscall.Stat_t) {
	if !w.matches(name) {
		return
	}
	mtime := time.Unix(st.Mtim.Sec, st.Mtim.Nsec)
	switch {
	case !mtime.Before(w.cutoff):
		w.stats.tooNew++
	case st.Nlink > 1:
		w.stats.hardLinked++
	case w.writers[[2]uint64{uint64(st.Dev), st.Ino}]:
		w.stats.openForWrite++
	default:
		w.visit(dirfd, diskFile{Root: w.root, Rel: relName, Dev: uint64(st.Dev), Ino: st.Ino, MTime: mtime, Size: st.Size, Bytes: st.Blocks * 512}, name)
	}
}

func (w *walker) matches(name string) bool {
	for _, g := range w.d.params.Globs {
		if ok, _ := path.Match(g, name); ok {
			return true
		}
	}
	return false
}

// oPath is O_PATH (missing from package syscall); the same on every Linux
// architecture Go supports.
const oPath = 0x200000

// lstatAt stats name in dirfd without following a symlink.
func lstatAt(dirfd int, name string) (syscall.Stat_t, error) {
	var st syscall.Stat_t
	fd, err := syscall.Openat(dirfd, name, oPath|syscall.O_NOFOLLOW|syscall.O_CLOEXEC, 0)
	if err != nil {
		return st, err
	}
	defer syscall.Close(fd)
	err = syscall.Fstat(fd, &st)
	return st, err
}

// openDirNoFollow opens an absolute directory one component at a time,
// refusing symlinks on the way.
func openDirNoFollow(p string) (int, error) {
	fd, err := syscall.Open("/", syscall.O_RDONLY|syscall.O_DIRECTORY|syscall.O_CLOEXEC, 0)
	if err != nil {
		return -1, err
	}
	for _, c := range strings.Split(strings.Trim(p, "/"), "/") {
		if c == "" {
			continue
		}
		nfd, err := syscall.Openat(fd, c, syscall.O_RDONLY|syscall.O_DIRECTORY|syscall.O_NOFOLLOW|syscall.O_CLOEXEC, 0)
		syscall.Close(fd)
		if err != nil {
			if errors.Is(err, syscall.ELOOP) {
				return -1, fmt.Errorf("component %q is a symlink: refusing to follow it", c)
			}
			return -1, err
		}
		fd = nfd
	}
	return fd, nil
}

// mountID is the mount ID of an open descriptor, from /proc/self/fdinfo;
// empty when unknown.
func mountID(fd int) string {
	b, err := os.ReadFile("/proc/self/fdinfo/" + strconv.Itoa(fd))
	if err != nil {
		return ""
	}
	for line := range strings.SplitSeq(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "mnt_id:"); ok {
			return strings.TrimSpace(v)
		}
	}
	return ""
}

// openForWriting scans procfs/*/fd (at most maxFDs entries) for regular
// files on devs open for writing, as (dev, inode) pairs. It is best effort:
// what it cannot read it does not know about.
func openForWriting(ctx context.Context, procfs string, devs map[uint64]bool, maxFDs int) map[[2]uint64]bool {
	out := map[[2]uint64]bool{}
	if procfs == "" {
		return out
	}
	pids, err := os.ReadDir(procfs)
	if err != nil {
		return out
	}
	n := 0
	for _, p := range pids {
		if p.Name()[0] < '0' || p.Name()[0] > '9' || ctx.Err() != nil {
			continue
		}
		base := procfs + "/" + p.Name()
		fds, err := os.ReadDir(base + "/fd")
		if err != nil {
			continue
		}
		for _, fdEnt := range fds {
			if n++; n > maxFDs {
				return out
			}
			var st syscall.Stat_t
			if syscall.Stat(base+"/fd/"+fdEnt.Name(), &st) != nil || !devs[uint64(st.Dev)] || st.Mode&syscall.S_IFMT != syscall.S_IFREG {
				continue
			}
			if flags, ok := fdFlags(base + "/fdinfo/" + fdEnt.Name()); ok && flags&syscall.O_ACCMODE != syscall.O_RDONLY {
				out[[2]uint64{uint64(st.Dev), st.Ino}] = true
			}
		}
	}
	return out
}

func fdFlags(fdinfo string) (int64, bool) {
	f, err := os.Open(fdinfo)
	if err != nil {
		return 0, false
	}
	defer f.Close()
	return parseFdinfoFlags(f)
}

// parseFdinfoFlags reads the octal "flags:" line of /proc/<pid>/fdinfo/<fd>.
func parseFdinfoFlags(r io.Reader) (int64, bool) {
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "flags:"); ok {
			n, err := strconv.ParseInt(strings.TrimSpace(v), 8, 64)
			return n, err == nil
		}
	}
	return 0, false
}
