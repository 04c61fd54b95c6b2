package rt

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/l2agent/l2agent/internal/ticketingtest"
	"github.com/l2agent/l2agent/ticketing"
)

// rtTicket is ticket 7 of a fake RT that keeps its subject and priority
// and edits them as REST 2.0 does: PUT /ticket/7 with a JSON object of
// fields, answered 200 with one message per change, or with "Permission
// Denied" and no change when the user may not modify the ticket.
type rtTicket struct {
	subject  string
	priority int
	denied   bool // the user lacks ModifyTicket
}

func (tk *rtTicket) handlers(t *testing.T) map[string]http.HandlerFunc {
	return map[string]http.HandlerFunc{
		"GET /REST/2.0/ticket/7": func(w http.ResponseWriter, r *http.Request) {
			ticketingtest.WriteJSON(w, http.StatusOK, map[string]any{
				"id": json.Number("7"), "type": "ticket", "Subject": tk.subject, "Priority": fmt.Sprint(tk.priority), "Status": "open",
				"Queue": map[string]string{"id": "3", "type": "queue", "Name": "HostChecks"},
			})
		},
		"PUT /REST/2.0/ticket/7": func(w http.ResponseWriter, r *http.Request) {
			var said []string
			for k, v := range ticketingtest.Received(r).Body {
				switch {
				case tk.denied:
					said = append(said, "Ticket 7: Permission Denied")
				case k == "Subject":
					s, ok := v.(string)
					require.True(t, ok, "Subject is a string: %v", v)
					said = append(said, fmt.Sprintf("Ticket 7: Subject changed from '%s' to '%s'", tk.subject, s))
					tk.subject = s
				case k == "Priority":
					p, ok := v.(float64)
					require.True(t, ok, "Priority is a number: %v", v)
					said = append(said, fmt.Sprintf("Ticket 7: Priority changed from '%d' to '%d'", tk.priority, int(p)))
					tk.priority = int(p)
				default:
					t.Errorf("unexpected field %s in an update", k)
				}
			}
			ticketingtest.WriteJSON(w, http.StatusOK, said)
		},
	}
}

// TestUpdate: the subject follows the title and the priority the tier;
// only what differs is sent, and read back; a priority someone set is kept.
func TestUpdate(t *testing.T) {
	tk := &rtTicket{subject: "disk /var 95.0% (crit ≥ 90.0%)", priority: 80}
	f, b := newFakeRT(t, tk.handlers(t))
	ctx := context.Background()
	ref := ticketing.Ref{ID: "7"}

	warn := ticketing.Ticket{Key: testKey, Title: "disk /var 85.0% (warn ≥ 80.0%)", Severity: "warn", Tier: ticketing.L3, Retitle: true}
	require.NoError(t, b.Update(ctx, ref, warn))
	require.Equal(t, []string{"GET /REST/2.0/ticket/7", "PUT /REST/2.0/ticket/7", "GET /REST/2.0/ticket/7"}, calls(f.Requests()))
	require.Equal(t, map[string]any{"Subject": warn.Title}, f.Requests()[1].Body, "the L3 priority (80) is already right")
	require.Equal(t, warn.Title, tk.subject)
	f.Take()

	require.NoError(t, b.Update(ctx, ref, warn), "again")
	require.Equal(t, []string{"GET /REST/2.0/ticket/7"}, f.Take(), "nothing differs: nothing sent")

	tk.priority = 50 // the L2 priority, on a ticket at L3
	flapping := warn
	flapping.Title += " [flapping]"
	require.NoError(t, b.Update(ctx, ref, flapping))
	require.Equal(t, map[string]any{"Subject": flapping.Title, "Priority": float64(80)}, f.Requests()[1].Body)
	require.Equal(t, 80, tk.priority)
	f.Take()

	tk.priority = 95 // set by someone (or RT's own priority escalation)
	require.NoError(t, b.Update(ctx, ref, warn))
	require.Equal(t, map[string]any{"Subject": warn.Title}, f.Requests()[1].Body)
	require.Equal(t, 95, tk.priority, "a priority someone set is kept")
}

// TestUpdateDenied: RT answers 200 to an update it refused; the read-back
// shows it, and the error quotes RT.
func TestUpdateDenied(t *testing.T) {
	tk := &rtTicket{subject: "old", priority: 50, denied: true}
	_, b := newFakeRT(t, tk.handlers(t))
	err := b.Update(context.Background(), ticketing.Ref{ID: "7"}, ticketing.Ticket{Key: testKey, Title: "new", Tier: ticketing.L2})
	de := deliveryError(t, err)
	require.False(t, de.Retryable)
	require.ErrorContains(t, err, `subject is "old", not "new"`)
	require.ErrorContains(t, err, "Permission Denied")
}

func calls(reqs []ticketingtest.Request) []string {
	var out []string
	for _, r := range reqs {
		out = append(out, r.Method+" "+r.Path)
	}
	return out
}
