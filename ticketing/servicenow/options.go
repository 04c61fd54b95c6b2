package servicenow

import (
	"github.com/l2agent/l2agent/configs"
	"github.com/l2agent/l2agent/ticketing"
)

// Options configure a ServiceNow backend (Table API on incident).
// Auth is basic (user + password) or an OAuth bearer token: exactly one.
type Options struct {
	URL          string         `yaml:"url"` // e.g. https://example.service-now.com
	User         string         `yaml:"user"`
	Password     configs.Secret `yaml:"password"`
	PasswordFile string         `yaml:"password_file"`
	Token        configs.Secret `yaml:"token"` // OAuth access token
	TokenFile    string         `yaml:"token_file"`
	// Assignment groups per tier, by sys_id or name; empty L3/L4 fall back
	// to the tier below.
	AssignmentGroupL2 string `yaml:"assignment_group_l2"`
	AssignmentGroupL3 string `yaml:"assignment_group_l3"`
	AssignmentGroupL4 string `yaml:"assignment_group_l4"`
	CallerID          string `yaml:"caller_id"`     // optional: caller, where the instance requires one
	Category          string `yaml:"category"`      // optional
	UrgencyWarn       int    `yaml:"urgency_warn"`  // default 2
	ImpactWarn        int    `yaml:"impact_warn"`   // default 2
	UrgencyCrit       int    `yaml:"urgency_crit"`  // default 1
	ImpactCrit        int    `yaml:"impact_crit"`   // default 1
	CloseCode         string `yaml:"close_code"`    // default "Solved (Permanently)"
	ResolveState      int    `yaml:"resolve_state"` // default 6 (Resolved)
	ReopenState       int    `yaml:"reopen_state"`  // default 1 (New); 2 is In Progress
}

// ApplyDefaults implements configs.Options: it fills what the config left out.
func (o *Options) ApplyDefaults(string) {
	def := func(p *int, v int) {
		if *p == 0 {
			*p = v
		}
	}
	def(&o.UrgencyWarn, 2)
	def(&o.ImpactWarn, 2)
	def(&o.UrgencyCrit, 1)
	def(&o.ImpactCrit, 1)
	def(&o.ResolveState, 6)
	def(&o.ReopenState, 1)
	if o.CloseCode == "" {
		o.CloseCode = "Solved (Permanently)"
	}
	if o.AssignmentGroupL3 == "" {
		o.AssignmentGroupL3 = o.AssignmentGroupL2
	}
	if o.AssignmentGroupL4 == "" {
		o.AssignmentGroupL4 = o.AssignmentGroupL3
	}
}

// validate reports bad values.
func (o *Options) Validate(path string, errf configs.Errorf) {
	configs.CheckURL(errf, path+".url", o.URL)
	basic := o.User != "" || o.Password.Ref != "" || o.PasswordFile != ""
	bearer := o.Token.Ref != "" || o.TokenFile != ""
	switch {
	case basic && bearer:
		errf(path, "%s: set user + password (basic auth) or token (OAuth bearer), not both", path)
	case basic:
		configs.OneSecret(errf, path, "password", o.Password, o.PasswordFile)
		if o.User == "" {
			errf(path+".user", "%s: password needs user (basic auth)", path)
		}
	case bearer:
		configs.OneSecret(errf, path, "token", o.Token, o.TokenFile)
	default:
		errf(path, "%s: set user + password (or password_file) for basic auth, or token (or token_file) for an OAuth bearer token", path)
	}
	for _, v := range []struct {
		k string
		n int
	}{{"urgency_warn", o.UrgencyWarn}, {"impact_warn", o.ImpactWarn}, {"urgency_crit", o.UrgencyCrit}, {"impact_crit", o.ImpactCrit}} {
		if v.n < 1 || v.n > 3 {
			errf(path+"."+v.k, "%s.%s %d: want 1 (high), 2 (medium) or 3 (low)", path, v.k, v.n)
		}
	}
}

func init() {
	ticketing.Register("servicenow", func(b configs.Backend) (ticketing.Ticketer, error) {
		return New(b.Name, *b.Options.(*Options), b.Timeout.D())
	}, func() configs.Options { return &Options{} })
}
