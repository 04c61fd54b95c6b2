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
	root    string // the host's root (Env.Root), where the databases are measured
}

func (v *antivirusUpdate) Name() string { return "antivirus_update" }

func (v *antivirusUpdate) Plan(ctx context.Context, a remediate.Alert) (remediate.Plan, error) {
	argv := []string{v.command, "--stdout"}
	return remediate.Plan{Action: v.Name(), Text: "run " + remediate.ArgvString(argv),
		Expect: "signatures newer in " + databaseDir(v.root), Data: argv}, nil
}

// Apply runs freshclam and compares the signature database versions before
// and after it.
func (v *antivirusUpdate) Apply(ctx context.Context, p remediate.Plan) (remediate.Outcome, error) {
	argv, ok := p.Data.([]string)
	if !ok {
		return remediate.Outcome{}, errors.New("antivirus_update: not an antivirus_update plan")
	}
	after := measureSignatures(ctx, v.root)
	r, err := remediate.RunCommand(ctx, argv...)
	if err != nil {
		return remediate.CommandOutcome(r, err, "")
	}
	effect, none := after(ctx)
	text := "signatures updated"
	if effect == "" {
		text = remediate.Exited0(argv)
	}
	o, err := remediate.CommandOutcome(r, nil, text)
	o.Effect, o.NoEffect = effect, none
	return o, err
}
