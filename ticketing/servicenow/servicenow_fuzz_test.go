package servicenow

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/l2agent/l2agent/internal/ticketingtest"
)

// FuzzAnswers feeds ServiceNow's answers (Table API results, a created or
// patched incident, journal entries, error objects) to every operation: no
// answer makes the backend panic, hang, report an incident without a
// sys_id, leak its password or return an unclassified error.
func FuzzAnswers(f *testing.F) {
	inc := `{"sys_id":"a1b2c3d4e5f60718293a4b5c6d7e8f90","number":"INC0010001","state":"2","correlation_id":"k","assignment_group":{"value":"` + groupServiceDesk + `"},"priority":"3","short_description":"s"}`
	for _, s := range []struct {
		s1 int
		b1 string
		s2 int
		b2 string
	}{
		{200, `{"result":[` + inc + `]}`, 200, `{"result":` + inc + `}`},
		{200, `{"result":[]}`, 201, `{"result":` + inc + `}`},
		{200, `{"result":[{"sys_id":"","state":"7"}]}`, 200, `{"result":{}}`},
		{200, `{"result":[{"name":"incident","element":"state","value":"6","label":"Resolved"}]}`, 200, `{"result":null}`},
		{403, `{"error":{"message":"Operation Failed","detail":"ACL Exception Update Failed due to security constraints"},"status":"failure"}`, 429, `{"error":{"message":"rate limited"}}`},
		{401, `{"error":{"message":"User ` + testUser + ` password ` + testPass + ` not authenticated"},"status":"failure"}`, 500, `<html/>`},
		{200, `{"result":"x"}`, 200, `[]`},
	} {
		f.Add(s.s1, s.b1, s.s2, s.b2)
	}
	f.Fuzz(func(t *testing.T, s1 int, b1 string, s2 int, b2 string) {
		srv := ticketingtest.AnswerServer(t, ticketingtest.Answer{Status: s1, ContentType: "application/json", Body: b1},
			ticketingtest.Answer{Status: s2, ContentType: "application/json", Body: b2})
		o := Options{URL: srv.URL, User: testUser, PasswordFile: filepath.Join(t.TempDir(), "password"), AssignmentGroupL2: groupServiceDesk}
		if err := os.WriteFile(o.PasswordFile, []byte(testPass), 0o600); err != nil {
			t.Fatal(err)
		}
		o.ApplyDefaults("")
		b, err := New("snow", o, 2*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		ticketingtest.ExerciseAnswers(t, b, testPass)
	})
}
