// Package servicerestart is the remediation action service_restart: it
// restarts one allowlisted systemd unit, systemctl --no-ask-password
// restart UNIT.
package servicerestart

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/l2agent/l2agent/remediate"
)

// serviceRestart restarts one allowlisted systemd unit:
// systemctl --no-ask-password restart UNIT.
type serviceRestart struct {
	command string
	unit    string
	allow   []string
}

func (s *serviceRestart) Name() string { return "service_restart" }

func (s *serviceRestart) Plan(ctx context.Context, a remediate.Alert) (remediate.Plan, error) {
	if s.unit == "" {
		return remediate.Plan{}, errors.New("service_restart needs a unit")
	}
	if !slices.Contains(s.allow, s.unit) {
		return remediate.Plan{}, fmt.Errorf("unit %q is not in allow_units", s.unit)
	}
	argv := []string{s.command, "--no-ask-password", "restart", s.unit}
	return remediate.Plan{Action: s.Name(), Text: "run " + remediate.ArgvString(argv), Data: argv}, nil
}

func (s *serviceRestart) Apply(ctx context.Context, p remediate.Plan) (remediate.Outcome, error) {
	argv, ok := p.Data.([]string)
	if !ok {
		return remediate.Outcome{}, errors.New("service_restart: not a service_restart plan")
	}
	r, err := remediate.RunCommand(ctx, argv...)
	return remediate.CommandOutcome(r, err, "restarted "+s.unit)
}
