package configs

import (
	"errors"
	"fmt"
	"net"
	"os"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/robfig/cron/v3"
)

// scheduleParser accepts @every/@hourly descriptors and cron specs with an
// optional leading seconds field.
var scheduleParser = cron.NewParser(cron.SecondOptional | cron.Minute | cron.Hour | cron.Dom | cron.Month | cron.Dow | cron.Descriptor)

// ParseSchedule parses a check schedule.
func ParseSchedule(spec string) (cron.Schedule, error) {
	if strings.HasPrefix(spec, "TZ=") || strings.HasPrefix(spec, "CRON_TZ=") {
		return nil, fmt.Errorf("time zone prefixes are not supported in %q", spec)
	}
	if d, ok := strings.CutPrefix(spec, "@every "); ok {
		every, err := time.ParseDuration(strings.TrimSpace(d))
		if err != nil {
			return nil, fmt.Errorf("@every %q: %w", d, err)
		}
		if every < time.Second {
			return nil, fmt.Errorf("@every %s: the shortest interval is 1s", every)
		}
	} else if err := checkCronSteps(spec); err != nil {
		return nil, err
	}
	return scheduleParser.Parse(spec)
}

// cronRanges are the value ranges of a cron spec's fields, seconds first
// (present only in a six-field spec).
var cronRanges = []struct {
	name     string
	min, max int
}{{"second", 0, 59}, {"minute", 0, 59}, {"hour", 0, 23}, {"day of month", 1, 31}, {"month", 1, 12}, {"day of week", 0, 6}}

// checkCronSteps rejects a step larger than its field's range (*/61 in the
// minutes), which the cron parser accepts and then fires only at the start.
func checkCronSteps(spec string) error {
	fields := strings.Fields(spec)
	if len(fields) != 5 && len(fields) != 6 || strings.HasPrefix(spec, "@") {
		return nil // the parser reports it
	}
	ranges := cronRanges[6-len(fields):]
	for i, f := range fields {
		for _, part := range strings.Split(f, ",") {
			_, step, ok := strings.Cut(part, "/")
			if !ok {
				continue
			}
			n, err := strconv.Atoi(step)
			r := ranges[i]
			if err == nil && (n < 1 || n > r.max-r.min+1) {
				return fmt.Errorf("step /%d of the %s field is outside 1..%d", n, r.name, r.max-r.min+1)
			}
		}
	}
	return nil
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
		StateDir:      DefaultStateDir,
		Paths:         Paths{Procfs: "/proc", Sysfs: "/sys", Rootfs: "/"},
		Log:           Log{Level: "info", Format: "logfmt"},
		Defaults:      Defaults{Schedule: "@every 30s", Timeout: Duration(10 * time.Second), JitterMax: Duration(30 * time.Second)},
	}
	if _, err := parseInto("agent.yaml (embedded)", DefaultYAML, cfg); err != nil {
		panic("embedded default config is invalid: " + err.Error())
	}
	return cfg
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
		ch.Options = kindOptions(CheckKinds, ch.Kind, ch.Options, ch.blocks)
		if ch.Options != nil {
			ch.Options.ApplyDefaults(c.StateDir)
		}
	}
}

// kindOptions returns the options of kind: the block written for it, else
// those already set, else the kind's empty options (nil for none).
func kindOptions(f *Family, kind string, set Options, blocks []block) Options {
	for _, b := range blocks {
		if b.name == kind {
			return b.opts
		}
	}
	if set != nil {
		return set
	}
	return f.NewOptions(kind)
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
		k, known := CheckKinds.Lookup(ch.Kind)
		metrics := k.Metrics
		if ch.Kind == "" {
			errf(base, "check %q: kind is required (known kinds: %s)", ch.Name, strings.Join(CheckKinds.Names(), ", "))
		} else if !known {
			errf(base+".kind", "check %q: unknown check kind %q (known kinds: %s)", ch.Name, ch.Kind, strings.Join(CheckKinds.Names(), ", "))
		}
		for _, blk := range ch.blocks {
			if blk.name != ch.Kind {
				errf(base+"."+blk.name, "check %q: a %s: block does not apply to a check of kind %q", ch.Name, blk.name, ch.Kind)
			}
		}
		if _, err := ParseSchedule(ch.Schedule); err != nil {
			errf(base+".schedule", "check %q: bad schedule %q: %v", ch.Name, ch.Schedule, err)
		}
		if ch.Timeout <= 0 {
			errf(base+".timeout", "check %q: timeout must be positive", ch.Name)
		}
		if ch.Options != nil && known {
			ch.Options.Validate(base+"."+ch.Kind, errf)
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
