package remediate

import (
	"context"
	"errors"
	"fmt"
	"slices"
)

// logrotate forces one allowlisted logrotate config: logrotate -f CONFIG.
type logrotate struct {
	command string
	config  string
	allow   []string
}

func (l *logrotate) Name() string { return "logrotate" }

func (l *logrotate) Plan(ctx context.Context, a Alert) (Plan, error) {
	if l.config == "" {
		return Plan{}, errors.New("logrotate needs a config")
	}
	if !slices.Contains(l.allow, l.config) {
		return Plan{}, fmt.Errorf("config %q is not in allow_configs", l.config)
	}
	argv := []string{l.command, "-f", l.config}
	return Plan{Action: l.Name(), Text: "run " + ArgvString(argv), Data: argv}, nil
}

func (l *logrotate) Apply(ctx context.Context, p Plan) (Outcome, error) {
	argv, ok := p.Data.([]string)
	if !ok {
		return Outcome{}, errors.New("logrotate: not a logrotate plan")
	}
	r, err := RunCommand(ctx, argv...)
	return CommandOutcome(r, err, "rotated "+l.config)
}
