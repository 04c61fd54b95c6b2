package configs

import (
	"fmt"
	"net/url"
	"slices"
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

	Backends []Backend `yaml:"backends"`
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
	Name         string               `yaml:"name"`
	Kind         string               `yaml:"kind"` // rt, webhook, file
	Timeout      Duration             `yaml:"timeout"`
	RT           *RTOptions           `yaml:"rt"`
	Webhook      *WebhookOptions      `yaml:"webhook"`
	File         *FileOptions         `yaml:"file"`
	Jira         *JiraOptions         `yaml:"jira"`         // configs/jira.go
	ServiceNow   *ServiceNowOptions   `yaml:"servicenow"`   // configs/servicenow.go
	PagerDuty    *PagerDutyOptions    `yaml:"pagerduty"`    // configs/pagerduty.go
	Alertmanager *AlertmanagerOptions `yaml:"alertmanager"` // configs/alertmanager.go
}

// RTOptions configure a Request Tracker 5 backend (REST 2.0).
type RTOptions struct {
	URL         string `yaml:"url"` // e.g. https://rt.example.com (REST 2.0 is under /REST/2.0/)
	Token       Secret `yaml:"token"`
	TokenFile   string `yaml:"token_file"`
	QueueL2     string `yaml:"queue_l2"`
	QueueL3     string `yaml:"queue_l3"`
	QueueL4     string `yaml:"queue_l4"`
	CustomField string `yaml:"custom_field"` // ticket CF holding the alert key
	PriorityL2  int    `yaml:"priority_l2"`
	PriorityL3  int    `yaml:"priority_l3"`
	PriorityL4  int    `yaml:"priority_l4"`
	OwnerL3     string `yaml:"owner_l3"` // optional owner set on escalation to L3
	OwnerL4     string `yaml:"owner_l4"`
}

// WebhookOptions configure a generic JSON webhook.
type WebhookOptions struct {
	URL        string `yaml:"url"`
	Secret     Secret `yaml:"secret"` // HMAC-SHA256 key for the signature header
	SecretFile string `yaml:"secret_file"`
}

// FileOptions configure the JSON-lines file backend.
type FileOptions struct {
	Path string `yaml:"path"` // default: <state_dir>/tickets.jsonl
}

// BackendKinds are the ticket systems l2agent can talk to.
var BackendKinds = []string{"rt", "webhook", "file", "jira", "servicenow", "pagerduty", "alertmanager"}

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
	if t.Flapping.Window == 0 {
		t.Flapping.Window = Duration(time.Hour)
	}
	for i := range t.Backends {
		b := &t.Backends[i]
		if b.Name == "" {
			b.Name = b.Kind
		}
		if b.Timeout == 0 {
			b.Timeout = Duration(15 * time.Second)
		}
		switch b.Kind {
		case "rt":
			if b.RT == nil {
				b.RT = &RTOptions{}
			}
			o := b.RT
			if o.QueueL2 == "" {
				o.QueueL2 = "General"
			}
			if o.QueueL3 == "" {
				o.QueueL3 = o.QueueL2
			}
			if o.QueueL4 == "" {
				o.QueueL4 = o.QueueL3
			}
			if o.CustomField == "" {
				o.CustomField = "HostCheckKey"
			}
			if o.PriorityL2 == 0 {
				o.PriorityL2 = 50
			}
			if o.PriorityL3 == 0 {
				o.PriorityL3 = 100 // RT shows 50 and 80 both as "Medium"
			}
			if o.PriorityL4 == 0 {
				o.PriorityL4 = 100
			}
		case "webhook":
			if b.Webhook == nil {
				b.Webhook = &WebhookOptions{}
			}
		case "jira":
			if b.Jira == nil {
				b.Jira = &JiraOptions{}
			}
			b.Jira.applyDefaults()
		case "servicenow":
			if b.ServiceNow == nil {
				b.ServiceNow = &ServiceNowOptions{}
			}
			b.ServiceNow.applyDefaults()
		case "pagerduty":
			if b.PagerDuty == nil {
				b.PagerDuty = &PagerDutyOptions{}
			}
			b.PagerDuty.applyDefaults()
		case "alertmanager":
			if b.Alertmanager == nil {
				b.Alertmanager = &AlertmanagerOptions{}
			}
			b.Alertmanager.applyDefaults()
		case "file":
			if b.File == nil {
				b.File = &FileOptions{}
			}
			if b.File.Path == "" {
				b.File.Path = stateDir + "/tickets.jsonl"
			}
		}
	}
}

func (t *Ticketing) validate(errf func(path, format string, args ...any)) {
	names := map[string]bool{}
	for i, b := range t.Backends {
		base := fmt.Sprintf("ticketing.backends[%d]", i)
		if !slices.Contains(BackendKinds, b.Kind) {
			errf(base+".kind", "ticketing backend %q: unknown kind %q (known: %s)", b.Name, b.Kind, strings.Join(BackendKinds, ", "))
		}
		if names[b.Name] {
			errf(base+".name", "duplicate ticketing backend name %q", b.Name)
		}
		names[b.Name] = true
		for _, blk := range []struct {
			name string
			set  bool
		}{{"rt", b.RT != nil}, {"webhook", b.Webhook != nil}, {"file", b.File != nil},
			{"jira", b.Jira != nil}, {"servicenow", b.ServiceNow != nil}, {"pagerduty", b.PagerDuty != nil},
			{"alertmanager", b.Alertmanager != nil}} {
			if blk.set && blk.name != b.Kind {
				errf(base+"."+blk.name, "ticketing backend %q: a %s: block does not apply to kind %q", b.Name, blk.name, b.Kind)
			}
		}
		switch b.Kind {
		case "rt":
			o := b.RT
			checkURL(errf, base+".rt.url", o.URL)
			oneSecret(errf, base+".rt", "token", o.Token, o.TokenFile)
		case "webhook":
			o := b.Webhook
			checkURL(errf, base+".webhook.url", o.URL)
			oneSecret(errf, base+".webhook", "secret", o.Secret, o.SecretFile)
		case "jira":
			b.Jira.validate(base+".jira", errf)
		case "servicenow":
			b.ServiceNow.validate(base+".servicenow", errf)
		case "pagerduty":
			b.PagerDuty.validate(base+".pagerduty", errf)
		case "alertmanager":
			b.Alertmanager.validate(base+".alertmanager", errf)
		}
	}
}

func checkURL(errf func(path, format string, args ...any), path, v string) {
	if !ValidHTTPURL(v) {
		errf(path, "%s %q: want an http:// or https:// URL", path, v)
	}
}

// ValidHTTPURL reports whether v is an absolute http:// or https:// URL.
func ValidHTTPURL(v string) bool {
	u, err := url.Parse(v)
	return v != "" && err == nil && (u.Scheme == "http" || u.Scheme == "https") && u.Host != ""
}

func oneSecret(errf func(path, format string, args ...any), base, key string, s Secret, file string) {
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
