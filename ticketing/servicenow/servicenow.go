// Package servicenow is the ServiceNow ticket backend: the Table API on
// incident (https://<instance>/api/now/table/incident).
//
// The alert key is the incident's correlation_id (a String(100): longer keys
// are shortened with a hash). Comments are work notes; tiers are assignment
// groups (looked up once when given by name); urgency and impact follow the
// severity; resolve and reopen set the state field. Every PATCH's answer is
// checked for the fields sent, since a field ACL or a business rule may
// leave one out without an error, and a refused change is final rather
// than retried for ever. Auth is basic, a bearer token, or OAuth tokens the
// backend gets and renews (auth.go). Find takes back only an incident that
// can still be used (not Closed or Canceled, or Resolved long ago).
package servicenow

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/l2agent/l2agent/configs"
	"github.com/l2agent/l2agent/internal/rest"
	"github.com/l2agent/l2agent/ticketing"
)

const (
	tablePath     = "/api/now/table/incident"
	maxCorrID     = 100 // incident.correlation_id is a String(100)
	maxShortDesc  = 160 // incident.short_description
	findPageLimit = 50
)

// Backend files incidents in one ServiceNow instance. Safe for concurrent use.
type Backend struct {
	name string
	base string
	o    Options
	auth *authenticator
	// now is the clock of token renewal and of reuse_resolved.
	now func() time.Time

	mu       sync.Mutex
	sysIDs   map[string]string          // "table\x00name" → sys_id of a reference given by name
	prev     ticketing.Unused[incident] // key → its newest incident that Find could not use, named by Open
	refusals map[string]int             // "sys_id\x00what" → 5xx answers in a row to a PATCH while reads worked
}

var _ ticketing.Ticketer = (*Backend)(nil)

// New returns the backend for one configured instance; o should have had
// its defaults applied. timeout bounds each HTTP request.
func New(name string, o Options, timeout time.Duration) (*Backend, error) {
	if !configs.ValidHTTPURL(o.URL) {
		return nil, fmt.Errorf("servicenow backend %q: url %q: want an http:// or https:// URL", name, o.URL)
	}
	base := strings.TrimRight(o.URL, "/")
	b := &Backend{name: name, base: base, o: o, now: time.Now,
		sysIDs: map[string]string{}, refusals: map[string]int{}}
	cfg := rest.Config{
		Name:    "servicenow",
		BaseURL: base,
		Header:  map[string]string{"Accept": "application/json"},
		Timeout: timeout,
	}
	auth, err := newAuthenticator(&b.o, cfg, func() time.Time { return b.now() })
	if err != nil {
		return nil, fmt.Errorf("servicenow backend %q: %w", name, err)
	}
	b.auth = auth
	return b, nil
}

// CorrelationID is what correlation_id holds for key: the key itself, or
// when longer than the column, a prefix and a hash of the whole key.
func CorrelationID(key string) string {
	if len(key) <= maxCorrID {
		return key
	}
	s := sha256.Sum256([]byte(key))
	h := "#" + hex.EncodeToString(s[:16])
	return strings.ToValidUTF8(key[:maxCorrID-len(h)], "") + h
}

// special splits a key into the parts an encoded query can carry: "^"
// separates conditions and "=" may be read as an operator, line breaks end
// the query.
var special = regexp.MustCompile(`[\^=\r\n]+`)

// Query is the encoded query that finds the incidents of key, newest first.
// A correlation ID without special characters is matched with "="; else its
// pieces are matched with STARTSWITH, LIKE and ENDSWITH, and Find compares
// the hits exactly.
func Query(key string) string {
	id := CorrelationID(key)
	parts := special.Split(id, -1)
	if len(parts) == 1 {
		return "correlation_id=" + id + "^ORDERBYDESCsys_created_on"
	}
	var q []string
	for i, p := range parts {
		switch {
		case p == "":
		case i == 0:
			q = append(q, "correlation_idSTARTSWITH"+p)
		case i == len(parts)-1:
			q = append(q, "correlation_idENDSWITH"+p)
		default:
			q = append(q, "correlation_idLIKE"+p)
		}
	}
	if len(q) == 0 {
		q = append(q, "correlation_idISNOTEMPTY")
	}
	return strings.Join(q, "^") + "^ORDERBYDESCsys_created_on"
}

// ref is the incident sysID, named by its number (INC0010001) when known.
func (b *Backend) ref(sysID, number string) ticketing.Ref {
	return ticketing.Ref{ID: sysID, Name: number, URL: b.base + "/nav_to.do?uri=" + url.QueryEscape("incident.do?sys_id="+sysID)}
}

type incident struct {
	SysID         string `json:"sys_id"`
	Number        string `json:"number"`
	CorrelationID string `json:"correlation_id"`
	State         string `json:"state"`
	ResolvedAt    string `json:"resolved_at"` // "2006-01-02 15:04:05", UTC
	why           string // why Find did not use it
}

// The incident states (incident.state) the backend tells apart.
const (
	stateResolved = "6"
	stateClosed   = "7"
	stateCanceled = "8"
)

// Find returns the newest incident whose correlation_id is the key's and
// that can still take this incident: one not Resolved, Closed or
// Canceled, or one Resolved within reuse_resolved. Otherwise it remembers
// the newest one it found, which the next Open of the key names.
func (b *Backend) Find(ctx context.Context, key string) (ticketing.Ref, bool, error) {
	var res []incident
	err := b.call(ctx, "find "+key, http.MethodGet, tablePath, url.Values{
		"sysparm_query":  {Query(key)},
		"sysparm_fields": {"sys_id,number,correlation_id,state,resolved_at"},
		"sysparm_limit":  {strconv.Itoa(findPageLimit)},
	}, nil, &res)
	if err != nil {
		return ticketing.Ref{}, false, err
	}
	id := CorrelationID(key)
	var old *incident
	for i, in := range res {
		if in.CorrelationID != id || in.SysID == "" {
			continue
		}
		why := b.unusable(in)
		if why == "" {
			b.prev.Remember(key, nil)
			ref := b.ref(in.SysID, in.Number)
			ref.Resolved = in.State == stateResolved || in.State == strconv.Itoa(b.o.ResolveState)
			return ref, true, nil
		}
		if old == nil {
			old = &res[i]
			old.why = why
		}
	}
	b.prev.Remember(key, old)
	return ticketing.Ref{}, false, nil
}

// unusable says why incident in cannot take the key's incident again, or
// "" when it can.
func (b *Backend) unusable(in incident) string {
	switch in.State {
	case stateClosed:
		return "it is Closed"
	case stateCanceled:
		return "it is Canceled"
	case stateResolved, strconv.Itoa(b.o.ResolveState):
		reuse := DefaultReuseResolved
		if b.o.ReuseResolved != nil {
			reuse = b.o.ReuseResolved.D()
		}
		at, err := time.Parse(time.DateTime, in.ResolvedAt)
		if err != nil {
			return "it is Resolved, at a time ServiceNow did not say"
		}
		if ago := b.now().Sub(at); ago > reuse {
			return fmt.Sprintf("it was Resolved %s ago, longer than reuse_resolved (%s)", ago.Round(time.Minute), reuse)
		}
	}
	return ""
}

// placement is the fields that put an incident of severity at tier t; an
// assignment group given by name is looked up (once).
func (b *Backend) placement(ctx context.Context, t ticketing.Tier, severity string) (map[string]any, error) {
	f := map[string]any{}
	g, key := b.o.AssignmentGroupL2, "assignment_group_l2"
	switch {
	case t == ticketing.L3 && b.o.AssignmentGroupL3 != "":
		g, key = b.o.AssignmentGroupL3, "assignment_group_l3"
	case t == ticketing.L4 && b.o.AssignmentGroupL4 != "":
		g, key = b.o.AssignmentGroupL4, "assignment_group_l4"
	case t == ticketing.L4 && b.o.AssignmentGroupL3 != "":
		g, key = b.o.AssignmentGroupL3, "assignment_group_l3"
	}
	if g != "" {
		id, err := b.sysID(ctx, groups, key, g)
		if err != nil {
			return nil, err
		}
		f["assignment_group"] = id
	}
	u, i := b.o.UrgencyWarn, b.o.ImpactWarn
	if severity == "crit" {
		u, i = b.o.UrgencyCrit, b.o.ImpactCrit
	}
	if u > 0 {
		f["urgency"] = strconv.Itoa(u)
	}
	if i > 0 {
		f["impact"] = strconv.Itoa(i)
	}
	return f, nil
}

// Open creates an incident with correlation_id = the key. When Find last
// found only an incident of the key that it could not use, the
// description names it.
func (b *Backend) Open(ctx context.Context, t ticketing.Ticket) (ticketing.Ref, error) {
	what := "open " + t.Key
	f, err := b.placement(ctx, max(t.Tier, ticketing.L2), t.Severity)
	if err != nil {
		return ticketing.Ref{}, err
	}
	f["short_description"] = shortDesc(t.Title)
	f["description"] = t.Body
	if old, ok := b.prev.Take(t.Key); ok && !strings.Contains(t.Body, old.SysID) {
		f["description"] = strings.TrimRight(t.Body, "\n") + fmt.Sprintf("\n\nEarlier incident of this alert: %s %s (not used again: %s).", old.Number, b.ref(old.SysID, old.Number).URL, old.why)
	}
	f["correlation_id"] = CorrelationID(t.Key)
	f["correlation_display"] = "l2agent"
	if b.o.CallerID != "" {
		id, err := b.sysID(ctx, users, "caller_id", b.o.CallerID)
		if err != nil {
			return ticketing.Ref{}, err
		}
		f["caller_id"] = id
	}
	if b.o.Category != "" {
		f["category"] = b.o.Category
	}
	var got incident
	if err := b.call(ctx, what, http.MethodPost, tablePath, nil, f, &got); err != nil {
		return ticketing.Ref{}, err
	}
	if got.SysID == "" {
		return ticketing.Ref{}, ticketing.Final("api", fmt.Errorf("servicenow %s: answered without a sys_id", what))
	}
	return b.ref(got.SysID, got.Number), nil
}

// Comment adds a work note.
func (b *Backend) Comment(ctx context.Context, r ticketing.Ref, text string) error {
	return b.patch(ctx, "comment on "+r.ID, r, map[string]any{"work_notes": text})
}

// Escalate moves the incident to the tier's assignment group, sets urgency
// and impact and the current title, with a work note, in one request.
func (b *Backend) Escalate(ctx context.Context, r ticketing.Ref, tr ticketing.Tier, t ticketing.Ticket) error {
	f, err := b.placement(ctx, tr, t.Severity)
	if err != nil {
		return err
	}
	note := fmt.Sprintf("l2agent escalated this incident to %s.", tr)
	if t.Body != "" {
		note += "\n\n" + t.Body
	}
	f["work_notes"] = note
	if t.Title != "" {
		f["short_description"] = shortDesc(t.Title)
	}
	return b.patch(ctx, fmt.Sprintf("escalate %s to %s", r.ID, tr), r, f)
}

// Resolve sets the resolve state with close_code and close_notes = text.
func (b *Backend) Resolve(ctx context.Context, r ticketing.Ref, text string) error {
	text = or(text, "l2agent: resolved")
	return b.patch(ctx, "resolve "+r.ID, r, map[string]any{
		"state": strconv.Itoa(b.o.ResolveState), "close_code": b.o.CloseCode, "close_notes": text, "work_notes": text,
	})
}

// Reopen sets the reopen state (In Progress by default, as the incident
// form's Reopen does) with a work note.
func (b *Backend) Reopen(ctx context.Context, r ticketing.Ref, text string) error {
	return b.patch(ctx, "reopen "+r.ID, r, map[string]any{"state": strconv.Itoa(b.o.ReopenState), "work_notes": or(text, "l2agent: reopened")})
}

var sysIDRe = regexp.MustCompile(`^[0-9a-f]{32}$`)

func or(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

func shortDesc(s string) string {
	s = strings.Join(strings.Fields(s), " ")
	if utf8.RuneCountInString(s) <= maxShortDesc {
		return s
	}
	return string([]rune(s)[:maxShortDesc-1]) + "…"
}

// call makes one request and decodes the "result" of the answer into out.
// ServiceNow's error object {"error":{"message","detail"}} is quoted
// instead of the raw answer, and is final even with a 2xx status.
func (b *Backend) call(ctx context.Context, what, method, path string, query url.Values, body, out any) error {
	resp, c, renewed, err := b.send(ctx, what, rest.Request{Method: method, Path: path, Query: query, Body: body})
	if err != nil {
		return err
	}
	if renewed {
		what += " (with a new token)"
	}
	var env struct {
		Result json.RawMessage `json:"result"`
		Error  *struct {
			Message string `json:"message"`
			Detail  string `json:"detail"`
		} `json:"error"`
	}
	jerr := json.Unmarshal(resp.Body, &env)
	msg := resp.Body
	if jerr == nil && env.Error != nil {
		msg = []byte(strings.TrimSuffix(env.Error.Message+": "+env.Error.Detail, ": "))
	}
	if err := rest.CheckStatus("servicenow "+what, resp.Status, resp.Header, msg); err != nil {
		return err
	}
	if jerr == nil && env.Error != nil {
		return ticketing.Final("api", fmt.Errorf("servicenow %s: %s", what, c.Redact(string(msg))))
	}
	if jerr == nil && len(env.Result) > 0 {
		jerr = json.Unmarshal(env.Result, out)
	} else if jerr == nil {
		jerr = errors.New(`no "result"`)
	}
	if jerr != nil {
		return resp.Unexpected("servicenow "+what, jerr)
	}
	return nil
}

// send makes one request with the current credentials. A 401 to a bearer
// token (expired, revoked, or renewed elsewhere) is answered by renewing
// the token and sending the request once more; it is final when there is
// no other token. It returns the answer, the client that got it, and
// whether that was after a renewal.
func (b *Backend) send(ctx context.Context, what string, req rest.Request) (*rest.Response, *rest.Client, bool, error) {
	c, err := b.auth.get(ctx)
	if err != nil {
		return nil, nil, false, fmt.Errorf("servicenow %s: %w", what, err)
	}
	resp, err := c.Send(ctx, what, req)
	if err != nil || resp.Status != http.StatusUnauthorized || !b.auth.renewable() {
		return resp, c, false, err
	}
	renewed, err := b.auth.renew(ctx, c)
	if errors.Is(err, errSameToken) {
		return resp, c, false, nil // the 401 stands
	}
	if err != nil {
		return nil, nil, false, fmt.Errorf("servicenow %s: HTTP 401, and getting a new token failed: %w", what, err)
	}
	resp, err = renewed.Send(ctx, what+" (with a new token)", req)
	return resp, renewed, true, err
}
