// Package disk is the disk check (kind "disk"): space, inodes, read-only
// state and time to full of every mounted filesystem it keeps, and the
// largest directories of one that fills up. It registers itself from init();
// checks/all links it in.
package disk

import (
	"bufio"
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/l2agent/l2agent/checks"
	"github.com/l2agent/l2agent/configs"
	"github.com/l2agent/l2agent/internal/textfmt"
)

func init() {
	checks.Register("disk", newDiskCheck, func() configs.Options { return &Options{} },
		checks.MetricInfo{Name: "disk_used_ratio", Help: "Share of the filesystem in use, as df's Use%: used / (used + available to unprivileged users)."},
		checks.MetricInfo{Name: "disk_free_bytes", Help: "Bytes available to unprivileged users, as df's Avail."},
		checks.MetricInfo{Name: "disk_size_bytes", Help: "Size of the filesystem in bytes."},
		checks.MetricInfo{Name: "disk_inodes_used_ratio", Help: "Share of inodes in use; absent when the filesystem reports no inode count."},
		checks.MetricInfo{Name: "disk_read_only", Help: "1 if the filesystem is mounted read-only, else 0."},
		checks.MetricInfo{Name: "disk_time_to_full_seconds", Help: "Seconds until no space is available at the growth rate fitted over the fill window; absent unless filling."},
		checks.MetricInfo{Name: "disk_device_error", Help: "1 when statfs of the mountpoint failed; absent otherwise."},
		checks.MetricInfo{Name: "disk_mount_missing", Help: "1 for a mount this check saw before and that is no longer mounted (until missing_for has passed), 0 for each mount present."},
	)
}

const (
	// maxFillSamples bounds the samples kept per mountpoint for time to full:
	// samples closer together than fill_window/maxFillSamples are not kept.
	maxFillSamples = 1000
)

// diskCheck reports space, inodes and fill rate of the mounted filesystems
// listed in <procfs>/1/mountinfo.
type diskCheck struct {
	name   string
	env    checks.Env
	opts   Options
	filter mountFilter
	// forgetRE are the compiled forget_mountpoints.
	forgetRE []*regexp.Regexp
	now      func() time.Time
	statfs   func(path string, st *syscall.Statfs_t) error

	runMu   sync.Mutex // serializes the mounts seen
	tracker mountTracker

	mu      sync.Mutex
	samples map[string][]fillSample // by mountpoint, oldest first
	pending map[string]bool         // paths whose statfs has not returned yet
}

// fillSample is the used space of a filesystem at one time.
type fillSample struct {
	t    time.Time
	used float64 // bytes
}

func newDiskCheck(c configs.Check, env checks.Env) (checks.Check, error) {
	o := *c.Options.(*Options)
	o.ApplyDefaults("")
	f := mountFilter{includeFS: o.IncludeFSTypes, excludeFS: o.ExcludeFSTypes}
	var forget []*regexp.Regexp
	for _, l := range []struct {
		src []string
		dst *[]*regexp.Regexp
	}{{o.IncludeMountpoints, &f.include}, {o.ExcludeMountpoints, &f.exclude}, {o.ForgetMountpoints, &forget}} {
		for _, s := range l.src {
			re, err := regexp.Compile(s)
			if err != nil {
				return nil, fmt.Errorf("mountpoint pattern %q: %w", s, err)
			}
			*l.dst = append(*l.dst, re)
		}
	}
	return &diskCheck{
		name: c.Name, env: env, opts: o, filter: f, forgetRE: forget,
		now: time.Now, statfs: syscall.Statfs,
		tracker: mountTracker{path: statePath(o.StateDir, c.Name), seen: map[string]seenMount{}},
		samples: map[string][]fillSample{}, pending: map[string]bool{},
	}, nil
}

// Name implements checks.Check.
func (c *diskCheck) Name() string { return c.name }

// Run implements checks.Check. A mount whose statfs fails is reported as
// disk_device_error and does not fail the run.
func (c *diskCheck) Run(ctx context.Context) ([]checks.Observation, error) {
	all, err := c.allMounts()
	if err != nil {
		return nil, err
	}
	mounts := c.filter.apply(all)
	c.runMu.Lock()
	obs := c.missingMounts(all, mounts)
	c.runMu.Unlock()
	add := func(m mount, metric string, v float64, details string) {
		obs = append(obs, checks.Observation{
			Metric:  metric,
			Labels:  map[string]string{"mountpoint": m.Mountpoint, "device": m.Device, "fstype": m.FSType},
			Value:   v,
			Details: details,
		})
	}
	seen := make(map[string]bool, len(mounts))
	for _, m := range mounts {
		seen[m.Mountpoint] = true
		add(m, "disk_read_only", checks.BoolValue(m.ReadOnly), "")
		st, err := c.statfsCtx(ctx, filepath.Join(c.env.Paths.Rootfs, m.Mountpoint))
		if err != nil && ctx.Err() != nil {
			return nil, err // the run is over; a partial result would drop mounts
		}
		if err != nil {
			c.env.Log().Debug("statfs failed", "mountpoint", m.Mountpoint, "err", err)
			add(m, "disk_device_error", 1, textfmt.Truncate(textfmt.Line(err.Error()), checks.MaxDetails))
			continue
		}
		unit := uint64(st.Frsize) // the unit of f_blocks; older kernels leave it 0
		if unit == 0 {
			unit = uint64(st.Bsize)
		}
		size, avail := st.Blocks*unit, st.Bavail*unit
		used := size - min(st.Bfree*unit, size)
		add(m, "disk_size_bytes", float64(size), "")
		add(m, "disk_free_bytes", float64(avail), "")
		if used+avail > 0 {
			add(m, "disk_used_ratio", float64(used)/float64(used+avail), "")
		}
		if st.Files > 0 {
			add(m, "disk_inodes_used_ratio", float64(st.Files-min(st.Ffree, st.Files))/float64(st.Files), "")
		}
		if ttf, fit, ok := c.timeToFull(m.Mountpoint, used, avail); ok {
			add(m, "disk_time_to_full_seconds", ttf, fit.String())
		}
	}
	c.mu.Lock()
	maps.DeleteFunc(c.samples, func(mp string, _ []fillSample) bool { return !seen[mp] })
	c.mu.Unlock()
	return obs, nil
}

// mounts returns the selected mounts.
func (c *diskCheck) mounts() ([]mount, error) {
	all, err := c.allMounts()
	return c.filter.apply(all), err
}

// allMounts returns every mount, one per mountpoint, from
// <procfs>/1/mountinfo (the host's mount namespace when procfs is the
// host's) or else <procfs>/self/mountinfo.
func (c *diskCheck) allMounts() ([]mount, error) {
	var errs []error
	for _, p := range []string{"1/mountinfo", "self/mountinfo"} {
		p = filepath.Join(c.env.Paths.Procfs, p)
		f, err := os.Open(p)
		if err != nil {
			errs = append(errs, fmt.Errorf("read %s: %w", p, err))
			continue
		}
		defer f.Close()
		ms, err := parseMountinfo(f)
		if err != nil {
			return nil, fmt.Errorf("read %s: %w", p, err)
		}
		return dedupeMounts(ms), nil
	}
	return nil, errors.Join(errs...)
}

// statfsCtx runs statfs(2) on path, giving up when ctx ends. A call that
// hangs (a dead NFS server) is left running; until it returns, later calls
// for the same path fail at once instead of piling up.
func (c *diskCheck) statfsCtx(ctx context.Context, path string) (syscall.Statfs_t, error) {
	c.mu.Lock()
	if c.pending[path] {
		c.mu.Unlock()
		return syscall.Statfs_t{}, fmt.Errorf("statfs %s: an earlier call has not returned (hung filesystem?)", path)
	}
	c.pending[path] = true
	c.mu.Unlock()
	type result struct {
		st  syscall.Statfs_t
		err error
	}
	done := make(chan result, 1)
	go func() {
		var r result
		r.err = c.statfs(path, &r.st)
		c.mu.Lock()
		delete(c.pending, path)
		c.mu.Unlock()
		done <- r
	}()
	select {
	case r := <-done:
		if r.err != nil {
			return r.st, fmt.Errorf("statfs %s: %w", path, r.err)
		}
		return r.st, nil
	case <-ctx.Done():
		return syscall.Statfs_t{}, fmt.Errorf("statfs %s: %w", path, context.Cause(ctx))
	}
}

// timeToFull records the used bytes of mountpoint now and returns avail
// divided by the growth rate fitted over the fill window, with the fit, if
// the disk is growing and the fit passes the gate (see trusted).
func (c *diskCheck) timeToFull(mountpoint string, used, avail uint64) (float64, fillFit, bool) {
	now, window := c.now(), c.opts.FillWindow.D()
	c.mu.Lock()
	defer c.mu.Unlock()
	s := c.samples[mountpoint]
	i := 0
	for i < len(s) && s[i].t.Before(now.Add(-window)) {
		i++
	}
	s = s[i:]
	if len(s) == 0 || now.Sub(s[len(s)-1].t) >= window/maxFillSamples {
		s = append(s, fillSample{t: now, used: float64(used)})
	}
	c.samples[mountpoint] = s
	fit := fitFill(s)
	if !c.trusted(fit) || fit.slope <= 0 {
		return 0, fit, false
	}
	return float64(avail) / fit.slope, fit, true
}

// trusted tells whether a fit spans fill_min_span and fill_min_samples and
// its R² reaches fill_min_r2: a burst of writes (a build) followed by a flat
// line fits a straight line badly and is not taken for a steady fill.
func (c *diskCheck) trusted(f fillFit) bool {
	return f.n >= c.opts.FillMinSamples && f.span >= c.opts.FillMinSpan.D() && f.r2 >= c.opts.FillMinR2
}

// fillFit is a least-squares line through the samples of one mountpoint.
type fillFit struct {
	slope float64 // bytes per second
	r2    float64 // coefficient of determination; 0 when used did not vary
	n     int
	span  time.Duration
}

// String is the fit as the details of a time-to-full observation.
func (f fillFit) String() string {
	return fmt.Sprintf("Fill rate %s/h fitted over %s (%d samples), R² %.3f.",
		textfmt.HumanBytes(uint64(max(0, f.slope)*3600)), f.span.Round(time.Second), f.n, f.r2)
}

// fitFill fits used bytes over time by least squares.
func fitFill(s []fillSample) fillFit {
	f := fillFit{n: len(s)}
	if len(s) < 2 {
		return f
	}
	f.span = s[len(s)-1].t.Sub(s[0].t)
	var mt, mu float64
	for _, x := range s {
		mt += x.t.Sub(s[0].t).Seconds()
		mu += x.used
	}
	n := float64(len(s))
	mt, mu = mt/n, mu/n
	var sxy, sxx, syy float64
	for _, x := range s {
		dt, du := x.t.Sub(s[0].t).Seconds()-mt, x.used-mu
		sxy += dt * du
		sxx += dt * dt
		syy += du * du
	}
	if sxx == 0 {
		return f
	}
	f.slope = sxy / sxx
	if syy > 0 {
		f.r2 = min(1, sxy*sxy/(sxx*syy))
	}
	return f
}

// mount is one line of mountinfo.
type mount struct {
	ID         int    // the mount ID, unique in the namespace; 0 if unknown
	Root       string // the directory of the filesystem mounted; not "/" for bind mounts of a subdirectory
	Mountpoint string
	FSType     string
	Device     string
	ReadOnly   bool
}

// maxMountinfoLine bounds one line of mountinfo: two paths of PATH_MAX
// escaped four times over, and options.
const maxMountinfoLine = 64 << 10

// parseMountinfo parses /proc/<pid>/mountinfo (see proc_pid_mountinfo(5)):
//
//	36 35 98:0 /mnt1 /mnt2 rw,noatime master:1 - ext3 /dev/root rw,errors=continue
//
// Fields are separated by one space and lines end at '\n' only: the kernel
// escapes space, tab, newline and backslash in names (\040 \011 \012
// \134) and writes every other byte as it is, so a name holding a CR, an
// NBSP or a NEL is kept exact. Optional fields run up to the "-" field.
// A mount is read-only when its mount options or its superblock options say
// "ro": a filesystem remounted read-only after errors shows only in the latter.
func parseMountinfo(r io.Reader) ([]mount, error) {
	var ms []mount
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 4096), maxMountinfoLine)
	sc.Split(splitLF)
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		if line == "" {
			continue
		}
		m, err := parseMountinfoLine(line)
		if err != nil {
			return nil, fmt.Errorf("line %d: %w: %q", n, err, textfmt.Head(line, 200))
		}
		ms = append(ms, m)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("line %d: %w", len(ms)+1, err)
	}
	return ms, nil
}

// splitLF is bufio.ScanLines without its removal of a trailing '\r'.
func splitLF(data []byte, atEOF bool) (int, []byte, error) {
	if i := bytes.IndexByte(data, '\n'); i >= 0 {
		return i + 1, data[:i], nil
	}
	if atEOF && len(data) > 0 {
		return len(data), data, nil
	}
	return 0, nil, nil
}

// parseMountinfoLine parses one line of mountinfo, field by field.
func parseMountinfoLine(line string) (mount, error) {
	f := strings.Split(line, " ")
	sep := -1
	if len(f) > 6 {
		sep = slices.Index(f[6:], "-") + 6 // optional fields come before the "-"
	}
	if sep < 6 || len(f) < sep+3 || f[sep+1] == "" {
		return mount{}, errors.New(`want mount fields, "-", fstype and source`)
	}
	if slices.Contains(f[:6], "") || !strings.Contains(f[2], ":") {
		return mount{}, errors.New("empty field or no major:minor: fields are separated by one space")
	}
	id, err := strconv.Atoi(f[0])
	if err != nil || id < 0 {
		return mount{}, fmt.Errorf("mount ID %q is not a number", f[0])
	}
	m := mount{
		ID:         id,
		Root:       unescapeOctal(f[3]),
		Mountpoint: unescapeOctal(f[4]),
		FSType:     unescapeOctal(f[sep+1]),
		Device:     unescapeOctal(f[sep+2]),
		ReadOnly:   slices.Contains(strings.Split(f[5], ","), "ro"),
	}
	if len(f) > sep+3 {
		m.ReadOnly = m.ReadOnly || slices.Contains(strings.Split(f[sep+3], ","), "ro")
	}
	return m, nil
}

// unescapeOctal decodes the \ooo escapes the kernel writes for space, tab,
// newline and backslash in mountinfo paths.
func unescapeOctal(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) && s[i+1] >= '0' && s[i+1] <= '3' &&
			s[i+2] >= '0' && s[i+2] <= '7' && s[i+3] >= '0' && s[i+3] <= '7' {
			b.WriteByte((s[i+1]-'0')<<6 | (s[i+2]-'0')<<3 | (s[i+3] - '0'))
			i += 3
			continue
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// dedupeMounts keeps the last mount of each mountpoint: the one on top, which
// statfs sees.
func dedupeMounts(ms []mount) []mount {
	last := make(map[string]int, len(ms))
	for i, m := range ms {
		last[m.Mountpoint] = i
	}
	out := make([]mount, 0, len(last))
	for i, m := range ms {
		if last[m.Mountpoint] == i {
			out = append(out, m)
		}
	}
	return out
}

// mountFilter selects mounts: a mount is kept when it matches an include (or
// there are none) and no exclude. Mountpoints match regexps, fstypes exactly.
type mountFilter struct {
	include, exclude     []*regexp.Regexp
	includeFS, excludeFS []string
}

// matchesAny tells whether one of res matches s.
func matchesAny(res []*regexp.Regexp, s string) bool {
	return slices.ContainsFunc(res, func(re *regexp.Regexp) bool { return re.MatchString(s) })
}

// apply returns the mounts of ms that f keeps, in a new slice.
func (f mountFilter) apply(ms []mount) []mount {
	return slices.DeleteFunc(slices.Clone(ms), func(m mount) bool { return !f.keep(m) })
}

func (f mountFilter) keep(m mount) bool {
	matches := func(res []*regexp.Regexp) bool { return matchesAny(res, m.Mountpoint) }
	return (len(f.include) == 0 || matches(f.include)) && !matches(f.exclude) &&
		(len(f.includeFS) == 0 || slices.Contains(f.includeFS, m.FSType)) && !slices.Contains(f.excludeFS, m.FSType)
}

// Diagnose implements checks.Diagnoser: the largest directories of the filesystem
// mounted at o.Labels["mountpoint"], as `du -x --max-depth` would list them.
func (c *diskCheck) Diagnose(ctx context.Context, o checks.Observation) (string, error) {
	mp := o.Labels["mountpoint"]
	if mp == "" {
		return "", errors.New("observation has no mountpoint label")
	}
	d := c.opts.Diagnostics
	ctx, cancel := context.WithTimeout(ctx, d.Timeout.D())
	defer cancel()
	root := filepath.Join(c.env.Paths.Rootfs, mp)
	done := make(chan *dirScan, 1)
	go func() { done <- scanDirsIn(ctx, cmp.Or(c.env.Paths.Rootfs, "/"), mp, d.MaxDepth, d.MaxEntries, d.Top) }()
	var s *dirScan
	select {
	case s = <-done:
	case <-ctx.Done():
		select { // the scan stops at its next entry, unless stuck in a system call
		case s = <-done:
		case <-time.After(time.Second):
			return "", fmt.Errorf("scan %s: stuck in a system call (hung filesystem?): %w", root, context.Cause(ctx))
		}
	}
	if s.err != nil {
		return "", s.err
	}
	return textfmt.Truncate(s.format(mp, d.Top), checks.MaxDetails), nil
}
