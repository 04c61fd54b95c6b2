package rest

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/l2agent/l2agent/internal/version"
)

// TestUserAgent: every request says it comes from the agent, in its
// version, not from resty.
func TestUserAgent(t *testing.T) {
	var (
		mu  sync.Mutex
		got []string
	)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		got = append(got, r.Header.Get("User-Agent"))
	}))
	defer srv.Close()
	for _, c := range []Config{{}, {BaseURL: srv.URL, Header: map[string]string{"Accept": "application/json"}, Auth: Bearer("t")}} {
		path := srv.URL + "/x"
		if c.BaseURL != "" {
			path = "/x"
		}
		_, err := New(c).Send(context.Background(), "test", Request{Method: http.MethodPost, Path: path, Body: map[string]int{"a": 1}})
		require.NoError(t, err)
	}
	mu.Lock()
	defer mu.Unlock()
	require.Equal(t, []string{"l2agent/" + version.Get(), "l2agent/" + version.Get()}, got)
}

func TestBearerOrBasic(t *testing.T) {
	value := func(v string) func() (string, error) { return func() (string, error) { return v, nil } }
	unreadable := func() (string, error) { return "", errors.New("open /etc/l2agent/pw: permission denied") }
	unread := func() (string, error) { t.Error("a credential that was not chosen was read"); return "", nil }

	for _, tc := range []struct {
		name            string
		token, password Secret
		userKey, user   string
		want            Auth
		err             string
	}{
		{name: "token given: bearer, the password is not read",
			token: Secret{Key: "pat", Set: true, Read: value("t0k")}, userKey: "email", user: "bot", password: Secret{Key: "token", Read: unread},
			want: Bearer("t0k")},
		{name: "no token: basic",
			token: Secret{Key: "pat", Read: unread}, userKey: "email", user: "bot", password: Secret{Key: "token", Read: value("pw")},
			want: Basic("bot", "pw")},
		{name: "token given but empty",
			token: Secret{Key: "token", Set: true, Read: value("")}, userKey: "user", user: "bot", password: Secret{Key: "password", Read: unread},
			err: "token: empty or unreadable: <nil>"},
		{name: "token given but unreadable",
			token: Secret{Key: "pat", Set: true, Read: unreadable}, userKey: "email", password: Secret{Key: "token", Read: unread},
			err: "pat: empty or unreadable: open /etc/l2agent/pw: permission denied"},
		{name: "no user",
			token: Secret{Key: "token", Read: unread}, userKey: "user", password: Secret{Key: "password", Read: value("pw")},
			err: "want user + password, or token (<nil>)"},
		{name: "password unreadable",
			token: Secret{Key: "token", Read: unread}, userKey: "user", user: "bot", password: Secret{Key: "password", Read: unreadable},
			err: "want user + password, or token (open /etc/l2agent/pw: permission denied)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := BearerOrBasic(tc.token, tc.userKey, tc.user, tc.password)
			if tc.err != "" {
				require.EqualError(t, err, tc.err)
				return
			}
			require.NoError(t, err)
			require.Equal(t, tc.want, got)
		})
	}
}
