package configs

import (
	"errors"
	"fmt"
	"net"
	"os"
	"regexp"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/robfig/cron/v3"
)

var (
	kindsMu sync.RWMutex
	kinds   = map[string][]string{} // check kind → metric names it emits
)

// RegisterKind tells the config validator about a check kind and the
// metrics its rules may name. The checks package calls it from init.
func RegisterKind(kind string, metrics []string) {
	kindsMu.Lock()
	defer kindsMu.Unlock()
	kinds[kind] = slices.Clone(metrics)
}

func kindMetrics(kind string) ([]string, bool) {
	kindsMu.RLock()
	defer kindsMu.RUnlock()
	m, ok := kinds[kind]
	return m, ok
}

func kindNames() []string {
	kindsMu.RLock()
	defer kindsMu.RUnlock()
	ks := make([]string, 0, len(kinds))
	for k := range kinds {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}

// scheduleParser accepts @every/@hourly descriptors and cron specs with an
// optional leading seconds field.
var scheduleParser = cron.NewParser(cron.SecondOptional | cron.Minute | cron.Hour | cron.Dom | cron.Month | cron.Dow | cron.Descriptor)

// ParseSchedule parses a check schedule.
func ParseSchedule(spec string) (cron.Schedule, error) {
	if strings.HasPrefix(spec, "TZ=") || strings.HasPrefix(spec, "CRON_TZ=") {
		return nil, fmt.Errorf("time zone prefixes are not supported in %q", spec)
	}
	return scheduleParser.Parse(spec)
}

// Load reads, decodes and validates a config file. An empty path loads the
// embedded default. Every problem is returned as Errors.
func Load(path string) (*Config, error) {
	if path == "" {
		return Parse("agent.yaml (embedded)", DefaultYAML)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read config %s: %w", path, err)
	}
	return Parse(path, data)
}

// Parse decodes and validates config data named file. Keys left out keep the
// values of the embedded default; a `checks` list replaces the default's.
func Parse(file string, data []byte) (*Config, error) {
	cfg := embedded() // defaults are applied after the file, so that they see its values
	d, err := parseInto(file, data, cfg)
	var errs Errors
	if err != nil {
		if !errors.As(err, &errs) || d.pos == nil || len(d.pos) == 0 {
			return nil, err // a syntax error: nothing was decoded
		}
	}
	cfg.applyDefaults()
	// Report every problem at once: decoding errors, then the semantic ones
	// of values that did decode (a value that failed to decode is not
	// reported twice at the same place).
	bad := map[pos]bool{}
	for _, e := range errs {
		bad[pos{e.Line, e.Column}] = true
	}
	for _, e := range cfg.validate(d) {
		if !bad[pos{e.Line, e.Column}] {
			errs = append(errs, e)
		}
	}
	if len(errs) > 0 {
		sort.SliceStable(errs, func(i, j int) bool {
			if errs[i].Line != errs[j].Line {
				return errs[i].Line < errs[j].Line
			}
			return errs[i].Column < errs[j].Column
		})
		return nil, errs
	}
	return cfg, nil
}

// Default returns the embedded default configuration with defaults applied.
func Default() *Config {
	cfg := embedded()
	cfg.applyDefaults()
	return cfg
}

// embedded decodes the embedded default configuration, without applying
// the computed defaults.
func embedded() *Config {
	cfg := &Config{
		ListenAddress: DefaultListenAddress,
		StateDir:      "/var/lib/l2agent",
		Paths:         Paths{Procfs: "/proc", Sysfs: "/sys", Rootfs: "/"},
		Log:           Log{Level: "info", Format: "logfmt"},
		Defaults:      Defaults{Schedule: "@every 30s", Timeout: Duration(10 * time.Second), JitterMax: Duration(30 * time.Second)},
	}
	if _, err := parseInto("agent.yaml (embedded)", DefaultYAML, cfg); err != nil {
		panic("embedded default config is invalid: " + err.Error())
	}
	return cfg
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

func (c *Config) applyDefaults() {
	if c.Paths.Procfs == "" {
		c.Paths.Procfs = "/proc"
	}
	if c.Paths.Sysfs == "" {
		c.Paths.Sysfs = "/sys"
	}
	if c.Paths.Rootfs == "" {
		c.Paths.Rootfs = "/"
	}
	c.Ticketing.ApplyDefaults(c.StateDir)
	c.Remediation.applyDefaults(c.StateDir)
	for i := range c.Checks {
		ch := &c.Checks[i]
		if ch.Schedule == "" {
			ch.Schedule = c.Defaults.Schedule
		}
		if ch.Timeout == 0 {
			ch.Timeout = c.Defaults.Timeout
		}
		switch ch.Kind {
		case "disk":
			if ch.Disk == nil {
				ch.Disk = &DiskOptions{}
			}
			o := ch.Disk
			if o.ExcludeFSTypes == nil {
				o.ExcludeFSTypes = slices.Clone(DefaultExcludeFSTypes)
			}
			if o.ExcludeMountpoints == nil {
				o.ExcludeMountpoints = slices.Clone(DefaultExcludeMountpoints)
			}
			if o.FillWindow == 0 {
				o.FillWindow = Duration(6 * time.Hour)
			}
			dd := &o.Diagnostics
			if dd.MaxDepth == 0 {
				dd.MaxDepth = 3
			}
			if dd.MaxEntries == 0 {
				dd.MaxEntries = 100000
			}
			if dd.Timeout == 0 {
				dd.Timeout = Duration(5 * time.Second)
			}
			if dd.Top == 0 {
				dd.Top = 10
			}
		case "cpu":
			if ch.CPU == nil {
				ch.CPU = &CPUOptions{}
			}
			if ch.CPU.TopProcesses == 0 {
				ch.CPU.TopProcesses = 5
			}
		case "memory":
			if ch.Memory == nil {
				ch.Memory = &MemoryOptions{}
			}
			if ch.Memory.TopProcesses == 0 {
				ch.Memory.TopProcesses = 5
			}
		case "patches":
			if ch.Patches == nil {
				ch.Patches = &PatchesOptions{}
			}
			if ch.Patches.StateDir == "" {
				ch.Patches.StateDir = c.StateDir // the agent's, unless the check has its own
			}
			ch.Patches.applyDefaults()
		case "antivirus":
			if ch.Antivirus == nil {
				ch.Antivirus = &AntivirusOptions{}
			}
			ch.Antivirus.applyDefaults()
		case "mfa":
			if ch.MFA == nil {
				ch.MFA = &MFAOptions{}
			}
			ch.MFA.applyDefaults()
		}
	}
}

func (c *Config) validate(d *decoder) Errors {
	var errs Errors
	at := func(path string) pos {
		for p := path; ; {
			if ps, ok := d.pos[p]; ok {
				return ps
			}
			i := strings.LastIndexAny(p, ".[")
			if i < 0 {
				return pos{1, 1}
			}
			p = p[:i]
		}
	}
	errf := func(path, format string, args ...any) {
		p := at(path)
		errs = append(errs, Error{File: d.file, Line: p.line, Column: p.col, Message: fmt.Sprintf(format, args...)})
	}

	if _, _, err := net.SplitHostPort(c.ListenAddress); err != nil {
		errf("listen_address", "listen_address %q: want host:port, e.g. %s", c.ListenAddress, DefaultListenAddress)
	}
	if !slices.Contains([]string{"debug", "info", "warn", "error"}, c.Log.Level) {
		errf("log.level", "log.level %q: want debug, info, warn or error", c.Log.Level)
	}
	if !slices.Contains([]string{"logfmt", "json"}, c.Log.Format) {
		errf("log.format", "log.format %q: want logfmt or json", c.Log.Format)
	}
	if _, err := ParseSchedule(c.Defaults.Schedule); err != nil {
		errf("defaults.schedule", "defaults.schedule %q: %v", c.Defaults.Schedule, err)
	}
	for _, p := range []struct{ path, v string }{{"paths.procfs", c.Paths.Procfs}, {"paths.sysfs", c.Paths.Sysfs}, {"paths.rootfs", c.Paths.Rootfs}} {
		if !strings.HasPrefix(p.v, "/") {
			errf(p.path, "%s %q: must be an absolute path", p.path, p.v)
		}
	}

	c.Ticketing.validate(errf)
	c.Remediation.validate(errf)
	names := map[string]string{}
	for i, ch := range c.Checks {
		base := fmt.Sprintf("checks[%d]", i)
		if ch.Name == "" {
			errf(base, "%s: name is required", base)
		} else if prev, dup := names[ch.Name]; dup {
			p := at(prev + ".name")
			errf(base+".name", "duplicate check name %q (first defined at line %d)", ch.Name, p.line)
		} else {
			names[ch.Name] = base
		}
		metrics, known := kindMetrics(ch.Kind)
		if ch.Kind == "" {
			errf(base, "check %q: kind is required (known kinds: %s)", ch.Name, strings.Join(kindNames(), ", "))
		} else if !known {
			errf(base+".kind", "check %q: unknown check kind %q (known kinds: %s)", ch.Name, ch.Kind, strings.Join(kindNames(), ", "))
		}
		for _, blk := range []struct {
			name string
			set  bool
		}{{"disk", ch.Disk != nil}, {"cpu", ch.CPU != nil}, {"memory", ch.Memory != nil},
			{"patches", ch.Patches != nil}, {"antivirus", ch.Antivirus != nil}, {"mfa", ch.MFA != nil}} {
			if blk.set && blk.name != ch.Kind {
				errf(base+"."+blk.name, "check %q: a %s: block does not apply to a check of kind %q", ch.Name, blk.name, ch.Kind)
			}
		}
		if _, err := ParseSchedule(ch.Schedule); err != nil {
			errf(base+".schedule", "check %q: bad schedule %q: %v", ch.Name, ch.Schedule, err)
		}
		if ch.Timeout <= 0 {
			errf(base+".timeout", "check %q: timeout must be positive", ch.Name)
		}
		if o := ch.Disk; o != nil && ch.Kind == "disk" {
			for j, re := range o.IncludeMountpoints {
				if _, err := regexp.Compile(re); err != nil {
					errf(fmt.Sprintf("%s.disk.include_mountpoints[%d]", base, j), "check %q: bad regular expression: %v", ch.Name, err)
				}
			}
			for j, re := range o.ExcludeMountpoints {
				if _, err := regexp.Compile(re); err != nil {
					errf(fmt.Sprintf("%s.disk.exclude_mountpoints[%d]", base, j), "check %q: bad regular expression: %v", ch.Name, err)
				}
			}
			if o.Diagnostics.MaxDepth < 0 || o.Diagnostics.MaxEntries < 0 || o.Diagnostics.Top < 0 {
				errf(base+".disk.diagnostics", "check %q: diagnostics bounds must not be negative", ch.Name)
			}
		}
		if o := ch.Patches; o != nil && ch.Kind == "patches" {
			o.validate(base+".patches", errf)
		}
		if o := ch.Antivirus; o != nil && ch.Kind == "antivirus" {
			o.validate(base+".antivirus", errf)
		}
		if o := ch.MFA; o != nil && ch.Kind == "mfa" {
			o.validate(base+".mfa", errf)
		}
		seen := map[string]string{}
		for j, r := range ch.Rules {
			rb := fmt.Sprintf("%s.rules[%d]", base, j)
			if r.Metric == "" {
				errf(rb, "check %q: rule needs a metric", ch.Name)
			} else if known && !slices.Contains(metrics, r.Metric) {
				errf(rb+".metric", "check %q: kind %s has no metric %q (it has: %s)", ch.Name, ch.Kind, r.Metric, strings.Join(metrics, ", "))
			}
			key := r.Metric + "{" + labelString(r.Labels) + "}"
			if prev, dup := seen[key]; dup {
				errf(rb+".metric", "check %q: duplicate rule for %s (first at line %d)", ch.Name, key, at(prev).line)
			} else {
				seen[key] = rb
			}
			if r.Direction != "" && r.Direction != "above" && r.Direction != "below" {
				errf(rb+".direction", "check %q: direction %q: want above or below", ch.Name, r.Direction)
			}
			if r.Warn == nil && r.Crit == nil {
				errf(rb, "check %q: rule for %s needs warn, crit or both", ch.Name, r.Metric)
			}
			if r.Warn != nil && r.Crit != nil {
				if r.Above() && *r.Warn > *r.Crit {
					errf(rb+".warn", "check %q: warn (%g) must not be above crit (%g) for direction above", ch.Name, *r.Warn, *r.Crit)
				}
				if !r.Above() && *r.Warn < *r.Crit {
					errf(rb+".warn", "check %q: warn (%g) must not be below crit (%g) for direction below", ch.Name, *r.Warn, *r.Crit)
				}
			}
			if r.Clear < 0 {
				errf(rb+".clear", "check %q: clear must not be negative", ch.Name)
			}
		}
	}
	return errs
}

func labelString(m map[string]string) string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	var b strings.Builder
	for i, k := range ks {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, "%s=%q", k, m[k])
	}
	return b.String()
}
