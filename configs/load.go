package configs

import (
	"errors"
	"fmt"
	"os"
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
	}
	errs = append(errs, cfg.loadRunbooks(file, d.pos["runbook_file"])...) // positioned in their own file
	if len(errs) > 0 {
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
		API:           API{Group: DefaultAPIGroup},
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
