// Package antivirusupdate is the remediation action antivirus_update: it
// refreshes the ClamAV signatures with freshclam.
package antivirusupdate

import (
	"context"
	"errors"

	"github.com/l2agent/l2agent/remediate"
)

// antivirusUpdate refreshes the ClamAV signatures: freshclam --stdout.
type antivirusUpdate struct {
	command string
}

func (v *antivirusUpdate) Name() string { return "antivirus_update" }

func (v *antivirusUpdate) Plan(ctx context.Context, a remediate.Alert) (remediate.Plan, error) {
	argv := []string{v.command, "--stdout"}
	return remediate.Plan{Action: v.Name(), Text: "run " + remediate.ArgvString(argv), Data: argv}, nil
}

func (v *antivirusUpdate) Apply(ctx context.Context, p remediate.Plan) (remediate.Outcome, error) {
	argv, ok := p.Data.([]string)
	if !ok {
		return remediate.Outcome{}, errors.New("antivirus_update: not an antivirus_update plan")
	}
	r, err := remediate.RunCommand(ctx, argv...)
	return remediate.CommandOutcome(r, err, "signatures updated")
}
