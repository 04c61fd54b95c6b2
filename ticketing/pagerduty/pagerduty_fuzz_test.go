package pagerduty

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/l2agent/l2agent/internal/ticketingtest"
)

// FuzzAnswers feeds the Events API v2's answers (accepted, invalid event,
// throttled, HTML from a proxy) to every operation: no answer makes the
// backend panic, hang, report an incident without a dedup key, leak the
// routing key or return an unclassified error.
func FuzzAnswers(f *testing.F) {
	for _, s := range []struct {
		s1 int
		b1 string
		s2 int
		b2 string
	}{
		{202, `{"status":"success","message":"Event processed","dedup_key":"k"}`, 202, `{"status":"success","message":"Event processed","dedup_key":"k"}`},
		{400, `{"status":"invalid event","message":"Event object is invalid","errors":["Length of 'routing_key' is incorrect (should be 32 characters)"]}`, 429, `{"status":"throttle event","message":"Requests for this service are arriving too quickly."}`},
		{202, `{"status":"success","dedup_key":""}`, 500, `<html>oops</html>`},
		{400, `{"errors":["routing_key ` + keyL2 + ` unknown"]}`, 202, `null`},
	} {
		f.Add(s.s1, s.b1, s.s2, s.b2)
	}
	f.Fuzz(func(t *testing.T, s1 int, b1 string, s2 int, b2 string) {
		srv := ticketingtest.AnswerServer(t, ticketingtest.Answer{Status: s1, ContentType: "application/json", Body: b1},
			ticketingtest.Answer{Status: s2, ContentType: "application/json", Body: b2})
		o := Options{URL: srv.URL + "/v2/enqueue", RoutingKeyFile: filepath.Join(t.TempDir(), "key")}
		if err := os.WriteFile(o.RoutingKeyFile, []byte(keyL2), 0o600); err != nil {
			t.Fatal(err)
		}
		o.ApplyDefaults("")
		b, err := New("pd", o, 2*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		ticketingtest.ExerciseAnswers(t, b, keyL2)
	})
}
