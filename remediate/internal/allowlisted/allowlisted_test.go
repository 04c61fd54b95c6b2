package allowlisted

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/l2agent/l2agent/internal/testkit"
	"github.com/l2agent/l2agent/remediate"
)

var testKind = &Kind{Action: "unit_poke", Command: "/usr/bin/poke", Args: []string{"--now"}, AllowKey: "allow_units", ValueKey: "unit", Done: "poked",
	Check: func(string) string { return "" }}

// The plan runs the program on the value only when it is allowlisted; the
// value is one argument, whatever it holds.
func TestPlan(t *testing.T) {
	ctx := context.Background()
	_, err := testKind.New("/usr/bin/poke", []string{"a.service"}, "", "/").Plan(ctx, remediate.Alert{})
	require.EqualError(t, err, "unit_poke needs a unit")
	_, err = testKind.New("/usr/bin/poke", []string{"a.service"}, "b.service", "/").Plan(ctx, remediate.Alert{})
	require.EqualError(t, err, `unit "b.service" is not in allow_units`)

	cmd, argvFile := testkit.StandIn(t, "poke", "", 0)
	odd := "a b; $(id).service"
	a := testKind.New(cmd, []string{"a.service", odd}, odd, "/")
	p, err := a.Plan(ctx, remediate.Alert{})
	require.NoError(t, err)
	require.Equal(t, "run "+cmd+` --now "a b; $(id).service"`, p.Text)
	o, err := a.Apply(ctx, p)
	require.NoError(t, err)
	require.Equal(t, "poked "+odd, o.Result)
	require.Equal(t, []string{cmd, "--now", odd}, testkit.RecordedArgv(t, argvFile))

	var c string
	testKind.DefaultCommand(&c)
	require.Equal(t, "/usr/bin/poke", c)
}

// With Measure, the plan states the kind's expected effect, the effect is
// measured around a run that exited 0 (not after one that failed), and a
// run without effect says so instead of claiming it was done.
func TestMeasure(t *testing.T) {
	ctx := context.Background()
	var measured []string
	effect, noEffect := "", ""
	k := *testKind
	k.Expect = func(v string) string { return v + " poked" }
	k.Measure = func(_ context.Context, r Run) func(context.Context) (string, string) {
		measured = append(measured, "before "+r.Value+" in "+r.Root)
		return func(context.Context) (string, string) {
			measured = append(measured, "after")
			return effect, noEffect
		}
	}
	cmd, _ := testkit.StandIn(t, "poke", "", 0)
	a := k.New(cmd, []string{"a.service"}, "a.service", "/root")
	p, err := a.Plan(ctx, remediate.Alert{})
	require.NoError(t, err)
	require.Equal(t, "a.service poked", p.Expect)

	effect = "a.service poked at last"
	o, err := a.Apply(ctx, p)
	require.NoError(t, err)
	require.Equal(t, remediate.Outcome{Success: true, Result: "poked a.service", Effect: effect}, o)
	require.Equal(t, []string{"before a.service in /root", "after"}, measured)

	effect, noEffect = "", "still unpoked"
	o, err = a.Apply(ctx, p)
	require.NoError(t, err)
	require.Equal(t, remediate.Outcome{Success: true, Result: cmd + " --now a.service exited 0", NoEffect: "still unpoked"}, o)

	measured = nil
	failing, _ := testkit.StandIn(t, "poke", "", 1)
	a = k.New(failing, []string{"a.service"}, "a.service", "/root")
	o, err = a.Apply(ctx, remediate.Plan{Data: []string{failing, "--now", "a.service"}})
	require.Error(t, err)
	require.False(t, o.Success)
	require.Equal(t, []string{"before a.service in /root"}, measured, "no measure after a failed run")
}
