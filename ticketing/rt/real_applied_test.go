package rt

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/l2agent/l2agent/deploy/testenv"
	"github.com/l2agent/l2agent/ticketing"
)

// TestRealRTApplied: against a real Request Tracker 5 and with the agent's
// own least-privilege token, Applied finds the marker of a comment, an
// escalation note (a long body with non-ASCII text) and a resolve note,
// and not the marker of an operation the ticket does not hold.
func TestRealRTApplied(t *testing.T) {
	env := testenv.StartRT(t)
	b := realBackend(t, env, nil)
	ctx := context.Background()
	key := "web-7/disk/disk_used_ratio{mountpoint=\"/var\"}"
	ref, err := b.Open(ctx, ticketing.Ticket{Key: key, Title: "[l2agent] applied", Body: realBody, Tier: ticketing.L2})
	require.NoError(t, err)
	t0 := time.Now()
	op := func(kind ticketing.OpKind, ev uint64) ticketing.Op {
		return ticketing.Op{Key: key, Kind: kind, Event: ev, Created: t0}
	}
	marked := func(text string, o ticketing.Op) string { return text + "\n\n" + ticketing.Marker(o) }

	comment, esc, res := op(ticketing.OpComment, 2), op(ticketing.OpEscalate, 3), op(ticketing.OpResolve, 4)
	require.NoError(t, b.Comment(ctx, ref, marked("Severity warn → crit: disk_used_ratio 93.4% ≥ crit threshold 90.0%", comment)))
	body := marked("Escalated to L3: the alert is crit\n\n"+realBody+strings.Repeat("  4.9 MiB  /var/lib/données\n", 400), esc)
	require.NoError(t, b.Escalate(ctx, ref, ticketing.L3, ticketing.Ticket{Key: key, Title: "[l2agent] applied", Body: body}))
	require.NoError(t, b.Resolve(ctx, ref, marked("Resolved: disk_used_ratio has been back within its threshold for 15m.", res)))

	for _, o := range []ticketing.Op{comment, esc, res} {
		found, err := b.Applied(ctx, ref, o)
		require.NoError(t, err)
		require.True(t, found, "%s is in the ticket", o.Kind)
	}
	found, err := b.Applied(ctx, ref, op(ticketing.OpReopen, 5))
	require.NoError(t, err)
	require.False(t, found, "an operation never sent")
	found, err = b.Applied(ctx, ref, ticketing.Op{Key: key, Kind: ticketing.OpComment, Event: 2, Created: t0.Add(time.Second)})
	require.NoError(t, err)
	require.False(t, found, "the same event number of another life of the incident")
}
