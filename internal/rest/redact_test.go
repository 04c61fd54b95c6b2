package rest

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// echoServer answers every request with status and a body quoting the
// request: its Authorization header, its query and body, and the secret in
// the forms a server may use (as it is, URL- and JSON-escaped).
func echoServer(t *testing.T, status int, secret string) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		js, _ := json.Marshal(map[string]string{"authorization": r.Header.Get("Authorization"), "token": secret})
		w.WriteHeader(status)
		fmt.Fprintf(w, "denied: Authorization: %s\ntoken=%s query=%s escaped=%s\nbody=%s\n%s",
			r.Header.Get("Authorization"), secret, r.URL.RawQuery, url.QueryEscape(secret), body, js)
	}))
	t.Cleanup(srv.Close)
	return srv
}

// requireHidden fails if any form of the secret is in s, and requires the
// marker, so that a test whose server echoed nothing cannot pass.
func requireHidden(t *testing.T, s string, secrets ...string) {
	t.Helper()
	require.Contains(t, s, Redacted, "the echoed credential is replaced")
	for _, sec := range secrets {
		for _, form := range []string{sec, url.QueryEscape(sec), strings.Trim(string(must(json.Marshal(sec))), `"`)} {
			require.NotContains(t, s, form)
		}
	}
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

// TestErrorsHideCredentials: a server that echoes the request's credentials
// in an error answer (4xx, 5xx, an unreadable 2xx) never gets them into the
// error: not the token, not the password, not the basic-auth base64.
func TestErrorsHideCredentials(t *testing.T) {
	const token = `tok-3f9a<&>"q/u+x=`
	const password = `pa ss:w&rd/"é`
	basic := base64.StdEncoding.EncodeToString([]byte("l2agent:" + password))
	for _, tc := range []struct {
		name    string
		auth    Auth
		extra   []string
		secrets []string
	}{
		{"rt token", Token("token", token), nil, []string{token}},
		{"bearer", Bearer(token), nil, []string{token}},
		{"basic", Basic("l2agent", password), nil, []string{password, basic, strings.TrimRight(basic, "=")}},
		{"routing key in the body", Auth{}, []string{token}, []string{token}},
	} {
		for _, status := range []int{400, 401, 403, 429, 500, 503, 200} {
			t.Run(fmt.Sprintf("%s/%d", tc.name, status), func(t *testing.T) {
				srv := echoServer(t, status, tc.secrets[0])
				c := New(Config{Name: "x", BaseURL: srv.URL, Auth: tc.auth, Secrets: tc.extra})
				var out struct{ ID int }
				body := map[string]string{"routing_key": token}
				err := c.Do(context.Background(), "open", Request{Method: http.MethodPost, Path: "/t", Query: url.Values{"key": {token}}, Body: body}, &out)
				require.Error(t, err)
				var e *Error
				require.ErrorAs(t, err, &e)
				requireHidden(t, err.Error(), tc.secrets...)
				if status == 200 {
					require.Contains(t, err.Error(), "unexpected answer")
				} else {
					require.Contains(t, err.Error(), fmt.Sprintf("HTTP %d", status))
				}
			})
		}
	}
}

// TestSendHidesCredentialsInFailureBodies: what a backend reads of a failed
// answer itself (an error object) has the credentials hidden; a 2xx answer
// is data and stays as it is, and Client.Redact hides them when quoted.
func TestSendHidesCredentialsInFailureBodies(t *testing.T) {
	const token = "s3cr3t-token-value"
	for _, status := range []int{401, 502} {
		c := New(Config{BaseURL: echoServer(t, status, token).URL, Auth: Bearer(token)})
		resp, err := c.Send(context.Background(), "x", Request{Method: http.MethodGet, Path: "/"})
		require.NoError(t, err)
		requireHidden(t, string(resp.Body), token)
	}
	c := New(Config{BaseURL: echoServer(t, 200, token).URL, Auth: Bearer(token)})
	resp, err := c.Send(context.Background(), "x", Request{Method: http.MethodGet, Path: "/"})
	require.NoError(t, err)
	require.Contains(t, string(resp.Body), token, "a 2xx answer is data")
	requireHidden(t, c.Redact(string(resp.Body)), token)
}

func TestRedactor(t *testing.T) {
	r := NewRedactor(Basic("u", "pw-42"))
	require.Equal(t, "Basic <secret> and <secret> and %<secret>", r.String("Basic "+base64.StdEncoding.EncodeToString([]byte("u:pw-42"))+" and pw-42 and %pw-42"))
	require.Equal(t, "no secret here", r.String("no secret here"))
	require.Equal(t, "pw-42", Redactor{}.String("pw-42"), "the zero value hides nothing")
	require.Equal(t, "pw-42", NewRedactor(Auth{}).String("pw-42"))
	b := []byte("x pw-42")
	require.Equal(t, "x <secret>", string(r.Bytes(b)))
	require.Equal(t, "x pw-42", string(b), "the input is not changed")
}
