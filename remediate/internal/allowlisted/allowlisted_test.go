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
	_, err := testKind.New("/usr/bin/poke", []string{"a.service"}, "").Plan(ctx, remediate.Alert{})
	require.EqualError(t, err, "unit_poke needs a unit")
	_, err = testKind.New("/usr/bin/poke", []string{"a.service"}, "b.service").Plan(ctx, remediate.Alert{})
	require.EqualError(t, err, `unit "b.service" is not in allow_units`)

	cmd, argvFile := testkit.StandIn(t, "poke", "", 0)
	odd := "a b; $(id).service"
	a := testKind.New(cmd, []string{"a.service", odd}, odd)
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
