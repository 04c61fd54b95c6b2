package servicenow

import (
	"context"
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/l2agent/l2agent/ticketing"
)

// count is how many of the requests since the last Take went to path.
func count(f *fakeSN, path string) int {
	n := 0
	for _, c := range f.Take() {
		if strings.HasSuffix(c, " "+path) {
			n++
		}
	}
	return n
}

// TestReferencesByName: assignment groups and the caller given by name
// are looked up once and sent as sys_ids; ServiceNow would keep a name
// sent as it is, a reference to nothing. A name that matches no record,
// or several, is a final error naming the option to fix.
func TestReferencesByName(t *testing.T) {
	o := Options{AssignmentGroupL2: "Service Desk", AssignmentGroupL3: "Network", AssignmentGroupL4: groupNetwork, CallerID: "l2agent"}
	f, b := newFake(t, basicAuth, o)
	ctx := context.Background()
	a, err := b.Open(ctx, ticketing.Ticket{Key: testKey, Title: "disk full", Severity: "warn"})
	require.NoError(t, err)
	require.Equal(t, groupServiceDesk, f.inc[a.ID]["assignment_group"])
	require.Equal(t, userL2agent, f.inc[a.ID]["caller_id"])
	q := f.Requests()[0].Query
	require.Equal(t, "name=Service Desk", q.Get("sysparm_query"))
	f.Take()
	b2, err := b.Open(ctx, ticketing.Ticket{Key: testKey + "2", Title: "disk full", Severity: "warn"})
	require.NoError(t, err)
	require.Equal(t, []string{"POST " + tablePath}, f.Take(), "looked up once")
	require.NoError(t, b.Escalate(ctx, b2, ticketing.L3, ticketing.Ticket{Key: testKey + "2", Severity: "crit"}))
	require.Equal(t, groupNetwork, f.inc[b2.ID]["assignment_group"])
	require.Equal(t, 1, count(f, "/api/now/table/sys_user_group"))
	require.NoError(t, b.Escalate(ctx, b2, ticketing.L4, ticketing.Ticket{Key: testKey + "2", Severity: "crit"}))
	require.Equal(t, 0, count(f, "/api/now/table/sys_user_group"), "a sys_id is not looked up")

	for _, c := range []struct {
		o    Options
		want string
	}{
		{Options{CallerID: "Abel Tuter"}, ""},
		{Options{AssignmentGroupL2: "Hardware"}, `2 records have name "Hardware"`},
		{Options{AssignmentGroupL2: "Servce Desk"}, `no record has name "Servce Desk" (or the user may not read sys_user_group): fix assignment_group_l2`},
		{Options{CallerID: "nobody"}, `no record has user_name or name "nobody" (or the user may not read sys_user): fix caller_id`},
		{Options{AssignmentGroupL2: "A^B"}, "a name with ^, = or a line break cannot be searched for"},
	} {
		f, b := newFake(t, basicAuth, c.o)
		ref, err := b.Open(ctx, ticketing.Ticket{Key: testKey, Title: "t", Severity: "warn"})
		if c.want == "" {
			require.NoError(t, err)
			require.Equal(t, "62826bf03710200044e0bfc8bcbe5df1", f.inc[ref.ID]["caller_id"], "by name when no user_name matches")
			continue
		}
		reason, retry, _ := ticketing.Classify(err)
		require.False(t, retry)
		require.Equal(t, "config", reason)
		require.ErrorContains(t, err, c.want)
		require.Zero(t, f.Tickets(testKey), "nothing created with a reference to nothing")
	}
}

// TestFieldNotWritten: a field ACL leaves a field out of an update and
// ServiceNow answers 200; so does a business rule that sets a field back.
// The backend reads the answer: what it sent and did not get is a final
// error saying which field.
func TestFieldNotWritten(t *testing.T) {
	f, b := newFake(t, basicAuth, testOptions())
	ctx := context.Background()
	ref, err := b.Open(ctx, ticketing.Ticket{Key: testKey, Title: "disk full", Severity: "warn"})
	require.NoError(t, err)

	f.readonly["assignment_group"] = true
	err = b.Escalate(ctx, ref, ticketing.L3, ticketing.Ticket{Key: testKey, Severity: "crit"})
	reason, retry, _ := ticketing.Classify(err)
	require.False(t, retry)
	require.Equal(t, "api", reason)
	require.ErrorContains(t, err, `assignment_group is "`+groupServiceDesk+`", not "`+groupNetwork+`"`)
	require.ErrorContains(t, err, "field ACL")
	require.Equal(t, "1", f.inc[ref.ID]["urgency"], "the rest was written")

	f.ruled["close_code"] = true // a business rule clearing it
	f.inc[ref.ID]["close_code"] = "Known error"
	err = b.Resolve(ctx, ref, "ok")
	reason, _, _ = ticketing.Classify(err)
	require.Equal(t, "api", reason)
	require.ErrorContains(t, err, `close_code is "Known error", not "Solution provided"`)
}

// TestRefusedStateChange: a business rule that refuses a state change
// answers 403 (final at once) or, on some instances, 500. A 500 is retried
// while it may be the instance failing; when the instance answers reads
// but keeps refusing, the third is final with ServiceNow's reason, so that
// it does not block the backend's outbox for ever.
func TestRefusedStateChange(t *testing.T) {
	f, b := newFake(t, basicAuth, testOptions())
	ctx := context.Background()
	ref, err := b.Open(ctx, ticketing.Ticket{Key: testKey, Title: "disk full", Severity: "warn"})
	require.NoError(t, err)
	f.Take()

	f.refuse["6"] = refusal{http.StatusInternalServerError, "Business rule 'Require problem for P1' aborted the update"}
	for i := 1; i <= 3; i++ {
		err = b.Resolve(ctx, ref, "ok")
		reason, retry, _ := ticketing.Classify(err)
		require.ErrorContains(t, err, "Business rule 'Require problem for P1' aborted the update")
		if i < 3 {
			require.True(t, retry, "attempt %d", i)
			require.Equal(t, "http_5xx", reason)
			continue
		}
		require.False(t, retry, "attempt %d: final", i)
		require.Equal(t, "refused", reason)
		require.ErrorContains(t, err, `refused 3 times in a row while the instance answered reads`)
		require.ErrorContains(t, err, `state is "1", not "6"`)
	}
	path := tablePath + "/" + ref.ID
	require.Equal(t, []string{"PATCH " + path, "GET " + path, "PATCH " + path, "GET " + path, "PATCH " + path, "GET " + path}, f.Take())

	// The instance failing: its reads fail too; retried, never final.
	f.Inject(func(w http.ResponseWriter, _ *http.Request) { snErr(w, http.StatusBadGateway, "Bad Gateway", "") })
	for range 5 {
		_, retry, _ := ticketing.Classify(b.Resolve(ctx, ref, "ok"))
		require.True(t, retry)
	}
	f.Inject(nil)

	// Made, but answered 500: the read shows it done.
	delete(f.refuse, "6")
	f.failAfter = http.StatusInternalServerError
	require.NoError(t, b.Resolve(ctx, ref, "ok"))
	require.Equal(t, "6", f.inc[ref.ID]["state"])
	f.failAfter = 0

	f.refuse["2"] = refusal{http.StatusForbidden, "Data Policy Exception: Assigned to is mandatory"}
	err = b.Reopen(ctx, ref, "back")
	reason, retry, _ := ticketing.Classify(err)
	require.False(t, retry)
	require.Equal(t, "http_4xx", reason)
	require.ErrorContains(t, err, "Operation Failed: Data Policy Exception: Assigned to is mandatory")

	f.inc[ref.ID]["state"] = "7"
	err = b.Reopen(ctx, ref, "back")
	_, retry, _ = ticketing.Classify(err)
	require.False(t, retry)
	require.ErrorContains(t, err, "ACL Exception Update Failed due to security constraints", "a Closed incident cannot be reopened")
}
