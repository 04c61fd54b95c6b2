// Package jira is the Jira ticket backend: Jira Cloud (REST v3, bodies in
// Atlassian Document Format) and Jira Data Center (REST v2, plain text).
//
// The alert key is kept as a label, "l2agent-" + the first 16 hex digits of
// its SHA-256 (labels cannot hold spaces, quotes or braces); Find looks it up
// with JQL, in any status, newest first. Tiers map to a priority and
// components; resolve, reopen and (optionally) escalate are workflow
// transitions found by name.
package jira

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/l2agent/l2agent/configs"
	"github.com/l2agent/l2agent/internal/rest"
	"github.com/l2agent/l2agent/ticketing"
)

// maxSummary is Jira's limit on the summary field.
const maxSummary = 255

// Backend files issues in one Jira project. Safe for concurrent use.
type Backend struct {
	name   string
	base   string // no trailing slash
	api    string // /rest/api/2 or /rest/api/3
	v3     bool
	o      Options
	client *rest.Client
}

var _ ticketing.Ticketer = (*Backend)(nil)

// New returns the backend for one configured Jira; o should have had its
// defaults applied. timeout bounds each HTTP request.
func New(name string, o Options, timeout time.Duration) (*Backend, error) {
	if !configs.ValidHTTPURL(o.URL) {
		return nil, fmt.Errorf("jira backend %q: url %q: want an http:// or https:// URL", name, o.URL)
	}
	if o.APIVersion == 0 {
		o.APIVersion = 3
	}
	if o.APIVersion != 2 && o.APIVersion != 3 {
		return nil, fmt.Errorf("jira backend %q: api_version %d: want 2 or 3", name, o.APIVersion)
	}
	if o.Project == "" {
		return nil, fmt.Errorf("jira backend %q: project is empty", name)
	}
	o.IssueType = or(o.IssueType, "Task")
	o.TransitionResolve = or(o.TransitionResolve, "Done")
	o.TransitionReopen = or(o.TransitionReopen, "To Do")
	auth, err := rest.BearerOrBasic(
		rest.Secret{Key: "pat", Set: o.PAT.Ref != "" || o.PATFile != "", Read: func() (string, error) { return configs.SecretValue(o.PAT, o.PATFile) }},
		"email", o.Email,
		rest.Secret{Key: "token", Read: func() (string, error) { return configs.SecretValue(o.Token, o.TokenFile) }})
	if err != nil {
		return nil, fmt.Errorf("jira backend %q: %w", name, err)
	}
	base := strings.TrimRight(o.URL, "/")
	c := rest.New(rest.Config{
		Name:    "jira",
		BaseURL: base,
		Header:  map[string]string{"Accept": "application/json"},
		Auth:    auth,
		Timeout: timeout,
	})
	return &Backend{name: name, base: base, api: "/rest/api/" + strconv.Itoa(o.APIVersion), v3: o.APIVersion == 3, o: o, client: c}, nil
}

func or(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// Label is the dedup label of an alert key.
func Label(key string) string {
	s := sha256.Sum256([]byte(key))
	return "l2agent-" + hex.EncodeToString(s[:8])
}

// JQL is the query that finds the issues of key, in any status, newest first.
func (b *Backend) JQL(key string) string {
	return fmt.Sprintf("project = %s AND labels = %s ORDER BY created DESC", quoteJQL(b.o.Project), quoteJQL(Label(key)))
}

func quoteJQL(s string) string {
	return `"` + strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(s) + `"`
}

func (b *Backend) ref(key string) ticketing.Ref {
	return ticketing.Ref{ID: key, URL: b.base + "/browse/" + url.PathEscape(key)}
}

// Find returns the newest issue carrying the key's label. Cloud searches
// with POST /rest/api/3/search/jql, Data Center with POST /rest/api/2/search.
func (b *Backend) Find(ctx context.Context, key string) (ticketing.Ref, bool, error) {
	path := b.api + "/search"
	if b.v3 {
		path += "/jql"
	}
	var res struct {
		Issues []struct {
			Key    string `json:"key"`
			Fields struct {
				Labels []string `json:"labels"`
			} `json:"fields"`
		} `json:"issues"`
	}
	req := map[string]any{"jql": b.JQL(key), "fields": []string{"labels", "created"}, "maxResults": 5}
	if err := b.call(ctx, "find "+key, http.MethodPost, path, req, &res); err != nil {
		return ticketing.Ref{}, false, err
	}
	l := Label(key)
	for _, is := range res.Issues {
		for _, x := range is.Fields.Labels {
			if x == l {
				return b.ref(is.Key), true, nil
			}
		}
	}
	return ticketing.Ref{}, false, nil
}

// tierFields are the fields that place an issue at tier t.
func (b *Backend) tierFields(t ticketing.Tier) map[string]any {
	prio, comps := b.o.PriorityL2, b.o.ComponentsL2
	switch t {
	case ticketing.L3:
		prio, comps = b.o.PriorityL3, b.o.ComponentsL3
	case ticketing.L4:
		prio, comps = b.o.PriorityL4, b.o.ComponentsL4
	}
	f := map[string]any{}
	if prio != "" {
		f["priority"] = map[string]string{"name": prio}
	}
	if len(comps) > 0 {
		var cs []map[string]string
		for _, c := range comps {
			cs = append(cs, map[string]string{"name": c})
		}
		f["components"] = cs
	}
	return f
}

// Open creates an issue in the project with the dedup label.
func (b *Backend) Open(ctx context.Context, t ticketing.Ticket) (ticketing.Ref, error) {
	tr := max(t.Tier, ticketing.L2)
	f := b.tierFields(tr)
	f["project"] = map[string]string{"key": b.o.Project}
	f["issuetype"] = map[string]string{"name": b.o.IssueType}
	f["summary"] = summary(t.Title)
	f["description"] = b.text(t.Body)
	f["labels"] = []string{Label(t.Key), "l2agent"}
	var created struct {
		Key string `json:"key"`
	}
	what := "open " + t.Key
	if err := b.call(ctx, what, http.MethodPost, b.api+"/issue", map[string]any{"fields": f}, &created); err != nil {
		return ticketing.Ref{}, err
	}
	if created.Key == "" {
		return ticketing.Ref{}, ticketing.Final("api", fmt.Errorf("jira %s: Jira answered without an issue key", what))
	}
	return b.ref(created.Key), nil
}

// Comment adds a comment.
func (b *Backend) Comment(ctx context.Context, r ticketing.Ref, text string) error {
	return b.call(ctx, "comment on "+r.ID, http.MethodPost, b.issuePath(r)+"/comment", map[string]any{"body": b.text(text)}, nil)
}

// Escalate sets the tier's priority and components and the current summary,
// then runs transition_escalate (if configured) with a comment, or just
// comments.
func (b *Backend) Escalate(ctx context.Context, r ticketing.Ref, tr ticketing.Tier, t ticketing.Ticket) error {
	what := fmt.Sprintf("escalate %s to %s", r.ID, tr)
	f := b.tierFields(tr)
	if t.Title != "" {
		f["summary"] = summary(t.Title)
	}
	if err := b.call(ctx, what, http.MethodPut, b.issuePath(r), map[string]any{"fields": f}, nil); err != nil {
		return err
	}
	note := fmt.Sprintf("l2agent escalated this issue to %s.", tr)
	if t.Body != "" {
		note += "\n\n" + t.Body
	}
	if b.o.TransitionEscalate != "" {
		return b.transition(ctx, what, r, b.o.TransitionEscalate, note, nil)
	}
	return b.call(ctx, what, http.MethodPost, b.issuePath(r)+"/comment", map[string]any{"body": b.text(note)}, nil)
}

// Resolve runs transition_resolve with text as its comment.
func (b *Backend) Resolve(ctx context.Context, r ticketing.Ref, text string) error {
	var fields map[string]any
	if b.o.Resolution != "" {
		fields = map[string]any{"resolution": map[string]string{"name": b.o.Resolution}}
	}
	return b.transition(ctx, "resolve "+r.ID, r, b.o.TransitionResolve, or(text, "l2agent: resolved"), fields)
}

// Reopen runs transition_reopen with text as its comment.
func (b *Backend) Reopen(ctx context.Context, r ticketing.Ref, text string) error {
	return b.transition(ctx, "reopen "+r.ID, r, b.o.TransitionReopen, or(text, "l2agent: reopened"), nil)
}

// transition finds the transition called name (case-insensitive) among
// those available now and runs it, adding comment in the same request.
func (b *Backend) transition(ctx context.Context, what string, r ticketing.Ref, name, comment string, fields map[string]any) error {
	var av struct {
		Transitions []struct {
			ID   string `json:"id"`
			Name string `json:"name"`
		} `json:"transitions"`
	}
	if err := b.call(ctx, what, http.MethodGet, b.issuePath(r)+"/transitions", nil, &av); err != nil {
		return err
	}
	id, names := "", []string{}
	for _, t := range av.Transitions {
		names = append(names, strconv.Quote(t.Name))
		if strings.EqualFold(strings.TrimSpace(t.Name), strings.TrimSpace(name)) && id == "" {
			id = t.ID
		}
	}
	if id == "" {
		return ticketing.Final("no_transition", fmt.Errorf("jira %s: no transition %q from the issue's status; available: %s", what, name, strings.Join(names, ", ")))
	}
	req := map[string]any{
		"transition": map[string]string{"id": id},
		"update":     map[string]any{"comment": []any{map[string]any{"add": map[string]any{"body": b.text(comment)}}}},
	}
	if fields != nil {
		req["fields"] = fields
	}
	return b.call(ctx, what, http.MethodPost, b.issuePath(r)+"/transitions", req, nil)
}

func (b *Backend) issuePath(r ticketing.Ref) string {
	return b.api + "/issue/" + url.PathEscape(r.ID)
}

// text is a comment or description body: ADF for v3, plain text for v2.
func (b *Backend) text(s string) any {
	if !b.v3 {
		return s
	}
	return ADF(s)
}

// ADF renders plain text as an Atlassian Document Format document: a
// paragraph per block of lines, hard breaks between lines (ADF forbids
// empty text nodes, so empty lines only separate paragraphs).
func ADF(s string) map[string]any {
	var paras []any
	for _, block := range strings.Split(strings.ReplaceAll(s, "\r\n", "\n"), "\n\n") {
		var inl []any
		for _, line := range strings.Split(block, "\n") {
			if line == "" {
				continue
			}
			if len(inl) > 0 {
				inl = append(inl, map[string]any{"type": "hardBreak"})
			}
			inl = append(inl, map[string]any{"type": "text", "text": line})
		}
		if len(inl) > 0 {
			paras = append(paras, map[string]any{"type": "paragraph", "content": inl})
		}
	}
	if paras == nil {
		paras = []any{map[string]any{"type": "paragraph", "content": []any{}}}
	}
	return map[string]any{"type": "doc", "version": 1, "content": paras}
}

// summary fits a title into one line of at most maxSummary characters.
func summary(s string) string {
	s = strings.Join(strings.Fields(s), " ")
	if utf8.RuneCountInString(s) <= maxSummary {
		return s
	}
	return string([]rune(s)[:maxSummary-1]) + "…"
}

// call makes one request and decodes the JSON answer into out (if not nil).
func (b *Backend) call(ctx context.Context, what, method, path string, body, out any) error {
	return b.client.Do(ctx, what, rest.Request{Method: method, Path: path, Body: body}, out)
}
