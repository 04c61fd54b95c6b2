// Package logrotate is the remediation action logrotate: it forces one
// allowlisted logrotate config, logrotate -f CONFIG.
package logrotate

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/l2agent/l2agent/remediate"
)

// logrotate forces one allowlisted logrotate config: logrotate -f CONFIG.
type logrotate struct {
	command string
	config  string
	allow   []string
}

func (l *logrotate) Name() string { return "logrotate" }

func (l *logrotate) Plan(ctx context.Context, a remediate.Alert) (remediate.Plan, error) {
	if l.config == "" {
		return remediate.Plan{}, errors.New("logrotate needs a config")
	}
	if !slices.Contains(l.allow, l.config) {
		return remediate.Plan{}, fmt.Errorf("config %q is not in allow_configs", l.config)
	}
	argv := []string{l.command, "-f", l.config}
	return remediate.Plan{Action: l.Name(), Text: "run " + remediate.ArgvString(argv), Data: argv}, nil
}

func (l *logrotate) Apply(ctx context.Context, p remediate.Plan) (remediate.Outcome, error) {
	argv, ok := p.Data.([]string)
	if !ok {
		return remediate.Outcome{}, errors.New("logrotate: not a logrotate plan")
	}
	r, err := remediate.RunCommand(ctx, argv...)
	return remediate.CommandOutcome(r, err, "rotated "+l.config)
}
