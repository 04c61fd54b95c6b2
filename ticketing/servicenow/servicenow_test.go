package servicenow

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/l2agent/l2agent/configs"
	"github.com/l2agent/l2agent/internal/ticketingtest"
	"github.com/l2agent/l2agent/ticketing"
)

const (
	testKey  = `web-7/disk/disk_used_ratio{mountpoint="/var"}`
	testUser = "l2agent"
	testPass = "s3cret"
)

// fakeSN keeps incidents and enforces the Table API contract: auth, JSON
// bodies (the kit), the encoded query grammar (conditions joined by ^,
// operators =, STARTSWITH, LIKE, ENDSWITH, ORDERBYDESC), known fields only,
// close_code and close_notes required to resolve (the default data policy),
// and {"error":{"message","detail"}} on failure.
type fakeSN struct {
	*ticketingtest.Server
	auth  string
	inc   map[string]map[string]any
	order []string
	// ruled are fields a business rule sets back after an update: the
	// change is refused without an error, as ServiceNow does.
	ruled map[string]bool
}

var fields = map[string]bool{"short_description": true, "description": true, "correlation_id": true, "correlation_display": true,
	"assignment_group": true, "urgency": true, "impact": true, "caller_id": true, "category": true, "work_notes": true,
	"state": true, "close_code": true, "close_notes": true}

func newFake(t *testing.T, bearer bool) (*fakeSN, *Backend) {
	t.Helper()
	f := &fakeSN{inc: map[string]map[string]any{}, ruled: map[string]bool{}}
	o := Options{AssignmentGroupL2: "Service Desk", AssignmentGroupL3: "287ebd7da9fe198100f92cc8d1d2154e"}
	o.UrgencyWarn, o.ImpactWarn, o.UrgencyCrit, o.ImpactCrit = 2, 2, 1, 1
	o.CloseCode, o.ResolveState, o.ReopenState = "Solved (Permanently)", 6, 1
	file := filepath.Join(t.TempDir(), "secret")
	if bearer {
		require.NoError(t, os.WriteFile(file, []byte("oauth-token\n"), 0o600))
		o.TokenFile, f.auth = file, ticketingtest.Bearer("oauth-token")
	} else {
		require.NoError(t, os.WriteFile(file, []byte(testPass), 0o600))
		o.User, o.PasswordFile = testUser, file
		f.auth = ticketingtest.Basic(testUser, testPass)
	}
	f.Server = ticketingtest.New(t, ticketingtest.Options{Auth: f.auth, Error: func(w http.ResponseWriter, code int, msg string) {
		snErr(w, code, http.StatusText(code), msg)
	}})
	f.Handle("GET "+tablePath, f.find)
	f.Handle("POST "+tablePath, f.withFields(f.insert))
	f.Handle("PATCH "+tablePath+"/{id}", f.withFields(f.update))
	f.Handle("GET "+tablePath+"/{id}", f.get)
	o.URL = f.URL
	b, err := New("snow", o, 5*time.Second)
	require.NoError(t, err)
	return f, b
}

func snErr(w http.ResponseWriter, code int, msg, detail string) {
	ticketingtest.WriteJSON(w, code, map[string]any{"error": map[string]string{"message": msg, "detail": detail}, "status": "failure"})
}

func result(w http.ResponseWriter, code int, v any) {
	ticketingtest.WriteJSON(w, code, map[string]any{"result": v})
}

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

func (f *fakeSN) find(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	if _, err := match(q.Get("sysparm_query"), nil); err != nil {
		snErr(w, 400, "Invalid query", err.Error())
		return
	}
	var out []any
	for i := len(f.order) - 1; i >= 0; i-- {
		in := f.inc[f.order[i]]
		ok, err := match(q.Get("sysparm_query"), in)
		if err != nil {
			snErr(w, 400, "Invalid query", err.Error())
			return
		}
		if ok {
			out = append(out, map[string]any{"sys_id": in["sys_id"], "number": in["number"], "correlation_id": in["correlation_id"], "state": in["state"]})
		}
	}
	result(w, 200, out)
}

// withFields hands the body to h when every field is a known string field.
func (f *fakeSN) withFields(h func(w http.ResponseWriter, r *http.Request, body map[string]any)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		body := ticketingtest.Received(r).Body
		for k, v := range body {
			if _, str := v.(string); !fields[k] || !str {
				snErr(w, 400, "Invalid field", k)
				return
			}
		}
		h(w, r, body)
	}
}

func (f *fakeSN) insert(w http.ResponseWriter, _ *http.Request, body map[string]any) {
	if body["short_description"] == nil || len(fmt.Sprint(body["correlation_id"])) > 100 {
		snErr(w, 400, "Invalid insert", "short_description missing or correlation_id too long")
		return
	}
	sid := fmt.Sprintf("%032x", len(f.order)+1)
	body["sys_id"], body["number"], body["state"] = sid, fmt.Sprintf("INC%07d", len(f.order)+1), "1"
	delete(body, "work_notes")
	f.inc[sid] = body
	f.order = append(f.order, sid)
	result(w, 201, body)
}

func (f *fakeSN) update(w http.ResponseWriter, r *http.Request, body map[string]any) {
	in := f.inc[r.PathValue("id")]
	if in == nil {
		snErr(w, 404, "No Record found", "Record doesn't exist or ACL restricts the record retrieval")
		return
	}
	if body["state"] == "6" && (body["close_code"] == nil || body["close_notes"] == nil) {
		snErr(w, 403, "Operation Failed", "Data Policy Exception: The following fields are mandatory: Resolution code, Resolution notes")
		return
	}
	for k, v := range body {
		if k == "work_notes" {
			in["notes"] = append(asList(in["notes"]), v)
			continue
		}
		if !f.ruled[k] {
			in[k] = v
		}
	}
	result(w, 200, in)
}

func asList(v any) []any {
	l, _ := v.([]any)
	return l
}

func TestLifecycle(t *testing.T) {
	for _, bearer := range []bool{false, true} {
		t.Run(fmt.Sprint("bearer=", bearer), func(t *testing.T) {
			f, b := newFake(t, bearer)
			ctx := context.Background()
			_, found, err := b.Find(ctx, testKey)
			require.NoError(t, err)
			require.False(t, found)
			// another incident with the same prefix must not match
			_, err = b.Open(ctx, ticketing.Ticket{Key: `web-7/disk/disk_used_ratio{mountpoint="/"}`, Title: "other", Severity: "warn"})
			require.NoError(t, err)

			ref, err := b.Open(ctx, ticketing.Ticket{Key: testKey, Title: "disk full", Body: "details", Severity: "warn", Tier: ticketing.L2})
			require.NoError(t, err)
			in := f.inc[ref.ID]
			require.Equal(t, testKey, in["correlation_id"])
			require.Equal(t, "Service Desk", in["assignment_group"])
			require.Equal(t, "2", in["urgency"])
			require.Equal(t, "2", in["impact"])
			require.Contains(t, ref.URL, "/nav_to.do?uri=incident.do%3Fsys_id%3D"+ref.ID)

			got, found, err := b.Find(ctx, testKey)
			require.NoError(t, err)
			require.True(t, found)
			require.Equal(t, ref, got)

			require.NoError(t, b.Comment(ctx, ref, "still bad"))
			require.NoError(t, b.Escalate(ctx, ref, ticketing.L3, ticketing.Ticket{Key: testKey, Title: "disk full!", Body: "SLA passed", Severity: "crit"}))
			require.Equal(t, "287ebd7da9fe198100f92cc8d1d2154e", in["assignment_group"])
			require.Equal(t, "1", in["urgency"])
			require.Equal(t, "1", in["impact"])
			require.Equal(t, "disk full!", in["short_description"])

			require.NoError(t, b.Resolve(ctx, ref, "recovered"))
			require.Equal(t, "6", in["state"])
			require.Equal(t, "Solved (Permanently)", in["close_code"])
			require.Equal(t, "recovered", in["close_notes"])
			got, found, err = b.Find(ctx, testKey)
			require.NoError(t, err)
			require.True(t, found)
			require.Equal(t, ref.ID, got.ID)
			require.NoError(t, b.Reopen(ctx, ref, "back"))
			require.Equal(t, "1", in["state"])
			require.Len(t, in["notes"], 4)
		})
	}
}

func TestQuery(t *testing.T) {
	require.Equal(t, "correlation_id=a/b{c}^ORDERBYDESCsys_created_on", Query("a/b{c}"))
	require.Equal(t, `correlation_idSTARTSWITHweb-7/disk/disk_used_ratio{mountpoint^correlation_idENDSWITH"/var"}^ORDERBYDESCsys_created_on`, Query(testKey))
	require.Equal(t, "correlation_idSTARTSWITHa^correlation_idLIKEb^correlation_idENDSWITHc^ORDERBYDESCsys_created_on", Query("a^b=c"))
	long := strings.Repeat("x", 150)
	require.Len(t, CorrelationID(long), 100)
	require.NotEqual(t, CorrelationID(long), CorrelationID(long+"y"))
}

func TestLongKeyAndCaret(t *testing.T) {
	_, b := newFake(t, false)
	ctx := context.Background()
	for _, k := range []string{strings.Repeat(`k{a="b"}`, 20), `x^y=z`} {
		ref, err := b.Open(ctx, ticketing.Ticket{Key: k, Title: "t", Severity: "crit"})
		require.NoError(t, err)
		got, found, err := b.Find(ctx, k)
		require.NoError(t, err)
		require.True(t, found, k)
		require.Equal(t, ref.ID, got.ID)
	}
}

func TestErrors(t *testing.T) {
	f, b := newFake(t, false)
	ctx := context.Background()
	f.Inject(ticketingtest.Throttle("2", func(w http.ResponseWriter, _ *http.Request) { snErr(w, 429, "Too Many Requests", "rate limit") }))
	_, _, err := b.Find(ctx, testKey)
	reason, retry, after := ticketing.Classify(err)
	require.True(t, retry)
	require.Equal(t, "http_429", reason)
	require.Equal(t, 2*time.Second, after)

	f.Inject(func(w http.ResponseWriter, _ *http.Request) {
		snErr(w, 400, "Invalid insert", "Field assignment_group: group not found")
	})
	_, err = b.Open(ctx, ticketing.Ticket{Key: testKey, Title: "t"})
	reason, retry, _ = ticketing.Classify(err)
	require.False(t, retry)
	require.Equal(t, "http_4xx", reason)
	require.Contains(t, err.Error(), "Invalid insert: Field assignment_group: group not found")

	// A resolve that the instance answers with success but does not make.
	f.Inject(func(w http.ResponseWriter, _ *http.Request) {
		result(w, 200, map[string]any{"sys_id": strings.Repeat("a", 32), "state": "2"})
	})
	err = b.Resolve(ctx, ticketing.Ref{ID: strings.Repeat("a", 32)}, "x")
	_, retry, _ = ticketing.Classify(err)
	require.False(t, retry)
	require.ErrorContains(t, err, `state is "2", not "6"`)
}

// The fake rejects what ServiceNow rejects.
func TestFakeRejects(t *testing.T) {
	f, _ := newFake(t, false)
	do := func(method, auth, path, body string) int {
		req, _ := http.NewRequest(method, f.URL+path, strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Authorization", auth)
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		resp.Body.Close()
		return resp.StatusCode
	}
	require.Equal(t, 401, do("GET", "Bearer x", tablePath, ""))
	require.Equal(t, 400, do("GET", f.auth, tablePath+"?sysparm_query=correlation_id=a", "")) // no ORDERBY
	require.Equal(t, 400, do("POST", f.auth, tablePath, `{"bogus":"x","short_description":"s"}`))
	require.Equal(t, 201, do("POST", f.auth, tablePath, `{"short_description":"s","correlation_id":"k"}`))
	require.Equal(t, 403, do("PATCH", f.auth, tablePath+"/"+f.order[0], `{"state":"6"}`))
}

func TestConfig(t *testing.T) {
	t.Setenv("SN_PASSWORD", "pw")
	parse := func(block string) (*configs.Config, error) {
		return configs.Parse("agent.yaml", []byte("ticketing:\n  backends:\n    - kind: servicenow\n      servicenow:\n"+block))
	}
	cfg, err := parse("        url: https://x.service-now.com\n        user: l2agent\n        password: ${SN_PASSWORD}\n        assignment_group_l2: Service Desk\n")
	require.NoError(t, err)
	o := cfg.Ticketing.Backends[0].Options.(*Options)
	require.Equal(t, "Solved (Permanently)", o.CloseCode)
	require.Equal(t, 6, o.ResolveState)
	require.Equal(t, "Service Desk", o.AssignmentGroupL3)
	_, err = parse("        url: https://x.service-now.com\n        token_file: /etc/sn-token\n        reopen_state: 2\n")
	require.NoError(t, err)
	_, err = parse("        url: https://x.service-now.com\n")
	require.ErrorContains(t, err, "token")
	_, err = parse("        url: https://x\n        user: u\n        password: ${SN_PASSWORD}\n        token_file: /t\n")
	require.ErrorContains(t, err, "not both")
	_, err = parse("        url: x.service-now.com\n        token_file: /t\n")
	require.ErrorContains(t, err, "want an http:// or https:// URL")
	_, err = parse("        url: https://x\n        password: ${SN_PASSWORD}\n")
	require.ErrorContains(t, err, "user")
	_, err = parse("        url: https://x\n        token_file: /t\n        urgency_crit: 5\n")
	require.ErrorContains(t, err, "urgency_crit")
}
