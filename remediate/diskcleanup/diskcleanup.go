// Package diskcleanup is the remediation action disk_cleanup: it deletes
// files matching globs and older than a given age inside allowlisted
// directories, never following a symlink or a mount out of them.
package diskcleanup

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
	"unicode"
	"unicode/utf8"

	"github.com/l2agent/l2agent/configs"
	"github.com/l2agent/l2agent/internal/textfmt"
	"github.com/l2agent/l2agent/remediate"
)

// diskCleanup deletes old files matching globs inside allowlisted
// directories. The walk is openat-style: every directory is opened relative
// to its parent's descriptor with O_NOFOLLOW, so it never follows a symlink
// and never leaves the directory, however the tree changes under it; a
// directory on another filesystem or another mount (a bind mount of the same
// filesystem included, by mount ID) is not entered; files are removed with
// unlinkat on the descriptor of their directory, after checking that the
// name still refers to the planned inode. Files open for writing (as far as
// /proc shows), hard-linked files (deleting one name frees nothing) and
// anything but regular files are left alone.
type diskCleanup struct {
	allow      []string
	params     Params
	ev         remediate.Env
	maxDepth   int // directory levels below a root
	maxEntries int // directory entries looked at per walk
	maxFDs     int // /proc/*/fd entries looked at for writers
	listFiles  int // files named in the plan text
	now        func() time.Time
}

func newDiskCleanup(s *Settings, params *Params, ev remediate.Env) *diskCleanup {
	return &diskCleanup{allow: s.AllowPaths, params: *params, ev: ev, maxDepth: 32, maxEntries: 200000, maxFDs: 200000, listFiles: 50, now: time.Now}
}

func (d *diskCleanup) Name() string { return "disk_cleanup" }

// hook calls the test hook, if any, before a filesystem step on path.
func (d *diskCleanup) hook(event, path string) {
	if d.ev.Hook != nil {
		d.ev.Hook(event, path)
	}
}

// diskFile is one file planned for deletion.
type diskFile struct {
	Root     string // the directory walked
	Rel      string // path below Root
	Dev, Ino uint64
	MTime    time.Time
	Size     int64
	Bytes    int64 // allocated: st_blocks * 512, what deleting it frees
}

func (f diskFile) path() string { return f.Root + "/" + f.Rel }

type diskPlan struct {
	Cutoff time.Time
	Files  []diskFile
}

// walkStats counts what a walk skipped, for the plan text.
type walkStats struct {
	tooNew, symlinks, otherMount, openForWrite, hardLinked, other, changed, errors int
	truncated                                                                      bool
	errs                                                                           []string
}

func (s *walkStats) String() string {
	var parts []string
	add := func(n int, what string) {
		if n > 0 {
			parts = append(parts, fmt.Sprintf("%d %s", n, what))
		}
	}
	add(s.tooNew, "matching but too new")
	add(s.openForWrite, "open for writing")
	add(s.hardLinked, "hard-linked")
	add(s.symlinks, "symlinks (never followed)")
	add(s.otherMount, "directories on another mount (not entered)")
	add(s.other, "not regular files")
	add(s.changed, "changed during the walk")
	add(s.errors, "unreadable")
	out := strings.Join(parts, ", ")
	if s.truncated {
		out += " (walk stopped at its bounds)"
	}
	return out
}

func (s *walkStats) errorf(format string, args ...any) {
	s.errors++
	if len(s.errs) < 10 {
		s.errs = append(s.errs, fmt.Sprintf(format, args...))
	}
}

// roots are the directories to walk: the params' paths inside the
// allowlist, nested ones dropped.
func (d *diskCleanup) roots() ([]string, error) {
	var roots []string
	paths := d.params.Paths
	if len(paths) == 0 {
		paths = d.allow
	}
	for _, p := range paths {
		if !path.IsAbs(p) || path.Clean(p) != p || p == "/" {
			return nil, fmt.Errorf("path %q: not a clean absolute directory", p)
		}
		if !configs.UnderAny(p, d.allow) {
			return nil, fmt.Errorf("path %q is outside allow_paths (%s)", p, strings.Join(d.allow, ", "))
		}
		roots = append(roots, p)
	}
	if len(roots) == 0 {
		return nil, errors.New("no paths to clean (set params.paths or allow_paths)")
	}
	slices.Sort(roots)
	roots = slices.Compact(roots)
	return slices.DeleteFunc(roots, func(r string) bool {
		for _, o := range roots {
			if o != r && configs.UnderAny(r, []string{o}) {
				return true
			}
		}
		return false
	}), nil
}

// Plan lists the files that would go.
func (d *diskCleanup) Plan(ctx context.Context, a remediate.Alert) (remediate.Plan, error) {
	if len(d.params.Globs) == 0 || d.params.OlderThan <= 0 {
		return remediate.Plan{}, errors.New("disk_cleanup needs globs and older_than")
	}
	roots, err := d.roots()
	if err != nil {
		return remediate.Plan{}, err
	}
	dp := diskPlan{Cutoff: d.now().Add(-d.params.OlderThan.D())}
	stats := &walkStats{}
	err = d.walkRoots(ctx, roots, dp.Cutoff, stats, func(dirfd int, f diskFile, name string) {
		dp.Files = append(dp.Files, f)
	})
	if err != nil {
		return remediate.Plan{}, err
	}
	var b strings.Builder
	var total int64
	for _, f := range dp.Files {
		total += f.Bytes
	}
	fmt.Fprintf(&b, "delete %d file(s) (%s on disk) older than %s matching %s in %s",
		len(dp.Files), textfmt.HumanBytes(total), days(d.params.OlderThan.D()), strings.Join(d.params.Globs, " "), strings.Join(roots, " "))
	if len(dp.Files) > 0 {
		b.WriteString(":")
	}
	b.WriteString("\n")
	for i, f := range dp.Files {
		if i == d.listFiles {
			fmt.Fprintf(&b, "  … and %d more\n", len(dp.Files)-i)
			break
		}
		fmt.Fprintf(&b, "  %s  %s  modified %s\n", showPath(f.path()), textfmt.HumanBytes(f.Bytes), f.MTime.UTC().Format("2006-01-02 15:04"))
	}
	if s := stats.String(); s != "" {
		fmt.Fprintf(&b, "left alone: %s\n", s)
	}
	for _, e := range stats.errs {
		fmt.Fprintf(&b, "  %s\n", e)
	}
	return remediate.Plan{Action: d.Name(), Text: strings.TrimRight(b.String(), "\n"), Data: dp}, nil
}

// Apply deletes the planned files that are still what the plan saw.
func (d *diskCleanup) Apply(ctx context.Context, p remediate.Plan) (remediate.Outcome, error) {
	dp, ok := p.Data.(diskPlan)
	if !ok {
		return remediate.Outcome{}, errors.New("disk_cleanup: not a disk_cleanup plan")
	}
	if len(dp.Files) == 0 {
		return remediate.Outcome{Success: true, Result: "nothing to delete"}, nil
	}
	planned := map[string]diskFile{}
	var roots []string
	for _, f := range dp.Files {
		planned[f.Root+"\x00"+f.Rel] = f
		if !slices.Contains(roots, f.Root) {
			roots = append(roots, f.Root)
		}
	}
	var (
		deleted int
		freed   int64
		out     strings.Builder
		failed  []string
	)
	stats := &walkStats{}
	err := d.walkRoots(ctx, roots, dp.Cutoff, stats, func(dirfd int, f diskFile, name string) {
		pf, ok := planned[f.Root+"\x00"+f.Rel]
		if !ok || pf.Dev != f.Dev || pf.Ino != f.Ino || !pf.MTime.Equal(f.MTime) {
			return
		}
		d.hook("unlink", f.path())
		// Last look: the name must still be the planned inode.
		if st, err := lstatAt(dirfd, name); err != nil || st.Ino != f.Ino || uint64(st.Dev) != f.Dev || st.Mode&syscall.S_IFMT != syscall.S_IFREG {
			return
		}
		delete(planned, f.Root+"\x00"+f.Rel)
		if err := syscall.Unlinkat(dirfd, name); err != nil {
			failed = append(failed, fmt.Sprintf("%s: %v", showPath(f.path()), err))
			return
		}
		deleted++
		freed += f.Bytes
		fmt.Fprintf(&out, "deleted %s (%s)\n", showPath(f.path()), textfmt.HumanBytes(f.Bytes))
	})
	for _, f := range failed {
		fmt.Fprintf(&out, "failed: %s\n", f)
	}
	res := fmt.Sprintf("deleted %d of %d planned files, freed %s", deleted, len(dp.Files), textfmt.HumanBytes(freed))
	if n := len(planned); n > 0 {
		res += fmt.Sprintf("; %d changed or gone since the plan, left alone", n)
	}
	o := remediate.Outcome{Success: err == nil && len(failed) == 0, Result: res, Output: remediate.Excerpt(out.String(), remediate.MaxOutput), FreedBytes: freed}
	if err != nil {
		return o, err
	}
	if len(failed) > 0 {
		return o, fmt.Errorf("%d files could not be deleted", len(failed))
	}
	return o, nil
}

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
	entries := 0
	for _, o := range ops {
		w := &walker{d: d, ctx: ctx, root: o.root, dev: o.dev, mntID: o.mntID, cutoff: cutoff, writers: writers, stats: stats, visit: visit, entries: &entries}
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
	entries *int
}

// dir walks the directory open as fd (which it closes), rel below the root.
func (w *walker) dir(fd int, rel string, depth int) {
	f := os.NewFile(uintptr(fd), w.root+"/"+rel)
	defer f.Close()
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
// sorted, and stops reading past maxEntries of the whole walk.
func (w *walker) readNames(f *os.File, rel string) []string {
	var names []string
	for {
		chunk, err := f.Readdirnames(1024)
		names = append(names, chunk...)
		*w.entries += len(chunk)
		if err == io.EOF {
			break
		}
		if err != nil {
			w.stats.errorf("read %s: %v", showPath(w.root+"/"+rel), err)
			break
		}
		if *w.entries > w.d.maxEntries {
			w.stats.truncated = true
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
		w.stats.truncated = true
		return
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
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "flags:"); ok {
			n, err := strconv.ParseInt(strings.TrimSpace(v), 8, 64)
			return n, err == nil
		}
	}
	return 0, false
}

// showPath prints a path as is when it is printable UTF-8, else quoted, so
// that a name with newlines or control bytes cannot forge lines in a plan or
// a ticket.
func showPath(p string) string {
	if utf8.ValidString(p) && !strings.ContainsFunc(p, func(r rune) bool { return !unicode.IsPrint(r) }) {
		return p
	}
	return strconv.Quote(p)
}

// days prints whole days as "7d", other durations as Go does.
func days(d time.Duration) string {
	if d > 0 && d%(24*time.Hour) == 0 {
		return fmt.Sprintf("%dd", d/(24*time.Hour))
	}
	return d.String()
}
