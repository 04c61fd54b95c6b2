package disk

import (
	"cmp"
	"fmt"
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
	FillWindow  configs.Duration `yaml:"fill_window"`
	Diagnostics Diagnostics      `yaml:"diagnostics"`
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

// orDefault sets *v to def unless it is positive.
func orDefault[T cmp.Ordered](v *T, def T) {
	var zero T
	if *v <= zero {
		*v = def
	}
}

// ApplyDefaults implements configs.Options.
func (o *Options) ApplyDefaults(string) {
	if o.ExcludeFSTypes == nil {
		o.ExcludeFSTypes = slices.Clone(DefaultExcludeFSTypes)
	}
	if o.ExcludeMountpoints == nil {
		o.ExcludeMountpoints = slices.Clone(DefaultExcludeMountpoints)
	}
	orDefault(&o.FillWindow, configs.Duration(6*time.Hour))
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
	}{{"include_mountpoints", o.IncludeMountpoints}, {"exclude_mountpoints", o.ExcludeMountpoints}} {
		for j, re := range l.list {
			if _, err := regexp.Compile(re); err != nil {
				errf(fmt.Sprintf("%s.%s[%d]", path, l.key, j), "disk %s: bad regular expression: %v", l.key, err)
			}
		}
	}
	if o.Diagnostics.MaxDepth < 0 || o.Diagnostics.MaxEntries < 0 || o.Diagnostics.Top < 0 {
		errf(path+".diagnostics", "disk diagnostics bounds must not be negative")
	}
}
