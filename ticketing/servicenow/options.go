package servicenow

import (
	"time"

	"github.com/l2agent/l2agent/configs"
	"github.com/l2agent/l2agent/ticketing"
)

// Options configure a ServiceNow backend (Table API on incident).
// Auth is exactly one of: basic (user + password), a bearer token read from
// the config (token), or OAuth (the oauth block: the agent gets its access
// tokens from the instance and renews them).
type Options struct {
	URL          string         `yaml:"url"` // e.g. https://example.service-now.com
	User         string         `yaml:"user"`
	Password     configs.Secret `yaml:"password"`
	PasswordFile string         `yaml:"password_file"`
	Token        configs.Secret `yaml:"token"` // OAuth access token obtained elsewhere
	TokenFile    string         `yaml:"token_file"`
	OAuth        *OAuth         `yaml:"oauth"`
	// Assignment groups per tier, by sys_id or name; empty L3/L4 fall back
	// to the tier below. A name is looked up once in sys_user_group.
	AssignmentGroupL2 string `yaml:"assignment_group_l2"`
	AssignmentGroupL3 string `yaml:"assignment_group_l3"`
	AssignmentGroupL4 string `yaml:"assignment_group_l4"`
	CallerID          string `yaml:"caller_id"`     // optional: sys_id, user_name or name of a sys_user
	Category          string `yaml:"category"`      // optional
	UrgencyWarn       int    `yaml:"urgency_warn"`  // default 2
	ImpactWarn        int    `yaml:"impact_warn"`   // default 2
	UrgencyCrit       int    `yaml:"urgency_crit"`  // default 1
	ImpactCrit        int    `yaml:"impact_crit"`   // default 1
	CloseCode         string `yaml:"close_code"`    // default "Solution provided"
	ResolveState      int    `yaml:"resolve_state"` // default 6 (Resolved)
	ReopenState       int    `yaml:"reopen_state"`  // default 2 (In Progress); 1 is New
	// ReuseResolved: an incident of the key found Resolved (by Find, after
	// the agent lost its record) is used again when it was resolved within
	// this long; older, or Closed or Canceled, a new incident names it.
	// Default 24h (ticketing.reopen_window's default); 0: never.
	ReuseResolved *configs.Duration `yaml:"reuse_resolved"`
}

// OAuth is how the agent gets OAuth access tokens from the instance
// (POST /oauth_token.do) and renews them before they expire.
type OAuth struct {
	ClientID         string         `yaml:"client_id"`
	ClientSecret     configs.Secret `yaml:"client_secret"`
	ClientSecretFile string         `yaml:"client_secret_file"`
	// Grant is client_credentials (the default without user), password
	// (the default with user: the block's user and password) or
	// refresh_token (refresh_token or refresh_token_file).
	Grant            string         `yaml:"grant"`
	RefreshToken     configs.Secret `yaml:"refresh_token"`
	RefreshTokenFile string         `yaml:"refresh_token_file"`
	TokenURL         string         `yaml:"token_url"` // default <url>/oauth_token.do
}

// The OAuth grants.
const (
	GrantClientCredentials = "client_credentials"
	GrantPassword          = "password"
	GrantRefreshToken      = "refresh_token"
)

// Defaults of what the config leaves out.
const (
	DefaultCloseCode     = "Solution provided" // the incident choice list since Utah
	DefaultReuseResolved = 24 * time.Hour
)

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
	def(&o.ReopenState, 2)
	if o.CloseCode == "" {
		o.CloseCode = DefaultCloseCode
	}
	if o.AssignmentGroupL3 == "" {
		o.AssignmentGroupL3 = o.AssignmentGroupL2
	}
	if o.AssignmentGroupL4 == "" {
		o.AssignmentGroupL4 = o.AssignmentGroupL3
	}
	if o.ReuseResolved == nil {
		d := configs.Duration(DefaultReuseResolved)
		o.ReuseResolved = &d
	}
	if a := o.OAuth; a != nil && a.Grant == "" {
		switch {
		case o.User != "":
			a.Grant = GrantPassword
		case a.RefreshToken.Ref != "" || a.RefreshTokenFile != "":
			a.Grant = GrantRefreshToken
		default:
			a.Grant = GrantClientCredentials
		}
	}
}

// Validate implements configs.Options: it reports bad values, each at its
// place in the file.
func (o *Options) Validate(path string, errf configs.Errorf) {
	configs.CheckURL(errf, path+".url", o.URL)
	basic := o.User != "" || o.Password.Ref != "" || o.PasswordFile != ""
	bearer := o.Token.Ref != "" || o.TokenFile != ""
	switch {
	case o.OAuth != nil && bearer:
		errf(path+".oauth", "%s: set token (a bearer token obtained elsewhere) or oauth (the agent gets its tokens), not both", path)
	case o.OAuth != nil:
		o.OAuth.validate(path, errf, o)
	case basic && bearer:
		errf(path, "%s: set user + password (basic auth) or token (OAuth bearer), not both", path)
	case basic:
		o.validateBasic(path, errf, "basic auth")
	case bearer:
		configs.OneSecret(errf, path, "token", o.Token, o.TokenFile)
	default:
		errf(path, "%s: set user + password (or password_file) for basic auth, token (or token_file) for an OAuth bearer token, or an oauth block", path)
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

func (o *Options) validateBasic(path string, errf configs.Errorf, what string) {
	configs.OneSecret(errf, path, "password", o.Password, o.PasswordFile)
	if o.User == "" {
		errf(path+".user", "%s: password needs user (%s)", path, what)
	}
}

// validate reports an incomplete or contradictory oauth block; o is the
// backend's block, whose user and password the password grant uses.
func (a *OAuth) validate(path string, errf configs.Errorf, o *Options) {
	p := path + ".oauth"
	if a.ClientID == "" {
		errf(p+".client_id", "%s: client_id is required (System OAuth > Application Registry)", p)
	}
	configs.OneSecret(errf, p, "client_secret", a.ClientSecret, a.ClientSecretFile)
	if a.TokenURL != "" {
		configs.CheckURL(errf, p+".token_url", a.TokenURL)
	}
	basic := o.User != "" || o.Password.Ref != "" || o.PasswordFile != ""
	refresh := a.RefreshToken.Ref != "" || a.RefreshTokenFile != ""
	switch a.Grant {
	case GrantPassword:
		if refresh {
			errf(p+".grant", "%s.grant password: drop refresh_token (the agent gets its own with the password)", p)
		}
		if !basic {
			errf(p+".grant", "%s.grant password: set user and password (or password_file) beside oauth", p)
		} else {
			o.validateBasic(path, errf, "the OAuth password grant")
		}
	case GrantRefreshToken:
		configs.OneSecret(errf, p, "refresh_token", a.RefreshToken, a.RefreshTokenFile)
	case GrantClientCredentials:
		if refresh {
			errf(p+".grant", "%s.grant client_credentials: refresh_token is only for grant refresh_token", p)
		}
	default:
		errf(p+".grant", "%s.grant %q: want client_credentials, password or refresh_token", p, a.Grant)
	}
	if basic && a.Grant != GrantPassword {
		at := path + ".user"
		switch {
		case o.User != "":
		case o.Password.Ref != "":
			at = path + ".password"
		default:
			at = path + ".password_file"
		}
		errf(at, "%s: user and password are only for the OAuth password grant (%s.grant is %s)", path, p, a.Grant)
	}
}

func init() {
	ticketing.Register("servicenow", func(b configs.Backend) (ticketing.Ticketer, error) {
		return New(b.Name, *b.Options.(*Options), b.Timeout.D())
	}, func() configs.Options { return &Options{} })
}
