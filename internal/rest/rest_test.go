package rest

import (
	"errors"
	"testing"

	"github.com/stretchr/testify/require"
)

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
