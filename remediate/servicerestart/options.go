package servicerestart

import (
	"github.com/l2agent/l2agent/configs"
	"github.com/l2agent/l2agent/remediate"
)

func init() {
	remediate.Register("service_restart", func(s configs.Options, p configs.Params, ev remediate.Env) (remediate.Action, error) {
		o := s.(*Settings)
		return kind.New(o.Command, o.AllowUnits, remediate.ParamsOr[Params](p).Unit, ev.Root), nil
	}, func() configs.Options { return &Settings{} }, func() configs.Params { return &Params{} })
}

// Settings are service_restart's own keys.
type Settings struct {
	Command string `yaml:"command"` // default /usr/bin/systemctl
	// AllowUnits: the systemd units it may restart.
	AllowUnits []string `yaml:"allow_units"`
}

// ApplyDefaults implements configs.Options.
func (s *Settings) ApplyDefaults(string) { kind.DefaultCommand(&s.Command) }

// Validate implements configs.Options.
func (s *Settings) Validate(at string, errf configs.Errorf) {
	kind.ValidateSettings(at, errf, s.Command, s.AllowUnits)
}

// Params name the unit to restart.
type Params struct {
	Unit string `yaml:"unit"` // one of allow_units
}

// Validate implements configs.Params.
func (p *Params) Validate(at string, errf configs.Errorf, settings configs.Options) {
	kind.ValidateValue(at, errf, p.Unit, settings.(*Settings).AllowUnits)
}

// Complete implements configs.Params.
func (p *Params) Complete(at string, errf configs.Errorf, _ configs.Options) {
	kind.CompleteValue(at, errf, p.Unit)
}
