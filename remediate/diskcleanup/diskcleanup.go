// Package diskcleanup is the remediation action disk_cleanup: it deletes
// files matching globs and older than a given age inside allowlisted
// directories, never following a symlink or a mount out of them.
package diskcleanup

import (
	"context"
	"errors"
	"fmt"
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
	What   string // what it looked for, e.g. "older than 7d matching *.gz in /var/log"
}

// walkStats counts what a walk looked at and skipped, for the plan text.
type walkStats struct {
	tooNew, symlinks, otherMount, openForWrite, hardLinked, other, changed, errors int
	tooDeep                                                                        int // directories below maxDepth, not entered
	errs                                                                           []string

	entries, dirs int      // directory entries read and directories entered, the whole walk
	stopped       bool     // the entry bound was reached: the walk ended there
	stoppedIn     string   // the directory being read when it was reached
	notWalked     []string // roots not started because of it
}

// stop records that the walk reached its entry bound while reading dir.
func (s *walkStats) stop(dir string) {
	if !s.stopped {
		s.stopped, s.stoppedIn = true, dir
	}
}

// bound says how far a walk stopped by its entry bound got; "" if it was
// not.
func (s *walkStats) bound(maxEntries int) string {
	if !s.stopped {
		return ""
	}
	t := fmt.Sprintf("walk stopped at its entry limit (%d entries) while reading %s, after %d directories: files past it were not looked at",
		maxEntries, showPath(s.stoppedIn), s.dirs)
	if len(s.notWalked) > 0 {
		t += fmt.Sprintf(" (%s not walked at all)", showPath(strings.Join(s.notWalked, " ")))
	}
	return t
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
	add(s.tooDeep, "directories deeper than the depth limit (not entered)")
	return strings.Join(parts, ", ")
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
	dp.What = fmt.Sprintf("older than %s matching %s in %s", days(d.params.OlderThan.D()), strings.Join(d.params.Globs, " "), strings.Join(roots, " "))
	fmt.Fprintf(&b, "delete %d file(s) (%s on disk) %s", len(dp.Files), textfmt.HumanBytes(total), dp.What)
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
	if s := stats.bound(d.maxEntries); s != "" {
		fmt.Fprintf(&b, "PARTIAL: %s; a later run continues\n", s)
	} else {
		fmt.Fprintf(&b, "complete walk: %d entries in %d directories\n", stats.entries, stats.dirs)
	}
	for _, e := range stats.errs {
		fmt.Fprintf(&b, "  %s\n", e)
	}
	return remediate.Plan{Action: d.Name(), Text: strings.TrimRight(b.String(), "\n"), Expect: "space freed in " + strings.Join(roots, " "), Data: dp}, nil
}

// Apply deletes the planned files that are still what the plan saw.
func (d *diskCleanup) Apply(ctx context.Context, p remediate.Plan) (remediate.Outcome, error) {
	dp, ok := p.Data.(diskPlan)
	if !ok {
		return remediate.Outcome{}, errors.New("disk_cleanup: not a disk_cleanup plan")
	}
	if len(dp.Files) == 0 {
		return remediate.Outcome{Success: true, Result: "nothing to delete", NoEffect: "nothing to free (no file " + dp.What + ")"}, nil
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
		deleted  int
		freed    int64
		out      strings.Builder
		failed   []string
		firstErr error
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
			if firstErr == nil {
				firstErr = err
			}
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
	if n := len(planned); n > 0 && stats.stopped {
		res += fmt.Sprintf("; %d not reached or changed since the plan, left alone (%s)", n, stats.bound(d.maxEntries))
	} else if n > 0 {
		res += fmt.Sprintf("; %d changed or gone since the plan, left alone", n)
	}
	if stats.stopped {
		res += "; the walk ended at its entry limit again: files past it are for a later run"
	}
	o := remediate.Outcome{Success: err == nil && len(failed) == 0, Result: res, Output: remediate.Excerpt(out.String(), remediate.MaxOutput), FreedBytes: freed}
	o.Effect, o.NoEffect = effect(deleted, len(dp.Files), freed, roots)
	if err != nil {
		return o, err
	}
	if len(failed) > 0 {
		return o, fmt.Errorf("%d files could not be deleted: %w", len(failed), firstErr)
	}
	return o, nil
}

// effect is what deleting files measured: the files deleted and the
// allocated blocks they freed, or why there was none.
func effect(deleted, planned int, freed int64, roots []string) (effect, noEffect string) {
	where := strings.Join(roots, " ")
	switch {
	case deleted > 0 && freed > 0:
		return fmt.Sprintf("deleted %d files, freed %s in %s", deleted, textfmt.HumanBytes(freed), where), ""
	case deleted > 0:
		return "", fmt.Sprintf("nothing freed (the %d deleted files held no disk blocks)", deleted)
	}
	return "", fmt.Sprintf("nothing freed (none of the %d planned files in %s was deleted)", planned, where)
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
