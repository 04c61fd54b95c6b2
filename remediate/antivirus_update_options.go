package remediate

import (
	"time"

	"github.com/l2agent/l2agent/configs"
)

func init() {
	Register("antivirus_update", func(s configs.Options, _ configs.Params, _ Env) (Action, error) {
		return &antivirusUpdate{command: s.(*AntivirusUpdateSettings).Command}, nil
	}, func() configs.Options { return &AntivirusUpdateSettings{} }, nil)
}

// AntivirusUpdateSettings are antivirus_update's own keys.
type AntivirusUpdateSettings struct {
	Command string `yaml:"command"` // default /usr/bin/freshclam
}

// ApplyDefaults implements configs.Options.
func (s *AntivirusUpdateSettings) ApplyDefaults(string) {
	if s.Command == "" {
		s.Command = "/usr/bin/freshclam"
	}
}

// Validate implements configs.Options.
func (s *AntivirusUpdateSettings) Validate(at string, errf configs.Errorf) {
	configs.CheckCommand(errf, at+".command", "antivirus_update", s.Command)
}

// DefaultPolicy implements configs.PolicyHook: a signature download may
// take 10 minutes.
func (s *AntivirusUpdateSettings) DefaultPolicy(p *configs.ActionPolicy) {
	if p.Timeout == 0 {
		p.Timeout = configs.Duration(10 * time.Minute)
	}
}

// ValidatePolicy implements configs.PolicyHook.
func (s *AntivirusUpdateSettings) ValidatePolicy(string, configs.Errorf, *configs.ActionPolicy) {}
