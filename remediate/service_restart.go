package remediate

import (
	"context"
	"errors"
	"fmt"
	"slices"
)

// serviceRestart restarts one allowlisted systemd unit:
// systemctl --no-ask-password restart UNIT.
type serviceRestart struct {
	command string
	unit    string
	allow   []string
}

func (s *serviceRestart) Name() string { return "service_restart" }

func (s *serviceRestart) Plan(ctx context.Context, a Alert) (Plan, error) {
	if s.unit == "" {
		return Plan{}, errors.New("service_restart needs a unit")
	}
	if !slices.Contains(s.allow, s.unit) {
		return Plan{}, fmt.Errorf("unit %q is not in allow_units", s.unit)
	}
	argv := []string{s.command, "--no-ask-password", "restart", s.unit}
	return Plan{Action: s.Name(), Text: "run " + ArgvString(argv), Data: argv}, nil
}

func (s *serviceRestart) Apply(ctx context.Context, p Plan) (Outcome, error) {
	argv, ok := p.Data.([]string)
	if !ok {
		return Outcome{}, errors.New("service_restart: not a service_restart plan")
	}
	r, err := RunCommand(ctx, argv...)
	return CommandOutcome(r, err, "restarted "+s.unit)
}
