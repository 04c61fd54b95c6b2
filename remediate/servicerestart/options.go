package servicerestart

import (
	"fmt"
	"regexp"
	"slices"

	"github.com/l2agent/l2agent/configs"
	"github.com/l2agent/l2agent/remediate"
)

func init() {
	remediate.Register("service_restart", func(s configs.Options, p configs.Params, _ remediate.Env) (remediate.Action, error) {
		o := s.(*Settings)
		return &serviceRestart{command: o.Command, unit: remediate.ParamsOr[Params](p).Unit, allow: o.AllowUnits}, nil
	}, func() configs.Options { return &Settings{} }, func() configs.Params { return &Params{} })
}

var unitRe = regexp.MustCompile(`^[A-Za-z0-9:_.@\\-]+\.(service|socket|timer|target|path|mount)$`)

// Settings are service_restart's own keys.
type Settings struct {
	Command string `yaml:"command"` // default /usr/bin/systemctl
	// AllowUnits: the systemd units it may restart.
	AllowUnits []string `yaml:"allow_units"`
}

// ApplyDefaults implements configs.Options.
func (s *Settings) ApplyDefaults(string) {
	if s.Command == "" {
		s.Command = "/usr/bin/systemctl"
	}
}

// Validate implements configs.Options.
func (s *Settings) Validate(at string, errf configs.Errorf) {
	for i, u := range s.AllowUnits {
		if !unitRe.MatchString(u) {
			errf(fmt.Sprintf("%s.allow_units[%d]", at, i), "remediation action service_restart: %q is not a systemd unit name such as clamav-daemon.service", u)
		}
	}
	configs.CheckCommand(errf, at+".command", "service_restart", s.Command)
}

// Params name the unit to restart.
type Params struct {
	Unit string `yaml:"unit"` // one of allow_units
}

// Validate implements configs.Params.
func (p *Params) Validate(at string, errf configs.Errorf, settings configs.Options) {
	if p.Unit != "" && !slices.Contains(settings.(*Settings).AllowUnits, p.Unit) {
		errf(at+".unit", "remediation action service_restart: unit %q is not in allow_units", p.Unit)
	}
}

// Complete implements configs.Params.
func (p *Params) Complete(at string, errf configs.Errorf, _ configs.Options) {
	if p.Unit == "" {
		errf(at, "remediation action service_restart: unit is required")
	}
}
