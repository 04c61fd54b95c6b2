package rt

import (
	"testing"
	"time"

	"github.com/l2agent/l2agent/internal/ticketingtest"
)

// FuzzAnswers feeds RT's answers (search, ticket, create, correspond,
// error bodies) to every operation: no answer makes the backend panic,
// hang, report a ticket without an id, leak its token or return an
// unclassified error.
func FuzzAnswers(f *testing.F) {
	ticket := ticketJSON("7", "HostChecks", "open", "50", "Nobody", testKey)
	for _, s := range []struct {
		s1 int
		b1 string
		s2 int
		b2 string
	}{
		{200, `{"count":1,"page":1,"per_page":20,"total":1,"items":[{"type":"ticket","id":"7","_url":"http://rt/REST/2.0/ticket/7"}]}`, 200, ticket},
		{200, `{"count":0,"page":1,"per_page":20,"total":0,"items":[]}`, 201, `{"type":"ticket","id":"7","_url":"http://rt/REST/2.0/ticket/7"}`},
		{200, ticket, 200, `["Correspondence added"]`},
		{200, `{"items":[{"id":7}]}`, 200, `{"id":null}`},
		{429, `{"message":"slow down"}`, 500, "<html>Internal Server Error</html>"},
		{401, `{"message":"token ` + testToken + ` is not valid"}`, 400, `{"message":"Could not create ticket"}`},
		{200, `not json`, 200, ``},
	} {
		f.Add(s.s1, s.b1, s.s2, s.b2)
	}
	f.Fuzz(func(t *testing.T, s1 int, b1 string, s2 int, b2 string) {
		srv := ticketingtest.AnswerServer(t, ticketingtest.Answer{Status: s1, ContentType: "application/json", Body: b1},
			ticketingtest.Answer{Status: s2, ContentType: "application/json", Body: b2})
		ticketingtest.ExerciseAnswers(t, newBackend(t, srv.URL, 2*time.Second), testToken)
	})
}
