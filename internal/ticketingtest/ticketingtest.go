// Package ticketingtest is the kit for fake ticket servers in tests: an
// httptest server that records every request, checks the Authorization
// header, the agent's User-Agent (l2agent/<version>; a test's own requests
// with net/http's default one pass) and the JSON body of
// every request that has one, routes by
// "METHOD /path/{name}" patterns (net/http.ServeMux), and can be told to
// answer everything with a failure (a status, 429 + Retry-After, a delay).
// Each fake keeps only what is its system's own: its routes, its state and
// the shape of its error answers.
//
// Handlers run one at a time, so a fake's state needs no lock of its own
// while requests are served.
package ticketingtest

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/l2agent/l2agent/internal/version"
)

// Options are what a fake checks and how it says no.
type Options struct {
	// Auth is the Authorization header every request must carry (see Basic,
	// Bearer); a request without it gets Error 401. Empty checks nothing.
	Auth string
	// Error writes the system's error answer; the default is plain text.
	Error func(w http.ResponseWriter, status int, msg string)
}

// Request is one request the fake received.
type Request struct {
	Method string
	Path   string
	Query  url.Values
	Header http.Header
	Raw    []byte         // the body as sent
	Body   map[string]any // the body, when it is a JSON object
}

// Server is a fake ticket server. Its URL has no trailing slash.
type Server struct {
	URL string

	t      testing.TB
	srv    *httptest.Server
	mux    *http.ServeMux
	opts   Options
	serve  sync.Mutex // one handler at a time
	mu     sync.Mutex // reqs, inject, auth
	reqs   []Request
	inject http.HandlerFunc
}

// New starts a fake, closed when the test ends.
func New(t testing.TB, o Options) *Server {
	t.Helper()
	if o.Error == nil {
		o.Error = func(w http.ResponseWriter, status int, msg string) { http.Error(w, msg, status) }
	}
	s := &Server{t: t, mux: http.NewServeMux(), opts: o}
	s.srv = httptest.NewServer(http.HandlerFunc(s.serveHTTP))
	s.URL = s.srv.URL
	t.Cleanup(s.Close)
	return s
}

// Close stops the server, ending requests still in a handler; a client
// then gets connection errors.
func (s *Server) Close() {
	s.srv.CloseClientConnections()
	s.srv.Close()
}

// Handle routes pattern ("POST /api/now/table/incident",
// "PUT /rest/api/3/issue/{key}") to h. Requests that match no pattern get
// Error 404.
func (s *Server) Handle(pattern string, h http.HandlerFunc) { s.mux.HandleFunc(pattern, h) }

// Inject answers every request with h, before the auth check, until it is
// called again with nil. See Fail, Throttle and Delay.
func (s *Server) Inject(h http.HandlerFunc) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.inject = h
}

// SetAuth changes the Authorization header required from now on.
func (s *Server) SetAuth(auth string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.opts.Auth = auth
}

type ctxKey struct{}

func (s *Server) serveHTTP(w http.ResponseWriter, r *http.Request) {
	raw, err := io.ReadAll(r.Body)
	if err != nil {
		s.t.Errorf("%s %s: reading the body: %v", r.Method, r.URL.Path, err)
	}
	rq := Request{Method: r.Method, Path: r.URL.Path, Query: r.URL.Query(), Header: r.Header.Clone(), Raw: raw}
	_ = json.Unmarshal(raw, &rq.Body)
	s.mu.Lock()
	s.reqs = append(s.reqs, rq)
	inject, auth := s.inject, s.opts.Auth
	s.mu.Unlock()
	r = r.WithContext(context.WithValue(r.Context(), ctxKey{}, rq))
	r.Body = io.NopCloser(bytes.NewReader(raw))
	// The agent names itself; the requests a test makes itself with
	// net/http's own client are not the agent's.
	if ua, want := r.Header.Get("User-Agent"), version.UserAgent(); ua != want && !strings.HasPrefix(ua, "Go-http-client/") {
		s.t.Errorf("%s %s: User-Agent %q, want %q", r.Method, r.URL.Path, ua, want)
	}
	s.serve.Lock()
	defer s.serve.Unlock()
	switch {
	case inject != nil:
		inject(w, r)
	case auth != "" && r.Header.Get("Authorization") != auth:
		s.opts.Error(w, http.StatusUnauthorized, "not authenticated")
	case len(raw) > 0 || r.Method == http.MethodPost || r.Method == http.MethodPut || r.Method == http.MethodPatch:
		if msg, status := checkJSON(r.Header.Get("Content-Type"), raw); status != 0 {
			s.t.Errorf("%s %s: %s", r.Method, r.URL.Path, msg)
			s.opts.Error(w, status, msg)
			return
		}
		s.route(w, r)
	default:
		s.route(w, r)
	}
}

// checkJSON: a body must be JSON and say so, with no parameters.
func checkJSON(contentType string, raw []byte) (string, int) {
	if contentType != "application/json" {
		return fmt.Sprintf("Content-Type %q, want application/json", contentType), http.StatusUnsupportedMediaType
	}
	if !json.Valid(raw) {
		return fmt.Sprintf("body is not JSON: %.200q", raw), http.StatusBadRequest
	}
	return "", 0
}

func (s *Server) route(w http.ResponseWriter, r *http.Request) {
	if _, pattern := s.mux.Handler(r); pattern == "" {
		s.opts.Error(w, http.StatusNotFound, "not found: "+r.Method+" "+r.URL.Path)
		return
	}
	s.mux.ServeHTTP(w, r)
}

// Received is the request being handled, as recorded: for handlers.
func Received(r *http.Request) Request {
	rq, _ := r.Context().Value(ctxKey{}).(Request)
	return rq
}

// Requests returns every request received so far, in order.
func (s *Server) Requests() []Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Request(nil), s.reqs...)
}

// Last returns the latest request.
func (s *Server) Last() Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.reqs[len(s.reqs)-1]
}

// Take returns "METHOD /path" of the requests received since the last Take.
func (s *Server) Take() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var calls []string
	for _, r := range s.reqs {
		calls = append(calls, r.Method+" "+r.Path)
	}
	s.reqs = nil
	return calls
}

// Basic is the Authorization header of HTTP basic auth.
func Basic(user, password string) string {
	return "Basic " + base64.StdEncoding.EncodeToString([]byte(user+":"+password))
}

// Bearer is the Authorization header of a bearer token.
func Bearer(token string) string { return "Bearer " + token }

// Reply answers status with body, as JSON.
func Reply(status int, body string) http.HandlerFunc {
	return func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json; charset=utf-8")
		w.WriteHeader(status)
		io.WriteString(w, body)
	}
}

// WriteJSON answers status with v encoded as JSON.
func WriteJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}

// Fail answers status with body (plain text).
func Fail(status int, body string) http.HandlerFunc {
	return func(w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(status)
		io.WriteString(w, body)
	}
}

// Throttle sets Retry-After (when not empty) and hands over to h, which
// writes the 429 or 503 in the system's own shape.
func Throttle(retryAfter string, h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if retryAfter != "" {
			w.Header().Set("Retry-After", retryAfter)
		}
		h(w, r)
	}
}

// Delay waits d (or until the client gives up) before handing over to h;
// a nil h answers nothing more.
func Delay(d time.Duration, h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-time.After(d):
		case <-r.Context().Done():
			return
		}
		if h != nil {
			h(w, r)
		}
	}
}
