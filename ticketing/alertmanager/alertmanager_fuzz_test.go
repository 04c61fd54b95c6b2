package alertmanager

import (
	"testing"

	"github.com/l2agent/l2agent/internal/ticketingtest"
)

// FuzzAnswers feeds Alertmanager's API v2 answers (POST /api/v2/alerts:
// 200 with an empty body, 400 with a JSON string, 5xx) to every operation:
// no answer makes the backend panic, hang, leak its password or return an
// unclassified error.
func FuzzAnswers(f *testing.F) {
	for _, s := range []struct {
		s1 int
		b1 string
		s2 int
		b2 string
	}{
		{200, ``, 200, ``},
		{400, `"start time must be before end time"`, 500, `"failed to create alerts"`},
		{200, `{"status":"success"}`, 503, `<html/>`},
		{401, `Unauthorized`, 200, `null`},
	} {
		f.Add(s.s1, s.b1, s.s2, s.b2)
	}
	f.Fuzz(func(t *testing.T, s1 int, b1 string, s2 int, b2 string) {
		srv := ticketingtest.AnswerServer(t, ticketingtest.Answer{Status: s1, ContentType: "application/json", Body: b1},
			ticketingtest.Answer{Status: s2, ContentType: "application/json", Body: b2})
		b := newBackend(t, Options{URLs: []string{srv.URL}})
		ticketingtest.ExerciseAnswers(t, b, "")
	})
}
