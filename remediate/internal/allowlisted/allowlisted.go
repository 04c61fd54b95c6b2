// Package allowlisted is what logrotate and service_restart share: one
// program run on one value out of an allowlist the admin wrote (a logrotate
// config, a systemd unit), the value named by a rule's params. Their keys
// differ (allow_configs and config, allow_units and unit), so each action
// declares its own settings and params types; their defaults, validation,
// plan and run are written once, here, from the action's Kind.
package allowlisted

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/l2agent/l2agent/configs"
	"github.com/l2agent/l2agent/remediate"
)

// Kind describes one such action.
type Kind struct {
	Action   string   // its name, e.g. "logrotate"
	Command  string   // the default program, e.g. "/usr/sbin/logrotate"
	Args     []string // the arguments before the value, e.g. ["-f"]
	AllowKey string   // the settings key of the allowlist, e.g. "allow_configs"
	ValueKey string   // the params key of the value, e.g. "config"
	Done     string   // the outcome, before the value, e.g. "rotated"
	// Check says what is wrong with a value of the allowlist ("" when
	// nothing), e.g. `allow_configs "x": must be a clean absolute path`.
	Check func(v string) string
	// Expect states the effect of running the program on a value, e.g.
	// "clamav-daemon.service active"; nil: the action states none.
	Expect func(value string) string
	// Measure measures, before the run, what the program should change,
	// and returns what measures it after a run that exited 0: the effect
	// when it showed, else why not.
	Measure func(ctx context.Context, r Run) (after func(ctx context.Context) (effect, noEffect string))
}

// Run is one run of the program on a value, as Measure sees it.
type Run struct {
	Command string // the program, as configured
	Value   string // the allowlisted value, e.g. the unit
	Root    string // the host's root (remediate.Env.Root)
}

// DefaultCommand fills in the default program.
func (k *Kind) DefaultCommand(command *string) {
	if *command == "" {
		*command = k.Command
	}
}

// ValidateSettings checks the allowlist, then the program, at their keys
// below at.
func (k *Kind) ValidateSettings(at string, errf configs.Errorf, command string, allow []string) {
	for i, v := range allow {
		if msg := k.Check(v); msg != "" {
			errf(fmt.Sprintf("%s.%s[%d]", at, k.AllowKey, i), "remediation action %s: %s", k.Action, msg)
		}
	}
	configs.CheckCommand(errf, at+".command", k.Action, command)
}

// ValidateValue checks that a value given in params is allowlisted.
func (k *Kind) ValidateValue(at string, errf configs.Errorf, value string, allow []string) {
	if value != "" && !slices.Contains(allow, value) {
		errf(at+"."+k.ValueKey, "remediation action %s: %s %q is not in %s", k.Action, k.ValueKey, value, k.AllowKey)
	}
}

// CompleteValue checks that a rule's merged params name a value.
func (k *Kind) CompleteValue(at string, errf configs.Errorf, value string) {
	if value == "" {
		errf(at, "remediation action %s: %s is required", k.Action, k.ValueKey)
	}
}

// New builds the action: command run on value, which must be in allow;
// root is the host's root its effect is measured under.
func (k *Kind) New(command string, allow []string, value, root string) remediate.Action {
	return &action{kind: k, command: command, allow: allow, value: value, root: root}
}

type action struct {
	kind    *Kind
	command string
	allow   []string
	value   string
	root    string
}

func (a *action) Name() string { return a.kind.Action }

// Plan refuses a value that is missing or not allowlisted.
func (a *action) Plan(ctx context.Context, _ remediate.Alert) (remediate.Plan, error) {
	k := a.kind
	if a.value == "" {
		return remediate.Plan{}, fmt.Errorf("%s needs a %s", k.Action, k.ValueKey)
	}
	if !slices.Contains(a.allow, a.value) {
		return remediate.Plan{}, fmt.Errorf("%s %q is not in %s", k.ValueKey, a.value, k.AllowKey)
	}
	argv := append(append([]string{a.command}, k.Args...), a.value)
	p := remediate.Plan{Action: a.Name(), Text: "run " + remediate.ArgvString(argv), Data: argv}
	if k.Expect != nil {
		p.Expect = k.Expect(a.value)
	}
	return p, nil
}

// Apply runs the program on the value; with Measure, it measures the
// effect before and after a run that exited 0.
func (a *action) Apply(ctx context.Context, p remediate.Plan) (remediate.Outcome, error) {
	argv, ok := p.Data.([]string)
	if !ok {
		return remediate.Outcome{}, errors.New(a.kind.Action + ": not a " + a.kind.Action + " plan")
	}
	if a.kind.Measure == nil {
		r, err := remediate.RunCommand(ctx, argv...)
		return remediate.CommandOutcome(r, err, a.kind.Done+" "+a.value)
	}
	after := a.kind.Measure(ctx, Run{Command: a.command, Value: a.value, Root: a.root})
	r, err := remediate.RunCommand(ctx, argv...)
	if err != nil {
		return remediate.CommandOutcome(r, err, "")
	}
	effect, none := after(ctx)
	text := a.kind.Done + " " + a.value
	if effect == "" {
		text = remediate.Exited0(argv)
	}
	o, err := remediate.CommandOutcome(r, nil, text)
	o.Effect, o.NoEffect = effect, none
	return o, err
}
