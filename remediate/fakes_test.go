package remediate_test

import (
	"context"
	"sync"

	"github.com/l2agent/l2agent/configs"
	"github.com/l2agent/l2agent/remediate"
)

// The engine's tests run fake actions, registered here, so that they need
// no real one: fake_cleanup, fake_vacuum, fake_updates and fake_av take no
// keys of their own; fake_command runs its `command` (without arguments).
// A test swaps in a fake of its own with SetAction.
func init() {
	for _, name := range []string{"fake_cleanup", "fake_vacuum", "fake_updates", "fake_av"} {
		remediate.Register(name, func(configs.Options, configs.Params, remediate.Env) (remediate.Action, error) {
			return &fakeAction{name: name}, nil
		}, func() configs.Options { return &noSettings{} }, nil)
	}
	remediate.Register("fake_command", func(s configs.Options, _ configs.Params, _ remediate.Env) (remediate.Action, error) {
		return &commandAction{command: s.(*commandSettings).Command}, nil
	}, func() configs.Options { return &commandSettings{} }, nil)
}

// noSettings: no keys of its own.
type noSettings struct{}

func (*noSettings) ApplyDefaults(string)            {}
func (*noSettings) Validate(string, configs.Errorf) {}

// commandSettings: the program fake_command runs.
type commandSettings struct {
	Command string `yaml:"command"`
}

func (*commandSettings) ApplyDefaults(string)            {}
func (*commandSettings) Validate(string, configs.Errorf) {}

// commandAction runs its command through remediate.RunCommand.
type commandAction struct{ command string }

func (c *commandAction) Name() string { return "fake_command" }

func (c *commandAction) Plan(context.Context, remediate.Alert) (remediate.Plan, error) {
	return remediate.Plan{Action: c.Name(), Text: "run " + c.command}, nil
}

func (c *commandAction) Apply(ctx context.Context, _ remediate.Plan) (remediate.Outcome, error) {
	r, err := remediate.RunCommand(ctx, c.command)
	return remediate.CommandOutcome(r, err, "ran")
}

// fakeAction is an action whose behaviour the test sets.
type fakeAction struct {
	name     string
	mu       sync.Mutex
	plans    int
	applies  int
	applyErr error
	hang     bool   // Apply blocks until ctx ends
	expect   string // the plan's expected effect; "" states none
	effect   string // what Apply measured of it
	noEffect string // why Apply saw no effect
}

func (f *fakeAction) Name() string { return f.name }

func (f *fakeAction) Plan(ctx context.Context, a remediate.Alert) (remediate.Plan, error) {
	f.mu.Lock()
	f.plans++
	f.mu.Unlock()
	return remediate.Plan{Action: f.name, Text: "would fix " + a.Key, Expect: f.expect}, nil
}

func (f *fakeAction) Apply(ctx context.Context, p remediate.Plan) (remediate.Outcome, error) {
	f.mu.Lock()
	f.applies++
	f.mu.Unlock()
	if f.hang {
		<-ctx.Done()
		return remediate.Outcome{Result: "interrupted"}, ctx.Err()
	}
	if f.applyErr != nil {
		return remediate.Outcome{Result: "broke"}, f.applyErr
	}
	return remediate.Outcome{Success: true, Result: "fixed", Output: "all good", FreedBytes: 100, Effect: f.effect, NoEffect: f.noEffect}, nil
}

func (f *fakeAction) counts() (int, int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.plans, f.applies
}
