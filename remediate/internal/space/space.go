// Package space measures what directories hold on disk, for the actions
// whose effect is space freed (journal_vacuum, package_cache_clean): the
// bytes their files take before and after the run, and whether a directory
// sits on a read-only mount, where a cleaning program may exit 0 and free
// nothing.
package space

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/l2agent/l2agent/internal/textfmt"
)

// stRDONLY is ST_RDONLY of statfs(2)'s f_flags: the mount is read-only.
const stRDONLY = 0x1

// MaxEntries bounds the directory entries one Measure looks at.
const MaxEntries = 200000

// errBound stops a walk at MaxEntries.
var errBound = errors.New("walk bound reached")

// Usage is what one directory held at one time.
type Usage struct {
	Dir      string
	Exists   bool
	ReadOnly bool  // the directory is on a read-only mount
	Bytes    int64 // allocated on disk (st_blocks × 512) by the files counted
	Files    int
	Partial  bool // the walk stopped at MaxEntries, an unreadable entry or ctx
}

// Measure sums the regular files below dir whose base name match accepts
// (nil: every file). It never follows a symlink.
func Measure(ctx context.Context, dir string, match func(name string) bool) Usage {
	u := Usage{Dir: dir}
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil {
		return u // missing (or unreachable): holds nothing we could free
	}
	u.Exists, u.ReadOnly = true, st.Flags&stRDONLY != 0
	entries := 0
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			u.Partial = true
			return nil // an unreadable directory: skipped
		}
		if entries++; entries > MaxEntries {
			return errBound
		}
		if entries%1024 == 0 && ctx.Err() != nil {
			return ctx.Err()
		}
		if !d.Type().IsRegular() || (match != nil && !match(d.Name())) {
			return nil
		}
		fi, err := d.Info()
		if err != nil {
			u.Partial = true
			return nil
		}
		if s, ok := fi.Sys().(*syscall.Stat_t); ok {
			u.Bytes += s.Blocks * 512
		} else {
			u.Bytes += fi.Size()
		}
		u.Files++
		return nil
	})
	if err != nil {
		u.Partial = true
	}
	return u
}

// ReadOnly says whether dir is on a read-only mount.
func ReadOnly(dir string) bool {
	var st syscall.Statfs_t
	return syscall.Statfs(dir, &st) == nil && st.Flags&stRDONLY != 0
}

// Under returns the absolute paths dirs under root ("" or "/": the host's).
func Under(root string, dirs ...string) []string {
	out := make([]string, len(dirs))
	for i, d := range dirs {
		out[i] = d
		if root != "" && root != "/" {
			out[i] = root + d
		}
	}
	return out
}

// MeasureAll measures every directory of dirs.
func MeasureAll(ctx context.Context, dirs []string, match func(name string) bool) []Usage {
	out := make([]Usage, len(dirs))
	for i, d := range dirs {
		out[i] = Measure(ctx, d, match)
	}
	return out
}

// Freed compares the usage of the same directories before and after a run:
// the bytes freed and the effect when some were, else why none were. what
// names what the files are, e.g. "cached packages".
func Freed(what string, before, after []Usage) (freed int64, effect, noEffect string) {
	var b, a int64
	var existing, readOnly []string
	for _, u := range before {
		b += u.Bytes
		if u.Exists {
			existing = append(existing, u.Dir)
		}
		if u.ReadOnly && u.Bytes > 0 {
			readOnly = append(readOnly, u.Dir)
		}
	}
	for _, u := range after {
		a += u.Bytes
	}
	hb, ha := textfmt.HumanBytes(b), textfmt.HumanBytes(a)
	switch freed = b - a; {
	case freed > 0:
		return freed, fmt.Sprintf("freed %s of %s in %s (%s → %s)", textfmt.HumanBytes(freed), what, strings.Join(existing, ", "), hb, ha), ""
	case len(existing) == 0:
		return 0, "", fmt.Sprintf("nothing to free (%s: no such directory)", dirList(before))
	case b == 0:
		return 0, "", fmt.Sprintf("nothing to free (no %s in %s)", what, strings.Join(existing, ", "))
	case len(readOnly) > 0:
		return 0, "", fmt.Sprintf("read-only file system (%s: %s of %s left)", strings.Join(readOnly, ", "), ha, what)
	}
	return 0, "", fmt.Sprintf("nothing freed (%s: %s of %s left)", strings.Join(existing, ", "), ha, what)
}

func dirList(us []Usage) string {
	var ds []string
	for _, u := range us {
		ds = append(ds, u.Dir)
	}
	return strings.Join(ds, ", ")
}
