// Package servicenow is the ServiceNow ticket backend: the Table API on
// incident (https://<instance>/api/now/table/incident).
//
// The alert key is the incident's correlation_id (a String(100): longer keys
// are shortened with a hash). Comments are work notes; tiers are assignment
// groups; urgency and impact follow the severity; resolve and reopen set the
// state field, and the state in ServiceNow's answer is checked, since a
// business rule may refuse the change without an error.
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
	name   string
	base   string
	o      Options
	client *rest.Client
}

var _ ticketing.Ticketer = (*Backend)(nil)

// New returns the backend for one configured instance; o should have had
// its defaults applied. timeout bounds each HTTP request.
func New(name string, o Options, timeout time.Duration) (*Backend, error) {
	if !configs.ValidHTTPURL(o.URL) {
		return nil, fmt.Errorf("servicenow backend %q: url %q: want an http:// or https:// URL", name, o.URL)
	}
	auth, err := rest.BearerOrBasic(
		rest.Secret{Key: "token", Set: o.Token.Ref != "" || o.TokenFile != "", Read: func() (string, error) { return configs.SecretValue(o.Token, o.TokenFile) }},
		"user", o.User,
		rest.Secret{Key: "password", Read: func() (string, error) { return configs.SecretValue(o.Password, o.PasswordFile) }})
	if err != nil {
		return nil, fmt.Errorf("servicenow backend %q: %w", name, err)
	}
	base := strings.TrimRight(o.URL, "/")
	c := rest.New(rest.Config{
		Name:    "servicenow",
		BaseURL: base,
		Header:  map[string]string{"Accept": "application/json"},
		Auth:    auth,
		Timeout: timeout,
	})
	return &Backend{name: name, base: base, o: o, client: c}, nil
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

func (b *Backend) ref(sysID string) ticketing.Ref {
	return ticketing.Ref{ID: sysID, URL: b.base + "/nav_to.do?uri=" + url.QueryEscape("incident.do?sys_id="+sysID)}
}

type incident struct {
	SysID         string `json:"sys_id"`
	Number        string `json:"number"`
	CorrelationID string `json:"correlation_id"`
	State         string `json:"state"`
}

// Find returns the newest incident, in any state, whose correlation_id is
// the key's.
func (b *Backend) Find(ctx context.Context, key string) (ticketing.Ref, bool, error) {
	var res []incident
	err := b.call(ctx, "find "+key, http.MethodGet, tablePath, url.Values{
		"sysparm_query":  {Query(key)},
		"sysparm_fields": {"sys_id,number,correlation_id,state"},
		"sysparm_limit":  {strconv.Itoa(findPageLimit)},
	}, nil, &res)
	if err != nil {
		return ticketing.Ref{}, false, err
	}
	id := CorrelationID(key)
	for _, in := range res {
		if in.CorrelationID == id && in.SysID != "" {
			return b.ref(in.SysID), true, nil
		}
	}
	return ticketing.Ref{}, false, nil
}

// placement is the fields that put an incident of severity at tier t.
func (b *Backend) placement(t ticketing.Tier, severity string) map[string]any {
	f := map[string]any{}
	g := b.o.AssignmentGroupL2
	switch t {
	case ticketing.L3:
		g = or(b.o.AssignmentGroupL3, g)
	case ticketing.L4:
		g = or(b.o.AssignmentGroupL4, or(b.o.AssignmentGroupL3, g))
	}
	if g != "" {
		f["assignment_group"] = g
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
	return f
}

// Open creates an incident with correlation_id = the key.
func (b *Backend) Open(ctx context.Context, t ticketing.Ticket) (ticketing.Ref, error) {
	f := b.placement(max(t.Tier, ticketing.L2), t.Severity)
	f["short_description"] = shortDesc(t.Title)
	f["description"] = t.Body
	f["correlation_id"] = CorrelationID(t.Key)
	f["correlation_display"] = "l2agent"
	if b.o.CallerID != "" {
		f["caller_id"] = b.o.CallerID
	}
	if b.o.Category != "" {
		f["category"] = b.o.Category
	}
	what := "open " + t.Key
	var got incident
	if err := b.call(ctx, what, http.MethodPost, tablePath, nil, f, &got); err != nil {
		return ticketing.Ref{}, err
	}
	if got.SysID == "" {
		return ticketing.Ref{}, ticketing.Final("api", fmt.Errorf("servicenow %s: answered without a sys_id", what))
	}
	return b.ref(got.SysID), nil
}

// Comment adds a work note.
func (b *Backend) Comment(ctx context.Context, r ticketing.Ref, text string) error {
	_, err := b.patch(ctx, "comment on "+r.ID, r, map[string]any{"work_notes": text}, "")
	return err
}

// Escalate moves the incident to the tier's assignment group, sets urgency
// and impact and the current title, with a work note, in one request.
func (b *Backend) Escalate(ctx context.Context, r ticketing.Ref, tr ticketing.Tier, t ticketing.Ticket) error {
	f := b.placement(tr, t.Severity)
	note := fmt.Sprintf("l2agent escalated this incident to %s.", tr)
	if t.Body != "" {
		note += "\n\n" + t.Body
	}
	f["work_notes"] = note
	if t.Title != "" {
		f["short_description"] = shortDesc(t.Title)
	}
	_, err := b.patch(ctx, fmt.Sprintf("escalate %s to %s", r.ID, tr), r, f, "")
	return err
}

// Resolve sets state Resolved with close_code and close_notes = text.
func (b *Backend) Resolve(ctx context.Context, r ticketing.Ref, text string) error {
	st := strconv.Itoa(b.o.ResolveState)
	text = or(text, "l2agent: resolved")
	_, err := b.patch(ctx, "resolve "+r.ID, r, map[string]any{
		"state": st, "close_code": b.o.CloseCode, "close_notes": text, "work_notes": text,
	}, st)
	return err
}

// Reopen sets the reopen state (New or In Progress) with a work note.
func (b *Backend) Reopen(ctx context.Context, r ticketing.Ref, text string) error {
	st := strconv.Itoa(b.o.ReopenState)
	_, err := b.patch(ctx, "reopen "+r.ID, r, map[string]any{"state": st, "work_notes": or(text, "l2agent: reopened")}, st)
	return err
}

var sysIDRe = regexp.MustCompile(`^[0-9a-f]{32}$`)

// patch updates fields; a non-empty state must be the state in the answer.
func (b *Backend) patch(ctx context.Context, what string, r ticketing.Ref, fields map[string]any, state string) (incident, error) {
	var got incident
	if !sysIDRe.MatchString(r.ID) {
		return got, ticketing.Final("bad_ref", fmt.Errorf("servicenow %s: %q is not a sys_id", what, r.ID))
	}
	if err := b.call(ctx, what, http.MethodPatch, tablePath+"/"+r.ID, nil, fields, &got); err != nil {
		return got, err
	}
	if state != "" && got.State != state {
		return got, ticketing.Final("api", fmt.Errorf("servicenow %s: not done: state is %q, not %q (a business rule or data policy refused it)", what, got.State, state))
	}
	return got, nil
}

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
	resp, err := b.client.Send(ctx, what, rest.Request{Method: method, Path: path, Query: query, Body: body})
	if err != nil {
		return err
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
		return ticketing.Final("api", fmt.Errorf("servicenow %s: %s", what, b.client.Redact(string(msg))))
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
