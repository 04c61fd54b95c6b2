package jira

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/l2agent/l2agent/configs"
	"github.com/l2agent/l2agent/internal/alert"
	"github.com/l2agent/l2agent/internal/ticketingtest"
	"github.com/l2agent/l2agent/ticketing"
)

func TestLifecycle(t *testing.T) {
	for _, tc := range []struct {
		name    string
		v3, pat bool
	}{{"cloud-v3-basic", true, false}, {"dc-v2-pat", false, true}} {
		t.Run(tc.name, func(t *testing.T) {
			f, b := newFake(t, tc.v3, tc.pat)
			ctx := context.Background()
			api := "/rest/api/2"
			search := api + "/search"
			if tc.v3 {
				api = "/rest/api/3"
				search = api + "/search/jql"
			}
			_, found, err := b.Find(ctx, testKey)
			require.NoError(t, err)
			require.False(t, found)
			require.Equal(t, []string{"GET /rest/api/2/serverInfo", "POST " + search}, f.Take(), "the flavor asked once, first")

			ref, err := b.Open(ctx, ticketing.Ticket{Key: testKey, Title: "disk\nfull on web-7", Body: "line 1\nline 2\n\npara 2", Severity: "warn", Tier: ticketing.L2})
			require.NoError(t, err)
			require.Equal(t, "OPS-1", ref.ID)
			require.True(t, strings.HasSuffix(ref.URL, "/browse/OPS-1"), ref.URL)
			is := f.issues["OPS-1"]
			require.Equal(t, "disk full on web-7", is.Fields["summary"])
			require.Equal(t, []any{Label(testKey), "l2agent"}, is.Fields["labels"])
			require.Equal(t, map[string]any{"name": "Medium"}, is.Fields["priority"])
			require.Equal(t, map[string]any{"name": "Task"}, is.Fields["issuetype"])
			require.NotEmpty(t, is.Props[propKey].(map[string]any)["open"], "the create's id, in the issue property")
			if tc.v3 {
				d := is.Fields["description"].(map[string]any)
				require.Len(t, d["content"], 2)
				require.Len(t, d["content"].([]any)[0].(map[string]any)["content"], 3) // text, hardBreak, text
			} else {
				require.Equal(t, "line 1\nline 2\n\npara 2", is.Fields["description"])
			}

			got, found, err := b.Find(ctx, testKey)
			require.NoError(t, err)
			require.True(t, found)
			require.Equal(t, ref, got)
			_, found, err = b.Find(ctx, testKey+"x")
			require.NoError(t, err)
			require.False(t, found)

			require.NoError(t, b.Comment(ctx, ref, "still bad"))
			f.Take()
			require.NoError(t, b.Escalate(ctx, ref, ticketing.L3, ticketing.Ticket{Key: testKey, Title: "disk full", Body: "SLA passed"}))
			require.Equal(t, []string{"PUT " + api + "/issue/OPS-1", "GET " + api + "/issue/OPS-1", "GET " + api + "/issue/OPS-1/transitions",
				"POST " + api + "/issue/OPS-1/transitions", "PUT " + api + "/issue/OPS-1/properties/l2agent", "POST " + api + "/issue/OPS-1/comment"}, f.Take())
			require.Equal(t, map[string]any{"name": "High"}, is.Fields["priority"])
			require.Equal(t, []any{map[string]any{"name": "Platform"}}, is.Fields["components"])
			require.Equal(t, "Escalated", is.Status)

			require.NoError(t, b.Resolve(ctx, ref, "recovered"))
			require.Equal(t, "Done", is.Status)
			_, found, err = b.Find(ctx, testKey)
			require.NoError(t, err)
			require.False(t, found, "a done issue is not the ticket of a new incident")
			f.Take()
			require.NoError(t, b.Reopen(ctx, ref, "back"))
			require.Equal(t, []string{"GET " + api + "/issue/OPS-1", "GET " + api + "/issue/OPS-1/transitions",
				"POST " + api + "/issue/OPS-1/transitions", "POST " + api + "/issue/OPS-1/comment"}, f.Take())
			require.Equal(t, "To Do", is.Status)
			require.Equal(t, []string{"still bad", "l2agent escalated this issue to L3.\nSLA passed", "recovered", "back"}, f.Plain(ref),
				"each operation's text, a comment of its own")
			got, found, err = b.Find(ctx, testKey)
			require.NoError(t, err)
			require.True(t, found, "open again")
			require.Equal(t, ref, got)
		})
	}
}

// TestTransitionText: Jira Cloud's default workflows have no transition
// screens; Jira drops update.comment there and answers 204. The text of
// each transition is a comment of its own, after it.
func TestTransitionText(t *testing.T) {
	for _, v3 := range []bool{true, false} {
		f, b := newFake(t, v3, false)
		ctx := context.Background()
		ref, err := b.Open(ctx, ticketing.Ticket{Key: testKey, Title: "disk full", Body: "b"})
		require.NoError(t, err)
		require.NoError(t, b.Escalate(ctx, ref, ticketing.L3, ticketing.Ticket{Key: testKey, Title: "disk full", Body: "why"}))
		require.NoError(t, b.Resolve(ctx, ref, "resolved: fine for 15m"))
		require.NoError(t, b.Reopen(ctx, ref, "reopened: full again"))
		require.Equal(t, []string{"l2agent escalated this issue to L3.\nwhy", "resolved: fine for 15m", "reopened: full again"}, f.Plain(ref))
		for _, r := range f.Requests() {
			if strings.HasSuffix(r.Path, "/transitions") && r.Method == http.MethodPost {
				require.NotContains(t, r.Body, "update", "no comment is sent where Jira may drop it")
			}
		}
	}
}

// TestResolution: resolution is sent only where the resolve transition's
// screen has the field; one the screen does not offer is a final error.
func TestResolution(t *testing.T) {
	ctx := context.Background()
	f, b := newFakeWith(t, fakeConfig{cloud: true, edit: func(o *Options) { o.Resolution = "Fixed" }})
	ref, err := b.Open(ctx, ticketing.Ticket{Key: testKey, Title: "t", Body: "b"})
	require.NoError(t, err)
	require.NoError(t, b.Resolve(ctx, ref, "fixed"), "no screen: resolved without a resolution field")
	require.Equal(t, "Done", f.issues[ref.ID].Status)
	require.Equal(t, "Done", f.issues[ref.ID].Resolution, "the one Jira sets itself")
	require.Equal(t, []string{"fixed"}, f.Plain(ref))

	f, b = newFakeWith(t, fakeConfig{cloud: true, edit: func(o *Options) { o.Resolution = "fixed" }})
	f.screens["31"] = []string{"resolution", "comment"}
	ref, err = b.Open(ctx, ticketing.Ticket{Key: testKey, Title: "t", Body: "b"})
	require.NoError(t, err)
	require.NoError(t, b.Resolve(ctx, ref, "fixed"))
	require.Equal(t, "Fixed", f.issues[ref.ID].Resolution, "on the screen: set, with Jira's spelling")
	require.Equal(t, []string{"fixed"}, f.Plain(ref), "once")

	f, b = newFakeWith(t, fakeConfig{cloud: false, edit: func(o *Options) { o.Resolution = "Solved" }})
	f.screens["31"] = []string{"resolution"}
	ref, err = b.Open(ctx, ticketing.Ticket{Key: testKey, Title: "t", Body: "b"})
	require.NoError(t, err)
	err = b.Resolve(ctx, ref, "fixed")
	reason, retry, _ := ticketing.Classify(err)
	require.False(t, retry)
	require.Equal(t, "bad_resolution", reason)
	require.ErrorContains(t, err, `it offers "Done", "Won't Do", "Fixed"`)
	require.Equal(t, "To Do", f.issues[ref.ID].Status)
}

// TestAlreadyThere: an operation whose status change is already made (an
// escalation past L3 where the workflow offers Escalate once, a resolve or
// reopen sent again) changes nothing and adds its text.
func TestAlreadyThere(t *testing.T) {
	f, b := newFake(t, true, false)
	ctx := context.Background()
	ref, err := b.Open(ctx, ticketing.Ticket{Key: testKey, Title: "t", Body: "b"})
	require.NoError(t, err)
	require.NoError(t, b.Escalate(ctx, ref, ticketing.L3, ticketing.Ticket{Key: testKey, Title: "t", Body: "crit"}))
	require.Equal(t, "Escalated", f.issues[ref.ID].Status)
	f.Take()
	require.NoError(t, b.Escalate(ctx, ref, ticketing.L4, ticketing.Ticket{Key: testKey, Title: "t", Body: "SLA"}), "L3 → L4: already Escalated")
	require.NotContains(t, f.Take(), "POST /rest/api/3/issue/OPS-1/transitions")
	require.Equal(t, "Escalated", f.issues[ref.ID].Status)

	require.NoError(t, b.Resolve(ctx, ref, "ok"))
	f.Take()
	require.NoError(t, b.Resolve(ctx, ref, "ok again"), "Done is offered from Done (a global transition): not run")
	require.NotContains(t, f.Take(), "POST /rest/api/3/issue/OPS-1/transitions")
	require.NoError(t, b.Reopen(ctx, ref, "back"))
	f.Take()
	require.NoError(t, b.Reopen(ctx, ref, "back again"))
	require.NotContains(t, f.Take(), "POST /rest/api/3/issue/OPS-1/transitions")
	require.Equal(t, []string{"l2agent escalated this issue to L3.\ncrit", "l2agent escalated this issue to L4.\nSLA", "ok", "ok again", "back", "back again"}, f.Plain(ref))
}

func TestMissingTransitionIsFinal(t *testing.T) {
	f, b := newFakeWith(t, fakeConfig{cloud: true, edit: func(o *Options) { o.TransitionResolve = "Close" }})
	ctx := context.Background()
	ref, err := b.Open(ctx, ticketing.Ticket{Key: testKey, Title: "t", Body: "b"})
	require.NoError(t, err)
	err = b.Resolve(ctx, ref, "done")
	reason, retry, _ := ticketing.Classify(err)
	require.False(t, retry)
	require.Equal(t, "no_transition", reason)
	require.Contains(t, err.Error(), `no transition "Close" from the issue's status "To Do"; available: "In Progress", "Done", "Escalate"`)
	require.Empty(t, f.issues[ref.ID].Comments)
}

// TestFlavor: the flavor picks the API; without one, Jira is asked
// (serverInfo), so that Data Center with no api_version works, and an
// api_version the instance lacks is a clear final error, not a 404 or 410
// on every open.
func TestFlavor(t *testing.T) {
	ctx := context.Background()
	f, b := newFakeWith(t, fakeConfig{cloud: false})
	_, err := b.Open(ctx, ticketing.Ticket{Key: testKey, Title: "t", Body: "b"})
	require.NoError(t, err, "Data Center, api_version left out: v2")
	_, found, err := b.Find(ctx, testKey)
	require.NoError(t, err)
	require.True(t, found)
	require.Equal(t, "POST /rest/api/2/search", f.Last().Method+" "+f.Last().Path)

	f, b = newFakeWith(t, fakeConfig{cloud: true, flavor: FlavorCloud})
	_, _, err = b.Find(ctx, testKey)
	require.NoError(t, err)
	require.Equal(t, []string{"POST /rest/api/3/search/jql"}, f.Take(), "flavor given: not asked")

	for _, tc := range []struct {
		cloud bool
		v     int
		want  string
	}{{true, 2, "is Jira Cloud"}, {false, 3, "is Jira Data Center"}} {
		f, b := newFakeWith(t, fakeConfig{cloud: tc.cloud, apiVersion: tc.v})
		_, _, err := b.Find(ctx, testKey)
		reason, retry, _ := ticketing.Classify(err)
		require.False(t, retry)
		require.Equal(t, "config", reason)
		require.ErrorContains(t, err, tc.want)
		require.Equal(t, []string{"GET /rest/api/2/serverInfo"}, f.Take())
	}

	_, err = New("jira", Options{URL: "https://x.atlassian.net", Project: "OPS", Flavor: FlavorCloud, APIVersion: 2, PATFile: "/p"}, time.Second)
	require.ErrorContains(t, err, "removed /rest/api/2/search")
}

// TestFindOnlyUsable: a done issue is never the ticket of a later incident
// of its key: after the agent forgot a resolved incident (7 days), a
// recurrence gets a new issue that links the old one.
func TestFindOnlyUsable(t *testing.T) {
	for _, v3 := range []bool{true, false} {
		f, b := newFake(t, v3, false)
		svc, m := newService(t, b)
		ctx := context.Background()
		t0 := time.Date(2026, 11, 1, 10, 0, 0, 0, time.UTC)
		require.NoError(t, m.HandleBatch([]alert.Transition{fire(testKey, t0), settle(testKey, t0.Add(time.Minute))}))
		require.NoError(t, m.Tick(ctx, t0.Add(20*time.Minute)))
		require.Equal(t, 0, svc.Flush(ctx)["jira"])
		require.Equal(t, "Done", f.issues["OPS-1"].Status)
		require.NoError(t, m.Tick(ctx, t0.Add(8*24*time.Hour)), "forgotten")
		inc, err := svc.Store.Incident(testKey)
		require.NoError(t, err)
		require.Nil(t, inc)

		require.NoError(t, m.HandleBatch([]alert.Transition{fire(testKey, t0.Add(9*24*time.Hour))}))
		require.Equal(t, 0, svc.Flush(ctx)["jira"])
		require.Equal(t, 2, f.Tickets(testKey), "a new issue")
		require.Equal(t, "To Do", f.issues["OPS-2"].Status)
		require.Equal(t, "Done", f.issues["OPS-1"].Status, "the old one left alone")
	}
}

func TestHTTPErrors(t *testing.T) {
	f, b := newFake(t, true, false)
	ctx := context.Background()
	f.Inject(ticketingtest.Throttle("2", func(w http.ResponseWriter, _ *http.Request) { jerr(w, 429, "rate limited") }))
	_, _, err := b.Find(ctx, testKey)
	reason, retry, after := ticketing.Classify(err)
	require.True(t, retry)
	require.Equal(t, "http_429", reason)
	require.Equal(t, 2*time.Second, after)

	f.Inject(nil)
	_, err = b.Open(ctx, ticketing.Ticket{Key: testKey, Title: "  ", Body: "b"})
	reason, retry, _ = ticketing.Classify(err)
	require.False(t, retry)
	require.Equal(t, "http_4xx", reason)
	require.Contains(t, err.Error(), "You must specify a summary of the issue.")
	_, ok := b.journal.get(Label(testKey))
	require.False(t, ok, "refused: nothing in doubt")
}

// The fake rejects what Jira rejects: a test of the tests.
func TestFakeRejects(t *testing.T) {
	f, _ := newFake(t, true, false)
	dc, _ := newFake(t, false, false)
	do := func(f *fakeJira, auth, path, body string) int {
		req, _ := http.NewRequest(http.MethodPost, f.URL+path, strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Authorization", auth)
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		resp.Body.Close()
		return resp.StatusCode
	}
	require.Equal(t, 401, do(f, "Bearer nope", "/rest/api/3/search/jql", `{"jql":"x"}`))
	require.Equal(t, 400, do(f, f.auth, "/rest/api/3/search/jql", `{"jql":"labels = l2agent-x"}`))
	require.Equal(t, 410, do(f, f.auth, "/rest/api/2/search", `{"jql":"x"}`), "removed from Cloud")
	require.Equal(t, 410, do(f, f.auth, "/rest/api/3/search", `{"jql":"x"}`), "removed from Cloud")
	require.Equal(t, 404, do(dc, dc.auth, "/rest/api/3/issue", `{}`), "no v3 on Data Center")
	require.Equal(t, 404, do(dc, dc.auth, "/rest/api/2/search/jql", `{"jql":"x"}`), "no search/jql on Data Center")
	jql := `"jql":"project = \"OPS\" AND labels = \"l2agent-0123456789abcdef\" ORDER BY created DESC"`
	require.Equal(t, 400, do(dc, dc.auth, "/rest/api/2/search", `{`+jql+`,"reconcileIssues":[1]}`), "Data Center has no reconcileIssues")
	require.Equal(t, 200, do(f, f.auth, "/rest/api/3/search/jql", `{`+jql+`,"reconcileIssues":[1]}`))
	plain := `{"fields":{"project":{"key":"OPS"},"issuetype":{"name":"Task"},"summary":"s","description":"plain text","labels":[]}}`
	require.Equal(t, 400, do(f, f.auth, "/rest/api/3/issue", plain)) // v3 wants ADF
	require.Equal(t, 400, do(f, f.auth, "/rest/api/3/issue", strings.Replace(plain, `"OPS"`, `"NOPE"`, 1)))
	require.Equal(t, 201, do(dc, dc.auth, "/rest/api/2/issue", plain))
	require.Equal(t, 400, do(dc, dc.auth, "/rest/api/2/issue/OPS-1/transitions", `{"transition":{"id":"31"},"fields":{"resolution":{"name":"Done"}}}`),
		"a field not on the transition's screen")
	require.Equal(t, 204, do(dc, dc.auth, "/rest/api/2/issue/OPS-1/transitions", `{"transition":{"id":"51"},"update":{"comment":[{"add":{"body":"lost"}}]}}`))
	require.Empty(t, dc.issues["OPS-1"].Comments, "update.comment dropped in silence without a screen")
	require.Equal(t, 400, do(dc, dc.auth, "/rest/api/2/issue/OPS-1/transitions", `{"transition":{"id":"51"}}`), "not offered from Escalated")
}

func TestConfig(t *testing.T) {
	t.Setenv("JIRA_TOKEN", "tok")
	parse := func(block string) error {
		_, err := configs.Parse("agent.yaml", []byte("ticketing:\n  backends:\n    - kind: jira\n      jira:\n"+block))
		return err
	}
	require.NoError(t, parse("        url: https://x.atlassian.net\n        project: OPS\n        email: a@b.c\n        token: ${JIRA_TOKEN}\n"))
	cfg, err := configs.Parse("agent.yaml", []byte("ticketing:\n  backends:\n    - kind: jira\n      jira:\n        url: https://jira.example.com\n        api_version: 2\n        project: OPS\n        pat_file: /etc/l2agent/jira-pat\n"))
	require.NoError(t, err)
	o := cfg.Ticketing.Backends[0].Options.(*Options)
	require.Equal(t, 2, o.APIVersion)
	require.Equal(t, "Task", o.IssueType)
	require.Equal(t, "Done", o.TransitionResolve)
	require.Equal(t, "To Do", o.TransitionReopen)
	require.Equal(t, cfg.StateDir, o.stateDir)
	require.ErrorContains(t, parse("        url: https://x\n        project: OPS\n"), "pat")
	require.ErrorContains(t, parse("        url: https://x\n        project: OPS\n        email: a@b.c\n        token: ${JIRA_TOKEN}\n        pat_file: /p\n"), "not both")
	require.ErrorContains(t, parse("        url: https://x\n        project: OPS\n        token: ${JIRA_TOKEN}\n"), "email")
	require.ErrorContains(t, parse("        url: ftp://x\n        project: OPS\n        pat_file: /p\n"), "want an http:// or https:// URL")
	require.ErrorContains(t, parse("        url: https://x\n        project: OPS\n        token: inline\n        email: a@b.c\n"), "never written inline")
	require.ErrorContains(t, parse("        url: https://x\n        api_version: 4\n        project: OPS\n        pat_file: /p\n"), "api_version")

	for _, ok := range []string{"cloud\n        api_version: 3", "datacenter\n        api_version: 2", "cloud", "datacenter"} {
		require.NoError(t, parse("        url: https://x\n        flavor: "+ok+"\n        project: OPS\n        pat_file: /p\n"), ok)
	}
	err = parse("        url: https://x.atlassian.net\n        flavor: cloud\n        api_version: 2\n        project: OPS\n        pat_file: /p\n")
	require.ErrorContains(t, err, "agent.yaml:7:")
	require.ErrorContains(t, err, "removed /rest/api/2/search")
	err = parse("        url: https://jira.example.com\n        flavor: datacenter\n        api_version: 3\n        project: OPS\n        pat_file: /p\n")
	require.ErrorContains(t, err, "agent.yaml:7:")
	require.ErrorContains(t, err, "no REST API v3")
	require.ErrorContains(t, parse("        url: https://x\n        flavor: server\n        project: OPS\n        pat_file: /p\n"), "agent.yaml:6:")
}
