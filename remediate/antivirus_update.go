package remediate

import (
	"context"
	"errors"
)

// antivirusUpdate refreshes the ClamAV signatures: freshclam --stdout.
type antivirusUpdate struct {
	command string
}

func (v *antivirusUpdate) Name() string { return "antivirus_update" }

func (v *antivirusUpdate) Plan(ctx context.Context, a Alert) (Plan, error) {
	argv := []string{v.command, "--stdout"}
	return Plan{Action: v.Name(), Text: "run " + ArgvString(argv), Data: argv}, nil
}

func (v *antivirusUpdate) Apply(ctx context.Context, p Plan) (Outcome, error) {
	argv, ok := p.Data.([]string)
	if !ok {
		return Outcome{}, errors.New("antivirus_update: not an antivirus_update plan")
	}
	r, err := RunCommand(ctx, argv...)
	return CommandOutcome(r, err, "signatures updated")
}
