package rt

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/l2agent/l2agent/deploy/testenv"
	"github.com/l2agent/l2agent/ticketing"
)

// realBackend is the backend as configured for the test RT, with the
// agent's own (least-privilege) token.
func realBackend(t *testing.T, env testenv.RT, mod func(*Options)) *Backend {
	t.Helper()
	tokenFile := filepath.Join(t.TempDir(), "rt-token")
	require.NoError(t, os.WriteFile(tokenFile, []byte(env.Token+"\n"), 0o600))
	o := Options{
		URL: env.URL, TokenFile: tokenFile,
		QueueL2: env.QueueL2, QueueL3: env.QueueL3, CustomField: env.CustomField,
		PriorityL2: 50, PriorityL3: 80, OwnerL3: env.L3Owner,
	}
	if mod != nil {
		mod(&o)
	}
	b, err := New("rt", o, 10*time.Second)
	require.NoError(t, err)
	return b
}

const realBody = `Host:             web-7
Check:            disk
Metric:           l2agent_disk_used_ratio
Labels:           device=/dev/vda1 fstype=ext4 mountpoint=/var
Value:            93.4%
Threshold:        crit ≥ 90.0%

Diagnostics:
  largest directories under /var:
    7.9G  /var/log/journal
    2.1G  /var/cache/apt
`

// TestRealRT runs the backend against a real Request Tracker 5 (one
// instance for all subtests: starting RT takes seconds; each subtest uses
// its own keys).
func TestRealRT(t *testing.T) {
	env := testenv.StartRT(t)
	t.Run("lifecycle", func(t *testing.T) { testLifecycle(t, env) })
	t.Run("keys", func(t *testing.T) { testKeys(t, env) })
	t.Run("refusals", func(t *testing.T) { testRefusals(t, env) })
	t.Run("find per state", func(t *testing.T) { testFindPerState(t, env) })
	t.Run("recurrence after the store forgot", func(t *testing.T) { testRecurrenceAfterForget(t, env) })
	t.Run("preflight", func(t *testing.T) { testPreflight(t, env) })
}

// testLifecycle drives one ticket through its whole life and checks after
// every step that TicketSQL finds exactly one ticket for the key.
func testLifecycle(t *testing.T, env testenv.RT) {
	b := realBackend(t, env, nil)
	ctx := context.Background()

	// one asserts that exactly one ticket holds key, and returns it.
	one := func(key string) testenv.RTTicket {
		t.Helper()
		ts := env.TicketsWithCF(t, env.CustomField, key)
		require.Len(t, ts, 1, "tickets for %q", key)
		return ts[0]
	}
	timed := func(what string, f func() error) {
		t.Helper()
		start := time.Now()
		require.NoError(t, f(), what)
		t.Logf("%-9s %s", what, time.Since(start).Round(time.Millisecond))
	}

	key := `web-7/disk/disk_used_ratio{device="/dev/vda1",fstype="ext4",mountpoint="/var"}`
	title := "[l2agent] web-7: disk /var disk_used_ratio 93.4% (crit ≥ 90.0%)"

	_, found, err := b.Find(ctx, key)
	require.NoError(t, err)
	require.False(t, found, "Find in an empty RT")

	var ref ticketing.Ref
	timed("open", func() (err error) {
		ref, err = b.Open(ctx, ticketing.Ticket{Key: key, Title: title, Body: realBody, Tier: ticketing.L2})
		return err
	})
	require.Equal(t, env.URL+"/Ticket/Display.html?id="+ref.ID, ref.URL)
	tk := one(key)
	require.Equal(t, ref.ID, itoa(tk.ID))
	require.Equal(t, env.QueueL2, tk.Queue)
	require.Equal(t, 50, tk.Priority)
	require.Equal(t, title, tk.Subject)
	require.Equal(t, "Nobody", tk.Owner)
	msgs := env.Messages(t, tk.ID)
	require.NotEmpty(t, msgs)
	require.Equal(t, "Create", msgs[0].Type)
	require.Equal(t, realBody, strings.TrimRight(msgs[0].Content, "\n")+"\n", "the body, ≥ and all")

	timed("find", func() error {
		got, ok, err := b.Find(ctx, key)
		require.True(t, ok)
		require.Equal(t, ref, got)
		return err
	})

	timed("comment", func() error { return b.Comment(ctx, ref, "Severity changed: warn → crit (93.4% ≥ 90.0%).") })
	require.Equal(t, "Severity changed: warn → crit (93.4% ≥ 90.0%).", lastMessage(t, env, tk.ID, "Comment"))
	one(key)

	timed("escalate", func() error {
		return b.Escalate(ctx, ref, ticketing.L3, ticketing.Ticket{Key: key, Title: title, Body: "Escalated to L3: crit\n\n" + realBody})
	})
	tk = one(key)
	require.Equal(t, env.QueueL3, tk.Queue)
	require.Equal(t, 80, tk.Priority)
	require.Equal(t, env.L3Owner, tk.Owner)
	note := lastMessage(t, env, tk.ID, "Comment")
	require.Contains(t, note, "escalated this ticket to L3: queue "+env.QueueL3+", priority 80, owner "+env.L3Owner)
	require.Contains(t, note, "Escalated to L3: crit\n\nHost:             web-7")

	// Escalating again (a retried delivery) changes nothing but adds a note.
	require.NoError(t, b.Escalate(ctx, ref, ticketing.L3, ticketing.Ticket{Key: key, Title: title, Body: "again"}))
	one(key)

	timed("resolve", func() error { return b.Resolve(ctx, ref, "Resolved: ok for 15m (disk_used_ratio 41.0%).") })
	tk = one(key)
	require.Equal(t, "resolved", tk.Status)
	require.Equal(t, "Resolved: ok for 15m (disk_used_ratio 41.0%).", lastMessage(t, env, tk.ID, "Comment"))
	got, ok, err := b.Find(ctx, key)
	require.NoError(t, err)
	require.True(t, ok, "Find finds resolved tickets")
	require.True(t, got.Resolved, "and says so")
	got.Resolved = false
	require.Equal(t, ref, got)
	// A retried resolve: RT says it cannot change resolved to resolved, but
	// the ticket is as asked.
	require.NoError(t, b.Resolve(ctx, ref, "Resolved again."))

	timed("reopen", func() error { return b.Reopen(ctx, ref, "Reopened: disk_used_ratio 95.0% again within 24h.") })
	tk = one(key)
	require.Equal(t, "open", tk.Status)
	require.Equal(t, env.QueueL3, tk.Queue, "a reopened ticket stays where it was")
	t.Logf("ticket %s: %+v", ref.URL, tk)
}

// testKeys: keys that TicketSQL quoting and RT's storage must keep
// exactly, each found again as the same ticket, and none confused with a
// key differing only in case.
func testKeys(t *testing.T, env testenv.RT) {
	b := realBackend(t, env, nil)
	ctx := context.Background()
	keys := []string{
		`web-7/disk/disk_used_ratio{mountpoint="/var"}`,
		`web-7/file/age_seconds{path="C:\\ProgramData\\it's \"quoted\""}`,
		`web-7/mfa/mfa_compliant{control="sshd: AuthenticationMethods publickey,keyboard-interactive"} OR id > 0`,
		`web-7/disk/disk_used_ratio{mountpoint="/srv/données/≥"}`,
		// Longer than the 255 bytes RT keeps in Content: it goes to LargeContent.
		`web-7/disk/disk_used_ratio{mountpoint="/` + strings.Repeat("deep/", 60) + `"}`,
	}
	ids := map[string]bool{}
	for _, key := range keys {
		_, found, err := b.Find(ctx, key)
		require.NoError(t, err)
		require.False(t, found, key)
		ref, err := b.Open(ctx, ticketing.Ticket{Key: key, Title: "[l2agent] key test", Body: key})
		require.NoError(t, err, key)
		got, found, err := b.Find(ctx, key)
		require.NoError(t, err)
		require.True(t, found, key)
		require.Equal(t, ref.ID, got.ID, key)
		require.False(t, ids[ref.ID])
		ids[ref.ID] = true
		require.Len(t, env.TicketsWithCF(t, env.CustomField, key), 1, key)
	}
	// RT compares custom field values without case: Find must not.
	_, found, err := b.Find(ctx, strings.ToUpper(keys[0]))
	require.NoError(t, err)
	require.False(t, found, "a key differing only in case is another key")
}

// testRefusals: what real RT does when asked for what it will not do,
// often answered with HTTP 200 or 201: each must be a final error.
func testRefusals(t *testing.T, env testenv.RT) {
	ctx := context.Background()
	key := "web-7/cpu/cpu_usage_ratio"

	// A custom field that does not exist: RT creates the ticket anyway.
	noCF := realBackend(t, env, func(o *Options) { o.CustomField = "NoSuchField" })
	ref, err := noCF.Open(ctx, ticketing.Ticket{Key: key, Title: "t", Body: "b"})
	de := deliveryError(t, err)
	require.False(t, de.Retryable)
	require.Contains(t, err.Error(), "custom field NoSuchField")
	require.NotEmpty(t, ref.ID, "the ref of the ticket RT did create")

	// A queue the agent may not create tickets in: 403.
	_, err = realBackend(t, env, func(o *Options) { o.QueueL2 = "General" }).
		Open(ctx, ticketing.Ticket{Key: key, Title: "t", Body: "b"})
	de = deliveryError(t, err)
	require.False(t, de.Retryable)
	require.Contains(t, err.Error(), "No permission to create tickets in the queue 'General'")

	b := realBackend(t, env, nil)
	ref, err = b.Open(ctx, ticketing.Ticket{Key: key, Title: "t", Body: "b"})
	require.NoError(t, err)

	// Escalation to a queue that does not exist or that the agent may not
	// use: RT answers 200 with a message, and nothing moves.
	escalate := func(mod func(*Options)) error {
		err := realBackend(t, env, mod).Escalate(ctx, ref, ticketing.L3, ticketing.Ticket{Key: key, Title: "t", Body: "b"})
		de := deliveryError(t, err)
		require.False(t, de.Retryable)
		require.Equal(t, "api", de.Reason)
		t.Log(err)
		return err
	}
	require.ErrorContains(t, escalate(func(o *Options) { o.QueueL3 = "NoSuchQueue" }), "Queue NoSuchQueue does not exist")
	require.ErrorContains(t, escalate(func(o *Options) { o.QueueL3 = "General" }), "Permission Denied")
	tk := env.Ticket(t, atoi(t, ref.ID))
	require.Equal(t, env.QueueL2, tk.Queue)
	require.Equal(t, 50, tk.Priority, "nothing changed when the move was refused")
	require.Equal(t, "Nobody", tk.Owner, "nothing changed when the move was refused")
	// An owner who does not exist: moved, but not owned, and said so.
	require.ErrorContains(t, escalate(func(o *Options) { o.OwnerL3 = "nosuchuser" }), "That user does not exist")
	tk = env.Ticket(t, atoi(t, ref.ID))
	require.Equal(t, env.QueueL3, tk.Queue)
	require.Equal(t, "Nobody", tk.Owner)
	for _, m := range env.Messages(t, tk.ID) {
		require.NotContains(t, m.Content, "escalated this ticket", "no escalation note after a refusal")
	}

	// A ticket that does not exist.
	err = b.Comment(ctx, ticketing.Ref{ID: "99999"}, "x")
	de = deliveryError(t, err)
	require.False(t, de.Retryable)
}

func lastMessage(t *testing.T, env testenv.RT, id int, typ string) string {
	t.Helper()
	msgs := env.Messages(t, id)
	for i := len(msgs) - 1; i >= 0; i-- {
		if msgs[i].Type == typ {
			return strings.TrimRight(msgs[i].Content, "\n")
		}
	}
	t.Fatalf("ticket %d has no %s: %+v", id, typ, msgs)
	return ""
}

func itoa(n int) string { return strconv.Itoa(n) }

func atoi(t *testing.T, s string) int {
	t.Helper()
	n, err := strconv.Atoi(s)
	require.NoError(t, err)
	return n
}
