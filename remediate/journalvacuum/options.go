package journalvacuum

import (
	"github.com/l2agent/l2agent/configs"
	"github.com/l2agent/l2agent/remediate"
)

func init() {
	remediate.Register("journal_vacuum", func(s configs.Options, p configs.Params, ev remediate.Env) (remediate.Action, error) {
		return &journalVacuum{command: s.(*Settings).Command, params: *remediate.ParamsOr[Params](p), root: ev.Root}, nil
	}, func() configs.Options { return &Settings{} },
		func() configs.Params { return &Params{} })
}

// Settings are journal_vacuum's own keys.
type Settings struct {
	Command string `yaml:"command"` // default /usr/bin/journalctl
}

// ApplyDefaults implements configs.Options.
func (s *Settings) ApplyDefaults(string) {
	if s.Command == "" {
		s.Command = "/usr/bin/journalctl"
	}
}

// Validate implements configs.Options.
func (s *Settings) Validate(at string, errf configs.Errorf) {
	configs.CheckCommand(errf, at+".command", "journal_vacuum", s.Command)
}

// Params bound what journalctl keeps.
type Params struct {
	VacuumSize string           `yaml:"vacuum_size"` // e.g. 500M
	VacuumTime configs.Duration `yaml:"vacuum_time"` // e.g. 30d
}

// Validate implements configs.Params.
func (p *Params) Validate(at string, errf configs.Errorf, _ configs.Options) {
	if p.VacuumSize != "" && !vacuumSizeRe.MatchString(p.VacuumSize) {
		errf(at+".vacuum_size", "remediation action journal_vacuum: vacuum_size %q: want a size such as 500M or 2G", p.VacuumSize)
	}
}

// Complete implements configs.Params.
func (p *Params) Complete(at string, errf configs.Errorf, _ configs.Options) {
	if p.VacuumSize == "" && p.VacuumTime == 0 {
		errf(at, "remediation action journal_vacuum: set vacuum_size, vacuum_time or both")
	}
}
