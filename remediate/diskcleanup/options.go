package diskcleanup

import (
	"fmt"
	"path"
	"strings"

	"github.com/l2agent/l2agent/configs"
	"github.com/l2agent/l2agent/remediate"
)

func init() {
	remediate.Register("disk_cleanup", func(s configs.Options, p configs.Params, ev remediate.Env) (remediate.Action, error) {
		return newDiskCleanup(s.(*Settings), remediate.ParamsOr[Params](p), ev), nil
	}, func() configs.Options { return &Settings{} }, func() configs.Params { return &Params{} })
}

// Settings are disk_cleanup's own keys.
type Settings struct {
	// AllowPaths: the directories it may delete in (never followed out of).
	AllowPaths []string `yaml:"allow_paths"`
}

// ApplyDefaults implements configs.Options; there are none.
func (s *Settings) ApplyDefaults(string) {}

// Validate implements configs.Options.
func (s *Settings) Validate(at string, errf configs.Errorf) {
	for i, d := range s.AllowPaths {
		pp := fmt.Sprintf("%s.allow_paths[%d]", at, i)
		switch {
		case !configs.CleanAbs(d):
			errf(pp, "remediation action disk_cleanup: allow_paths %q: must be a clean absolute path", d)
		case d == "/":
			errf(pp, "remediation action disk_cleanup: allow_paths must not be /")
		}
	}
}

// Params say what disk_cleanup deletes.
type Params struct {
	Paths     []string         `yaml:"paths"`      // directories inside allow_paths; default: allow_paths
	Globs     []string         `yaml:"globs"`      // file name patterns
	OlderThan configs.Duration `yaml:"older_than"` // minimum age (mtime)
}

// Validate implements configs.Params.
func (p *Params) Validate(at string, errf configs.Errorf, settings configs.Options) {
	allow := settings.(*Settings).AllowPaths
	for i, d := range p.Paths {
		pp := fmt.Sprintf("%s.paths[%d]", at, i)
		if !configs.CleanAbs(d) {
			errf(pp, "remediation action disk_cleanup: path %q: must be a clean absolute path", d)
		} else if !configs.UnderAny(d, allow) {
			errf(pp, "remediation action disk_cleanup: path %q is outside allow_paths (%s)", d, strings.Join(allow, ", "))
		}
	}
	for i, g := range p.Globs {
		if _, err := path.Match(g, ""); err != nil || g == "" || strings.Contains(g, "/") {
			errf(fmt.Sprintf("%s.globs[%d]", at, i), "remediation action disk_cleanup: glob %q: want a file name pattern such as *.gz (no /)", g)
		}
	}
}

// Complete implements configs.Params.
func (p *Params) Complete(at string, errf configs.Errorf, settings configs.Options) {
	if len(p.Paths) == 0 && len(settings.(*Settings).AllowPaths) == 0 {
		errf(at, "remediation action disk_cleanup: no paths (set params.paths or the action's allow_paths)")
	}
	if len(p.Globs) == 0 {
		errf(at, "remediation action disk_cleanup: globs are required (e.g. [\"*.gz\"])")
	}
	if p.OlderThan <= 0 {
		errf(at, "remediation action disk_cleanup: older_than is required (e.g. 7d)")
	}
}
