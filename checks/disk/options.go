package disk

import (
	"cmp"
	"fmt"
	"path/filepath"
	"regexp"
	"slices"
	"time"

	"github.com/l2agent/l2agent/configs"
)

// Options configure the disk check (its `disk:` block).
type Options struct {
	// Regular expressions, anchored by the author, matched on the mountpoint.
	IncludeMountpoints []string `yaml:"include_mountpoints"`
	ExcludeMountpoints []string `yaml:"exclude_mountpoints"`
	// Exact filesystem type names.
	IncludeFSTypes []string `yaml:"include_fstypes"`
	ExcludeFSTypes []string `yaml:"exclude_fstypes"`
	// FillWindow is how far back samples are kept for time to full.
	FillWindow configs.Duration `yaml:"fill_window"`
	// A fit is trusted only over at least FillMinSpan and FillMinSamples,
	// and when its R² is at least FillMinR2.
	FillMinSpan    configs.Duration `yaml:"fill_min_span"`
	FillMinSamples int              `yaml:"fill_min_samples"`
	FillMinR2      float64          `yaml:"fill_min_r2"`
	// MissingFor is how long a mount seen before and now absent is reported
	// as missing before it is forgotten.
	MissingFor configs.Duration `yaml:"missing_for"`
	// ForgetMountpoints are regular expressions: a mount matching one is
	// forgotten as soon as it is absent, never reported missing.
	ForgetMountpoints []string `yaml:"forget_mountpoints"`
	// StateDir keeps the mounts seen (disk-<check>.json) across restarts.
	StateDir    string      `yaml:"state_dir"`
	Diagnostics Diagnostics `yaml:"diagnostics"`
}

// Diagnostics bounds the largest-directories scan.
type Diagnostics struct {
	MaxDepth   int              `yaml:"max_depth"`
	MaxEntries int              `yaml:"max_entries"`
	Timeout    configs.Duration `yaml:"timeout"`
	Top        int              `yaml:"top"`
}

// DefaultExcludeFSTypes are pseudo and read-only image filesystems that
// never fill up in a way an admin can act on.
var DefaultExcludeFSTypes = []string{
	"autofs", "binfmt_misc", "bpf", "cgroup", "cgroup2", "configfs", "debugfs", "devpts",
	"devtmpfs", "efivarfs", "fusectl", "fuse.lxcfs", "fuse.gvfsd-fuse", "fuse.portal", "hugetlbfs", "iso9660", "mqueue", "nsfs",
	"proc", "procfs", "pstore", "ramfs", "rpc_pipefs", "securityfs", "selinuxfs", "squashfs", "sysfs", "tracefs", "nfsd",
}

// DefaultExcludeMountpoints are kernel and container-runtime mountpoints.
var DefaultExcludeMountpoints = []string{
	`^/(dev|proc|sys|run/credentials/.+|run/user/.+|var/lib/docker/.+|var/lib/containers/storage/.+|var/lib/kubelet/.+|snap/.+)($|/)`,
}

// DefaultForgetMountpoints are where removable media are mounted
// (udisks2): a USB stick pulled out is not a missing filesystem.
var DefaultForgetMountpoints = []string{`^/(media|run/media)/`}

// Defaults of the time-to-full fit and of missing mounts.
const (
	DefaultFillMinSpan    = 30 * time.Minute
	DefaultFillMinSamples = 10
	DefaultFillMinR2      = 0.9
	DefaultMissingFor     = 7 * 24 * time.Hour
)

// orDefault sets *v to def unless it is positive.
func orDefault[T cmp.Ordered](v *T, def T) {
	var zero T
	if *v <= zero {
		*v = def
	}
}

// MoveStateDir implements configs.StateDirMover: a state dir left at the
// agent's follows it.
func (o *Options) MoveStateDir(from, to string) {
	if o.StateDir == from {
		o.StateDir = to
	}
}

// ApplyDefaults implements configs.Options: it fills what the config left
// out; the state dir is the agent's unless the check has its own.
func (o *Options) ApplyDefaults(stateDir string) {
	if o.StateDir == "" {
		o.StateDir = cmp.Or(stateDir, configs.DefaultStateDir)
	}
	if o.ForgetMountpoints == nil {
		o.ForgetMountpoints = slices.Clone(DefaultForgetMountpoints)
	}
	if o.ExcludeFSTypes == nil {
		o.ExcludeFSTypes = slices.Clone(DefaultExcludeFSTypes)
	}
	if o.ExcludeMountpoints == nil {
		o.ExcludeMountpoints = slices.Clone(DefaultExcludeMountpoints)
	}
	orDefault(&o.FillWindow, configs.Duration(6*time.Hour))
	if o.FillMinSpan == 0 { // never longer than the window a config already has
		o.FillMinSpan = min(configs.Duration(DefaultFillMinSpan), o.FillWindow)
	}
	if o.FillMinSamples == 0 {
		o.FillMinSamples = DefaultFillMinSamples
	}
	if o.FillMinR2 == 0 {
		o.FillMinR2 = DefaultFillMinR2
	}
	orDefault(&o.MissingFor, configs.Duration(DefaultMissingFor))
	orDefault(&o.Diagnostics.MaxDepth, 3)
	orDefault(&o.Diagnostics.MaxEntries, 100000)
	orDefault(&o.Diagnostics.Timeout, configs.Duration(5*time.Second))
	orDefault(&o.Diagnostics.Top, 10)
}

// Validate implements configs.Options.
func (o *Options) Validate(path string, errf configs.Errorf) {
	for _, l := range []struct {
		key  string
		list []string
	}{{"include_mountpoints", o.IncludeMountpoints}, {"exclude_mountpoints", o.ExcludeMountpoints}, {"forget_mountpoints", o.ForgetMountpoints}} {
		for j, re := range l.list {
			if _, err := regexp.Compile(re); err != nil {
				errf(fmt.Sprintf("%s.%s[%d]", path, l.key, j), "disk %s: bad regular expression: %v", l.key, err)
			}
		}
	}
	if o.Diagnostics.MaxDepth < 0 || o.Diagnostics.MaxEntries < 0 || o.Diagnostics.Top < 0 {
		errf(path+".diagnostics", "disk diagnostics bounds must not be negative")
	}
	if o.FillMinSpan > o.FillWindow {
		errf(path+".fill_min_span", "disk fill_min_span %s is longer than fill_window %s: time to full would never be reported", o.FillMinSpan.D(), o.FillWindow.D())
	}
	if o.FillMinSamples < 3 || o.FillMinSamples > maxFillSamples {
		errf(path+".fill_min_samples", "disk fill_min_samples %d: want 3 to %d", o.FillMinSamples, maxFillSamples)
	}
	if !(o.FillMinR2 > 0 && o.FillMinR2 <= 1) { // also NaN
		errf(path+".fill_min_r2", "disk fill_min_r2 %v: want more than 0 and at most 1", o.FillMinR2)
	}
	if !filepath.IsAbs(o.StateDir) {
		errf(path+".state_dir", "disk state_dir %q: must be an absolute path", o.StateDir)
	}
}
