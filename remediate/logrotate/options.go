package logrotate

import (
	"github.com/l2agent/l2agent/configs"
	"github.com/l2agent/l2agent/remediate"
)

func init() {
	remediate.Register("logrotate", func(s configs.Options, p configs.Params, ev remediate.Env) (remediate.Action, error) {
		o := s.(*Settings)
		return kind.New(o.Command, o.AllowConfigs, remediate.ParamsOr[Params](p).Config, ev.Root), nil
	}, func() configs.Options { return &Settings{} }, func() configs.Params { return &Params{} })
}

// Settings are logrotate's own keys.
type Settings struct {
	Command string `yaml:"command"` // default /usr/sbin/logrotate
	// AllowConfigs: the logrotate configs that may be forced.
	AllowConfigs []string `yaml:"allow_configs"`
}

// ApplyDefaults implements configs.Options.
func (s *Settings) ApplyDefaults(string) { kind.DefaultCommand(&s.Command) }

// Validate implements configs.Options.
func (s *Settings) Validate(at string, errf configs.Errorf) {
	kind.ValidateSettings(at, errf, s.Command, s.AllowConfigs)
}

// Params name the config to force.
type Params struct {
	Config string `yaml:"config"` // one of allow_configs
}

// Validate implements configs.Params.
func (p *Params) Validate(at string, errf configs.Errorf, settings configs.Options) {
	kind.ValidateValue(at, errf, p.Config, settings.(*Settings).AllowConfigs)
}

// Complete implements configs.Params.
func (p *Params) Complete(at string, errf configs.Errorf, _ configs.Options) {
	kind.CompleteValue(at, errf, p.Config)
}
