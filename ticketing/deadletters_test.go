package ticketing

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"
	bolt "go.etcd.io/bbolt"

	"github.com/l2agent/l2agent/internal/rest"
)

// An op refused for good (a revoked token: 401) is set aside so that the
// outbox goes on; once the cause is fixed it is replayed, in order, and
// delivered; the metric counts the letters waiting.
func TestDeadLettersReplay(t *testing.T) {
	reg := prometheus.NewRegistry()
	h := newHarness(t, testConfig())
	m := NewMetrics(reg)
	h.svc.metrics = m
	m.svc.Store(h.svc)
	h.svc.Deliverers()[0].metrics = m

	h.rec.failN = 1
	h.rec.failErr = rest.CheckStatus("open", http.StatusUnauthorized, nil, []byte(`{"message":"token revoked"}`))
	require.Equal(t, "", h.step(0, "ok", "warn", 0.85), "the open is refused")
	// The escalation finds no ticket: refused for good too.
	require.Equal(t, "", h.step(time.Minute, "warn", "crit", 0.95))

	dead, err := h.svc.Store.DeadLetters("rec")
	require.NoError(t, err)
	require.Len(t, dead, 3)
	require.Equal(t, OpOpen, dead[0].Op.Kind)
	require.Equal(t, uint64(1), dead[0].Seq)
	require.Contains(t, dead[0].Op.Dead, "HTTP 401")
	require.False(t, dead[0].Op.DeadAt.IsZero())
	require.NotContains(t, dead[0].Op.Text, "undeliverable", "the text stays as it was queued")
	require.Equal(t, []OpKind{OpComment, OpEscalate}, []OpKind{dead[1].Op.Kind, dead[2].Op.Kind})
	require.Contains(t, dead[2].Op.Dead, "no ticket")
	require.NoError(t, testutil.CollectAndCompare(reg, strings.NewReader(`# HELP l2agent_ticket_dead_letters Ticket operations a backend refused for good, kept aside until replayed (l2agent tickets replay).
# TYPE l2agent_ticket_dead_letters gauge
l2agent_ticket_dead_letters{backend="rec"} 3
`), "l2agent_ticket_dead_letters"))

	// An unknown number moves nothing.
	_, err = h.svc.Replay("rec", []uint64{1, 7})
	require.ErrorContains(t, err, "no dead letter 7")
	_, err = h.svc.Replay("other", nil)
	require.ErrorContains(t, err, `backend "other" has no dead letters`)
	dead, _ = h.svc.Store.DeadLetters("")
	require.Len(t, dead, 3)

	// The token is fixed: replay all, in order.
	moved, err := h.svc.Replay("rec", nil)
	require.NoError(t, err)
	require.Len(t, moved, 3)
	require.Equal(t, "open #1 L2, comment #1, escalate L3 #1", h.flush())
	dead, _ = h.svc.Store.DeadLetters("rec")
	require.Empty(t, dead)
	require.Equal(t, 0, h.svc.Store.Pending("rec"))
	require.NoError(t, testutil.CollectAndCompare(reg, strings.NewReader(`# HELP l2agent_ticket_dead_letters Ticket operations a backend refused for good, kept aside until replayed (l2agent tickets replay).
# TYPE l2agent_ticket_dead_letters gauge
l2agent_ticket_dead_letters{backend="rec"} 0
`), "l2agent_ticket_dead_letters"))
}

// Dead letters written before Op.Dead had the reason appended to their
// text: it is read back as the reason and left out of the replayed text.
func TestLegacyDeadLetter(t *testing.T) {
	h := newHarness(t, testConfig())
	op := Op{Seq: 4, Key: h.key, Kind: OpComment, Text: "disk still 93%\n[undeliverable: HTTP 403: forbidden]"}
	v, err := json.Marshal(op)
	require.NoError(t, err)
	require.NoError(t, h.svc.Store.db.Update(func(tx *bolt.Tx) error {
		b, err := tx.CreateBucketIfNotExists(deadBucket("rec"))
		if err != nil {
			return err
		}
		return b.Put(seqKey(3), v)
	}))
	dead, err := h.svc.Store.DeadLetters("rec")
	require.NoError(t, err)
	require.Equal(t, []DeadLetter{{Backend: "rec", Seq: 3, Op: Op{Seq: 4, Key: h.key, Kind: OpComment, Text: "disk still 93%", Dead: "HTTP 403: forbidden"}}}, dead)
	moved, err := h.svc.Store.Replay("rec", []uint64{3})
	require.NoError(t, err)
	require.Len(t, moved, 1)
	queued, ok, err := h.svc.Store.Next("rec", 0)
	require.NoError(t, err)
	require.True(t, ok)
	require.Equal(t, "disk still 93%", queued.Text)
	require.Empty(t, queued.Dead)
}

// l2agent_ticket_outbox_pending counts an op from the moment it is queued,
// before its backend's deliverer tries it (a backend in backoff may not try
// for minutes); a removed backend shows while ops wait for it, and goes
// once its outbox is empty.
func TestOutboxPendingMetric(t *testing.T) {
	reg := prometheus.NewRegistry()
	h := newHarness(t, testConfig())
	m := NewMetrics(reg)
	h.svc.metrics = m
	m.svc.Store(h.svc)
	h.svc.Deliverers()[0].metrics = m
	want := func(lines string) {
		t.Helper()
		require.NoError(t, testutil.CollectAndCompare(reg, strings.NewReader(`# HELP l2agent_ticket_outbox_pending Ticket operations waiting in the outbox.
# TYPE l2agent_ticket_outbox_pending gauge
`+lines), "l2agent_ticket_outbox_pending"))
	}
	want(`l2agent_ticket_outbox_pending{backend="rec"} 0` + "\n")

	require.NoError(t, h.svc.Manager.Handle(h.transition(0, "ok", "warn", 0.85)))
	require.NoError(t, h.svc.Manager.Handle(h.transition(time.Minute, "warn", "crit", 0.95)))
	want(`l2agent_ticket_outbox_pending{backend="rec"} 3` + "\n") // open, comment, escalate: none tried yet

	require.Equal(t, "open #1 L2, comment #1, escalate L3 #1", h.flush())
	want(`l2agent_ticket_outbox_pending{backend="rec"} 0` + "\n")

	// An op waits for a backend that a reload then removes: it still shows.
	// (The reloads build their deliverers on h.svc.metrics: m.)
	require.NoError(t, h.svc.Manager.Handle(h.transition(2*time.Minute, "crit", "warn", 0.85)))
	require.NoError(t, h.svc.Reconfigure(testConfig(), []string{"new"}, map[string]Ticketer{"new": newRecorder()}, h.t0.Add(3*time.Minute)))
	require.Eventually(t, func() bool { return h.svc.Store.Pending("new") == 0 }, 10*time.Second, 10*time.Millisecond, "the new backend's open is delivered")
	want(`l2agent_ticket_outbox_pending{backend="new"} 0` + "\n" + `l2agent_ticket_outbox_pending{backend="rec"} 1` + "\n")

	// rec comes back and delivers it: only the backends in force are left.
	require.NoError(t, h.svc.Reconfigure(testConfig(), []string{"rec"}, map[string]Ticketer{"rec": h.rec}, h.t0.Add(4*time.Minute)))
	require.Eventually(t, func() bool { return h.svc.Store.Pending("rec") == 0 }, 10*time.Second, 10*time.Millisecond, "rec delivers what waited")
	want(`l2agent_ticket_outbox_pending{backend="rec"} 0` + "\n")
}
