// Package jira is the Jira ticket backend: Jira Cloud (REST v3, bodies in
// Atlassian Document Format) and Jira Data Center (REST v2, plain text),
// chosen by the flavor option or asked of Jira (flavor.go).
//
// The alert key is kept as a label, "l2agent-" + the first 16 hex digits of
// its SHA-256 (labels cannot hold spaces, quotes or braces); Find looks it up
// with JQL among the issues that are not done, newest first. Tiers map to a
// priority and components; resolve, reopen and (optionally) escalate are
// workflow transitions found by name (transition.go), each followed by its
// own comment. A create whose answer was lost is not repeated (create.go).
package jira

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync"
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
	o      Options
	client *rest.Client
	log    *slog.Logger

	mu    sync.Mutex // api, cloud: known once the flavor is (flavor.go)
	api   string     // /rest/api/2 or /rest/api/3; "" until known
	cloud bool

	journal *journal      // creates whose answer may be lost (create.go)
	settle  time.Duration // how long a create in doubt waits for the search to show it
	now     func() time.Time
}

var _ ticketing.Ticketer = (*Backend)(nil)

// New returns the backend for one configured Jira; o should have had its
// defaults applied. timeout bounds each HTTP request.
func New(name string, o Options, timeout time.Duration) (*Backend, error) {
	if !configs.ValidHTTPURL(o.URL) {
		return nil, fmt.Errorf("jira backend %q: url %q: want an http:// or https:// URL", name, o.URL)
	}
	var bad []string
	o.validateFlavor("jira", func(_ string, format string, args ...any) { bad = append(bad, fmt.Sprintf(format, args...)) })
	if len(bad) > 0 {
		return nil, fmt.Errorf("jira backend %q: %s", name, strings.Join(bad, "; "))
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
	log := slog.Default().With("backend", name)
	b := &Backend{name: name, base: base, o: o, client: c, log: log, settle: createSettle, now: time.Now}
	b.journal = newJournal(o.journalPath(name), log, func() time.Time { return b.now() })
	if o.Flavor != "" {
		b.setFlavor(o.Flavor == FlavorCloud)
	}
	return b, nil
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

// JQL is the query that finds the issues of key that are not done, newest
// first.
func (b *Backend) JQL(key string) string {
	return fmt.Sprintf("project = %s AND labels = %s AND statusCategory != Done ORDER BY created DESC", quoteJQL(b.o.Project), quoteJQL(Label(key)))
}

// jqlAny finds the issues with label in any status, newest first.
func (b *Backend) jqlAny(label string) string {
	return fmt.Sprintf("project = %s AND labels = %s ORDER BY created DESC", quoteJQL(b.o.Project), quoteJQL(label))
}

func quoteJQL(s string) string {
	return `"` + strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(s) + `"`
}

func (b *Backend) ref(key string) ticketing.Ref {
	return ticketing.Ref{ID: key, URL: b.base + "/browse/" + url.PathEscape(key)}
}

// found is an issue as the search answers it.
type found struct {
	ID     string `json:"id"`
	Key    string `json:"key"`
	Fields struct {
		Labels []string `json:"labels"`
		Status status   `json:"status"`
	} `json:"fields"`
}

func (f found) hasLabel(l string) bool {
	for _, x := range f.Fields.Labels {
		if x == l {
			return true
		}
	}
	return false
}

// Find returns the newest issue carrying the key's label that can still be
// used for the incident: one whose status is not in the done category. A
// done issue is never returned, whenever it was resolved: the deliverer
// would take it as the incident's ticket without reopening it. While the
// agent remembers the incident (reopen_window after a resolve, and
// longer), a recurrence reopens its ticket through the ticket it recorded;
// after that, a recurrence gets a new issue that links the old one. On
// Cloud the issues this backend created recently are named in
// reconcileIssues, so that the search, eventually consistent, shows them
// as they are now.
func (b *Backend) Find(ctx context.Context, key string) (ticketing.Ref, bool, error) {
	l := Label(key)
	res, err := b.search(ctx, "find "+key, b.JQL(key), b.journal.ids(l))
	if err != nil {
		return ticketing.Ref{}, false, err
	}
	for _, is := range res {
		if is.hasLabel(l) && !is.Fields.Status.done() {
			return b.ref(is.Key), true, nil
		}
	}
	return ticketing.Ref{}, false, nil
}

// search runs jql: POST /rest/api/3/search/jql on Cloud (with reconcile as
// reconcileIssues), POST /rest/api/2/search on Data Center.
func (b *Backend) search(ctx context.Context, what, jql string, reconcile []int64) ([]found, error) {
	if _, err := b.apiPath(ctx); err != nil {
		return nil, err
	}
	path := "/rest/api/2/search"
	req := map[string]any{"jql": jql, "fields": []string{"labels", "status", "created"}, "maxResults": 5}
	if b.isCloud() {
		path = "/rest/api/3/search/jql"
		if len(reconcile) > 0 {
			req["reconcileIssues"] = reconcile
		}
	}
	var res struct {
		Issues []found `json:"issues"`
	}
	if err := b.client.Do(ctx, what, rest.Request{Method: http.MethodPost, Path: path, Body: req}, &res); err != nil {
		return nil, err
	}
	return res.Issues, nil
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

// Comment adds a comment.
func (b *Backend) Comment(ctx context.Context, r ticketing.Ref, text string) error {
	return b.comment(ctx, "comment on "+r.ID, r, text)
}

// comment adds text as a comment: POST /issue/KEY/comment.
func (b *Backend) comment(ctx context.Context, what string, r ticketing.Ref, text string) error {
	if err := b.ready(ctx); err != nil {
		return err
	}
	return b.call(ctx, what, http.MethodPost, issuePath(r)+"/comment", map[string]any{"body": b.text(text)}, nil)
}

// Escalate sets the tier's priority and components and the current
// summary, runs transition_escalate (if configured, and the issue is not
// already where it leads), then adds the reason as a comment of its own.
func (b *Backend) Escalate(ctx context.Context, r ticketing.Ref, tr ticketing.Tier, t ticketing.Ticket) error {
	what := fmt.Sprintf("escalate %s to %s", r.ID, tr)
	f := b.tierFields(tr)
	if t.Title != "" {
		f["summary"] = summary(t.Title)
	}
	if err := b.call(ctx, what, http.MethodPut, issuePath(r), map[string]any{"fields": f}, nil); err != nil {
		return err
	}
	if b.o.TransitionEscalate != "" {
		if err := b.move(ctx, what, r, b.escalateMove()); err != nil {
			return err
		}
	}
	note := fmt.Sprintf("l2agent escalated this issue to %s.", tr)
	if t.Body != "" {
		note += "\n\n" + t.Body
	}
	return b.comment(ctx, what, r, note)
}

// Resolve runs transition_resolve (unless the issue is already done), then
// adds text as a comment.
func (b *Backend) Resolve(ctx context.Context, r ticketing.Ref, text string) error {
	what := "resolve " + r.ID
	if err := b.move(ctx, what, r, b.resolveMove()); err != nil {
		return err
	}
	return b.comment(ctx, what, r, or(text, "l2agent: resolved"))
}

// Reopen runs transition_reopen (unless the issue is already not done),
// then adds text as a comment.
func (b *Backend) Reopen(ctx context.Context, r ticketing.Ref, text string) error {
	what := "reopen " + r.ID
	if err := b.move(ctx, what, r, b.reopenMove()); err != nil {
		return err
	}
	return b.comment(ctx, what, r, or(text, "l2agent: reopened"))
}

// issuePath is the path of issue r below the API's root.
func issuePath(r ticketing.Ref) string {
	return "/issue/" + url.PathEscape(r.ID)
}

// text is a comment or description body: ADF for v3, plain text for v2.
// The flavor must be known (ready).
func (b *Backend) text(s string) any {
	if !b.v3() {
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

// call makes one request to path below the API's root (/rest/api/N) and
// decodes the JSON answer into out (if not nil).
func (b *Backend) call(ctx context.Context, what, method, path string, body, out any) error {
	return b.do(ctx, what, rest.Request{Method: method, Path: path, Body: body}, out)
}

// do makes request r, its path below the API's root (/rest/api/N), once
// the flavor is known.
func (b *Backend) do(ctx context.Context, what string, r rest.Request, out any) error {
	api, err := b.apiPath(ctx)
	if err != nil {
		return err
	}
	r.Path = api + r.Path
	return b.client.Do(ctx, what, r, out)
}
