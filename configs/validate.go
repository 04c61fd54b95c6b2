package configs

import (
	"fmt"
	"maps"
	"net"
	"regexp"
	"slices"
	"sort"
	"strings"
)

// validation collects the semantic errors of a decoded config, each placed
// at the position where the value it is about was written.
type validation struct {
	d    *decoder
	errs Errors
}

// at is the position of the value at path or, when it was not written, of
// its nearest written parent (1:1 when none was).
func (v *validation) at(path string) pos {
	for p := path; ; {
		if ps, ok := v.d.pos[p]; ok {
			return ps
		}
		i := strings.LastIndexAny(p, ".[")
		if i < 0 {
			return pos{1, 1}
		}
		p = p[:i]
	}
}

// errf is the Errorf of the validation: an error at the position of path.
func (v *validation) errf(path, format string, args ...any) {
	p := v.at(path)
	v.errs = append(v.errs, Error{File: v.d.file, Line: p.line, Column: p.col, Message: fmt.Sprintf(format, args...)})
}

// validate reports every semantic problem of c, in the order of its
// sections: the agent's own keys, ticketing, remediation, then the checks.
func (c *Config) validate(d *decoder) Errors {
	v := &validation{d: d}
	v.positiveDurations()
	c.validateAgent(v.errf)
	c.Ticketing.validate(v.errf)
	c.Remediation.validate(v.errf)
	names := map[string]string{} // check name → path of the first check with it
	for i := range c.Checks {
		c.Checks[i].validate(v, fmt.Sprintf("checks[%d]", i), names)
	}
	return v.errs
}

// mustBePositive are the durations that a 0 or a negative value would
// break or that would be replaced by their default in silence: timeouts,
// intervals, SLAs, windows.
var mustBePositive = regexp.MustCompile(`^(defaults\.timeout|checks\[\d+\]\.timeout|ticketing\.(interval|resolve_after|reopen_window|sla\.(warn|crit)|recurrence\.window|flapping\.window|unreported\.close_after|history\.keep|history\.fix_not_holding\.window|history\.skip_failing_for|backends\[\d+\]\.timeout)|remediation\.actions\.[a-z0-9_]+\.timeout)$`)

// positiveDurations rejects a duration written as 0 or less where it must
// be positive.
func (v *validation) positiveDurations() {
	for _, path := range slices.Sorted(maps.Keys(v.d.nonPositive)) {
		if mustBePositive.MatchString(path) {
			v.errf(path, "%s %s: want a positive duration (leave the key out for the default)", path, v.d.nonPositive[path].D())
		}
	}
}

// groupName is a POSIX group name as useradd/groupadd accept it.
var groupName = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_.-]{0,31}$`)

// validateAgent checks the keys of the agent itself: listen_address, log,
// defaults and paths.
func (c *Config) validateAgent(errf Errorf) {
	if _, _, err := net.SplitHostPort(c.ListenAddress); err != nil {
		errf("listen_address", "listen_address %q: want host:port, e.g. %s", c.ListenAddress, DefaultListenAddress)
	}
	if c.API.Socket != "" && !strings.HasPrefix(c.API.Socket, "/") {
		errf("api.socket", "api.socket %q: must be an absolute path", c.API.Socket)
	}
	if c.API.Group != "" && !groupName.MatchString(c.API.Group) {
		errf("api.group", "api.group %q: want a group name such as %s (empty: root only)", c.API.Group, DefaultAPIGroup)
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
}

// validate checks the check at base: its name (unique among names), its
// kind and options, its schedule and timeout, then its rules.
func (ch *Check) validate(v *validation, base string, names map[string]string) {
	ch.validateName(v, base, names)
	kind, known := ch.validateKind(base, v.errf)
	if _, err := ParseSchedule(ch.Schedule); err != nil {
		v.errf(base+".schedule", "check %q: bad schedule %q: %v", ch.Name, ch.Schedule, err)
	}
	if _, said := v.d.nonPositive[base+".timeout"]; ch.Timeout <= 0 && !said {
		v.errf(base+".timeout", "check %q: timeout must be positive", ch.Name)
	}
	if ch.Options != nil && known {
		ch.Options.Validate(base+"."+ch.Kind, v.errf)
	}
	seen := map[string]string{} // rule key → path of the first rule with it
	for j := range ch.Rules {
		ch.validateRule(v, fmt.Sprintf("%s.rules[%d]", base, j), &ch.Rules[j], kind, known, seen)
	}
}

// validateName requires a name not taken by an earlier check, recording it
// in names.
func (ch *Check) validateName(v *validation, base string, names map[string]string) {
	if ch.Name == "" {
		v.errf(base, "%s: name is required", base)
	} else if prev, dup := names[ch.Name]; dup {
		p := v.at(prev + ".name")
		v.errf(base+".name", "duplicate check name %q (first defined at line %d)", ch.Name, p.line)
	} else {
		names[ch.Name] = base
	}
}

// validateKind requires a registered kind and no options block of another
// kind; it returns the kind and whether it is registered.
func (ch *Check) validateKind(base string, errf Errorf) (Kind, bool) {
	k, known := CheckKinds.Lookup(ch.Kind)
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
	return k, known
}

// validateRule checks the rule at rb: a metric its kind emits, not two
// rules for the same metric and labels (seen), then its thresholds.
func (ch *Check) validateRule(v *validation, rb string, r *Rule, kind Kind, known bool, seen map[string]string) {
	if r.Metric == "" {
		v.errf(rb, "check %q: rule needs a metric", ch.Name)
	} else if known && !slices.Contains(kind.Metrics, r.Metric) {
		v.errf(rb+".metric", "check %q: kind %s has no metric %q (it has: %s)", ch.Name, ch.Kind, r.Metric, strings.Join(kind.Metrics, ", "))
	}
	key := r.Metric + "{" + labelString(r.Labels) + "}"
	if prev, dup := seen[key]; dup {
		v.errf(rb+".metric", "check %q: duplicate rule for %s (first at line %d)", ch.Name, key, v.at(prev).line)
	} else {
		seen[key] = rb
	}
	r.validateThresholds(ch.Name, rb, v.errf)
}

// validateThresholds checks the direction, warn and crit (at least one, in
// the order of the direction) and clear of a rule of check at rb.
func (r *Rule) validateThresholds(check, rb string, errf Errorf) {
	if r.Direction != "" && r.Direction != "above" && r.Direction != "below" {
		errf(rb+".direction", "check %q: direction %q: want above or below", check, r.Direction)
	}
	if r.Warn == nil && r.Crit == nil {
		errf(rb, "check %q: rule for %s needs warn, crit or both", check, r.Metric)
	}
	if r.Warn != nil && r.Crit != nil {
		if r.Above() && *r.Warn > *r.Crit {
			errf(rb+".warn", "check %q: warn (%g) must not be above crit (%g) for direction above", check, *r.Warn, *r.Crit)
		}
		if !r.Above() && *r.Warn < *r.Crit {
			errf(rb+".warn", "check %q: warn (%g) must not be below crit (%g) for direction below", check, *r.Warn, *r.Crit)
		}
	}
	if r.Clear < 0 {
		errf(rb+".clear", "check %q: clear must not be negative", check)
	}
}

// labelString is a rule's labels as a stable text: sorted k="v" pairs.
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
