package jira

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/l2agent/l2agent/configs"
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
}

// fakeJira keeps issues and enforces what Jira enforces: auth, JSON bodies,
// the body format of the API version (ADF for v3, a string for v2), required
// create fields, JQL on the search endpoint of the version, transition ids
// valid from the current status. It answers 400 with Jira's error object
// otherwise.
type fakeJira struct {
	t      *testing.T
	v3     bool
	auth   string
	mu     sync.Mutex
	issues map[string]*issue
	order  []string
	calls  []string
	hook   func(w http.ResponseWriter, r *http.Request) bool // true: handled
}

// transitions of the fake workflow: name → (id, target status), available
// from every status but the target.
var workflow = []struct{ id, name, to string }{
	{"11", "To Do", "To Do"}, {"21", "In Progress", "In Progress"}, {"31", "Done", "Done"}, {"51", "Escalate", "Escalated"},
}

func newFake(t *testing.T, v3, pat bool) (*fakeJira, *Backend) {
	t.Helper()
	f := &fakeJira{t: t, v3: v3, issues: map[string]*issue{}}
	srv := httptest.NewServer(f)
	t.Cleanup(srv.Close)
	dir := t.TempDir()
	o := Options{URL: srv.URL + "/", Project: "OPS", PriorityL2: "Medium", PriorityL3: "High",
		ComponentsL3: []string{"Platform"}, TransitionEscalate: "escalate"}
	if v3 {
		o.APIVersion = 3
	} else {
		o.APIVersion = 2
	}
	if pat {
		o.PATFile = filepath.Join(dir, "pat")
		require.NoError(t, os.WriteFile(o.PATFile, []byte(testPAT+"\n"), 0o600))
		f.auth = "Bearer " + testPAT
	} else {
		o.Email, o.TokenFile = testEmail, filepath.Join(dir, "token")
		require.NoError(t, os.WriteFile(o.TokenFile, []byte(testToken), 0o600))
		f.auth = "Basic " + base64.StdEncoding.EncodeToString([]byte(testEmail+":"+testToken))
	}
	b, err := New("jira", o, 5*time.Second)
	require.NoError(t, err)
	return f, b
}

func jerr(w http.ResponseWriter, code int, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	json.NewEncoder(w).Encode(map[string]any{"errorMessages": []string{msg}, "errors": map[string]string{}})
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
	issueRe = regexp.MustCompile(`^/rest/api/[23]/issue/(OPS-\d+)(/comment|/transitions)?$`)
)

func (f *fakeJira) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, r.Method+" "+r.URL.Path)
	if f.hook != nil && f.hook(w, r) {
		return
	}
	if r.Header.Get("Authorization") != f.auth {
		jerr(w, 401, "You are not authenticated")
		return
	}
	api := "/rest/api/2"
	if f.v3 {
		api = "/rest/api/3"
	}
	if !strings.HasPrefix(r.URL.Path, api+"/") {
		jerr(w, 404, "wrong API version: "+r.URL.Path)
		return
	}
	var body map[string]any
	if r.Method == http.MethodPost || r.Method == http.MethodPut {
		if r.Header.Get("Content-Type") != "application/json" {
			jerr(w, 415, "Unsupported Media Type")
			return
		}
		if err := json.NewDecoder(r.Body).Decode(&body); err != nil {
			jerr(w, 400, "bad JSON: "+err.Error())
			return
		}
	}
	search := api + "/search"
	if f.v3 {
		search += "/jql" // the old /rest/api/3/search is gone from Cloud
	}
	m := issueRe.FindStringSubmatch(r.URL.Path)
	switch {
	case r.Method == http.MethodPost && r.URL.Path == search:
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
	case r.Method == http.MethodPost && r.URL.Path == api+"/issue":
		fl, _ := body["fields"].(map[string]any)
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
			w.WriteHeader(201)
			json.NewEncoder(w).Encode(map[string]string{"id": "1000", "key": k, "self": "x"})
		}
	case m == nil || f.issues[m[1]] == nil:
		jerr(w, 404, "Issue does not exist or you do not have permission to see it.")
	case r.Method == http.MethodPut && m[2] == "":
		for k, v := range body["fields"].(map[string]any) {
			f.issues[m[1]].Fields[k] = v
		}
		w.WriteHeader(204)
	case r.Method == http.MethodPost && m[2] == "/comment":
		if e := f.checkText(body["body"]); e != "" {
			jerr(w, 400, "comment: "+e)
			return
		}
		f.issues[m[1]].Comments = append(f.issues[m[1]].Comments, body["body"])
		w.WriteHeader(201)
		io(w, `{"id":"10000"}`)
	case r.Method == http.MethodGet && m[2] == "/transitions":
		var ts []any
		for _, t := range workflow {
			if t.to != f.issues[m[1]].Status {
				ts = append(ts, map[string]any{"id": t.id, "name": t.name, "to": map[string]string{"name": t.to}})
			}
		}
		json.NewEncoder(w).Encode(map[string]any{"expand": "transitions", "transitions": ts})
	case r.Method == http.MethodPost && m[2] == "/transitions":
		id := fmt.Sprint(body["transition"].(map[string]any)["id"])
		is := f.issues[m[1]]
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
	default:
		jerr(w, 405, "method not allowed")
	}
}

func io(w http.ResponseWriter, s string) { w.Write([]byte(s)) }

func (f *fakeJira) take() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	c := f.calls
	f.calls = nil
	return c
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
			f.take()
			require.NoError(t, b.Escalate(ctx, ref, ticketing.L3, ticketing.Ticket{Key: testKey, Title: "disk full", Body: "SLA passed"}))
			require.Equal(t, []string{"PUT " + api + "/issue/OPS-1", "GET " + api + "/issue/OPS-1/transitions", "POST " + api + "/issue/OPS-1/transitions"}, f.take())
			require.Equal(t, map[string]any{"name": "High"}, is.Fields["priority"])
			require.Equal(t, []any{map[string]any{"name": "Platform"}}, is.Fields["components"])
			require.Equal(t, "Escalated", is.Status)

			require.NoError(t, b.Resolve(ctx, ref, "recovered"))
			require.Equal(t, "Done", is.Status)
			got, found, err = b.Find(ctx, testKey) // resolved issues are still found
			require.NoError(t, err)
			require.True(t, found)
			require.Equal(t, "OPS-1", got.ID)
			f.take()
			require.NoError(t, b.Reopen(ctx, ref, "back"))
			require.Equal(t, []string{"GET " + api + "/issue/OPS-1/transitions", "POST " + api + "/issue/OPS-1/transitions"}, f.take())
			require.Equal(t, "To Do", is.Status)
			require.Len(t, is.Comments, 4)
			if tc.v3 {
				require.Equal(t, "recovered", is.Comments[2].(map[string]any)["content"].([]any)[0].(map[string]any)["content"].([]any)[0].(map[string]any)["text"])
			} else {
				require.Equal(t, "recovered", is.Comments[2])
			}
			f.take()
			_, _, err = b.Find(ctx, testKey)
			require.NoError(t, err)
			require.Equal(t, []string{"POST " + search}, f.take())
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
	f.hook = func(w http.ResponseWriter, r *http.Request) bool {
		w.Header().Set("Retry-After", "2")
		jerr(w, 429, "rate limited")
		return true
	}
	_, _, err := b.Find(ctx, testKey)
	reason, retry, after := ticketing.Classify(err)
	require.True(t, retry)
	require.Equal(t, "http_429", reason)
	require.Equal(t, 2*time.Second, after)

	f.hook = nil
	_, err = b.Open(ctx, ticketing.Ticket{Key: testKey, Title: "  ", Body: "b"})
	reason, retry, _ = ticketing.Classify(err)
	require.False(t, retry)
	require.Equal(t, "http_4xx", reason)
	require.Contains(t, err.Error(), "You must specify a summary of the issue.")
}

// The fake rejects what Jira rejects: a test of the tests.
func TestFakeRejects(t *testing.T) {
	f, b := newFake(t, true, false)
	_ = b
	srv := httptest.NewServer(f)
	defer srv.Close()
	do := func(auth, path, body string) int {
		req, _ := http.NewRequest(http.MethodPost, srv.URL+path, strings.NewReader(body))
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
