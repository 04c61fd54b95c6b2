package ticketingtest

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/l2agent/l2agent/ticketing"
)

// Answer is what a fuzzed ticket system answers to a request.
type Answer struct {
	Status      int
	ContentType string
	Body        string
}

// AnswerServer is a server that answers the first request with first and
// every later one with rest, whatever was asked: the fuzz tests of each
// backend feed its response decoding with it. Statuses are kept within
// 200..599 (net/http handles 1xx itself).
func AnswerServer(t testing.TB, first, rest Answer) *httptest.Server {
	var n atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		a := rest
		if n.Add(1) == 1 {
			a = first
		}
		if a.ContentType != "" {
			w.Header().Set("Content-Type", a.ContentType)
		}
		status := a.Status
		if status < 200 || status > 599 {
			status = 200 + (status%400+400)%400
		}
		w.WriteHeader(status)
		_, _ = w.Write([]byte(a.Body))
	}))
	t.Cleanup(srv.Close)
	return srv
}

// ExerciseAnswers runs every operation of tk against whatever its server
// answers and fails on what no answer may cause: a hang past the client's
// timeout, a ticket found or opened without an id, an error that leaks
// secret (the backend's credential), or an error that is not classified
// (a DeliveryError, or a network error or cancellation, never a bare
// decode error left for the outbox to retry forever unclassified).
func ExerciseAnswers(t testing.TB, tk ticketing.Ticketer, secret string) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	check := func(op string, err error) {
		if err == nil {
			return
		}
		if secret != "" && strings.Contains(err.Error(), secret) {
			t.Fatalf("%s: the error shows the credential: %v", op, err)
		}
		var de *ticketing.DeliveryError
		if !errors.As(err, &de) && !errors.Is(err, context.Canceled) && !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("%s: unclassified error %T: %v", op, err, err)
		}
		if ctx.Err() != nil {
			t.Fatalf("%s: still running at the deadline: %v", op, err)
		}
	}
	tick := ticketing.Ticket{Key: "web-7/disk/disk_used_ratio{mountpoint=\"/var\"}", Title: "[l2agent] web-7: disk /var", Body: "Host: web-7\n",
		Host: "web-7", Check: "disk", Metric: "disk_used_ratio", Labels: map[string]string{"mountpoint": "/var"}, Severity: "crit", Tier: ticketing.L2}
	ref, found, err := tk.Find(ctx, tick.Key)
	check("find", err)
	if err == nil && found && ref.ID == "" {
		t.Fatalf("find: found a ticket without an id: %+v", ref)
	}
	opened, err := tk.Open(ctx, tick)
	check("open", err)
	if err == nil && opened.ID == "" {
		t.Fatalf("open: a ticket without an id: %+v", opened)
	}
	if opened.ID == "" {
		opened = ticketing.Ref{ID: "42"}
	}
	check("comment", tk.Comment(ctx, opened, "still firing"))
	tick.Tier = ticketing.L3
	check("escalate", tk.Escalate(ctx, opened, ticketing.L3, tick))
	if u, ok := tk.(ticketing.Updater); ok {
		check("update", u.Update(ctx, opened, tick))
	}
	check("resolve", tk.Resolve(ctx, opened, "fixed"))
	check("reopen", tk.Reopen(ctx, opened, "again"))
}
