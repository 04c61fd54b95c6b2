package servicenow

import (
	"context"
	"net/http"
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

// testOptions are the options of the tests: the L2 group by name, L3 by
// sys_id.
func testOptions() Options {
	return Options{AssignmentGroupL2: "Service Desk", AssignmentGroupL3: groupNetwork}
}

func TestLifecycle(t *testing.T) {
	for name, mode := range map[string]fakeMode{"basic": basicAuth, "bearer": bearerToken, "oauth-client-credentials": oauthClient, "oauth-password": oauthPassword} {
		t.Run(name, func(t *testing.T) {
			f, b := newFake(t, mode, testOptions())
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
			require.Equal(t, groupServiceDesk, in["assignment_group"], "the group given by name is stored as its sys_id")
			require.Equal(t, "2", in["urgency"])
			require.Equal(t, "2", in["impact"])
			require.Contains(t, ref.URL, "/nav_to.do?uri=incident.do%3Fsys_id%3D"+ref.ID)
			require.Equal(t, in["number"], ref.Name, "named by its number, not its sys_id")
			require.Regexp(t, `^INC\d{7}$`, ref.Label())

			got, found, err := b.Find(ctx, testKey)
			require.NoError(t, err)
			require.True(t, found)
			require.Equal(t, ref, got)

			require.NoError(t, b.Comment(ctx, ref, "still bad"))
			require.NoError(t, b.Escalate(ctx, ref, ticketing.L3, ticketing.Ticket{Key: testKey, Title: "disk full!", Body: "SLA passed", Severity: "crit"}))
			require.Equal(t, groupNetwork, in["assignment_group"])
			require.Equal(t, "1", in["urgency"])
			require.Equal(t, "1", in["impact"])
			require.Equal(t, "disk full!", in["short_description"])

			require.NoError(t, b.Resolve(ctx, ref, "recovered"))
			require.Equal(t, "6", in["state"])
			require.Equal(t, "Solution provided", in["close_code"], "a close code of the Utah+ choice list")
			require.True(t, f.isChoice("close_code", in["close_code"]))
			require.Equal(t, "recovered", in["close_notes"])
			got, found, err = b.Find(ctx, testKey)
			require.NoError(t, err)
			require.True(t, found, "resolved just now: still the key's incident")
			require.Equal(t, ref.ID, got.ID)
			require.NoError(t, b.Reopen(ctx, ref, "back"))
			require.Equal(t, "2", in["state"], "reopened to In Progress, as the form's Reopen does")
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
	_, b := newFake(t, basicAuth, testOptions())
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
	f, b := newFake(t, basicAuth, Options{AssignmentGroupL2: groupServiceDesk})
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

	// Basic auth refused: final, the credentials do not change by waiting.
	f.Inject(func(w http.ResponseWriter, _ *http.Request) {
		snErr(w, 401, "User Not Authenticated", "Required to provide Auth information")
	})
	err = b.Comment(ctx, ticketing.Ref{ID: strings.Repeat("a", 32)}, "x")
	reason, retry, _ = ticketing.Classify(err)
	require.False(t, retry)
	require.Equal(t, "http_4xx", reason)
	require.ErrorContains(t, err, "User Not Authenticated")
}

// The fake rejects what ServiceNow rejects.
func TestFakeRejects(t *testing.T) {
	do := func(base, method, auth, path, body string) int {
		req, _ := http.NewRequest(method, base+path, strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		if strings.Contains(path, "oauth_token.do") {
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		}
		req.Header.Set("Authorization", auth)
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		resp.Body.Close()
		return resp.StatusCode
	}
	f, _ := newFake(t, basicAuth, testOptions())
	require.Equal(t, 401, do(f.base, "GET", "Bearer x", tablePath, ""))
	require.Equal(t, 400, do(f.base, "GET", f.auth, tablePath+"?sysparm_query=correlation_id=a", "")) // no ORDERBY
	require.Equal(t, 400, do(f.base, "POST", f.auth, tablePath, `{"bogus":"x","short_description":"s"}`))
	require.Equal(t, 201, do(f.base, "POST", f.auth, tablePath, `{"short_description":"s","correlation_id":"k","assignment_group":"Service Desk"}`))
	require.Equal(t, "Service Desk", f.inc[f.order[0]]["assignment_group"], "a name in a reference field is kept as it is: a reference to nothing")
	require.Equal(t, 403, do(f.base, "PATCH", f.auth, tablePath+"/"+f.order[0], `{"state":"6"}`), "data policy: close_code and close_notes")
	require.Equal(t, 200, do(f.base, "PATCH", f.auth, tablePath+"/"+f.order[0]+"?sysparm_input_display_value=true", `{"assignment_group":"Service Desk","state":"Resolved","close_code":"Solved (Permanently)","close_notes":"n"}`))
	require.Equal(t, groupServiceDesk, f.inc[f.order[0]]["assignment_group"], "display values in")
	require.Equal(t, "6", f.inc[f.order[0]]["state"])
	require.Equal(t, "Solved (Permanently)", f.inc[f.order[0]]["close_code"], "a value outside the choice list is stored as it is")
	require.False(t, f.isChoice("close_code", "Solved (Permanently)"))
	require.Equal(t, 200, do(f.base, "PATCH", f.auth, tablePath+"/"+f.order[0], `{"state":"7"}`))
	require.Equal(t, 403, do(f.base, "PATCH", f.auth, tablePath+"/"+f.order[0], `{"work_notes":"x"}`), "a Closed incident cannot be changed")
	require.Equal(t, 400, do(f.base, "GET", f.auth, "/api/now/table/sys_user_group?sysparm_query=name=a^active=true&sysparm_limit=1", ""))
	f.journalDenied = true
	require.Equal(t, 403, do(f.base, "GET", f.auth, journalPath+"?sysparm_query=element=work_notes&sysparm_fields=sys_id&sysparm_limit=1", ""))

	f, _ = newFake(t, oauthClient, testOptions())
	form := "grant_type=client_credentials&client_id=" + testClientID + "&client_secret="
	require.Equal(t, 401, do(f.base, "POST", "", "/oauth_token.do", form+"wrong"))
	require.Equal(t, 200, do(f.base, "POST", "", "/oauth_token.do", form+testClientSecret))
	f.oauth.ccDisabled = true
	require.Equal(t, 401, do(f.base, "POST", "", "/oauth_token.do", form+testClientSecret), "client_credentials not enabled for inbound")
	require.Equal(t, 200, do(f.base, "GET", "Bearer access-1", "/api/now/table/sys_user_group?sysparm_query=name=a&sysparm_limit=1", ""))
	f.clock.Add(1800 * time.Second)
	require.Equal(t, 401, do(f.base, "GET", "Bearer access-1", "/api/now/table/sys_user_group?sysparm_query=name=a&sysparm_limit=1", ""), "expired")
}

// config parses a servicenow block (indented 8) and returns its options or
// its errors.
func config(t *testing.T, block string) (*Options, error) {
	t.Helper()
	cfg, err := configs.Parse("agent.yaml", []byte("ticketing:\n  backends:\n    - kind: servicenow\n      servicenow:\n"+block))
	if err != nil {
		return nil, err
	}
	return cfg.Ticketing.Backends[0].Options.(*Options), nil
}

func TestConfig(t *testing.T) {
	t.Setenv("SN_PASSWORD", "pw")
	o, err := config(t, "        url: https://x.service-now.com\n        user: l2agent\n        password: ${SN_PASSWORD}\n        assignment_group_l2: Service Desk\n")
	require.NoError(t, err)
	require.Equal(t, "Solution provided", o.CloseCode, "the Utah+ choice list")
	require.Equal(t, 6, o.ResolveState)
	require.Equal(t, 2, o.ReopenState, "In Progress")
	require.Equal(t, 24*time.Hour, o.ReuseResolved.D())
	require.Equal(t, "Service Desk", o.AssignmentGroupL3)
	require.Nil(t, o.OAuth)
	o, err = config(t, "        url: https://x.service-now.com\n        token_file: /etc/sn-token\n        reopen_state: 1\n        close_code: Solved (Permanently)\n        reuse_resolved: 0s\n")
	require.NoError(t, err, "the old close code and New on reopen are still accepted")
	require.Equal(t, "Solved (Permanently)", o.CloseCode)
	require.Equal(t, 1, o.ReopenState)
	require.Zero(t, *o.ReuseResolved, "0: never reuse a resolved incident")
	_, err = config(t, "        url: https://x.service-now.com\n")
	require.ErrorContains(t, err, "token")
	_, err = config(t, "        url: https://x\n        user: u\n        password: ${SN_PASSWORD}\n        token_file: /t\n")
	require.ErrorContains(t, err, "not both")
	_, err = config(t, "        url: x.service-now.com\n        token_file: /t\n")
	require.ErrorContains(t, err, "want an http:// or https:// URL")
	_, err = config(t, "        url: https://x\n        password: ${SN_PASSWORD}\n")
	require.ErrorContains(t, err, "user")
	_, err = config(t, "        url: https://x\n        token_file: /t\n        urgency_crit: 5\n")
	require.ErrorContains(t, err, "urgency_crit")
}

// TestOAuthConfig: the oauth block, its grant chosen by what is set, and
// every mistake at its FILE:LINE:COL.
func TestOAuthConfig(t *testing.T) {
	t.Setenv("SN_PASSWORD", "pw")
	t.Setenv("SN_CLIENT_SECRET", "cs")
	t.Setenv("SN_REFRESH", "rt")
	const head = "        url: https://x.service-now.com\n"
	o, err := config(t, head+"        oauth:\n          client_id: abc\n          client_secret: ${SN_CLIENT_SECRET}\n")
	require.NoError(t, err)
	require.Equal(t, GrantClientCredentials, o.OAuth.Grant)
	o, err = config(t, head+"        user: l2agent\n        password_file: /p\n        oauth:\n          client_id: abc\n          client_secret_file: /cs\n")
	require.NoError(t, err)
	require.Equal(t, GrantPassword, o.OAuth.Grant, "with user and password: the password grant")
	o, err = config(t, head+"        oauth:\n          client_id: abc\n          client_secret: ${SN_CLIENT_SECRET}\n          refresh_token: ${SN_REFRESH}\n")
	require.NoError(t, err)
	require.Equal(t, GrantRefreshToken, o.OAuth.Grant)

	for _, c := range []struct{ block, want string }{
		{"        oauth:\n          client_secret: ${SN_CLIENT_SECRET}\n",
			"agent.yaml:7:11: ticketing.backends[0].servicenow.oauth: client_id is required"},
		{"        oauth:\n          client_id: abc\n",
			"agent.yaml:7:11: ticketing.backends[0].servicenow.oauth: set client_secret (as ${ENV_VAR}) or client_secret_file"},
		{"        oauth:\n          client_id: abc\n          client_secret: ${SN_CLIENT_SECRET}\n          client_secret_file: /cs\n",
			"agent.yaml:8:26: ticketing.backends[0].servicenow.oauth: set client_secret or client_secret_file, not both"},
		{"        oauth:\n          client_id: abc\n          client_secret_file: /cs\n          grant: implicit\n",
			`agent.yaml:9:18: ticketing.backends[0].servicenow.oauth.grant "implicit": want client_credentials, password or refresh_token`},
		{"        oauth:\n          client_id: abc\n          client_secret_file: /cs\n          grant: refresh_token\n",
			"agent.yaml:7:11: ticketing.backends[0].servicenow.oauth: set refresh_token (as ${ENV_VAR}) or refresh_token_file"},
		{"        oauth:\n          client_id: abc\n          client_secret_file: /cs\n          grant: password\n",
			"agent.yaml:9:18: ticketing.backends[0].servicenow.oauth.grant password: set user and password (or password_file) beside oauth"},
		{"        token: ${SN_PASSWORD}\n        oauth:\n          client_id: abc\n          client_secret_file: /cs\n",
			"agent.yaml:8:11: ticketing.backends[0].servicenow: set token (a bearer token obtained elsewhere) or oauth (the agent gets its tokens), not both"},
		{"        password: ${SN_PASSWORD}\n        oauth:\n          client_id: abc\n          client_secret_file: /cs\n",
			"agent.yaml:6:19: ticketing.backends[0].servicenow: user and password are only for the OAuth password grant (ticketing.backends[0].servicenow.oauth.grant is client_credentials)"},
		{"        oauth:\n          client_id: abc\n          client_secret_file: /cs\n          token_url: ftp://x/oauth_token.do\n",
			`agent.yaml:9:22: ticketing.backends[0].servicenow.oauth.token_url "ftp://x/oauth_token.do": want an http:// or https:// URL`},
		{"        oauth:\n          client_id: abc\n          client_secret: literal\n",
			"agent.yaml:8:26: ticketing.backends[0].servicenow.oauth.client_secret: secrets are never written inline"},
	} {
		_, err := config(t, head+c.block)
		require.ErrorContains(t, err, c.want, c.block)
	}
}
