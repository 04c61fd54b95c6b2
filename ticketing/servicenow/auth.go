package servicenow

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/l2agent/l2agent/configs"
	"github.com/l2agent/l2agent/internal/rest"
)

// authenticator gives each request a client that authenticates it: basic
// auth (fixed), a bearer token from the config (read again after a 401, as
// something else may renew the file), or an OAuth access token that it gets
// from the instance and renews before it expires and after a 401.
//
// A client is built per token, so that its Redactor hides the token in
// quoted answers as it hides every other credential.
type authenticator struct {
	cfg    rest.Config // of every client, but its Auth
	now    func() time.Time
	source tokenSource // nil: cfg.Auth is fixed (basic)

	mu      sync.Mutex // one renewal at a time
	client  *rest.Client
	token   string
	expires time.Time // zero: unknown (a token from the config)
	renewAt time.Time // zero: only after a 401
}

// tokenSource gets a bearer token and how long it lives (0: unknown).
type tokenSource interface {
	fetch(ctx context.Context) (token string, life time.Duration, err error)
}

// errSameToken: renewing gave the token that was refused.
var errSameToken = errors.New("no new token to try")

// renewalMargin is how long before its expiry a token is renewed: a fifth
// of its life, at most 5 minutes (ServiceNow's tokens live 30 minutes by
// default: renewed after 25).
func renewalMargin(life time.Duration) time.Duration { return min(life/5, 5*time.Minute) }

// get returns the client of the current token, getting a new token first
// when there is none or it is due for renewal. A failed renewal of a token
// that has not expired yet leaves it in use.
func (a *authenticator) get(ctx context.Context) (*rest.Client, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.client != nil && (a.source == nil || a.renewAt.IsZero() || a.now().Before(a.renewAt)) {
		return a.client, nil
	}
	if err := a.renewLocked(ctx); err != nil {
		if a.client != nil && a.now().Before(a.expires) {
			return a.client, nil
		}
		return nil, err
	}
	return a.client, nil
}

// renewable reports whether a 401 can be answered with a new token.
func (a *authenticator) renewable() bool { return a.source != nil }

// renew replaces the token of used, which was refused (401), unless it was
// replaced already. errSameToken: the source has no other token.
func (a *authenticator) renew(ctx context.Context, used *rest.Client) (*rest.Client, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.client != used && a.client != nil {
		return a.client, nil
	}
	old := a.token
	if err := a.renewLocked(ctx); err != nil {
		return nil, err
	}
	if a.token == old {
		return nil, errSameToken
	}
	return a.client, nil
}

func (a *authenticator) renewLocked(ctx context.Context) error {
	tok, life, err := a.source.fetch(ctx)
	if err != nil {
		return err
	}
	now := a.now()
	a.token, a.expires, a.renewAt = tok, time.Time{}, time.Time{}
	if life > 0 {
		a.expires, a.renewAt = now.Add(life), now.Add(life-renewalMargin(life))
	}
	cfg := a.cfg
	cfg.Auth = rest.Bearer(tok)
	a.client = rest.New(cfg)
	return nil
}

// fileToken is a bearer token given in the config (token or token_file).
type fileToken struct{ o *Options }

func (f fileToken) fetch(context.Context) (string, time.Duration, error) {
	tok, err := configs.SecretValue(f.o.Token, f.o.TokenFile)
	if err == nil && tok == "" {
		err = errors.New("empty")
	}
	if err != nil {
		return "", 0, rest.Final("config", fmt.Errorf("token: empty or unreadable: %w", err))
	}
	return tok, 0, nil
}

// oauthSource gets access tokens from the instance's token endpoint
// (oauth_token.do) with the configured grant; after a password or
// refresh_token grant, the refresh token the instance gave renews them,
// and the grant is used again when the refresh token is refused.
type oauthSource struct {
	o       *Options
	url     string
	http    *http.Client
	header  map[string]string
	refresh string // the refresh token the instance gave last
}

// tokenAnswer is the token endpoint's answer (RFC 6749 5.1).
type tokenAnswer struct {
	AccessToken  string          `json:"access_token"`
	RefreshToken string          `json:"refresh_token"`
	TokenType    string          `json:"token_type"`
	ExpiresIn    json.RawMessage `json:"expires_in"` // a number; some proxies quote it
}

func (s *oauthSource) fetch(ctx context.Context) (string, time.Duration, error) {
	if s.refresh != "" {
		tok, life, err := s.grant(ctx, GrantRefreshToken, s.refresh)
		var re *rest.Error
		if err == nil || !errors.As(err, &re) || re.Retryable {
			return tok, life, err
		}
		s.refresh = "" // refused (expired or revoked): the configured grant again
	}
	refresh := ""
	if s.o.OAuth.Grant == GrantRefreshToken {
		var err error
		if refresh, err = configs.SecretValue(s.o.OAuth.RefreshToken, s.o.OAuth.RefreshTokenFile); err != nil {
			return "", 0, rest.Final("config", fmt.Errorf("servicenow oauth: refresh_token: %w", err))
		}
	}
	return s.grant(ctx, s.o.OAuth.Grant, refresh)
}

// grant makes one token request.
func (s *oauthSource) grant(ctx context.Context, grant, refresh string) (string, time.Duration, error) {
	what := "servicenow oauth token (grant " + grant + ")"
	secret, err := configs.SecretValue(s.o.OAuth.ClientSecret, s.o.OAuth.ClientSecretFile)
	if err != nil {
		return "", 0, rest.Final("config", fmt.Errorf("%s: client_secret: %w", what, err))
	}
	form := url.Values{"grant_type": {grant}, "client_id": {s.o.OAuth.ClientID}, "client_secret": {secret}}
	secrets := []string{secret, refresh}
	switch grant {
	case GrantRefreshToken:
		form.Set("refresh_token", refresh)
	case GrantPassword:
		pw, err := configs.SecretValue(s.o.Password, s.o.PasswordFile)
		if err != nil {
			return "", 0, rest.Final("config", fmt.Errorf("%s: password: %w", what, err))
		}
		form.Set("username", s.o.User)
		form.Set("password", pw)
		secrets = append(secrets, pw)
	}
	body, err := s.post(ctx, what, form, rest.NewRedactor(rest.Auth{}, secrets...))
	if err != nil {
		return "", 0, err
	}
	var ans tokenAnswer
	if err := json.Unmarshal(body, &ans); err != nil || ans.AccessToken == "" {
		return "", 0, rest.Final("api", fmt.Errorf("%s: an answer without access_token: %s", what, rest.Snippet(rest.NewRedactor(rest.Auth{}, secrets...).Bytes(body))))
	}
	if ans.TokenType != "" && !strings.EqualFold(ans.TokenType, "bearer") {
		return "", 0, rest.Final("api", fmt.Errorf("%s: token_type %q, want Bearer", what, ans.TokenType))
	}
	if ans.RefreshToken != "" {
		s.refresh = ans.RefreshToken
	}
	secs, _ := strconv.ParseFloat(strings.Trim(string(ans.ExpiresIn), `"`), 64)
	return ans.AccessToken, time.Duration(secs * float64(time.Second)), nil
}

// post sends the form and returns the 200 answer's body; a refusal (4xx)
// is final, a failing instance (5xx, network) retryable.
func (s *oauthSource) post(ctx context.Context, what string, form url.Values, red rest.Redactor) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.url, strings.NewReader(form.Encode()))
	if err != nil {
		return nil, rest.Final("config", fmt.Errorf("%s: %w", what, err))
	}
	for k, v := range s.header {
		req.Header.Set(k, v)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/json")
	resp, err := s.http.Do(req)
	if err != nil {
		return nil, rest.TransportError(ctx, fmt.Errorf("%s: %s", what, red.String(err.Error())))
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return nil, rest.TransportError(ctx, fmt.Errorf("%s: reading the answer: %w", what, err))
	}
	if err := rest.CheckStatus(what, resp.StatusCode, resp.Header, red.Bytes(body)); err != nil {
		return nil, err
	}
	return body, nil
}

// newAuthenticator returns the auth of o for clients configured as cfg.
func newAuthenticator(o *Options, cfg rest.Config, now func() time.Time) (*authenticator, error) {
	a := &authenticator{cfg: cfg, now: now}
	switch {
	case o.OAuth != nil:
		if o.OAuth.Grant == "" {
			o.ApplyDefaults("") // built by hand: the grant the config would get
		}
		tokenURL := o.OAuth.TokenURL
		if tokenURL == "" {
			tokenURL = strings.TrimRight(o.URL, "/") + "/oauth_token.do"
		}
		if !configs.ValidHTTPURL(tokenURL) {
			return nil, fmt.Errorf("oauth token_url %q: want an http:// or https:// URL", tokenURL)
		}
		if o.OAuth.ClientID == "" {
			return nil, errors.New("oauth: client_id is required")
		}
		timeout := cfg.Timeout
		if timeout <= 0 {
			timeout = rest.DefaultTimeout
		}
		a.source = &oauthSource{o: o, url: tokenURL, http: &http.Client{Timeout: timeout}, header: cfg.Header}
	case o.Token.Ref != "" || o.TokenFile != "":
		a.source = fileToken{o}
		tok, _, err := a.source.fetch(context.Background())
		if err != nil {
			return nil, err
		}
		cfg.Auth = rest.Bearer(tok)
		a.token, a.client = tok, rest.New(cfg)
	default:
		auth, err := rest.BearerOrBasic(rest.Secret{Key: "token"}, "user", o.User,
			rest.Secret{Key: "password", Read: func() (string, error) { return configs.SecretValue(o.Password, o.PasswordFile) }})
		if err != nil {
			return nil, err
		}
		cfg.Auth = auth
		a.client = rest.New(cfg)
	}
	return a, nil
}
