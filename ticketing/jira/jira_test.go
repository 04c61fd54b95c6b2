package jira

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/l2agent/l2agent/configs"
	"github.com/l2agent/l2agent/internal/ticketingtest"
	"github.com/l2agent/l2agent/ticketing"
)

const (
	testKey   = `web-7/disk/disk_used_ratio{mountpoint="/var"}`
	testEmail = "bot@example.com"
	testToken = "ATATT3xFfGF0-token"
	testPAT   = "NjM4OTk0-pat"
)

type issue struct {
	Key      string
	Fields   map[string]any
	Status   string
	Comments []any
	Edits    []map[string]any // the fields of every edit (PUT), in order
}

// fakeJira keeps issues and enforces what Jira enforces: auth, JSON bodies
// (the kit), the body format of the API version (ADF for v3, a string for
// v2), required create fields, JQL on the search endpoint of the version,
// transition ids valid from the current status. It answers 400 with Jira's
// error object otherwise.
type fakeJira struct {
	*ticketingtest.Server
	v3     bool
	auth   string
	issues map[string]*issue
	order  []string
}

// transitions of the fake workflow: name → (id, target status), available
// from every status but the target.
var workflow = []struct{ id, name, to string }{
	{"11", "To Do", "To Do"}, {"21", "In Progress", "In Progress"}, {"31", "Done", "Done"}, {"51", "Escalate", "Escalated"},
}

func newFake(t *testing.T, v3, pat bool) (*fakeJira, *Backend) {
	t.Helper()
	f := &fakeJira{v3: v3, issues: map[string]*issue{}}
	dir := t.TempDir()
	o := Options{PriorityL2: "Medium", PriorityL3: "High", Project: "OPS",
		ComponentsL3: []string{"Platform"}, TransitionEscalate: "escalate"}
	if v3 {
		o.APIVersion = 3
	} else {
		o.APIVersion = 2
	}
	if pat {
		o.PATFile = filepath.Join(dir, "pat")
		require.NoError(t, os.WriteFile(o.PATFile, []byte(testPAT+"\n"), 0o600))
		f.auth = ticketingtest.Bearer(testPAT)
	} else {
		o.Email, o.TokenFile = testEmail, filepath.Join(dir, "token")
		require.NoError(t, os.WriteFile(o.TokenFile, []byte(testToken), 0o600))
		f.auth = ticketingtest.Basic(testEmail, testToken)
	}
	f.Server = ticketingtest.New(t, ticketingtest.Options{Auth: f.auth, Error: jerr})
	f.routes()
	o.URL = f.URL + "/"
	b, err := New("jira", o, 5*time.Second)
	require.NoError(t, err)
	return f, b
}

func jerr(w http.ResponseWriter, code int, msg string) {
	ticketingtest.WriteJSON(w, code, map[string]any{"errorMessages": []string{msg}, "errors": map[string]string{}})
}

// checkText: v3 wants an ADF doc with non-empty text nodes, v2 a string.
func (f *fakeJira) checkText(v any) string {
	if !f.v3 {
		if _, ok := v.(string); !ok {
			return "Operation value must be a string"
		}
		return ""
	}
	d, ok := v.(map[string]any)
	if !ok || d["type"] != "doc" || d["version"] != float64(1) {
		return "Operation value must be an Atlassian Document (see the Atlassian Document Format)"
	}
	for _, p := range d["content"].([]any) {
		for _, n := range p.(map[string]any)["content"].([]any) {
			if n := n.(map[string]any); n["type"] == "text" && n["text"] == "" {
				return "INVALID_INPUT: empty text node"
			}
		}
	}
	return ""
}

var (
	jqlRe   = regexp.MustCompile(`^project = "OPS" AND labels = "(l2agent-[0-9a-f]{16})" ORDER BY created DESC$`)
	issueRe = regexp.MustCompile(`^OPS-\d+$`)
)

// routes serves the endpoints of one API version only: the other
// version's paths are unknown (404).
func (f *fakeJira) routes() {
	api := "/rest/api/2"
	search := api + "/search"
	if f.v3 {
		api = "/rest/api/3"
		search = api + "/search/jql" // the old /rest/api/3/search is gone from Cloud
	}
	f.Handle("POST "+search, f.search)
	f.Handle("POST "+api+"/issue", f.create)
	f.Handle("GET "+api+"/issue/{key}", f.get)
	f.Handle("PUT "+api+"/issue/{key}", f.withIssue(f.update))
	f.Handle("POST "+api+"/issue/{key}/comment", f.withIssue(f.comment))
	f.Handle("GET "+api+"/issue/{key}/transitions", f.withIssue(f.transitions))
	f.Handle("POST "+api+"/issue/{key}/transitions", f.withIssue(f.transition))
}

func (f *fakeJira) search(w http.ResponseWriter, r *http.Request) {
	body := ticketingtest.Received(r).Body
	jm := jqlRe.FindStringSubmatch(fmt.Sprint(body["jql"]))
	if jm == nil {
		jerr(w, 400, fmt.Sprintf("Error in the JQL Query: %v", body["jql"]))
		return
	}
	var out []any
	for i := len(f.order) - 1; i >= 0; i-- { // newest first
		is := f.issues[f.order[i]]
		for _, l := range is.Fields["labels"].([]any) {
			if l == jm[1] {
				out = append(out, map[string]any{"key": is.Key, "fields": map[string]any{"labels": is.Fields["labels"]}})
			}
		}
	}
	json.NewEncoder(w).Encode(map[string]any{"issues": out})
}

func (f *fakeJira) create(w http.ResponseWriter, r *http.Request) {
	fl, _ := ticketingtest.Received(r).Body["fields"].(map[string]any)
	p, _ := fl["project"].(map[string]any)
	it, _ := fl["issuetype"].(map[string]any)
	s, _ := fl["summary"].(string)
	switch {
	case p == nil || p["key"] != "OPS":
		jerr(w, 400, "project: valid project is required")
	case it == nil || it["name"] == "":
		jerr(w, 400, "issuetype: valid issue type is required")
	case s == "" || strings.ContainsAny(s, "\r\n") || len(s) > 255:
		jerr(w, 400, "summary: You must specify a summary of the issue.")
	case f.checkText(fl["description"]) != "":
		jerr(w, 400, "description: "+f.checkText(fl["description"]))
	default:
		k := fmt.Sprintf("OPS-%d", len(f.order)+1)
		f.issues[k] = &issue{Key: k, Fields: fl, Status: "To Do"}
		f.order = append(f.order, k)
		ticketingtest.WriteJSON(w, 201, map[string]string{"id": "1000", "key": k, "self": "x"})
	}
}

// withIssue hands the issue of the path and the request body to h, or
// answers 404 as Jira does for an unknown issue.
func (f *fakeJira) withIssue(h func(w http.ResponseWriter, is *issue, body map[string]any)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		k := r.PathValue("key")
		if !issueRe.MatchString(k) || f.issues[k] == nil {
			jerr(w, 404, "Issue does not exist or you do not have permission to see it.")
			return
		}
		h(w, f.issues[k], ticketingtest.Received(r).Body)
	}
}

// update edits the issue as PUT /issue/{key} {"fields": …} does: a
// one-line summary, a priority by a name Jira has, components by name; any
// other field is not on the edit screen. 204 on success.
func (f *fakeJira) update(w http.ResponseWriter, is *issue, body map[string]any) {
	fl, ok := body["fields"].(map[string]any)
	if !ok {
		jerr(w, 400, "fields: want an object")
		return
	}
	for k, v := range fl {
		switch k {
		case "summary":
			if s, _ := v.(string); s == "" || strings.ContainsAny(s, "\r\n") || len(s) > 255 {
				jerr(w, 400, "summary: You must specify a summary of the issue.")
				return
			}
		case "priority":
			if p, _ := v.(map[string]any); p == nil || !slices.Contains(priorities, fmt.Sprint(p["name"])) {
				jerr(w, 400, "priority: The priority selected is invalid.")
				return
			}
		case "components":
		default:
			jerr(w, 400, fmt.Sprintf("Field '%s' cannot be set. It is not on the appropriate screen, or unknown.", k))
			return
		}
	}
	for k, v := range fl {
		is.Fields[k] = v
	}
	is.Edits = append(is.Edits, fl)
	w.WriteHeader(204)
}

// priorities are the priority names of the fake Jira.
var priorities = []string{"Highest", "High", "Medium", "Low", "Lowest"}

func (f *fakeJira) comment(w http.ResponseWriter, is *issue, body map[string]any) {
	if e := f.checkText(body["body"]); e != "" {
		jerr(w, 400, "comment: "+e)
		return
	}
	is.Comments = append(is.Comments, body["body"])
	ticketingtest.Reply(201, `{"id":"10000"}`)(w, nil)
}

func (f *fakeJira) transitions(w http.ResponseWriter, is *issue, _ map[string]any) {
	var ts []any
	for _, t := range workflow {
		if t.to != is.Status {
			ts = append(ts, map[string]any{"id": t.id, "name": t.name, "to": map[string]string{"name": t.to}})
		}
	}
	json.NewEncoder(w).Encode(map[string]any{"expand": "transitions", "transitions": ts})
}

func (f *fakeJira) transition(w http.ResponseWriter, is *issue, body map[string]any) {
	id := fmt.Sprint(body["transition"].(map[string]any)["id"])
	for _, t := range workflow {
		if t.id == id && t.to != is.Status {
			if u, ok := body["update"].(map[string]any); ok {
				for _, c := range u["comment"].([]any) {
					cb := c.(map[string]any)["add"].(map[string]any)["body"]
					if e := f.checkText(cb); e != "" {
						jerr(w, 400, "comment: "+e)
						return
					}
					is.Comments = append(is.Comments, cb)
				}
			}
			is.Status = t.to
			w.WriteHeader(204)
			return
		}
	}
	jerr(w, 400, "It seems that you have tried to perform a workflow operation ("+id+") that is not valid for the current state of this issue.")
}

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

			ref, err := b.Open(ctx, ticketing.Ticket{Key: testKey, Title: "disk\nfull on web-7", Body: "line 1\nline 2\n\npara 2", Severity: "warn", Tier: ticketing.L2})
			require.NoError(t, err)
			require.Equal(t, "OPS-1", ref.ID)
			require.True(t, strings.HasSuffix(ref.URL, "/browse/OPS-1"), ref.URL)
			is := f.issues["OPS-1"]
			require.Equal(t, "disk full on web-7", is.Fields["summary"])
			require.Equal(t, []any{Label(testKey), "l2agent"}, is.Fields["labels"])
			require.Equal(t, map[string]any{"name": "Medium"}, is.Fields["priority"])
			require.Equal(t, map[string]any{"name": "Task"}, is.Fields["issuetype"])
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
			require.Equal(t, []string{"PUT " + api + "/issue/OPS-1", "GET " + api + "/issue/OPS-1/transitions", "POST " + api + "/issue/OPS-1/transitions"}, f.Take())
			require.Equal(t, map[string]any{"name": "High"}, is.Fields["priority"])
			require.Equal(t, []any{map[string]any{"name": "Platform"}}, is.Fields["components"])
			require.Equal(t, "Escalated", is.Status)

			require.NoError(t, b.Resolve(ctx, ref, "recovered"))
			require.Equal(t, "Done", is.Status)
			got, found, err = b.Find(ctx, testKey) // resolved issues are still found
			require.NoError(t, err)
			require.True(t, found)
			require.Equal(t, "OPS-1", got.ID)
			f.Take()
			require.NoError(t, b.Reopen(ctx, ref, "back"))
			require.Equal(t, []string{"GET " + api + "/issue/OPS-1/transitions", "POST " + api + "/issue/OPS-1/transitions"}, f.Take())
			require.Equal(t, "To Do", is.Status)
			require.Len(t, is.Comments, 4)
			if tc.v3 {
				require.Equal(t, "recovered", is.Comments[2].(map[string]any)["content"].([]any)[0].(map[string]any)["content"].([]any)[0].(map[string]any)["text"])
			} else {
				require.Equal(t, "recovered", is.Comments[2])
			}
			f.Take()
			_, _, err = b.Find(ctx, testKey)
			require.NoError(t, err)
			require.Equal(t, []string{"POST " + search}, f.Take())
		})
	}
}

func TestMissingTransitionIsFinal(t *testing.T) {
	f, b := newFake(t, true, false)
	ctx := context.Background()
	ref, err := b.Open(ctx, ticketing.Ticket{Key: testKey, Title: "t", Body: "b"})
	require.NoError(t, err)
	f.issues["OPS-1"].Status = "To Do"
	err = b.Reopen(ctx, ref, "again") // "To Do" is not offered from To Do
	reason, retry, _ := ticketing.Classify(err)
	require.False(t, retry)
	require.Equal(t, "no_transition", reason)
	require.Contains(t, err.Error(), `available: "In Progress", "Done", "Escalate"`)
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
}

// The fake rejects what Jira rejects: a test of the tests.
func TestFakeRejects(t *testing.T) {
	f, _ := newFake(t, true, false)
	do := func(auth, path, body string) int {
		req, _ := http.NewRequest(http.MethodPost, f.URL+path, strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Authorization", auth)
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		resp.Body.Close()
		return resp.StatusCode
	}
	require.Equal(t, 401, do("Bearer nope", "/rest/api/3/search/jql", `{"jql":"x"}`))
	require.Equal(t, 400, do(f.auth, "/rest/api/3/search/jql", `{"jql":"labels = l2agent-x"}`))
	require.Equal(t, 404, do(f.auth, "/rest/api/2/search", `{"jql":"x"}`))
	plain := `{"fields":{"project":{"key":"OPS"},"issuetype":{"name":"Task"},"summary":"s","description":"plain text","labels":[]}}`
	require.Equal(t, 400, do(f.auth, "/rest/api/3/issue", plain)) // v3 wants ADF
	require.Equal(t, 400, do(f.auth, "/rest/api/3/issue", strings.Replace(plain, `"OPS"`, `"NOPE"`, 1)))
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
	require.ErrorContains(t, parse("        url: https://x\n        project: OPS\n"), "pat")
	require.ErrorContains(t, parse("        url: https://x\n        project: OPS\n        email: a@b.c\n        token: ${JIRA_TOKEN}\n        pat_file: /p\n"), "not both")
	require.ErrorContains(t, parse("        url: https://x\n        project: OPS\n        token: ${JIRA_TOKEN}\n"), "email")
	require.ErrorContains(t, parse("        url: ftp://x\n        project: OPS\n        pat_file: /p\n"), "want an http:// or https:// URL")
	require.ErrorContains(t, parse("        url: https://x\n        project: OPS\n        token: inline\n        email: a@b.c\n"), "never written inline")
	require.ErrorContains(t, parse("        url: https://x\n        api_version: 4\n        project: OPS\n        pat_file: /p\n"), "api_version")
}
