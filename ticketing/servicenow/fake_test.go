package servicenow

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/l2agent/l2agent/internal/testkit"
	"github.com/l2agent/l2agent/internal/ticketingtest"
	"github.com/l2agent/l2agent/ticketing"
)

// fakeSN is a ServiceNow instance as far as the backend uses it, built
// from the Table API reference and the samples in
// ../shared/samples/servicenow (README.md lists what it checks). It
// enforces what ServiceNow enforces and behaves as ServiceNow behaves
// where that is silent:
//
//   - auth: basic, a fixed bearer token, or OAuth (oauth_token.do issues
//     access tokens that expire on the fake's clock; an expired or revoked
//     one gets 401 with the documented error object);
//   - the encoded query grammar the backend uses, sysparm_fields,
//     sysparm_limit, references as {"link","value"} unless
//     sysparm_exclude_reference_link=true, every value a string;
//   - reference fields store what they are sent: a name is kept as it is,
//     a reference to nothing, unless sysparm_input_display_value=true;
//     choice fields store a value outside their choice list (sys_choice)
//     as it is too;
//   - a field ACL (readonly) leaves a field out of an insert or update,
//     answering 200; a business rule may set a field back (ruled) or refuse
//     a state change with 403 or 500 (refuse); the data policy makes
//     close_code and close_notes mandatory in the Resolved state; a Closed
//     or Canceled incident cannot be changed (403);
//   - sys_journal_field holds the work notes (403 when journalDenied).
type fakeSN struct {
	*ticketingtest.Server
	base  string // the instance's URL: the kit's, or the front's with OAuth
	auth  string // the Authorization header without OAuth
	clock *testkit.Clock

	inc     map[string]map[string]any // sys_id → record; "notes" holds the journal
	order   []string
	groups  []map[string]any
	users   []map[string]any
	choices []map[string]string // sys_choice rows of incident

	ruled         map[string]bool // fields a business rule sets back after an update
	readonly      map[string]bool // fields a field ACL does not let the user write
	refuse        map[string]refusal
	failAfter     int // an update is made, then answered with this status (the instance failing after the commit)
	journalDenied bool

	oauth *fakeOAuth // nil: no OAuth
}

// refusal is a business rule refusing to set state to a value.
type refusal struct {
	status int
	msg    string
}

// fakeOAuth is the instance's OAuth provider (System OAuth > Application
// Registry: an endpoint for external clients).
type fakeOAuth struct {
	mu               sync.Mutex
	clientID, secret string
	user, password   string
	life             time.Duration // access token lifespan (1800s by default)
	access           map[string]time.Time
	refresh          map[string]bool
	n                int
	grants           []string // grant_type of each token request
	unauthorized     int      // table requests answered 401
	ccDisabled       bool     // glide.oauth.inbound.client.credential.grant_type.enabled not set
}

const (
	groupServiceDesk = "d625dccec0a8016700a222a0f7900d06"
	groupNetwork     = "287ebd7da9fe198100f92cc8d1d2154e"
	userL2agent      = "6816f79cc0a8016401c5a33be04be441"
	testClientID     = "b3f0c1e2d4a5968778695a4b3c2d1e0f"
	testClientSecret = "cl13nt-s3cret"
)

// fakeMode is how the backend authenticates.
type fakeMode int

const (
	basicAuth fakeMode = iota
	bearerToken
	oauthClient // client_credentials
	oauthPassword
)

// newFake starts a fake instance and returns it with a backend for it,
// configured as o (its url and auth are set here) with the defaults
// applied.
func newFake(t *testing.T, mode fakeMode, o Options) (*fakeSN, *Backend) {
	t.Helper()
	f := &fakeSN{clock: testkit.NewClock("2026-11-25T10:00:00Z"), inc: map[string]map[string]any{},
		ruled: map[string]bool{}, readonly: map[string]bool{}, refuse: map[string]refusal{}}
	f.groups = []map[string]any{
		{"sys_id": groupServiceDesk, "name": "Service Desk", "active": "true"},
		{"sys_id": groupNetwork, "name": "Network", "active": "true"},
		{"sys_id": "8a4dde73c6112278017a6a4baf547aa7", "name": "Software", "active": "true"},
		{"sys_id": "8a5055c9c61122780043563ef53438e3", "name": "Hardware", "active": "true"},
		{"sys_id": "0a52d3dcd7011200f2d224837e6103f2", "name": "Hardware", "active": "false"},
	}
	f.users = []map[string]any{
		{"sys_id": userL2agent, "user_name": "l2agent", "name": "L2 Agent"},
		{"sys_id": "62826bf03710200044e0bfc8bcbe5df1", "user_name": "abel.tuter", "name": "Abel Tuter"},
	}
	f.choices = utahChoices()
	dir := t.TempDir()
	secretFile := func(name, v string) string {
		p := filepath.Join(dir, name)
		require.NoError(t, os.WriteFile(p, []byte(v+"\n"), 0o600))
		return p
	}
	switch mode {
	case basicAuth:
		o.User, o.PasswordFile, f.auth = testUser, secretFile("password", testPass), ticketingtest.Basic(testUser, testPass)
	case bearerToken:
		o.TokenFile, f.auth = secretFile("token", "oauth-token"), ticketingtest.Bearer("oauth-token")
	case oauthClient, oauthPassword:
		f.oauth = &fakeOAuth{clientID: testClientID, secret: testClientSecret, user: testUser, password: testPass,
			life: 1800 * time.Second, access: map[string]time.Time{}, refresh: map[string]bool{}}
		o.OAuth = &OAuth{ClientID: testClientID, ClientSecretFile: secretFile("client-secret", testClientSecret)}
		if mode == oauthPassword {
			o.User, o.PasswordFile = testUser, secretFile("password", testPass)
		}
	}
	f.Server = ticketingtest.New(t, ticketingtest.Options{Auth: f.auth, Error: func(w http.ResponseWriter, code int, msg string) {
		snErr(w, code, http.StatusText(code), msg)
	}})
	f.Handle("GET "+tablePath, f.find)
	f.Handle("POST "+tablePath, f.withFields(f.insert))
	f.Handle("PATCH "+tablePath+"/{id}", f.withFields(f.update))
	f.Handle("GET "+tablePath+"/{id}", f.get)
	f.Handle("GET /api/now/table/sys_user_group", f.records(func() []map[string]any { return f.groups }))
	f.Handle("GET /api/now/table/sys_user", f.records(func() []map[string]any { return f.users }))
	f.Handle("GET /api/now/table/sys_choice", f.choiceList)
	f.Handle("GET "+journalPath, f.journal)
	f.base = f.URL
	if f.oauth != nil {
		f.base = f.front(t)
	}
	o.URL = f.base
	o.ApplyDefaults("")
	b, err := New("snow", o, 5*time.Second)
	require.NoError(t, err)
	b.now = f.clock.Now
	return f, b
}

// utahChoices are the choice lists of incident that the backend sets, as
// a Utah or later instance has them.
func utahChoices() []map[string]string {
	var out []map[string]string
	add := func(element string, pairs ...string) {
		for i := 0; i+1 < len(pairs); i += 2 {
			out = append(out, map[string]string{"name": "incident", "element": element, "value": pairs[i], "label": pairs[i+1], "language": "en", "inactive": "false"})
		}
	}
	add("state", "1", "New", "2", "In Progress", "3", "On Hold", "6", "Resolved", "7", "Closed", "8", "Canceled")
	for _, c := range []string{"Duplicate", "Known error", "No resolution provided", "Resolved by caller", "Resolved by change",
		"Resolved by problem", "Resolved by request", "Solution provided", "Workaround provided", "User error"} {
		add("close_code", c, c)
	}
	add("category", "inquiry", "Inquiry / Help", "software", "Software", "hardware", "Hardware", "network", "Network", "database", "Database")
	return out
}

// front serves the instance's URL with OAuth: oauth_token.do, and every
// other request, once its bearer token is found valid, through to the kit.
// (The kit takes JSON bodies only; the token endpoint takes a form.)
func (f *fakeSN) front(t *testing.T) string {
	target, err := url.Parse(f.URL)
	require.NoError(t, err)
	proxy := httputil.NewSingleHostReverseProxy(target)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/oauth_token.do" {
			f.token(w, r)
			return
		}
		a := f.oauth
		a.mu.Lock()
		exp, ok := a.access[strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer ")]
		valid := ok && strings.HasPrefix(r.Header.Get("Authorization"), "Bearer ") && f.clock.Now().Before(exp)
		if !valid {
			a.unauthorized++
		}
		a.mu.Unlock()
		if !valid {
			snErr(w, http.StatusUnauthorized, "User Not Authenticated", "Required to provide Auth information")
			return
		}
		proxy.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	return srv.URL
}

// token is POST /oauth_token.do: a form with grant_type, client_id,
// client_secret and the grant's own fields; the answer as
// oauth-token.response.json, or 401 {"error_description":"access_denied",
// "error":"server_error"} as the instance answers a refused request.
func (f *fakeSN) token(w http.ResponseWriter, r *http.Request) {
	a := f.oauth
	a.mu.Lock()
	defer a.mu.Unlock()
	deny := func() {
		ticketingtest.WriteJSON(w, http.StatusUnauthorized, map[string]string{"error_description": "access_denied", "error": "server_error"})
	}
	if r.Method != http.MethodPost || r.Header.Get("Content-Type") != "application/x-www-form-urlencoded" || r.ParseForm() != nil {
		ticketingtest.WriteJSON(w, http.StatusBadRequest, map[string]string{"error_description": "want a POSTed form", "error": "invalid_request"})
		return
	}
	grant := r.PostForm.Get("grant_type")
	a.grants = append(a.grants, grant)
	if r.PostForm.Get("client_id") != a.clientID || r.PostForm.Get("client_secret") != a.secret {
		deny()
		return
	}
	withRefresh := true
	switch grant {
	case GrantClientCredentials:
		withRefresh = false // RFC 6749 4.4.3
		if a.ccDisabled {
			deny()
			return
		}
	case GrantPassword:
		if r.PostForm.Get("username") != a.user || r.PostForm.Get("password") != a.password {
			deny()
			return
		}
	case GrantRefreshToken:
		if !a.refresh[r.PostForm.Get("refresh_token")] {
			deny()
			return
		}
	default:
		ticketingtest.WriteJSON(w, http.StatusBadRequest, map[string]string{"error_description": "unsupported grant_type", "error": "unsupported_grant_type"})
		return
	}
	a.n++
	ans := map[string]any{"access_token": fmt.Sprintf("access-%d", a.n), "scope": "useraccount", "token_type": "Bearer", "expires_in": int(a.life.Seconds()) - 1}
	a.access[ans["access_token"].(string)] = f.clock.Now().Add(a.life)
	if withRefresh {
		rt := r.PostForm.Get("refresh_token")
		if rt == "" {
			rt = fmt.Sprintf("refresh-%d", a.n)
			a.refresh[rt] = true
		}
		ans["refresh_token"] = rt
	}
	ticketingtest.WriteJSON(w, http.StatusOK, ans)
}

// revoke makes every access token invalid (System OAuth > Manage Tokens >
// Revoke Access), or with refresh too, every refresh token.
func (f *fakeSN) revoke(refresh bool) {
	f.oauth.mu.Lock()
	defer f.oauth.mu.Unlock()
	clear(f.oauth.access)
	if refresh {
		clear(f.oauth.refresh)
	}
}

func snErr(w http.ResponseWriter, code int, msg, detail string) {
	ticketingtest.WriteJSON(w, code, map[string]any{"error": map[string]string{"message": msg, "detail": detail}, "status": "failure"})
}

func result(w http.ResponseWriter, code int, v any) {
	ticketingtest.WriteJSON(w, code, map[string]any{"result": v})
}

// incident fields the fake knows; the references point to these tables.
var (
	fields = map[string]bool{"short_description": true, "description": true, "correlation_id": true, "correlation_display": true,
		"assignment_group": true, "urgency": true, "impact": true, "caller_id": true, "category": true, "work_notes": true,
		"state": true, "close_code": true, "close_notes": true}
	references = map[string]string{"assignment_group": "sys_user_group", "caller_id": "sys_user"}
)

// match evaluates an encoded query on one incident; a bad term is an error.
func match(q string, in map[string]any) (bool, error) {
	terms := strings.Split(q, "^")
	if terms[len(terms)-1] != "ORDERBYDESCsys_created_on" {
		return false, fmt.Errorf("want ORDERBYDESCsys_created_on last")
	}
	ok := true
	for _, t := range terms[:len(terms)-1] {
		v := fmt.Sprint(in["correlation_id"])
		switch {
		case strings.HasPrefix(t, "correlation_idSTARTSWITH"):
			ok = ok && strings.HasPrefix(v, strings.TrimPrefix(t, "correlation_idSTARTSWITH"))
		case strings.HasPrefix(t, "correlation_idENDSWITH"):
			ok = ok && strings.HasSuffix(v, strings.TrimPrefix(t, "correlation_idENDSWITH"))
		case strings.HasPrefix(t, "correlation_idLIKE"):
			ok = ok && strings.Contains(v, strings.TrimPrefix(t, "correlation_idLIKE"))
		case strings.HasPrefix(t, "correlation_id="):
			ok = ok && v == strings.TrimPrefix(t, "correlation_id=")
		default:
			return false, fmt.Errorf("unsupported term %q", t)
		}
	}
	return ok, nil
}

// view is record as the Table API answers it: only the fields of
// sysparm_fields when it names some (a field never set reads ""),
// references as {"link","value"} unless sysparm_exclude_reference_link.
func (f *fakeSN) view(r *http.Request, record map[string]any) map[string]any {
	q := r.URL.Query()
	want := strings.Split(q.Get("sysparm_fields"), ",")
	out := map[string]any{}
	for k, v := range record {
		if k != "notes" && (want[0] == "" || slices.Contains(want, k)) {
			out[k] = v
		}
	}
	for _, k := range want {
		if _, ok := out[k]; !ok && k != "" {
			out[k] = ""
		}
	}
	for k, table := range references {
		if v, _ := out[k].(string); v != "" && q.Get("sysparm_exclude_reference_link") != "true" {
			out[k] = map[string]string{"link": f.base + "/api/now/table/" + table + "/" + v, "value": v}
		}
	}
	return out
}

func (f *fakeSN) find(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	if _, err := match(q.Get("sysparm_query"), nil); err != nil {
		snErr(w, 400, "Invalid query", err.Error())
		return
	}
	out := []any{}
	for i := len(f.order) - 1; i >= 0; i-- {
		in := f.inc[f.order[i]]
		if ok, _ := match(q.Get("sysparm_query"), in); ok {
			out = append(out, f.view(r, in))
		}
	}
	result(w, 200, out)
}

// get answers GET /api/now/table/incident/{sys_id}: {"result": record},
// or 404 with the error object.
func (f *fakeSN) get(w http.ResponseWriter, r *http.Request) {
	in := f.inc[r.PathValue("id")]
	if in == nil {
		snErr(w, 404, "No Record found", "Record doesn't exist or ACL restricts the record retrieval")
		return
	}
	result(w, 200, f.view(r, in))
}

// withFields hands the body to h when every field is a known string field,
// after taking display values in (sysparm_input_display_value=true) and
// leaving out what the user may not write.
func (f *fakeSN) withFields(h func(w http.ResponseWriter, r *http.Request, body map[string]any)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		body := ticketingtest.Received(r).Body
		for k, v := range body {
			if _, str := v.(string); !fields[k] || !str {
				snErr(w, 400, "Invalid field", k)
				return
			}
			if r.URL.Query().Get("sysparm_input_display_value") == "true" {
				body[k] = f.actual(k, v.(string))
			}
			if f.readonly[k] {
				delete(body, k)
			}
		}
		h(w, r, body)
	}
}

// actual is the value stored for display value v of field k: a
// reference's sys_id, a choice's value; v as it is when nothing matches.
func (f *fakeSN) actual(k, v string) string {
	rows, by := f.groups, "name"
	switch {
	case k == "caller_id":
		rows = f.users
	case k == "assignment_group":
	default:
		for _, c := range f.choices {
			if c["element"] == k && c["label"] == v {
				return c["value"]
			}
		}
		return v
	}
	for _, r := range rows {
		if r[by] == v {
			return r["sys_id"].(string)
		}
	}
	return v
}

func (f *fakeSN) insert(w http.ResponseWriter, r *http.Request, body map[string]any) {
	if body["short_description"] == nil || len(fmt.Sprint(body["correlation_id"])) > 100 {
		snErr(w, 400, "Invalid insert", "short_description missing or correlation_id too long")
		return
	}
	sid := fmt.Sprintf("%032x", len(f.order)+1)
	now := f.clock.Now().UTC().Format(time.DateTime)
	body["sys_id"], body["number"], body["state"], body["sys_created_on"] = sid, fmt.Sprintf("INC%07d", len(f.order)+1), "1", now
	if n, ok := body["work_notes"]; ok {
		body["notes"] = []any{n}
	}
	delete(body, "work_notes")
	f.inc[sid] = body
	f.order = append(f.order, sid)
	w.Header().Set("Location", f.base+tablePath+"/"+sid)
	result(w, 201, f.view(r, body))
}

func (f *fakeSN) update(w http.ResponseWriter, r *http.Request, body map[string]any) {
	in := f.inc[r.PathValue("id")]
	if in == nil {
		snErr(w, 404, "No Record found", "Record doesn't exist or ACL restricts the record retrieval")
		return
	}
	if in["state"] == "7" || in["state"] == "8" {
		snErr(w, 403, "Operation Failed", "ACL Exception Update Failed due to security constraints")
		return
	}
	st, _ := body["state"].(string)
	if rf, ok := f.refuse[st]; ok && st != "" {
		snErr(w, rf.status, "Operation Failed", rf.msg)
		return
	}
	merged := func(k string) string {
		v, ok := body[k]
		if !ok {
			v = in[k]
		}
		s, _ := v.(string)
		return s
	}
	if st == "6" && (merged("close_code") == "" || merged("close_notes") == "") {
		snErr(w, 403, "Operation Failed", "Data Policy Exception: The following fields are mandatory: Resolution code, Resolution notes")
		return
	}
	for k, v := range body {
		switch {
		case k == "work_notes":
			in["notes"] = append(asList(in["notes"]), v)
		case !f.ruled[k]:
			in[k] = v
		}
	}
	if st != "" && !f.ruled["state"] {
		switch st {
		case "6", "7":
			if in["resolved_at"] == nil || in["resolved_at"] == "" {
				in["resolved_at"] = f.clock.Now().UTC().Format(time.DateTime)
			}
		default:
			in["resolved_at"] = ""
		}
	}
	if f.failAfter != 0 {
		snErr(w, f.failAfter, "Internal Server Error", "the transaction failed after the update")
		return
	}
	result(w, 200, f.view(r, in))
}

func asList(v any) []any {
	l, _ := v.([]any)
	return l
}

// records serves a table of named records (sys_user_group, sys_user): a
// query of field=value terms joined by ^OR, sysparm_fields, sysparm_limit.
func (f *fakeSN) records(rows func() []map[string]any) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		if q.Get("sysparm_limit") == "" {
			snErr(w, 400, "Invalid request", "want a sysparm_limit")
			return
		}
		out := []any{}
		for _, row := range rows() {
			ok := false
			for _, term := range strings.Split(q.Get("sysparm_query"), "^OR") {
				k, v, found := strings.Cut(term, "=")
				if !found || strings.Contains(term, "^") {
					snErr(w, 400, "Invalid query", term)
					return
				}
				if _, known := row[k]; !known {
					snErr(w, 400, "Invalid query", "unknown field "+k)
					return
				}
				ok = ok || row[k] == v
			}
			if ok {
				out = append(out, f.view(r, row))
			}
		}
		result(w, 200, out)
	}
}

// choiceList serves sys_choice: nameIN…, elementIN… and inactive=false
// terms joined by ^.
func (f *fakeSN) choiceList(w http.ResponseWriter, r *http.Request) {
	var names, elements []string
	for _, term := range strings.Split(r.URL.Query().Get("sysparm_query"), "^") {
		switch {
		case strings.HasPrefix(term, "nameIN"):
			names = strings.Split(strings.TrimPrefix(term, "nameIN"), ",")
		case strings.HasPrefix(term, "elementIN"):
			elements = strings.Split(strings.TrimPrefix(term, "elementIN"), ",")
		case term == "inactive=false":
		default:
			snErr(w, 400, "Invalid query", term)
			return
		}
	}
	out := []any{}
	for _, c := range f.choices {
		if slices.Contains(names, c["name"]) && slices.Contains(elements, c["element"]) {
			out = append(out, map[string]string{"element": c["element"], "value": c["value"], "label": c["label"]})
		}
	}
	result(w, 200, out)
}

// journal serves sys_journal_field from the work notes the fake keeps: an
// encoded query of element_id=, element= and valueLIKE (contains) terms,
// sysparm_fields and sysparm_limit; journalDenied answers 403 as an ACL
// does.
func (f *fakeSN) journal(w http.ResponseWriter, r *http.Request) {
	if f.journalDenied {
		snErr(w, http.StatusForbidden, "User Not Authorized", "ACL restricts the record retrieval")
		return
	}
	q := r.URL.Query()
	var id, element, like string
	for _, term := range strings.Split(q.Get("sysparm_query"), "^") {
		switch {
		case strings.HasPrefix(term, "element_id="):
			id = strings.TrimPrefix(term, "element_id=")
		case strings.HasPrefix(term, "element="):
			element = strings.TrimPrefix(term, "element=")
		case strings.HasPrefix(term, "valueLIKE"):
			like = strings.TrimPrefix(term, "valueLIKE")
		default:
			snErr(w, http.StatusBadRequest, "Invalid query", term)
			return
		}
	}
	if q.Get("sysparm_limit") == "" || !strings.HasPrefix(q.Get("sysparm_fields"), "sys_id") {
		snErr(w, http.StatusBadRequest, "Invalid request", "want sysparm_fields sys_id,… and a limit")
		return
	}
	out := []any{}
	for sid, in := range f.inc {
		if id != "" && sid != id || element != "work_notes" {
			continue
		}
		for i, n := range asList(in["notes"]) {
			if s := n.(string); strings.Contains(s, like) {
				out = append(out, map[string]any{"sys_id": fmt.Sprintf("%s%04d", sid[:28], i), "value": s})
			}
		}
	}
	result(w, http.StatusOK, out)
}

// Tickets counts the incidents whose correlation_id is the key's.
func (f *fakeSN) Tickets(key string) int {
	n := 0
	for _, in := range f.inc {
		if in["correlation_id"] == CorrelationID(key) {
			n++
		}
	}
	return n
}

// Texts are the work notes of incident r, oldest first.
func (f *fakeSN) Texts(r ticketing.Ref) []string {
	var out []string
	for _, n := range asList(f.inc[r.ID]["notes"]) {
		out = append(out, n.(string))
	}
	return out
}

// isChoice reports whether v is a value of the choice list of incident
// field element.
func (f *fakeSN) isChoice(element string, v any) bool {
	for _, c := range f.choices {
		if c["element"] == element && c["value"] == v {
			return true
		}
	}
	return false
}

// grants is the grant_type of each token request so far.
func (f *fakeSN) grants() []string {
	f.oauth.mu.Lock()
	defer f.oauth.mu.Unlock()
	return slices.Clone(f.oauth.grants)
}

// unauthorized is how many table requests got 401.
func (f *fakeSN) unauthorized() int {
	f.oauth.mu.Lock()
	defer f.oauth.mu.Unlock()
	return f.oauth.unauthorized
}
