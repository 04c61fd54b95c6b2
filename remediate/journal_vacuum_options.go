package remediate

import (
	"github.com/l2agent/l2agent/configs"
)

func init() {
	Register("journal_vacuum", func(s configs.Options, p configs.Params, _ Env) (Action, error) {
		return &journalVacuum{command: s.(*JournalVacuumSettings).Command, params: *ParamsOr[JournalVacuumParams](p)}, nil
	}, func() configs.Options { return &JournalVacuumSettings{} },
		func() configs.Params { return &JournalVacuumParams{} })
}

// JournalVacuumSettings are journal_vacuum's own keys.
type JournalVacuumSettings struct {
	Command string `yaml:"command"` // default /usr/bin/journalctl
}

// ApplyDefaults implements configs.Options.
func (s *JournalVacuumSettings) ApplyDefaults(string) {
	if s.Command == "" {
		s.Command = "/usr/bin/journalctl"
	}
}

// Validate implements configs.Options.
func (s *JournalVacuumSettings) Validate(at string, errf configs.Errorf) {
	configs.CheckCommand(errf, at+".command", "journal_vacuum", s.Command)
}

// JournalVacuumParams bound what journalctl keeps.
type JournalVacuumParams struct {
	VacuumSize string           `yaml:"vacuum_size"` // e.g. 500M
	VacuumTime configs.Duration `yaml:"vacuum_time"` // e.g. 30d
}

// Validate implements configs.Params.
func (p *JournalVacuumParams) Validate(at string, errf configs.Errorf, _ configs.Options) {
	if p.VacuumSize != "" && !vacuumSizeRe.MatchString(p.VacuumSize) {
		errf(at+".vacuum_size", "remediation action journal_vacuum: vacuum_size %q: want a size such as 500M or 2G", p.VacuumSize)
	}
}

// Complete implements configs.Params.
func (p *JournalVacuumParams) Complete(at string, errf configs.Errorf, _ configs.Options) {
	if p.VacuumSize == "" && p.VacuumTime == 0 {
		errf(at, "remediation action journal_vacuum: set vacuum_size, vacuum_time or both")
	}
}
