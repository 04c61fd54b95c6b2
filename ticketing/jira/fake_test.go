package jira

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/l2agent/l2agent/internal/testkit"
	"github.com/l2agent/l2agent/internal/ticketingtest"
	"github.com/l2agent/l2agent/ticketing"
)

// The fake Jira. It keeps issues and enforces what Jira enforces, as
// Atlassian documents it (see the README's "The fake Jira" for the list
// and the sources): auth, JSON bodies (the kit), the flavor's endpoints
// (Cloud: REST v3, POST /rest/api/3/search/jql, 410 on the removed
// /rest/api/{2,3}/search; Data Center: REST v2, POST /rest/api/2/search,
// 404 on v3 and on /search/jql), the body format of the version (ADF for
// v3, a string for v2), required create fields, the workflow (transitions
// offered per status, screens: update.comment dropped in silence and any
// field refused with 400 on a transition without a screen holding it, done
// statuses setting the resolution), issue properties, and Cloud's
// eventually consistent search (a change shows lag after it was made,
// unless the issue is named in reconcileIssues). It answers 4xx with
// Jira's error object.

const (
	testKey   = `web-7/disk/disk_used_ratio{mountpoint="/var"}`
	testEmail = "bot@example.com"
	testToken = "ATATT3xFfGF0-token"
	testPAT   = "NjM4OTk0-pat"
)

type issue struct {
	ID         string
	Key        string
	Fields     map[string]any
	Status     string // a status name of the workflow
	Resolution string
	Resolved   time.Time
	Comments   []any
	Edits      []map[string]any // the fields of every edit (PUT), in order
	Props      map[string]any   // issue (entity) properties

	idx   *snapshot // what the search shows while idxAt is ahead (nil: nothing)
	idxAt time.Time // from then on, the search shows the issue as it is
}

// snapshot is what the search index holds of an issue.
type snapshot struct {
	labels []any
	status string
}

type fakeJira struct {
	*ticketingtest.Server
	cloud  bool
	auth   string
	issues map[string]*issue
	order  []string
	// lag: the search shows a change this long after it was made (Cloud's
	// search is eventually consistent); 0 shows it at once.
	lag time.Duration
	// screens: the fields on the screen of a transition (by id); a
	// transition with none has no screen (Cloud's default workflows).
	screens map[string][]string
	// dropCreate: the next creates are made, and their answer lost.
	dropCreate int
	opts       Options // of the backends made by backend

	mu    sync.Mutex
	clock time.Time
}

// status categories of the fake's statuses, and their ids.
var statuses = map[string]struct{ id, cat string }{
	"To Do": {"10000", "new"}, "In Progress": {"3", "indeterminate"}, "Done": {"10001", "done"}, "Escalated": {"10002", "indeterminate"},
}

// workflow: the transitions, with workflow ids; each is offered from every
// status but its target, but "Done" is global (offered from Done too, as
// Jira offers a global transition from its own target) and "Escalate" is
// not offered from a done status.
type wfTransition struct {
	id, name, to string
	global       bool
}

var workflow = []wfTransition{
	{"11", "To Do", "To Do", false}, {"21", "In Progress", "In Progress", false}, {"31", "Done", "Done", true}, {"51", "Escalate", "Escalated", false},
}

func offered(t wfTransition, from string) bool {
	switch {
	case t.global:
		return true
	case t.name == "Escalate" && statuses[from].cat == "done":
		return false
	}
	return t.to != from
}

// resolutions are the fake's resolutions, offered on a screen with the
// resolution field.
var resolutions = []namedItem{{"10000", "Done"}, {"10001", "Won't Do"}, {"10002", "Fixed"}}

// priorities are the priority names of the fake Jira.
var priorities = []string{"Highest", "High", "Medium", "Low", "Lowest"}

// fakeConfig is how newFakeWith sets up the fake and the backend.
type fakeConfig struct {
	cloud      bool          // the fake is Jira Cloud (else Data Center)
	pat        bool          // bearer PAT, else email + API token
	flavor     string        // the backend's flavor option
	apiVersion int           // the backend's api_version option
	lag        time.Duration // the fake's search lag
	stateDir   string        // the backend's state dir (journal of creates)
	edit       func(*Options)
}

// newFake is the fake Jira Cloud (v3) or Data Center (v2), and a backend
// for it that asks its flavor, with api_version set as before flavors.
func newFake(t *testing.T, v3, pat bool) (*fakeJira, *Backend) {
	return newFakeWith(t, fakeConfig{cloud: v3, pat: pat, apiVersion: map[bool]int{true: 3, false: 2}[v3]})
}

func newFakeWith(t *testing.T, c fakeConfig) (*fakeJira, *Backend) {
	t.Helper()
	f := &fakeJira{cloud: c.cloud, issues: map[string]*issue{}, lag: c.lag, screens: map[string][]string{},
		clock: time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC)}
	dir := t.TempDir()
	o := Options{PriorityL2: "Medium", PriorityL3: "High", Project: "OPS", Flavor: c.flavor, APIVersion: c.apiVersion,
		ComponentsL3: []string{"Platform"}, TransitionEscalate: "escalate"}
	if c.pat {
		o.PATFile = filepath.Join(dir, "pat")
		require.NoError(t, os.WriteFile(o.PATFile, []byte(testPAT+"\n"), 0o600))
		f.auth = ticketingtest.Bearer(testPAT)
	} else {
		o.Email, o.TokenFile = testEmail, filepath.Join(dir, "token")
		require.NoError(t, os.WriteFile(o.TokenFile, []byte(testToken), 0o600))
		f.auth = ticketingtest.Basic(testEmail, testToken)
	}
	if c.edit != nil {
		c.edit(&o)
	}
	o.ApplyDefaults(c.stateDir)
	f.Server = ticketingtest.New(t, ticketingtest.Options{Auth: f.auth, Error: jerr})
	f.routes()
	o.URL = f.URL + "/"
	f.opts = o
	return f, f.backend(t)
}

// backend is a new backend for f (as after a restart of the agent).
func (f *fakeJira) backend(t *testing.T) *Backend {
	b, err := New("jira", f.opts, 5*time.Second)
	require.NoError(t, err)
	b.now = f.Now
	b.log = testkit.QuietLogger()
	b.journal.log = b.log
	return b
}

// Now is the fake's clock; Advance moves it.
func (f *fakeJira) Now() time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.clock
}

func (f *fakeJira) Advance(d time.Duration) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.clock = f.clock.Add(d)
}

func jerr(w http.ResponseWriter, code int, msg string) {
	ticketingtest.WriteJSON(w, code, map[string]any{"errorMessages": []string{msg}, "errors": map[string]string{}})
}

func fieldErr(w http.ResponseWriter, field, msg string) {
	ticketingtest.WriteJSON(w, 400, map[string]any{"errorMessages": []string{}, "errors": map[string]string{field: msg}})
}

// checkText: v3 wants an ADF doc with non-empty text nodes, v2 a string.
func (f *fakeJira) checkText(v any) string {
	if !f.cloud {
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
	jqlRe   = regexp.MustCompile(`^project = "OPS" AND labels = "(l2agent-[0-9a-f]{16})"( AND statusCategory != Done)? ORDER BY created DESC$`)
	issueRe = regexp.MustCompile(`^OPS-\d+$`)
)

// routes serves the endpoints of the flavor only: the other flavor's
// paths are unknown (404), Cloud's removed search is gone (410).
func (f *fakeJira) routes() {
	api := "/rest/api/2"
	f.Handle("GET /rest/api/2/serverInfo", f.serverInfo)
	if f.cloud {
		api = "/rest/api/3"
		f.Handle("GET /rest/api/3/serverInfo", f.serverInfo)
		f.Handle("POST /rest/api/3/search/jql", f.search)
		for _, old := range []string{"/rest/api/2/search", "/rest/api/3/search"} {
			f.Handle("GET "+old, gone)
			f.Handle("POST "+old, gone)
		}
		f.Handle("GET "+api+"/priority/search", f.list(priorityItems()))
		f.Handle("GET "+api+"/resolution/search", f.list(resolutions))
	} else {
		f.Handle("POST /rest/api/2/search", f.search)
		f.Handle("GET "+api+"/priority", f.array(priorityItems()))
		f.Handle("GET "+api+"/resolution", f.array(resolutions))
	}
	f.Handle("POST "+api+"/issue", f.create)
	f.Handle("GET "+api+"/issue/{key}", f.withIssue(f.get))
	f.Handle("PUT "+api+"/issue/{key}", f.withIssue(f.update))
	f.Handle("POST "+api+"/issue/{key}/comment", f.withIssue(f.comment))
	f.Handle("GET "+api+"/issue/{key}/comment", f.withIssue(f.comments))
	f.Handle("GET "+api+"/issue/{key}/transitions", f.withIssue(f.transitions))
	f.Handle("POST "+api+"/issue/{key}/transitions", f.withIssue(f.transition))
	// GET …/issue/createmeta/{project}/issuetypes and …/issue/{key}/properties/{prop}
	// overlap as net/http patterns: one route for both.
	f.Handle("GET "+api+"/issue/{key}/{coll}/{prop}", func(w http.ResponseWriter, r *http.Request) {
		switch {
		case r.PathValue("key") == "createmeta" && r.PathValue("prop") == "issuetypes":
			r.SetPathValue("project", r.PathValue("coll"))
			f.issueTypes(w, r)
		case r.PathValue("coll") == "properties":
			f.withIssue(f.getProp)(w, r)
		default:
			jerr(w, 404, "not found")
		}
	})
	f.Handle("PUT "+api+"/issue/{key}/properties/{prop}", f.withIssue(f.putProp))
	f.Handle("GET "+api+"/project/{project}", f.project)
	f.Handle("GET "+api+"/project/{project}/components", f.array([]namedItem{{"10100", "Linux"}, {"10101", "Platform"}, {"10102", "Vendor"}}))
}

func gone(w http.ResponseWriter, _ *http.Request) {
	jerr(w, 410, "The requested API has been removed. Please migrate to the /rest/api/3/search/jql API. A full migration guideline is available at https://developer.atlassian.com/changelog/#CHANGE-2046")
}

func (f *fakeJira) serverInfo(w http.ResponseWriter, _ *http.Request) {
	if f.cloud {
		json.NewEncoder(w).Encode(map[string]any{"baseUrl": f.URL, "version": "1001.0.0-SNAPSHOT", "deploymentType": "Cloud", "serverTitle": "Jira"})
		return
	}
	json.NewEncoder(w).Encode(map[string]any{"baseUrl": f.URL, "version": "9.12.15", "deploymentType": "DataCenter", "serverTitle": "Jira"})
}

func priorityItems() []namedItem {
	var out []namedItem
	for i, p := range priorities {
		out = append(out, namedItem{strconv.Itoa(i + 1), p})
	}
	return out
}

// list answers a Cloud page of values; array a Data Center array.
func (f *fakeJira) list(items []namedItem) http.HandlerFunc {
	return func(w http.ResponseWriter, _ *http.Request) {
		json.NewEncoder(w).Encode(map[string]any{"startAt": 0, "maxResults": 50, "total": len(items), "isLast": true, "values": items})
	}
}

func (f *fakeJira) array(items []namedItem) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if p := r.PathValue("project"); p != "" && p != "OPS" {
			jerr(w, 404, "No project could be found with key '"+p+"'.")
			return
		}
		json.NewEncoder(w).Encode(items)
	}
}

func (f *fakeJira) project(w http.ResponseWriter, r *http.Request) {
	if r.PathValue("project") != "OPS" {
		jerr(w, 404, "No project could be found with key '"+r.PathValue("project")+"'.")
		return
	}
	json.NewEncoder(w).Encode(map[string]any{"id": "10000", "key": "OPS", "name": "Operations"})
}

func (f *fakeJira) issueTypes(w http.ResponseWriter, r *http.Request) {
	if r.PathValue("project") != "OPS" {
		jerr(w, 404, "No project could be found with key '"+r.PathValue("project")+"'.")
		return
	}
	types := []namedItem{{"10001", "Task"}, {"10002", "Bug"}}
	if f.cloud {
		json.NewEncoder(w).Encode(map[string]any{"issueTypes": types, "maxResults": 50, "startAt": 0, "total": 2})
		return
	}
	json.NewEncoder(w).Encode(map[string]any{"values": types, "maxResults": 50, "startAt": 0, "total": 2, "isLast": true})
}

// searchKeys are the keys each search endpoint takes (Jackson refuses
// others with 400).
var searchKeys = map[bool][]string{
	true:  {"jql", "nextPageToken", "maxResults", "fields", "expand", "properties", "fieldsByKeys", "failFast", "reconcileIssues"},
	false: {"jql", "startAt", "maxResults", "fields", "expand", "validateQuery", "properties", "fieldsByKeys"},
}

func (f *fakeJira) search(w http.ResponseWriter, r *http.Request) {
	body := ticketingtest.Received(r).Body
	for k := range body {
		if !slices.Contains(searchKeys[f.cloud], k) {
			jerr(w, 400, fmt.Sprintf("Unrecognized field %q", k))
			return
		}
	}
	reconcile, ok := f.reconcileIDs(body["reconcileIssues"])
	if !ok {
		jerr(w, 400, "reconcileIssues: up to 50 issue ids (numbers)")
		return
	}
	jm := jqlRe.FindStringSubmatch(fmt.Sprint(body["jql"]))
	if jm == nil {
		jerr(w, 400, fmt.Sprintf("Error in the JQL Query: %v", body["jql"]))
		return
	}
	out := []any{}
	for i := len(f.order) - 1; i >= 0; i-- { // newest first
		is := f.issues[f.order[i]]
		s := f.view(is, slices.Contains(reconcile, is.ID))
		if s == nil || !slices.Contains(s.labels, any(jm[1])) || jm[2] != "" && statuses[s.status].cat == "done" {
			continue
		}
		out = append(out, map[string]any{"id": is.ID, "key": is.Key, "fields": map[string]any{"labels": s.labels, "status": statusJSON(s.status)}})
	}
	if f.cloud {
		json.NewEncoder(w).Encode(map[string]any{"issues": out, "isLast": true})
		return
	}
	json.NewEncoder(w).Encode(map[string]any{"startAt": 0, "maxResults": body["maxResults"], "total": len(out), "issues": out})
}

func (f *fakeJira) reconcileIDs(v any) ([]string, bool) {
	if v == nil {
		return nil, true
	}
	l, ok := v.([]any)
	if !ok || len(l) > 50 {
		return nil, false
	}
	var ids []string
	for _, x := range l {
		n, ok := x.(float64)
		if !ok {
			return nil, false
		}
		ids = append(ids, strconv.Itoa(int(n)))
	}
	return ids, true
}

// view is what the search shows of is now: as it is when its last change
// is indexed or it is reconciled, else as it was (nil: not yet at all).
func (f *fakeJira) view(is *issue, reconciled bool) *snapshot {
	if reconciled || !f.Now().Before(is.idxAt) {
		return &snapshot{labels: is.Fields["labels"].([]any), status: is.Status}
	}
	return is.idx
}

// changing is called before a change the search shows (a status).
func (f *fakeJira) changing(is *issue) {
	now := f.Now()
	if !now.Before(is.idxAt) {
		is.idx = f.view(is, true)
	}
	is.idxAt = now.Add(f.lag)
}

func statusJSON(name string) map[string]any {
	s := statuses[name]
	return map[string]any{"id": s.id, "name": name, "statusCategory": map[string]any{"key": s.cat}}
}

func (f *fakeJira) create(w http.ResponseWriter, r *http.Request) {
	body := ticketingtest.Received(r).Body
	fl, _ := body["fields"].(map[string]any)
	p, _ := fl["project"].(map[string]any)
	it, _ := fl["issuetype"].(map[string]any)
	s, _ := fl["summary"].(string)
	labels, _ := fl["labels"].([]any)
	switch {
	case p == nil || p["key"] != "OPS":
		fieldErr(w, "project", "valid project is required")
	case it == nil || it["name"] == "":
		fieldErr(w, "issuetype", "valid issue type is required")
	case s == "" || strings.ContainsAny(s, "\r\n") || len(s) > 255:
		fieldErr(w, "summary", "You must specify a summary of the issue.")
	case f.checkText(fl["description"]) != "":
		fieldErr(w, "description", f.checkText(fl["description"]))
	case slices.ContainsFunc(labels, func(l any) bool { return strings.Contains(fmt.Sprint(l), " ") }):
		fieldErr(w, "labels", "The label contains spaces which is invalid.")
	default:
		now := f.Now()
		f.mu.Lock() // for Tickets: an answer cut off orders nothing
		n := len(f.order) + 1
		is := &issue{ID: strconv.Itoa(10041 + n), Key: fmt.Sprintf("OPS-%d", n), Fields: fl, Status: "To Do", Props: map[string]any{},
			idxAt: now.Add(f.lag)}
		props, _ := body["properties"].([]any)
		for _, x := range props {
			pm, _ := x.(map[string]any)
			is.Props[fmt.Sprint(pm["key"])] = pm["value"]
		}
		f.issues[is.Key] = is
		f.order = append(f.order, is.Key)
		f.mu.Unlock()
		if f.dropCreate > 0 {
			f.dropCreate--
			panic(http.ErrAbortHandler) // made, and the answer lost
		}
		ticketingtest.WriteJSON(w, 201, map[string]string{"id": is.ID, "key": is.Key, "self": f.URL + "/rest/api/3/issue/" + is.ID})
	}
}

// withIssue hands the issue of the path and the request to h, or answers
// 404 as Jira does for an unknown issue.
func (f *fakeJira) withIssue(h func(w http.ResponseWriter, r *http.Request, is *issue, body map[string]any)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		k := r.PathValue("key")
		if !issueRe.MatchString(k) || f.issues[k] == nil {
			jerr(w, 404, "Issue does not exist or you do not have permission to see it.")
			return
		}
		h(w, r, f.issues[k], ticketingtest.Received(r).Body)
	}
}

// get answers GET /issue/{key}?fields=a,b&properties=p as Jira does: the
// issue's key, the fields asked for (all when none), the properties asked
// for.
func (f *fakeJira) get(w http.ResponseWriter, r *http.Request, is *issue, _ map[string]any) {
	want := strings.Split(r.URL.Query().Get("fields"), ",")
	fl := map[string]any{}
	all := map[string]any{"status": statusJSON(is.Status), "resolution": nil}
	for k, v := range is.Fields {
		all[k] = v
	}
	if is.Resolution != "" {
		all["resolution"] = map[string]any{"name": is.Resolution}
	}
	for k, v := range all {
		if want[0] == "" || slices.Contains(want, k) {
			fl[k] = v
		}
	}
	props := map[string]any{}
	for _, p := range strings.Split(r.URL.Query().Get("properties"), ",") {
		if v, ok := is.Props[p]; ok {
			props[p] = v
		}
	}
	json.NewEncoder(w).Encode(map[string]any{"id": is.ID, "key": is.Key, "fields": fl, "properties": props})
}

// update edits the issue as PUT /issue/{key} {"fields": …} does: a
// one-line summary, a priority by a name Jira has, components by name; any
// other field is not on the edit screen. 204 on success.
func (f *fakeJira) update(w http.ResponseWriter, _ *http.Request, is *issue, body map[string]any) {
	fl, ok := body["fields"].(map[string]any)
	if !ok {
		jerr(w, 400, "fields: want an object")
		return
	}
	for k, v := range fl {
		switch k {
		case "summary":
			if s, _ := v.(string); s == "" || strings.ContainsAny(s, "\r\n") || len(s) > 255 {
				fieldErr(w, "summary", "You must specify a summary of the issue.")
				return
			}
		case "priority":
			if p, _ := v.(map[string]any); p == nil || !slices.Contains(priorities, fmt.Sprint(p["name"])) {
				fieldErr(w, "priority", "The priority selected is invalid.")
				return
			}
		case "components":
		default:
			fieldErr(w, k, fmt.Sprintf("Field '%s' cannot be set. It is not on the appropriate screen, or unknown.", k))
			return
		}
	}
	for k, v := range fl {
		is.Fields[k] = v
	}
	is.Edits = append(is.Edits, fl)
	w.WriteHeader(204)
}

func (f *fakeJira) comment(w http.ResponseWriter, _ *http.Request, is *issue, body map[string]any) {
	if e := f.checkText(body["body"]); e != "" {
		fieldErr(w, "comment", e)
		return
	}
	is.Comments = append(is.Comments, body["body"])
	ticketingtest.Reply(201, `{"id":"10000"}`)(w, nil)
}

// comments lists an issue's comments as GET .../issue/{key}/comment does:
// orderBy created or -created, startAt, maxResults capped at 100, total.
func (f *fakeJira) comments(w http.ResponseWriter, r *http.Request, is *issue, _ map[string]any) {
	q := r.URL.Query()
	start, _ := strconv.Atoi(q.Get("startAt"))
	n, err := strconv.Atoi(q.Get("maxResults"))
	if err != nil || n > 100 {
		n = 100
	}
	idx := make([]int, len(is.Comments))
	for i := range idx {
		idx[i] = i
		if q.Get("orderBy") == "-created" {
			idx[i] = len(is.Comments) - 1 - i
		}
	}
	cs := []any{}
	for _, i := range idx[min(start, len(idx)):min(start+n, len(idx))] {
		cs = append(cs, map[string]any{"id": strconv.Itoa(10000 + i), "body": is.Comments[i], "created": "2026-11-25T10:00:00.000+0000"})
	}
	json.NewEncoder(w).Encode(map[string]any{"startAt": start, "maxResults": n, "total": len(is.Comments), "comments": cs})
}

// transitions lists those offered from the issue's status; with
// expand=transitions.fields, the fields of each one's screen (Jira lists
// no comment field there).
func (f *fakeJira) transitions(w http.ResponseWriter, r *http.Request, is *issue, _ map[string]any) {
	expand := r.URL.Query().Get("expand") == "transitions.fields"
	ts := []any{}
	for _, t := range workflow {
		if !offered(t, is.Status) {
			continue
		}
		screen := f.screens[t.id]
		tj := map[string]any{"id": t.id, "name": t.name, "to": statusJSON(t.to), "hasScreen": len(screen) > 0, "isGlobal": t.global}
		if expand {
			fields := map[string]any{}
			if slices.Contains(screen, "resolution") {
				fields["resolution"] = map[string]any{"required": true, "name": "Resolution", "key": "resolution", "operations": []string{"set"}, "allowedValues": resolutions}
			}
			tj["fields"] = fields
		}
		ts = append(ts, tj)
	}
	json.NewEncoder(w).Encode(map[string]any{"expand": "transitions", "transitions": ts})
}

// transition runs one: a transition offered from the status; fields only
// those on its screen (else 400); update.comment added when the screen has
// a comment field, dropped in silence otherwise (still 204); entering a
// done status sets the resolution (the one given, else "Done") and its
// date, leaving one clears them.
func (f *fakeJira) transition(w http.ResponseWriter, _ *http.Request, is *issue, body map[string]any) {
	tr, _ := body["transition"].(map[string]any)
	id := fmt.Sprint(tr["id"])
	i := slices.IndexFunc(workflow, func(t wfTransition) bool { return t.id == id && offered(t, is.Status) })
	if i < 0 {
		jerr(w, 400, "It seems that you have tried to perform a workflow operation ("+id+") that is not valid for the current state of this issue.")
		return
	}
	t, screen := workflow[i], f.screens[id]
	fl, _ := body["fields"].(map[string]any)
	for k := range fl {
		if !slices.Contains(screen, k) {
			fieldErr(w, k, fmt.Sprintf("Field '%s' cannot be set. It is not on the appropriate screen, or unknown.", k))
			return
		}
	}
	res := "Done"
	if rv, ok := fl["resolution"].(map[string]any); ok {
		if !slices.ContainsFunc(resolutions, func(n namedItem) bool { return n.Name == rv["name"] }) {
			fieldErr(w, "resolution", "The resolution selected is invalid.")
			return
		}
		res = fmt.Sprint(rv["name"])
	}
	var added []any
	if u, ok := body["update"].(map[string]any); ok && slices.Contains(screen, "comment") {
		for _, c := range u["comment"].([]any) {
			cb := c.(map[string]any)["add"].(map[string]any)["body"]
			if e := f.checkText(cb); e != "" {
				fieldErr(w, "comment", e)
				return
			}
			added = append(added, cb)
		}
	}
	f.changing(is)
	is.Comments = append(is.Comments, added...)
	is.Status = t.to
	if statuses[t.to].cat == "done" {
		is.Resolution, is.Resolved = res, f.Now()
	} else {
		is.Resolution, is.Resolved = "", time.Time{}
	}
	w.WriteHeader(204)
}

func (f *fakeJira) getProp(w http.ResponseWriter, r *http.Request, is *issue, _ map[string]any) {
	v, ok := is.Props[r.PathValue("prop")]
	if !ok {
		jerr(w, 404, "The property with key '"+r.PathValue("prop")+"' does not exist.")
		return
	}
	json.NewEncoder(w).Encode(map[string]any{"key": r.PathValue("prop"), "value": v})
}

func (f *fakeJira) putProp(w http.ResponseWriter, r *http.Request, is *issue, _ map[string]any) {
	var v any
	if err := json.Unmarshal(ticketingtest.Received(r).Raw, &v); err != nil {
		jerr(w, 400, "The property value must be JSON.")
		return
	}
	_, had := is.Props[r.PathValue("prop")]
	is.Props[r.PathValue("prop")] = v
	if had {
		w.WriteHeader(200)
		return
	}
	w.WriteHeader(201)
}

// Tickets counts the issues carrying the key's label.
func (f *fakeJira) Tickets(key string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	n := 0
	for _, is := range f.issues {
		if slices.Contains(is.Fields["labels"].([]any), any(Label(key))) {
			n++
		}
	}
	return n
}

// Texts are the comments of issue r as the fake keeps them: the string of
// v2, the JSON of the ADF document of v3.
func (f *fakeJira) Texts(r ticketing.Ref) []string {
	var out []string
	for _, c := range f.issues[r.ID].Comments {
		if s, ok := c.(string); ok {
			out = append(out, s)
			continue
		}
		j, _ := json.Marshal(c)
		out = append(out, string(j))
	}
	return out
}

// Plain are the comments of issue r as text (ADF text nodes joined).
func (f *fakeJira) Plain(r ticketing.Ref) []string {
	var out []string
	for _, c := range f.issues[r.ID].Comments {
		j, _ := json.Marshal(c)
		out = append(out, strings.ReplaceAll(strings.TrimSpace(commentText(j)), "\n\n", "\n"))
	}
	return out
}
