package configs

import (
	"fmt"
	"net/url"
	"strings"
	"time"
)

// Ticketing configures the incident life cycle and the ticket systems.
type Ticketing struct {
	// ResolveAfter: an incident is resolved once its alert has been ok this long.
	ResolveAfter Duration `yaml:"resolve_after"`
	// ReopenWindow: a recurrence within this long after resolving reopens the
	// same ticket; later, a new ticket links to the previous one.
	ReopenWindow Duration `yaml:"reopen_window"`
	// SLA: how long a ticket may stay open at a tier, per severity, before it
	// is escalated to the next tier.
	SLA SLA `yaml:"sla"`
	// EscalateOnCrit escalates a ticket to L3 as soon as its alert is crit.
	EscalateOnCrit *bool `yaml:"escalate_on_crit"`
	// Recurrence: reopened this many times within Window → escalate.
	Recurrence Recurrence `yaml:"recurrence"`
	// RemediationFailures: remediation failed this many times → escalate.
	RemediationFailures int `yaml:"remediation_failures"`
	// Flapping: this many state changes within Window mark the incident
	// flapping: one ticket, no resolve/reopen churn until it settles.
	Flapping Recurrence `yaml:"flapping"`
	// VendorTier enables L4, the escalation past L3.
	VendorTier bool `yaml:"vendor_tier"`
	// Interval between evaluations of the time-based rules (resolve_after, SLA).
	Interval Duration `yaml:"interval"`
	// Unreported: what happens to the ticket of an alert the agent no longer
	// evaluates (a filesystem unmounted, a check or rule removed).
	Unreported Unreported `yaml:"unreported"`
	// History: the incidents that ended, kept for new tickets of the same
	// problem ("This happened before") and `l2agent tickets history`.
	History History `yaml:"history"`

	Backends []Backend `yaml:"backends"`
}

// Unreported is the policy for incidents whose alert is no longer
// evaluated. Such a ticket gets one comment saying so, never a "resolved";
// it is closed (with a comment saying it was not verified as fixed) once
// the alert has been unreported for CloseAfter, unless KeepOpen leaves it
// to a person.
type Unreported struct {
	CloseAfter Duration `yaml:"close_after"`
	KeepOpen   bool     `yaml:"keep_open"`
}

// SLA per severity.
type SLA struct {
	Warn Duration `yaml:"warn"`
	Crit Duration `yaml:"crit"`
}

// Recurrence is a count within a window.
type Recurrence struct {
	Count  int      `yaml:"count"`
	Window Duration `yaml:"window"`
}

// Backend is one ticket system.
type Backend struct {
	Name    string   `yaml:"name"`
	Kind    string   `yaml:"kind"` // a registered backend: rt, jira, webhook, file…
	Timeout Duration `yaml:"timeout"`

	// Options is the backend's own block (`rt:` for kind rt), of the type
	// its unit registered in BackendKinds; after loading it is never nil
	// for a kind with options.
	Options Options `yaml:"-"`
	blocks  []block
}

func (b *Backend) family() *Family { return BackendKinds }
func (b *Backend) addBlock(name string, o Options) {
	b.blocks = append(b.blocks, block{name, o})
}

// ApplyDefaults fills what the config left out; file backends default to
// stateDir/tickets.jsonl.
func (t *Ticketing) ApplyDefaults(stateDir string) {
	if t.Interval == 0 {
		t.Interval = Duration(30 * time.Second)
	}
	if t.ResolveAfter == 0 {
		t.ResolveAfter = Duration(15 * time.Minute)
	}
	if t.ReopenWindow == 0 {
		t.ReopenWindow = Duration(24 * time.Hour)
	}
	if t.SLA.Warn == 0 {
		t.SLA.Warn = Duration(8 * time.Hour)
	}
	if t.SLA.Crit == 0 {
		t.SLA.Crit = Duration(time.Hour)
	}
	if t.EscalateOnCrit == nil {
		yes := true
		t.EscalateOnCrit = &yes
	}
	if t.Recurrence.Count == 0 {
		t.Recurrence.Count = 3
	}
	if t.Recurrence.Window == 0 {
		t.Recurrence.Window = Duration(7 * 24 * time.Hour)
	}
	if t.RemediationFailures == 0 {
		t.RemediationFailures = 3
	}
	if t.Flapping.Count == 0 {
		t.Flapping.Count = 6
	}
	if t.Unreported.CloseAfter == 0 {
		t.Unreported.CloseAfter = Duration(24 * time.Hour)
	}
	if t.Flapping.Window == 0 {
		t.Flapping.Window = Duration(time.Hour)
	}
	t.History.applyDefaults()
	for i := range t.Backends {
		b := &t.Backends[i]
		if b.Name == "" {
			b.Name = b.Kind
		}
		if b.Timeout == 0 {
			b.Timeout = Duration(15 * time.Second)
		}
		b.Options = kindOptions(BackendKinds, b.Kind, b.Options, b.blocks)
		if b.Options != nil {
			b.Options.ApplyDefaults(stateDir)
		}
	}
}

func (t *Ticketing) validate(errf func(path, format string, args ...any)) {
	if t.Flapping.Count < 2 {
		errf("ticketing.flapping.count", "ticketing.flapping.count %d: want at least 2 (changes within the window that mark an incident flapping)", t.Flapping.Count)
	}
	if t.Unreported.CloseAfter < 0 {
		errf("ticketing.unreported.close_after", "ticketing.unreported.close_after %s: want a positive duration (or keep_open: true)", t.Unreported.CloseAfter.D())
	}
	if t.Recurrence.Count < 1 {
		errf("ticketing.recurrence.count", "ticketing.recurrence.count %d: want at least 1", t.Recurrence.Count)
	}
	t.History.validate(errf)
	names := map[string]bool{}
	for i, b := range t.Backends {
		base := fmt.Sprintf("ticketing.backends[%d]", i)
		_, known := BackendKinds.Lookup(b.Kind)
		if !known {
			errf(base+".kind", "ticketing backend %q: unknown kind %q (known: %s)", b.Name, b.Kind, strings.Join(BackendKinds.Names(), ", "))
		}
		if names[b.Name] {
			errf(base+".name", "duplicate ticketing backend name %q", b.Name)
		}
		names[b.Name] = true
		for _, blk := range b.blocks {
			if blk.name != b.Kind {
				errf(base+"."+blk.name, "ticketing backend %q: a %s: block does not apply to kind %q", b.Name, blk.name, b.Kind)
			}
		}
		if b.Options != nil && known {
			b.Options.Validate(base+"."+b.Kind, errf)
		}
	}
}

// CheckURL reports at path a value that is not an http(s) URL.
func CheckURL(errf Errorf, path, v string) {
	if !ValidHTTPURL(v) {
		errf(path, "%s %q: want an http:// or https:// URL, with no user:password@ (credentials go in the token or secret keys)", path, redactURL(v))
	}
}

// redactURL hides the password of a URL written with user:password@.
func redactURL(v string) string {
	if u, err := url.Parse(v); err == nil && u.User != nil {
		return u.Redacted()
	}
	return v
}

// ValidHTTPURL reports whether v is an absolute http:// or https:// URL.
func ValidHTTPURL(v string) bool {
	u, err := url.Parse(v)
	return v != "" && err == nil && (u.Scheme == "http" || u.Scheme == "https") && u.Host != "" && u.User == nil
}

// OneSecret reports a credential given neither or twice: as key (an
// ${ENV_VAR} reference) and as key_file.
func OneSecret(errf Errorf, base, key string, s Secret, file string) {
	switch {
	case s.Ref == "" && file == "":
		errf(base, "%s: set %s (as ${ENV_VAR}) or %s_file", base, key, key)
	case s.Ref != "" && file != "":
		errf(base+"."+key, "%s: set %s or %s_file, not both", base, key, key)
	}
}

// SecretValue returns the value of a secret given as ${ENV_VAR} or as a
// *_file path.
func SecretValue(s Secret, file string) (string, error) {
	if file != "" {
		return ReadSecretFile(file)
	}
	if s.Reveal() == "" {
		return "", fmt.Errorf("secret %s is empty: is the environment variable set?", s.Ref)
	}
	return s.Reveal(), nil
}
