package rt

import (
	"context"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/l2agent/l2agent/internal/ticketingtest"
	"github.com/l2agent/l2agent/ticketing"
)

// statefulRT is a fake RT 5 that keeps its tickets and their messages, for
// what depends on what RT holds (finding an operation again). It serves
// what the backend uses of REST 2.0: TicketSQL on the key's custom field
// (compared without case, as RT does), create, read, update, comment (with
// a status), and a ticket's attachments as RT lists them: each message is
// a multipart/mixed container and its text/plain part, paged, in the order
// asked, with the fields asked.
type statefulRT struct {
	*ticketingtest.Server
	tickets []*fakeTicket
	atts    int // attachment ids given
}

type fakeTicket struct {
	ID                            int
	Queue, Status, Subject, Owner string
	Priority                      int
	Key                           string
	Atts                          []fakeAtt
}

type fakeAtt struct {
	ID          int
	ContentType string
	Content     string
}

func newStatefulRT(t *testing.T) (*statefulRT, *Backend) {
	f := &statefulRT{Server: startRT(t, nil).Server}
	api := "/REST/2.0"
	f.Handle("GET "+api+"/tickets", f.search)
	f.Handle("POST "+api+"/ticket", f.create)
	f.Handle("GET "+api+"/ticket/{id}", f.withTicket(f.get))
	f.Handle("PUT "+api+"/ticket/{id}", f.withTicket(f.update))
	f.Handle("POST "+api+"/ticket/{id}/comment", f.withTicket(f.comment))
	f.Handle("GET "+api+"/ticket/{id}/attachments", f.attachments)
	return f, newBackend(t, f.URL, 5*time.Second)
}

// unquoteSQL reads a TicketSQL string literal: quoted, with backslash
// escapes.
func unquoteSQL(s string) (string, bool) {
	if len(s) < 2 || s[0] != '\'' || s[len(s)-1] != '\'' {
		return "", false
	}
	var sb strings.Builder
	esc := false
	for _, r := range s[1 : len(s)-1] {
		if !esc && r == '\\' {
			esc = true
			continue
		}
		esc = false
		sb.WriteRune(r)
	}
	return sb.String(), true
}

func (f *statefulRT) search(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	if id, ok := strings.CutPrefix(q.Get("query"), "id = "); ok { // Open's read back
		items := []string{}
		if tk := f.ticket(id); tk != nil {
			items = append(items, ticketJSON(strconv.Itoa(tk.ID), tk.Queue, tk.Status, strconv.Itoa(tk.Priority), tk.Owner, tk.Key))
		}
		answer(http.StatusOK, searchJSON(items...))(w, r)
		return
	}
	lit, ok := strings.CutPrefix(q.Get("query"), "CF.{HostCheckKey} = ")
	key, ok2 := unquoteSQL(lit)
	if !ok || !ok2 || q.Get("orderby") != "id" || q.Get("order") != "DESC" {
		rtError(w, http.StatusBadRequest, "unexpected search: "+r.URL.RawQuery)
		return
	}
	items := []any{}
	for i := len(f.tickets) - 1; i >= 0; i-- {
		if tk := f.tickets[i]; strings.EqualFold(tk.Key, key) {
			items = append(items, map[string]any{"id": strconv.Itoa(tk.ID), "type": "ticket",
				"CustomFields": []map[string]any{{"name": "HostCheckKey", "values": []string{tk.Key}}}})
		}
	}
	ticketingtest.WriteJSON(w, http.StatusOK, map[string]any{"count": len(items), "items": items})
}

// message adds a message to tk: a container and its text part.
func (f *statefulRT) message(tk *fakeTicket, content string) {
	f.atts += 2
	tk.Atts = append(tk.Atts, fakeAtt{ID: f.atts - 1, ContentType: "multipart/mixed"}, fakeAtt{ID: f.atts, ContentType: "text/plain", Content: content})
}

func (f *statefulRT) create(w http.ResponseWriter, r *http.Request) {
	b := ticketingtest.Received(r).Body
	cf, _ := b["CustomFields"].(map[string]any)
	prio, _ := b["Priority"].(float64)
	tk := &fakeTicket{ID: len(f.tickets) + 1, Status: "new", Owner: "Nobody", Priority: int(prio)}
	tk.Queue, _ = b["Queue"].(string)
	tk.Subject, _ = b["Subject"].(string)
	tk.Key, _ = cf["HostCheckKey"].(string)
	if o, ok := b["Owner"].(string); ok {
		tk.Owner = o
	}
	content, _ := b["Content"].(string)
	f.message(tk, content)
	f.tickets = append(f.tickets, tk)
	ticketingtest.WriteJSON(w, http.StatusCreated, map[string]any{"type": "ticket", "id": tk.ID})
}

func (f *statefulRT) ticket(id string) *fakeTicket {
	n, err := strconv.Atoi(id)
	if err != nil || n < 1 || n > len(f.tickets) {
		return nil
	}
	return f.tickets[n-1]
}

func (f *statefulRT) withTicket(h func(w http.ResponseWriter, tk *fakeTicket, body map[string]any)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		tk := f.ticket(r.PathValue("id"))
		if tk == nil {
			rtError(w, http.StatusNotFound, "Resource does not exist")
			return
		}
		h(w, tk, ticketingtest.Received(r).Body)
	}
}

func (f *statefulRT) get(w http.ResponseWriter, tk *fakeTicket, _ map[string]any) {
	answer(http.StatusOK, ticketJSON(strconv.Itoa(tk.ID), tk.Queue, tk.Status, strconv.Itoa(tk.Priority), tk.Owner, tk.Key))(w, nil)
}

func (f *statefulRT) update(w http.ResponseWriter, tk *fakeTicket, b map[string]any) {
	var said []string
	for k, v := range b {
		switch k {
		case "Queue":
			tk.Queue = v.(string)
		case "Subject":
			tk.Subject = v.(string)
		case "Owner":
			tk.Owner = v.(string)
		case "Priority":
			tk.Priority = int(v.(float64))
		default:
			rtError(w, http.StatusBadRequest, "unexpected field "+k)
			return
		}
		said = append(said, fmt.Sprintf("Ticket %d: %s changed", tk.ID, k))
	}
	ticketingtest.WriteJSON(w, http.StatusOK, said)
}

func (f *statefulRT) comment(w http.ResponseWriter, tk *fakeTicket, b map[string]any) {
	content, _ := b["Content"].(string)
	if b["ContentType"] != "text/plain" || content == "" {
		rtError(w, http.StatusBadRequest, "ContentType is a required field for application/json")
		return
	}
	f.message(tk, content)
	said := []string{"Comments added"}
	if s, ok := b["Status"].(string); ok && s != tk.Status {
		said = append(said, fmt.Sprintf("Status changed from '%s' to '%s'", tk.Status, s))
		tk.Status = s
	}
	ticketingtest.WriteJSON(w, http.StatusCreated, said)
}

// attachments lists a ticket's attachments as RT does: an unknown ticket
// has none; fields, orderby id, order, page and per_page are honoured.
func (f *statefulRT) attachments(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	page, _ := strconv.Atoi(q.Get("page"))
	per, _ := strconv.Atoi(q.Get("per_page"))
	if page < 1 || per < 1 || q.Get("orderby") != "id" {
		rtError(w, http.StatusBadRequest, "want orderby=id, page and per_page")
		return
	}
	var atts []fakeAtt
	if tk := f.ticket(r.PathValue("id")); tk != nil {
		atts = append(atts, tk.Atts...)
	}
	if q.Get("order") == "DESC" {
		for i, j := 0, len(atts)-1; i < j; i, j = i+1, j-1 {
			atts[i], atts[j] = atts[j], atts[i]
		}
	}
	items := []any{}
	for i := (page - 1) * per; i < min(page*per, len(atts)); i++ {
		it := map[string]any{"type": "attachment", "id": strconv.Itoa(atts[i].ID)}
		for _, fl := range strings.Split(q.Get("fields"), ",") {
			switch fl {
			case "ContentType":
				it[fl] = atts[i].ContentType
			case "Content":
				it[fl] = atts[i].Content
			}
		}
		items = append(items, it)
	}
	ticketingtest.WriteJSON(w, http.StatusOK, map[string]any{"count": len(items), "page": page, "per_page": per, "total": len(atts), "items": items})
}

// Tickets counts the tickets holding exactly key.
func (f *statefulRT) Tickets(key string) int {
	n := 0
	for _, tk := range f.tickets {
		if tk.Key == key {
			n++
		}
	}
	return n
}

// Texts are the comments of ticket r, oldest first (not the create's text).
func (f *statefulRT) Texts(r ticketing.Ref) []string {
	var out []string
	if tk := f.ticket(r.ID); tk != nil {
		for _, a := range tk.Atts[2:] {
			if a.ContentType == "text/plain" {
				out = append(out, a.Content)
			}
		}
	}
	return out
}

// TestExactlyOnce: a crash or a lost answer after RT applied any operation
// of an incident's life leaves every operation in the ticket once.
func TestExactlyOnce(t *testing.T) {
	f, b := newStatefulRT(t)
	ticketingtest.ExactlyOnce(t, b, f)
}

// TestApplied: the lookup reads the ticket's messages newest first, page
// by page, and finds only the operation's own marker.
func TestApplied(t *testing.T) {
	f, b := newStatefulRT(t)
	ctx := context.Background()
	ref, err := b.Open(ctx, ticketing.Ticket{Key: testKey, Title: "t", Body: "b", Tier: ticketing.L2})
	require.NoError(t, err)
	other, err := b.Open(ctx, ticketing.Ticket{Key: testKey + "x", Title: "t", Body: "b", Tier: ticketing.L2})
	require.NoError(t, err)
	t0 := time.Now()
	op := func(ev uint64) ticketing.Op {
		return ticketing.Op{Key: testKey, Kind: ticketing.OpComment, Event: ev, Created: t0}
	}
	require.NoError(t, b.Comment(ctx, ref, "Severity warn → crit\n\n"+ticketing.Marker(op(2))))
	for i := 0; i < appliedPageSize; i++ { // two attachments each: the marker is on the third page
		require.NoError(t, b.Comment(ctx, ref, fmt.Sprint("a person's comment ", i)))
	}
	require.NoError(t, b.Comment(ctx, other, ticketing.Marker(op(3))))
	f.Take()

	found, err := b.Applied(ctx, ref, op(2))
	require.NoError(t, err)
	require.True(t, found)
	reqs := f.Requests()
	require.Len(t, reqs, 3, "three pages read")
	q := reqs[2].Query
	require.Equal(t, "/REST/2.0/ticket/"+ref.ID+"/attachments", reqs[2].Path)
	require.Equal(t, []string{"ContentType,Content"}, q["fields"])
	require.Equal(t, []string{"DESC"}, q["order"])
	require.Equal(t, []string{"3"}, q["page"])

	for _, tc := range []struct {
		name string
		ref  ticketing.Ref
		op   ticketing.Op
	}{
		{"another event", ref, op(20)},
		{"same event, another time (the incident started again)", ref, ticketing.Op{Key: testKey, Event: 2, Created: t0.Add(time.Second)}},
		{"the marker of another ticket", ref, op(3)},
		{"no such ticket", ticketing.Ref{ID: "99"}, op(2)},
	} {
		found, err := b.Applied(ctx, tc.ref, tc.op)
		require.NoError(t, err, tc.name)
		require.False(t, found, tc.name)
	}
	err = func() error { _, err := b.Applied(ctx, ticketing.Ref{ID: "web-7"}, op(2)); return err }()
	require.False(t, deliveryError(t, err).Retryable)

	f.Inject(ticketingtest.Fail(http.StatusBadGateway, "proxy error"))
	_, err = b.Applied(ctx, ref, op(2))
	require.True(t, deliveryError(t, err).Retryable, "a 5xx: the lookup is tried again later")
}
