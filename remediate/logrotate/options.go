package logrotate

import (
	"fmt"
	"slices"

	"github.com/l2agent/l2agent/configs"
	"github.com/l2agent/l2agent/remediate"
)

func init() {
	remediate.Register("logrotate", func(s configs.Options, p configs.Params, _ remediate.Env) (remediate.Action, error) {
		o := s.(*Settings)
		return &logrotate{command: o.Command, config: remediate.ParamsOr[Params](p).Config, allow: o.AllowConfigs}, nil
	}, func() configs.Options { return &Settings{} }, func() configs.Params { return &Params{} })
}

// Settings are logrotate's own keys.
type Settings struct {
	Command string `yaml:"command"` // default /usr/sbin/logrotate
	// AllowConfigs: the logrotate configs that may be forced.
	AllowConfigs []string `yaml:"allow_configs"`
}

// ApplyDefaults implements configs.Options.
func (s *Settings) ApplyDefaults(string) {
	if s.Command == "" {
		s.Command = "/usr/sbin/logrotate"
	}
}

// Validate implements configs.Options.
func (s *Settings) Validate(at string, errf configs.Errorf) {
	for i, c := range s.AllowConfigs {
		if !configs.CleanAbs(c) {
			errf(fmt.Sprintf("%s.allow_configs[%d]", at, i), "remediation action logrotate: allow_configs %q: must be a clean absolute path", c)
		}
	}
	configs.CheckCommand(errf, at+".command", "logrotate", s.Command)
}

// Params name the config to force.
type Params struct {
	Config string `yaml:"config"` // one of allow_configs
}

// Validate implements configs.Params.
func (p *Params) Validate(at string, errf configs.Errorf, settings configs.Options) {
	if p.Config != "" && !slices.Contains(settings.(*Settings).AllowConfigs, p.Config) {
		errf(at+".config", "remediation action logrotate: config %q is not in allow_configs", p.Config)
	}
}

// Complete implements configs.Params.
func (p *Params) Complete(at string, errf configs.Errorf, _ configs.Options) {
	if p.Config == "" {
		errf(at, "remediation action logrotate: config is required")
	}
}
