package antivirusupdate

import (
	"time"

	"github.com/l2agent/l2agent/configs"
	"github.com/l2agent/l2agent/remediate"
)

func init() {
	remediate.Register("antivirus_update", func(s configs.Options, _ configs.Params, ev remediate.Env) (remediate.Action, error) {
		return &antivirusUpdate{command: s.(*Settings).Command, root: ev.Root}, nil
	}, func() configs.Options { return &Settings{} }, nil)
}

// Settings are antivirus_update's own keys.
type Settings struct {
	Command string `yaml:"command"` // default /usr/bin/freshclam
}

// ApplyDefaults implements configs.Options.
func (s *Settings) ApplyDefaults(string) {
	if s.Command == "" {
		s.Command = "/usr/bin/freshclam"
	}
}

// Validate implements configs.Options.
func (s *Settings) Validate(at string, errf configs.Errorf) {
	configs.CheckCommand(errf, at+".command", "antivirus_update", s.Command)
}

// DefaultPolicy implements configs.PolicyHook: a signature download may
// take 10 minutes.
func (s *Settings) DefaultPolicy(p *configs.ActionPolicy) {
	if p.Timeout == 0 {
		p.Timeout = configs.Duration(10 * time.Minute)
	}
}

// ValidatePolicy implements configs.PolicyHook.
func (s *Settings) ValidatePolicy(string, configs.Errorf, *configs.ActionPolicy) {}
