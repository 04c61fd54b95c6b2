package jira

import (
	"path/filepath"

	"github.com/l2agent/l2agent/configs"
	"github.com/l2agent/l2agent/ticketing"
)

// The flavors of Jira: which REST API and search endpoint the backend uses.
const (
	FlavorCloud      = "cloud"      // Jira Cloud: REST v3, POST /rest/api/3/search/jql
	FlavorDataCenter = "datacenter" // Jira Data Center / Server: REST v2, POST /rest/api/2/search
)

// Options configure a Jira Cloud (REST v3) or Data Center (REST v2)
// ticket backend. Auth is basic with email + API token, or a bearer personal
// access token (pat): exactly one.
type Options struct {
	URL string `yaml:"url"` // e.g. https://example.atlassian.net
	// Flavor is cloud or datacenter; empty: asked of Jira
	// (GET /rest/api/2/serverInfo, deploymentType) at the first call.
	Flavor     string         `yaml:"flavor"`
	APIVersion int            `yaml:"api_version"` // 3 (Cloud, ADF bodies) or 2 (Data Center, plain text); 0: the flavor's
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
	Resolution         string `yaml:"resolution"`          // optional resolution name set with transition_resolve, where its screen has the field

	// stateDir is where the journal of creates is kept (create.go); empty:
	// in memory only.
	stateDir string
}

// ApplyDefaults implements configs.Options: it fills what the config left
// out. api_version stays 0 when not given: the flavor's own (3 on Cloud, 2
// on Data Center) is used.
func (o *Options) ApplyDefaults(stateDir string) {
	if o.IssueType == "" {
		o.IssueType = "Task"
	}
	if o.TransitionResolve == "" {
		o.TransitionResolve = "Done"
	}
	if o.TransitionReopen == "" {
		o.TransitionReopen = "To Do"
	}
	o.stateDir = stateDir
}

// MoveStateDir implements configs.StateDirMover: the journal of creates
// follows the state dir.
func (o *Options) MoveStateDir(from, to string) {
	if o.stateDir == from {
		o.stateDir = to
	}
}

// journalPath is the file of the journal of creates of the backend called
// name, or "" when there is no state dir.
func (o *Options) journalPath(name string) string {
	if o.stateDir == "" {
		return ""
	}
	return filepath.Join(o.stateDir, "jira-"+fileSafe(name)+".creates.json")
}

// Validate implements configs.Options: it reports bad values.
func (o *Options) Validate(path string, errf configs.Errorf) {
	configs.CheckURL(errf, path+".url", o.URL)
	o.validateFlavor(path, errf)
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

// validateFlavor: flavor is cloud, datacenter or empty; api_version 2 or 3
// (or left out), and the one the flavor has.
func (o *Options) validateFlavor(path string, errf configs.Errorf) {
	switch o.Flavor {
	case "", FlavorCloud, FlavorDataCenter:
	default:
		errf(path+".flavor", "%s.flavor %q: want cloud or datacenter (or leave it out: asked of Jira)", path, o.Flavor)
		return
	}
	if o.APIVersion != 0 && o.APIVersion != 2 && o.APIVersion != 3 {
		errf(path+".api_version", "%s.api_version %d: want 2 (Data Center) or 3 (Cloud)", path, o.APIVersion)
		return
	}
	if msg := flavorMismatch(o.Flavor == FlavorCloud, o.APIVersion); o.Flavor != "" && msg != "" {
		errf(path+".api_version", "%s.api_version %d: %s", path, o.APIVersion, msg)
	}
}

// flavorMismatch says why api_version v (0: the flavor's) does not work on
// the flavor, or "".
func flavorMismatch(cloud bool, v int) string {
	switch {
	case cloud && v == 2:
		return "Jira Cloud removed /rest/api/2/search (it answers 410); use api_version 3 (or leave it out)"
	case !cloud && v == 3:
		return "Jira Data Center has no REST API v3 (it answers 404); use api_version 2 (or leave it out)"
	}
	return ""
}

func init() {
	ticketing.Register("jira", func(b configs.Backend) (ticketing.Ticketer, error) {
		return New(b.Name, *b.Options.(*Options), b.Timeout.D())
	}, func() configs.Options { return &Options{} })
}
