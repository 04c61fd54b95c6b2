// Package rest is the one HTTP client of the ticket backends (rt, jira,
// servicenow, pagerduty, webhook): base URL, fixed headers, auth, a timeout
// per request, a bounded answer, JSON in and out, and every failure
// classified as retryable or final (Error).
//
// Why the classification lives here and not in ticketing: a leaf must not
// import ticketing (ticketing's backends import this package), and the
// rules are HTTP rules (transport errors, 5xx, 408 and 429 with Retry-After
// retry; other 4xx are final), not ticket rules. So Error, Retryable,
// Final, TransportError, CheckStatus and ParseRetryAfter are defined here
// once; ticketing keeps DeliveryError as an alias of Error and Retryable /
// Final as one-line forwards, so the backends and the outbox read one type.
// Classify stays in ticketing: treating an unclassified error as a network
// failure and a cancellation as "retry later" is the outbox's policy.
//
// No credential the client sends is ever quoted: the body of an answer
// that is not 2xx is passed through the client's Redactor before anyone
// reads it (CheckStatus, a backend's own error object), Unexpected does the
// same for a 2xx answer, and a backend that quotes anything else of a 2xx
// answer in an error passes it through Client.Redact.
//
// The client is resty/v2, configured the way each backend configured it
// before, so the requests on the wire are the same: headers are only the
// ones asked for, User-Agent: l2agent/<version> (version.UserAgent, as
// every HTTP client of the agent) and, as resty does, Accept:
// application/json to a JSON request without one.
package rest

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"time"

	"github.com/go-resty/resty/v2"

	"github.com/l2agent/l2agent/internal/version"
)

// DefaultTimeout bounds a request when Config.Timeout is not set.
const DefaultTimeout = 15 * time.Second

// DefaultBodyLimit bounds an answer when Config.BodyLimit is not set.
const DefaultBodyLimit = 8 << 20

// Config is one backend's client.
type Config struct {
	// Name prefixes every error ("rt find …"); empty: the caller's text only.
	Name string
	// BaseURL is joined with Request.Path; empty: Path is a full URL.
	BaseURL string
	// Header is sent with every request (Accept, …); User-Agent is
	// version.UserAgent().
	Header map[string]string
	Auth   Auth
	// Timeout bounds each request (DefaultTimeout when <= 0).
	Timeout time.Duration
	// BodyLimit bounds an answer in bytes (DefaultBodyLimit when <= 0); a
	// longer one is a retryable network error.
	BodyLimit int
	// Secrets are credentials sent another way than Auth (a routing key in
	// the body): never quoted from an answer, as Auth's.
	Secrets []string
}

// Auth is how requests authenticate. The zero value sends nothing.
type Auth struct {
	scheme string // "basic", or the Authorization scheme of a token
	user   string
	secret string
}

// Basic is HTTP basic auth.
func Basic(user, password string) Auth { return Auth{scheme: "basic", user: user, secret: password} }

// Bearer is "Authorization: Bearer <token>" (OAuth, Jira PAT).
func Bearer(token string) Auth { return Token("Bearer", token) }

// Token is "Authorization: <scheme> <token>" (RT: scheme "token").
func Token(scheme, token string) Auth { return Auth{scheme: scheme, secret: token} }

// Secret is one credential of a backend's config, read only when it is
// the one chosen.
type Secret struct {
	Key  string                 // its config key, named in errors: "token", "pat", "password"
	Set  bool                   // the config gives it (as ${ENV_VAR} or as a *_file)
	Read func() (string, error) // its value
}

// BearerOrBasic is the auth of a backend that takes either a bearer token
// or a user and a password (Jira, ServiceNow): the token when the config
// gives one, else basic auth. An empty or unreadable credential, or a
// missing user (userKey names it), is an error saying what to set.
func BearerOrBasic(token Secret, userKey, user string, password Secret) (Auth, error) {
	if token.Set {
		tok, err := token.Read()
		if err != nil || tok == "" {
			return Auth{}, fmt.Errorf("%s: empty or unreadable: %v", token.Key, err)
		}
		return Bearer(tok), nil
	}
	pw, err := password.Read()
	if err != nil || pw == "" || user == "" {
		return Auth{}, fmt.Errorf("want %s + %s, or %s (%v)", userKey, password.Key, token.Key, err)
	}
	return Basic(user, pw), nil
}

// String never shows the secret.
func (a Auth) String() string {
	if a.scheme == "" {
		return "none"
	}
	return a.scheme + " <secret>"
}

// Client makes requests for one backend. Safe for concurrent use.
type Client struct {
	name    string
	timeout time.Duration
	c       *resty.Client
	redact  Redactor
}

// New returns the client of c.
func New(c Config) *Client {
	if c.Timeout <= 0 {
		c.Timeout = DefaultTimeout
	}
	if c.BodyLimit <= 0 {
		c.BodyLimit = DefaultBodyLimit
	}
	rc := resty.New().
		SetTimeout(c.Timeout).
		SetResponseBodyLimit(c.BodyLimit).
		SetLogger(quietLogger{}).
		SetHeader("User-Agent", version.UserAgent())
	if c.BaseURL != "" {
		rc.SetBaseURL(c.BaseURL)
	}
	for k, v := range c.Header {
		rc.SetHeader(k, v)
	}
	switch c.Auth.scheme {
	case "":
	case "basic":
		rc.SetBasicAuth(c.Auth.user, c.Auth.secret)
	default:
		rc.SetAuthScheme(c.Auth.scheme).SetAuthToken(c.Auth.secret)
	}
	return &Client{name: c.Name, timeout: c.Timeout, c: rc, redact: NewRedactor(c.Auth, c.Secrets...)}
}

// Timeout is the bound of one request.
func (c *Client) Timeout() time.Duration { return c.timeout }

// Redact is s, text of a server's answer, with the client's credentials
// hidden: for what a backend quotes of a 2xx answer in an error.
func (c *Client) Redact(s string) string { return c.redact.String(s) }

// Request is one call.
type Request struct {
	Method string
	Path   string     // joined with the base URL
	Query  url.Values // nil: none
	Header map[string]string
	// Body, when not nil, is sent with Content-Type: application/json: a
	// []byte or string as it is, any other value JSON-encoded.
	Body any
}

// Response is an answer, whatever its status.
type Response struct {
	Status int
	Header http.Header
	Body   []byte // with the client's credentials hidden unless 2xx
	redact Redactor
}

// Send makes the request. An error is a transport failure (TransportError:
// the caller's cancellation as it is, anything else retryable); the HTTP
// status is not checked. The body of an answer that is not 2xx has the
// client's credentials hidden (Redactor): it is only ever quoted.
func (c *Client) Send(ctx context.Context, what string, r Request) (*Response, error) {
	req := c.c.R().SetContext(ctx)
	if r.Query != nil {
		req.SetQueryParamsFromValues(r.Query)
	}
	for k, v := range r.Header {
		req.SetHeader(k, v)
	}
	if r.Body != nil {
		req.SetHeader("Content-Type", "application/json").SetBody(r.Body)
	}
	resp, err := req.Execute(r.Method, r.Path)
	if err != nil {
		return nil, TransportError(ctx, fmt.Errorf("%s: %w", c.what(what), err))
	}
	out := &Response{Status: resp.StatusCode(), Header: resp.Header(), Body: resp.Body(), redact: c.redact}
	if out.Status < 200 || out.Status > 299 {
		out.Body = c.redact.Bytes(out.Body)
	}
	return out, nil
}

// Do makes the request, checks the status (CheckStatus) and decodes the
// JSON answer into out, unless out is nil. A 2xx answer that is not the
// expected JSON (a proxy's login page, an error object) is final.
func (c *Client) Do(ctx context.Context, what string, r Request, out any) error {
	resp, err := c.Send(ctx, what, r)
	if err != nil {
		return err
	}
	if err := CheckStatus(c.what(what), resp.Status, resp.Header, resp.Body); err != nil {
		return err
	}
	if out == nil {
		return nil
	}
	if err := json.Unmarshal(resp.Body, out); err != nil {
		return resp.Unexpected(c.what(what), err)
	}
	return nil
}

// Unexpected is the final error for a 2xx answer that could not be read;
// it quotes the answer with the client's credentials hidden.
func (r *Response) Unexpected(what string, err error) error {
	return Final("api", fmt.Errorf("%s: HTTP %d with an unexpected answer (%v): %s", what, r.Status, err, Snippet(r.redact.Bytes(r.Body))))
}

// what prefixes what with the client's name.
func (c *Client) what(what string) string {
	if c.name == "" {
		return what
	}
	return c.name + " " + what
}

// quietLogger drops resty's own log lines: every failure is returned.
type quietLogger struct{}

func (quietLogger) Errorf(string, ...any) {}
func (quietLogger) Warnf(string, ...any)  {}
func (quietLogger) Debugf(string, ...any) {}
