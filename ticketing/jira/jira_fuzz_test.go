package jira

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/l2agent/l2agent/internal/testkit"
	"github.com/l2agent/l2agent/internal/ticketingtest"
)

// FuzzAnswers feeds Jira's answers (serverInfo, search, issue, create,
// transitions, error objects) to every operation of a Cloud and a Data
// Center backend: no answer makes it panic, hang, report an issue without
// a key, leak its token or return an unclassified error.
func FuzzAnswers(f *testing.F) {
	issue := `{"id":"10001","key":"OPS-1","self":"http://j/rest/api/3/issue/10001","fields":{"summary":"s","labels":["l2agent"],"status":{"name":"Open","statusCategory":{"key":"new"}},"priority":{"name":"Medium"}}}`
	for _, s := range []struct {
		cloud bool
		s1    int
		b1    string
		s2    int
		b2    string
	}{
		{true, 200, `{"deploymentType":"Cloud","versionNumbers":[1001,0,0]}`, 200, `{"issues":[` + issue + `],"isLast":true}`},
		{false, 200, `{"deploymentType":"Server","versionNumbers":[9,12,0]}`, 200, `{"startAt":0,"maxResults":50,"total":1,"issues":[` + issue + `]}`},
		{true, 200, `{"issues":[],"isLast":true}`, 201, `{"id":"10001","key":"OPS-1","self":"http://j/rest/api/3/issue/10001"}`},
		{false, 200, issue, 200, `{"transitions":[{"id":"31","name":"Done","to":{"name":"Done","statusCategory":{"key":"done"}}}]}`},
		{true, 400, `{"errorMessages":[],"errors":{"priority":"Field 'priority' cannot be set."}}`, 429, `{"errorMessages":["Rate limit exceeded"]}`},
		{false, 401, `{"errorMessages":["token ` + testToken + ` is invalid"]}`, 503, `<html>down</html>`},
		{true, 200, `{"issues":[{"key":""}]}`, 200, `null`},
	} {
		f.Add(s.cloud, s.s1, s.b1, s.s2, s.b2)
	}
	f.Fuzz(func(t *testing.T, cloud bool, s1 int, b1 string, s2 int, b2 string) {
		srv := ticketingtest.AnswerServer(t, ticketingtest.Answer{Status: s1, ContentType: "application/json", Body: b1},
			ticketingtest.Answer{Status: s2, ContentType: "application/json", Body: b2})
		dir := t.TempDir()
		o := Options{URL: srv.URL, Project: "OPS", PriorityL2: "Medium", PriorityL3: "High", Email: testEmail, TokenFile: filepath.Join(dir, "token")}
		if !cloud {
			o.Flavor = FlavorDataCenter
		}
		if err := os.WriteFile(o.TokenFile, []byte(testToken), 0o600); err != nil {
			t.Fatal(err)
		}
		o.ApplyDefaults(dir)
		b, err := New("jira", o, 2*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		b.log = testkit.QuietLogger()
		b.journal.log = b.log
		ticketingtest.ExerciseAnswers(t, b, testToken)
	})
}
