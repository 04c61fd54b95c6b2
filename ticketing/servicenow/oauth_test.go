package servicenow

import (
	"context"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/l2agent/l2agent/internal/rest"
	"github.com/l2agent/l2agent/internal/ticketingtest"
	"github.com/l2agent/l2agent/ticketing"
)

// TestOAuthRenewsBeforeExpiry: the agent gets its token from
// oauth_token.do and a new one before the old expires (30 minutes on the
// instance's clock), so that no request meets a 401; without OAuth it
// would stop working after 30 minutes.
func TestOAuthRenewsBeforeExpiry(t *testing.T) {
	f, b := newFake(t, oauthClient, testOptions())
	ctx := context.Background()
	ref, err := b.Open(ctx, ticketing.Ticket{Key: testKey, Title: "disk full", Severity: "warn"})
	require.NoError(t, err)
	require.Equal(t, []string{"client_credentials"}, f.grants())
	tok := f.Last().Header.Get("Authorization")
	require.Equal(t, "Bearer access-1", tok)

	for i := range 6 { // 3 hours, in 29-minute steps
		f.clock.Add(29 * time.Minute)
		require.NoError(t, b.Comment(ctx, ref, "still bad"), "step %d", i)
	}
	require.Zero(t, f.unauthorized(), "every token renewed before it expired")
	require.Len(t, f.grants(), 7, "one token per 25 minutes of use")
	require.Equal(t, "Bearer access-7", f.Last().Header.Get("Authorization"))
	for _, r := range f.Requests() {
		require.NotContains(t, r.Header.Get("Authorization"), testClientSecret)
	}
}

// TestOAuthRetries401Once: a token revoked (or expired early) gets a 401;
// the agent gets a new token and sends the request once more. A 401 to the
// new token too is final, and so is a refused token request.
func TestOAuthRetries401Once(t *testing.T) {
	f, b := newFake(t, oauthPassword, testOptions())
	ctx := context.Background()
	ref, err := b.Open(ctx, ticketing.Ticket{Key: testKey, Title: "disk full", Severity: "warn"})
	require.NoError(t, err)
	require.Equal(t, []string{"password"}, f.grants())

	f.revoke(false)
	require.NoError(t, b.Comment(ctx, ref, "after a revoke"))
	require.Equal(t, 1, f.unauthorized())
	require.Equal(t, []string{"password", "refresh_token"}, f.grants(), "renewed with the refresh token the instance gave")
	require.Equal(t, []string{"after a revoke"}, f.Texts(ref), "sent once, after the new token")

	f.revoke(true) // the refresh token too: the password grant again
	require.NoError(t, b.Comment(ctx, ref, "after revoking everything"))
	require.Equal(t, []string{"password", "refresh_token", "refresh_token", "password"}, f.grants())

	// Every token refused (a user locked out of the Table API, say).
	f.Inject(func(w http.ResponseWriter, _ *http.Request) {
		snErr(w, http.StatusUnauthorized, "User Not Authenticated", "Required to provide Auth information")
	})
	err = b.Comment(ctx, ref, "x")
	reason, retry, _ := ticketing.Classify(err)
	require.False(t, retry, "a second 401 is final: %v", err)
	require.Equal(t, "http_4xx", reason)
	require.ErrorContains(t, err, "with a new token")
	f.Inject(nil)

	// The token endpoint refuses the client: final, with its answer.
	f.revoke(true)
	f.oauth.secret = "rotated"
	err = b.Comment(ctx, ref, "y")
	reason, retry, _ = ticketing.Classify(err)
	require.False(t, retry)
	require.Equal(t, "http_4xx", reason)
	require.ErrorContains(t, err, "oauth token (grant password): HTTP 401")
	require.ErrorContains(t, err, "access_denied")
	require.NotContains(t, err.Error(), testClientSecret)
	require.NotContains(t, err.Error(), testPass)
}

// TestOAuthRefreshTokenGrant: a refresh token issued to the agent (an
// authorization code flow done once by an admin) gets the access tokens.
func TestOAuthRefreshTokenGrant(t *testing.T) {
	file := filepath.Join(t.TempDir(), "refresh")
	require.NoError(t, os.WriteFile(file, []byte("admin-issued\n"), 0o600))
	o := testOptions()
	f, _ := newFake(t, oauthClient, o)
	f.oauth.refresh["admin-issued"] = true
	o.URL = f.base
	o.OAuth = &OAuth{ClientID: testClientID, ClientSecretFile: filepath.Join(t.TempDir(), "cs"), RefreshTokenFile: file}
	require.NoError(t, os.WriteFile(o.OAuth.ClientSecretFile, []byte(testClientSecret), 0o600))
	o.ApplyDefaults("")
	require.Equal(t, GrantRefreshToken, o.OAuth.Grant)
	b, err := New("snow", o, 5*time.Second)
	require.NoError(t, err)
	b.now = f.clock.Now
	_, found, err := b.Find(context.Background(), testKey)
	require.NoError(t, err)
	require.False(t, found)
	require.Equal(t, []string{"refresh_token"}, f.grants())
}

// TestBearerTokenFileReread: with token_file, a 401 makes the agent read
// the file again (something else renews it); the same token again makes
// the 401 final at once.
func TestBearerTokenFileReread(t *testing.T) {
	f, b := newFake(t, bearerToken, testOptions())
	ctx := context.Background()
	ref, err := b.Open(ctx, ticketing.Ticket{Key: testKey, Title: "disk full", Severity: "warn"})
	require.NoError(t, err)

	f.SetAuth(ticketingtest.Bearer("renewed"))
	err = b.Comment(ctx, ref, "x")
	_, retry, _ := ticketing.Classify(err)
	require.False(t, retry, "the file still holds the refused token")
	require.ErrorContains(t, err, "HTTP 401")

	require.NoError(t, os.WriteFile(b.o.TokenFile, []byte("renewed\n"), 0o600))
	f.Take()
	require.NoError(t, b.Comment(ctx, ref, "y"))
	calls := f.Requests()
	require.Len(t, calls, 2, "refused once, then sent with the token read again")
	require.Equal(t, "Bearer oauth-token", calls[0].Header.Get("Authorization"))
	require.Equal(t, "Bearer renewed", calls[1].Header.Get("Authorization"))
	require.Equal(t, []string{"y"}, f.Texts(ref))
}

// TestOAuthTokenURL: the token endpoint defaults to the instance's
// oauth_token.do; token_url moves it.
func TestOAuthTokenURL(t *testing.T) {
	o := Options{URL: "https://x.service-now.com/", OAuth: &OAuth{ClientID: "id"}}
	a, err := newAuthenticator(&o, rest.Config{Timeout: time.Second}, time.Now)
	require.NoError(t, err)
	require.Equal(t, "https://x.service-now.com/oauth_token.do", a.source.(*oauthSource).url)
	o.OAuth.TokenURL = "https://sso.example.org/token"
	a, err = newAuthenticator(&o, rest.Config{Timeout: time.Second}, time.Now)
	require.NoError(t, err)
	require.True(t, strings.HasSuffix(a.source.(*oauthSource).url, "/token"))
	require.Equal(t, 5*time.Minute, renewalMargin(30*time.Minute))
	require.Equal(t, 12*time.Second, renewalMargin(time.Minute))
}
