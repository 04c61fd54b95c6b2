package jira

import (
	"github.com/l2agent/l2agent/configs"
	"github.com/l2agent/l2agent/ticketing"
)

// Options configure a Jira Cloud (REST v3) or Data Center (REST v2)
// ticket backend. Auth is basic with email + API token, or a bearer personal
// access token (pat): exactly one.
type Options struct {
	URL        string         `yaml:"url"`         // e.g. https://example.atlassian.net
	APIVersion int            `yaml:"api_version"` // 3 (Cloud, ADF bodies; default) or 2 (Data Center, plain text)
	Email      string         `yaml:"email"`       // with token: basic auth
	Token      configs.Secret `yaml:"token"`
	TokenFile  string         `yaml:"token_file"`
	PAT        configs.Secret `yaml:"pat"` // bearer personal access token
	PATFile    string         `yaml:"pat_file"`
	Project    string         `yaml:"project"`    // project key, e.g. OPS
	IssueType  string         `yaml:"issue_type"` // default Task
	PriorityL2 string         `yaml:"priority_l2"`
	PriorityL3 string         `yaml:"priority_l3"`
	PriorityL4 string         `yaml:"priority_l4"`
	// Component names per tier; empty leaves components alone.
	ComponentsL2 []string `yaml:"components_l2"`
	ComponentsL3 []string `yaml:"components_l3"`
	ComponentsL4 []string `yaml:"components_l4"`
	// Transitions by name, case-insensitive.
	TransitionResolve  string `yaml:"transition_resolve"`  // default Done
	TransitionReopen   string `yaml:"transition_reopen"`   // default To Do
	TransitionEscalate string `yaml:"transition_escalate"` // optional
	Resolution         string `yaml:"resolution"`          // optional resolution name set with transition_resolve
}

// ApplyDefaults implements configs.Options: it fills what the config left out.
func (o *Options) ApplyDefaults(string) {
	if o.APIVersion == 0 {
		o.APIVersion = 3
	}
	if o.IssueType == "" {
		o.IssueType = "Task"
	}
	if o.TransitionResolve == "" {
		o.TransitionResolve = "Done"
	}
	if o.TransitionReopen == "" {
		o.TransitionReopen = "To Do"
	}
}

// validate reports bad values.
func (o *Options) Validate(path string, errf configs.Errorf) {
	configs.CheckURL(errf, path+".url", o.URL)
	if o.APIVersion != 2 && o.APIVersion != 3 {
		errf(path+".api_version", "%s.api_version %d: want 2 (Data Center) or 3 (Cloud)", path, o.APIVersion)
	}
	if o.Project == "" {
		errf(path+".project", "%s.project: set the project key", path)
	}
	basic := o.Token.Ref != "" || o.TokenFile != ""
	bearer := o.PAT.Ref != "" || o.PATFile != ""
	switch {
	case basic && bearer:
		errf(path, "%s: set email + token (basic auth) or pat (bearer), not both", path)
	case basic:
		configs.OneSecret(errf, path, "token", o.Token, o.TokenFile)
		if o.Email == "" {
			errf(path+".email", "%s: token needs email (basic auth)", path)
		}
	case bearer:
		configs.OneSecret(errf, path, "pat", o.PAT, o.PATFile)
	default:
		errf(path, "%s: set email + token (or token_file) for basic auth, or pat (or pat_file) for a bearer personal access token", path)
	}
}

func init() {
	ticketing.Register("jira", func(b configs.Backend) (ticketing.Ticketer, error) {
		return New(b.Name, *b.Options.(*Options), b.Timeout.D())
	}, func() configs.Options { return &Options{} })
}
