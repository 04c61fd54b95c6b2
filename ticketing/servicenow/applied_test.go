package servicenow

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/l2agent/l2agent/internal/ticketingtest"
	"github.com/l2agent/l2agent/ticketing"
)

// journal serves sys_journal_field from the work notes the fake keeps: an
// encoded query of element_id=, element= and valueLIKE (contains) terms,
// sysparm_fields and sysparm_limit; denied answers 403 as an ACL does.
func (f *fakeSN) journal(denied *bool) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if *denied {
			snErr(w, http.StatusForbidden, "User Not Authorized", "ACL restricts the record retrieval")
			return
		}
		q := r.URL.Query()
		var id, element, like string
		for _, term := range strings.Split(q.Get("sysparm_query"), "^") {
			switch {
			case strings.HasPrefix(term, "element_id="):
				id = strings.TrimPrefix(term, "element_id=")
			case strings.HasPrefix(term, "element="):
				element = strings.TrimPrefix(term, "element=")
			case strings.HasPrefix(term, "valueLIKE"):
				like = strings.TrimPrefix(term, "valueLIKE")
			default:
				snErr(w, http.StatusBadRequest, "Invalid query", term)
				return
			}
		}
		if q.Get("sysparm_fields") != "sys_id,value" || q.Get("sysparm_limit") == "" {
			snErr(w, http.StatusBadRequest, "Invalid request", "want sysparm_fields sys_id,value and a limit")
			return
		}
		out := []any{}
		if in := f.inc[id]; in != nil && element == "work_notes" {
			for i, n := range asList(in["notes"]) {
				if s := n.(string); strings.Contains(s, like) {
					out = append(out, map[string]any{"sys_id": fmt.Sprintf("%s%04d", id[:28], i), "value": s})
				}
			}
		}
		result(w, http.StatusOK, out)
	}
}

func newFakeWithJournal(t *testing.T) (*fakeSN, *Backend, *bool) {
	f, b := newFake(t, false)
	denied := new(bool)
	f.Handle("GET "+journalPath, f.journal(denied))
	return f, b, denied
}

// Tickets counts the incidents whose correlation_id is the key's.
func (f *fakeSN) Tickets(key string) int {
	n := 0
	for _, in := range f.inc {
		if in["correlation_id"] == CorrelationID(key) {
			n++
		}
	}
	return n
}

// Texts are the work notes of incident r, oldest first.
func (f *fakeSN) Texts(r ticketing.Ref) []string {
	var out []string
	for _, n := range asList(f.inc[r.ID]["notes"]) {
		out = append(out, n.(string))
	}
	return out
}

// TestExactlyOnce: a crash or a lost answer after ServiceNow applied any
// operation of an incident's life leaves every operation in its work notes
// once.
func TestExactlyOnce(t *testing.T) {
	f, b, _ := newFakeWithJournal(t)
	ticketingtest.ExactlyOnce(t, b, f)
}

// TestApplied: the lookup asks sys_journal_field for the incident's work
// notes holding the marker, and finds only the operation's own.
func TestApplied(t *testing.T) {
	f, b, denied := newFakeWithJournal(t)
	ctx := context.Background()
	ref, err := b.Open(ctx, ticketing.Ticket{Key: testKey, Title: "disk full", Body: "details", Severity: "warn"})
	require.NoError(t, err)
	other, err := b.Open(ctx, ticketing.Ticket{Key: testKey + "x", Title: "disk full", Body: "details", Severity: "warn"})
	require.NoError(t, err)
	t0 := time.Now()
	op := func(ev uint64) ticketing.Op { return ticketing.Op{Key: testKey, Event: ev, Created: t0} }
	require.NoError(t, b.Resolve(ctx, ref, "Resolved: ok for 15m\n\n"+ticketing.Marker(op(4))))
	require.NoError(t, b.Comment(ctx, other, ticketing.Marker(op(5))))
	f.Take()

	found, err := b.Applied(ctx, ref, op(4))
	require.NoError(t, err)
	require.True(t, found)
	q := f.Last().Query
	require.Equal(t, "element_id="+ref.ID+"^element=work_notes^valueLIKE"+ticketing.Marker(op(4)), q.Get("sysparm_query"))
	require.NotContains(t, ticketing.Marker(op(4)), "^", "the marker needs no escaping in an encoded query")
	require.NotContains(t, ticketing.Marker(op(4)), "=")

	for name, o := range map[string]ticketing.Op{
		"another event":                op(44),
		"another life, same event":     {Key: testKey, Event: 4, Created: t0.Add(time.Second)},
		"the marker of another ticket": op(5),
	} {
		found, err := b.Applied(ctx, ref, o)
		require.NoError(t, err, name)
		require.False(t, found, name)
	}

	*denied = true
	_, err = b.Applied(ctx, ref, op(4))
	var de *ticketing.DeliveryError
	require.ErrorAs(t, err, &de)
	require.False(t, de.Retryable, "no read access to sys_journal_field: the deliverer sends the op again rather than lose it")
	_, err = b.Applied(ctx, ticketing.Ref{ID: "INC0000001"}, op(4))
	require.ErrorAs(t, err, &de)
	require.Equal(t, "bad_ref", de.Reason)
}
