package rt

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/l2agent/l2agent/internal/ticketingtest"
	"github.com/l2agent/l2agent/ticketing"
)

const (
	testToken = "1-35-0123456789abcdef"
	testKey   = `web-7/disk/disk_used_ratio{mountpoint="/var"}`
)

// fakeRT answers REST 2.0 requests from a table of handlers keyed by
// "METHOD /path" and records what it received (the kit). Requests without
// the auth header get 401, as RT answers them; a request body must be JSON.
type fakeRT struct {
	*ticketingtest.Server
}

func rtError(w http.ResponseWriter, status int, msg string) {
	ticketingtest.WriteJSON(w, status, map[string]string{"message": msg})
}

func startRT(t *testing.T, handlers map[string]http.HandlerFunc) *fakeRT {
	t.Helper()
	f := &fakeRT{ticketingtest.New(t, ticketingtest.Options{Auth: "token " + testToken, Error: rtError})}
	for pattern, h := range handlers {
		f.Handle(pattern, h)
	}
	return f
}

func newFakeRT(t *testing.T, handlers map[string]http.HandlerFunc) (*fakeRT, *Backend) {
	t.Helper()
	f := startRT(t, handlers)
	return f, newBackend(t, f.URL, 5*time.Second)
}

func newBackend(t *testing.T, url string, timeout time.Duration) *Backend {
	t.Helper()
	tokenFile := filepath.Join(t.TempDir(), "token")
	require.NoError(t, os.WriteFile(tokenFile, []byte(testToken+"\n"), 0o600))
	b, err := New("rt", Options{
		URL: url, TokenFile: tokenFile,
		QueueL2: "HostChecks", QueueL3: "HostChecks-L3", CustomField: "HostCheckKey",
		PriorityL2: 50, PriorityL3: 80, PriorityL4: 90, OwnerL3: "l3engineer",
	}, timeout)
	require.NoError(t, err)
	return b
}

func answer(status int, body string) http.HandlerFunc { return ticketingtest.Reply(status, body) }

// ticketJSON is GET /ticket/N as RT 5.0.3 answers it (trimmed).
func ticketJSON(id, queue, status, priority, owner, key string) string {
	b, _ := json.Marshal(map[string]any{
		"id": json.Number(id), "Status": status, "Priority": priority,
		"Queue":        map[string]string{"id": "3", "type": "queue", "Name": queue},
		"Owner":        map[string]string{"id": owner, "type": "user"},
		"CustomFields": []map[string]any{{"id": "2", "name": "HostCheckKey", "values": []string{key}}},
	})
	return string(b)
}

// searchJSON is a TicketSQL search's answer holding the tickets given
// (ticketJSON).
func searchJSON(tickets ...string) string {
	return `{"count":` + strconv.Itoa(len(tickets)) + `,"page":1,"per_page":20,"total":` + strconv.Itoa(len(tickets)) + `,"items":[` + strings.Join(tickets, ",") + `]}`
}

func deliveryError(t *testing.T, err error) *ticketing.DeliveryError {
	t.Helper()
	var de *ticketing.DeliveryError
	require.ErrorAs(t, err, &de)
	return de
}

func TestRetryAfter(t *testing.T) {
	_, b := newFakeRT(t, map[string]http.HandlerFunc{
		"POST /REST/2.0/ticket": ticketingtest.Throttle("2", ticketingtest.Fail(http.StatusTooManyRequests, "slow down")),
	})
	_, err := b.Open(context.Background(), ticketing.Ticket{Key: testKey, Title: "t", Body: "b"})
	de := deliveryError(t, err)
	require.True(t, de.Retryable)
	require.Equal(t, 2*time.Second, de.RetryAfter)
	require.Equal(t, "http_429", de.Reason)
}

func TestBadRequestIsFinalWithBody(t *testing.T) {
	_, b := newFakeRT(t, map[string]http.HandlerFunc{
		"POST /REST/2.0/ticket": answer(http.StatusBadRequest, `{"message":"Status 'bogus' isn't a valid status for tickets in this queue."}`),
	})
	_, err := b.Open(context.Background(), ticketing.Ticket{Key: testKey, Title: "t", Body: "b"})
	de := deliveryError(t, err)
	require.False(t, de.Retryable)
	require.Equal(t, "http_4xx", de.Reason)
	require.Contains(t, err.Error(), "isn't a valid status")
}

func TestServerErrorRetries(t *testing.T) {
	_, b := newFakeRT(t, map[string]http.HandlerFunc{
		"POST /REST/2.0/ticket/7/comment": answer(http.StatusInternalServerError, "boom"),
	})
	de := deliveryError(t, b.Comment(context.Background(), ticketing.Ref{ID: "7"}, "hi"))
	require.True(t, de.Retryable)
	require.Equal(t, "http_5xx", de.Reason)
}

func TestUnauthorizedIsFinal(t *testing.T) {
	f := startRT(t, nil)
	tokenFile := filepath.Join(t.TempDir(), "token")
	require.NoError(t, os.WriteFile(tokenFile, []byte("wrong"), 0o600))
	b, err := New("rt", Options{URL: f.URL, TokenFile: tokenFile, QueueL2: "Q", CustomField: "CF"}, time.Second)
	require.NoError(t, err)
	_, _, err = b.Find(context.Background(), testKey)
	de := deliveryError(t, err)
	require.False(t, de.Retryable)
	require.Contains(t, err.Error(), "HTTP 401")
}

// TestOpenSendsTicket checks the JSON RT receives, and that Open reads the
// ticket back.
func TestOpenSendsTicket(t *testing.T) {
	f, b := newFakeRT(t, map[string]http.HandlerFunc{
		"POST /REST/2.0/ticket": answer(http.StatusCreated, `{"type":"ticket","id":"42","_url":"http://rt/REST/2.0/ticket/42"}`),
		"GET /REST/2.0/tickets": answer(http.StatusOK, searchJSON(ticketJSON("42", "HostChecks", "new", "50", "Nobody", testKey))),
	})
	title := "[l2agent] web-7: disk /var disk_used_ratio 93.0% (crit ≥ 90.0%)"
	ref, err := b.Open(context.Background(), ticketing.Ticket{Key: testKey, Title: title, Body: "Host: web-7\n", Tier: ticketing.L2})
	require.NoError(t, err)
	require.Equal(t, "42", ref.ID)
	require.Equal(t, b.base+"/Ticket/Display.html?id=42", ref.URL)

	reqs := f.Requests()
	require.Len(t, reqs, 2)
	require.Equal(t, map[string]any{
		"Queue":        "HostChecks",
		"Subject":      title,
		"Content":      "Host: web-7\n",
		"ContentType":  "text/plain",
		"Priority":     float64(50),
		"CustomFields": map[string]any{"HostCheckKey": testKey},
	}, reqs[0].Body)
	require.Equal(t, "/REST/2.0/tickets", reqs[1].Path, "read back with a search on the id")
	require.Equal(t, []string{"id = 42"}, reqs[1].Query["query"])
	require.Equal(t, []string{"Queue,Priority,Owner,Status,CustomFields"}, reqs[1].Query["fields"])
	require.Equal(t, []string{"Name"}, reqs[1].Query["fields[Queue]"])
}

// TestOpenNotReadBack: the search on the new ticket's id does not find it
// (the user may create tickets in the queue but not see them): a final
// error with the ref, as Find could not find it either.
func TestOpenNotReadBack(t *testing.T) {
	_, b := newFakeRT(t, map[string]http.HandlerFunc{
		"POST /REST/2.0/ticket": answer(http.StatusCreated, `{"type":"ticket","id":"44"}`),
		"GET /REST/2.0/tickets": answer(http.StatusOK, searchJSON()),
	})
	ref, err := b.Open(context.Background(), ticketing.Ticket{Key: testKey, Title: "t", Body: "b"})
	require.Equal(t, "44", ref.ID)
	de := deliveryError(t, err)
	require.False(t, de.Retryable)
	require.Contains(t, err.Error(), "ticket 44 created, but a search by its id does not find it")
}

// TestOpenWithoutCustomField: RT creates the ticket even when it cannot set
// the custom field (it only logs that). Find could never find that ticket:
// a final error naming the field, with the ref.
func TestOpenWithoutCustomField(t *testing.T) {
	_, b := newFakeRT(t, map[string]http.HandlerFunc{
		"POST /REST/2.0/ticket": answer(http.StatusCreated, `{"type":"ticket","id":"43"}`),
		"GET /REST/2.0/tickets": answer(http.StatusOK, searchJSON(ticketJSON("43", "HostChecks", "new", "50", "Nobody", ""))),
	})
	ref, err := b.Open(context.Background(), ticketing.Ticket{Key: testKey, Title: "t", Body: "b"})
	require.Equal(t, "43", ref.ID)
	de := deliveryError(t, err)
	require.False(t, de.Retryable)
	require.Contains(t, err.Error(), "custom field HostCheckKey")
}

// TestRefusedUpdate: RT answers an update it refused with HTTP 200 and the
// refusal in a list of messages.
func TestRefusedUpdate(t *testing.T) {
	f, b := newFakeRT(t, map[string]http.HandlerFunc{
		"PUT /REST/2.0/ticket/7": answer(http.StatusOK, `["Ticket 7: Permission Denied"]`),
		"GET /REST/2.0/ticket/7": answer(http.StatusOK, ticketJSON("7", "HostChecks", "open", "50", "Nobody", testKey)),
	})
	err := b.Escalate(context.Background(), ticketing.Ref{ID: "7"}, ticketing.L3, ticketing.Ticket{Key: testKey, Title: "t", Body: "why"})
	de := deliveryError(t, err)
	require.False(t, de.Retryable)
	require.Equal(t, "api", de.Reason)
	require.Contains(t, err.Error(), "Permission Denied")
	require.Contains(t, err.Error(), `queue is "HostChecks", not "HostChecks-L3"`)
	for _, r := range f.Requests() {
		require.NotEqual(t, "/REST/2.0/ticket/7/comment", r.Path, "no escalation comment when the move was refused")
	}
}

func TestEscalate(t *testing.T) {
	owner := "Nobody"
	var f *fakeRT
	f, b := newFakeRT(t, map[string]http.HandlerFunc{
		"PUT /REST/2.0/ticket/7": func(w http.ResponseWriter, r *http.Request) {
			if o, ok := f.Last().Body["Owner"].(string); ok {
				owner = o
			}
			answer(http.StatusOK, `["Ticket 7: Queue changed from HostChecks to HostChecks-L3"]`)(w, r)
		},
		"GET /REST/2.0/ticket/7": func(w http.ResponseWriter, r *http.Request) {
			answer(http.StatusOK, ticketJSON("7", "HostChecks-L3", "open", "80", owner, testKey))(w, r)
		},
		"POST /REST/2.0/ticket/7/comment": answer(http.StatusCreated, `["Comments added"]`),
	})
	err := b.Escalate(context.Background(), ticketing.Ref{ID: "7"}, ticketing.L3, ticketing.Ticket{Key: testKey, Title: "new title", Body: "Escalated to L3: crit"})
	require.NoError(t, err)
	reqs := f.Requests()
	var calls []string
	for _, r := range reqs {
		calls = append(calls, r.Method+" "+r.Path)
	}
	require.Equal(t, []string{
		"PUT /REST/2.0/ticket/7", "GET /REST/2.0/ticket/7", // move, check
		"PUT /REST/2.0/ticket/7", "GET /REST/2.0/ticket/7", // priority, title, owner, check
		"POST /REST/2.0/ticket/7/comment",
	}, calls)
	require.Equal(t, map[string]any{"Queue": "HostChecks-L3"}, reqs[0].Body)
	require.Equal(t, map[string]any{"Priority": float64(80), "Subject": "new title", "Owner": "l3engineer"}, reqs[2].Body)
	require.Equal(t, "text/plain", reqs[4].Body["ContentType"])
	require.Contains(t, reqs[4].Body["Content"], "queue HostChecks-L3, priority 80, owner l3engineer")
	require.Contains(t, reqs[4].Body["Content"], "Escalated to L3: crit")
}

func TestResolveRefusedStatus(t *testing.T) {
	f, b := newFakeRT(t, map[string]http.HandlerFunc{
		"POST /REST/2.0/ticket/7/comment": answer(http.StatusCreated, `["Comments added","Permission Denied"]`),
		"GET /REST/2.0/ticket/7":          answer(http.StatusOK, ticketJSON("7", "HostChecks", "open", "50", "Nobody", testKey)),
	})
	err := b.Resolve(context.Background(), ticketing.Ref{ID: "7"}, "ok again for 15m")
	de := deliveryError(t, err)
	require.False(t, de.Retryable)
	require.Contains(t, err.Error(), "Permission Denied")
	require.Equal(t, map[string]any{"Content": "ok again for 15m", "ContentType": "text/plain", "Status": "resolved"}, f.Requests()[0].Body)
}

// A 2xx answer that is not RT's JSON (a proxy's login page) is final.
func TestNotJSONIsFinal(t *testing.T) {
	_, b := newFakeRT(t, map[string]http.HandlerFunc{
		"GET /REST/2.0/tickets": func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Content-Type", "text/html")
			io.WriteString(w, "<html><body>Please log in</body></html>")
		},
	})
	_, _, err := b.Find(context.Background(), testKey)
	de := deliveryError(t, err)
	require.False(t, de.Retryable)
	require.Contains(t, err.Error(), "Please log in")
}

// TestFindQueryAndExactMatch: the TicketSQL RT receives, newest first, and
// Find skips hits whose value differs in case (RT compares without case).
func TestFindQueryAndExactMatch(t *testing.T) {
	items := `{"count":2,"items":[
		{"id":"9","type":"ticket","CustomFields":[{"name":"HostCheckKey","values":["WEB-7/disk/disk_used_ratio{mountpoint=\"/var\"}"]}]},
		{"id":"5","type":"ticket","CustomFields":[{"name":"HostCheckKey","values":["web-7/disk/disk_used_ratio{mountpoint=\"/var\"}"]}]}]}`
	f, b := newFakeRT(t, map[string]http.HandlerFunc{"GET /REST/2.0/tickets": answer(http.StatusOK, items)})
	ref, ok, err := b.Find(context.Background(), testKey)
	require.NoError(t, err)
	require.True(t, ok)
	require.Equal(t, "5", ref.ID)
	q := f.Requests()[0].Query
	require.Equal(t, []string{`CF.{HostCheckKey} = 'web-7/disk/disk_used_ratio{mountpoint="/var"}'`}, q["query"])
	require.Equal(t, []string{"id"}, q["orderby"])
	require.Equal(t, []string{"DESC"}, q["order"])

	_, ok, err = b.Find(context.Background(), "web-8/cpu/cpu_usage_ratio")
	require.NoError(t, err)
	require.False(t, ok)
}

func TestQuoteSQL(t *testing.T) {
	for in, want := range map[string]string{
		`plain`:                         `'plain'`,
		`m{mountpoint="/var"}`:          `'m{mountpoint="/var"}'`,
		`it's`:                          `'it\'s'`,
		`C:\dir`:                        `'C:\\dir'`,
		`\'`:                            `'\\\''`,
		`≥ 90%`:                         `'≥ 90%'`,
		`web-7/x{a="b",c="d'e"} OR 1=1`: `'web-7/x{a="b",c="d\'e"} OR 1=1'`,
	} {
		require.Equal(t, want, QuoteSQL(in), "QuoteSQL(%q)", in)
	}
}

func TestNetworkErrorRetries(t *testing.T) {
	f := startRT(t, nil)
	f.Close()
	b := newBackend(t, f.URL, time.Second)
	_, _, err := b.Find(context.Background(), testKey)
	de := deliveryError(t, err)
	require.True(t, de.Retryable)
	require.Equal(t, "network", de.Reason)
}

func TestTimeoutRetries(t *testing.T) {
	f := startRT(t, nil)
	f.Inject(ticketingtest.Delay(time.Minute, nil))
	b := newBackend(t, f.URL, 100*time.Millisecond)
	_, _, err := b.Find(context.Background(), testKey)
	de := deliveryError(t, err)
	require.True(t, de.Retryable)
	require.Equal(t, "timeout", de.Reason)
}

func TestCancelled(t *testing.T) {
	f := startRT(t, nil)
	f.Inject(ticketingtest.Delay(time.Minute, nil))
	b := newBackend(t, f.URL, 10*time.Second)
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(50*time.Millisecond, cancel)
	_, _, err := b.Find(ctx, testKey)
	require.ErrorIs(t, err, context.Canceled)
	reason, retry, _ := ticketing.Classify(err)
	require.Equal(t, "cancelled", reason)
	require.True(t, retry)
}

func TestNew(t *testing.T) {
	tokenFile := filepath.Join(t.TempDir(), "token")
	require.NoError(t, os.WriteFile(tokenFile, []byte("tok\n"), 0o600))
	ok := Options{URL: "https://rt.example.com/REST/2.0/", TokenFile: tokenFile, QueueL2: "Q", CustomField: "HostCheckKey"}
	b, err := New("rt", ok, 0)
	require.NoError(t, err)
	require.Equal(t, "https://rt.example.com", b.base)
	require.Equal(t, "https://rt.example.com/Ticket/Display.html?id=12", b.TicketURL("12"))
	require.Equal(t, "Q", b.tiers[ticketing.L4].queue, "L3 and L4 fall back to the L2 queue")

	for name, mod := range map[string]func(o *Options){
		"no url":      func(o *Options) { o.URL = "" },
		"ftp url":     func(o *Options) { o.URL = "ftp://rt" },
		"no token":    func(o *Options) { o.TokenFile = "" },
		"bad file":    func(o *Options) { o.TokenFile = "/nonexistent/token" },
		"no queue":    func(o *Options) { o.QueueL2 = "" },
		"no cf":       func(o *Options) { o.CustomField = "" },
		"cf w/ brace": func(o *Options) { o.CustomField = "a}b" },
	} {
		o := ok
		mod(&o)
		_, err := New("rt", o, 0)
		require.Error(t, err, name)
	}
}

func TestBadRef(t *testing.T) {
	f, b := newFakeRT(t, nil)
	err := b.Comment(context.Background(), ticketing.Ref{ID: "web-7"}, "x")
	de := deliveryError(t, err)
	require.False(t, de.Retryable)
	require.Contains(t, err.Error(), "not a number")
	require.Empty(t, f.Requests())
}
