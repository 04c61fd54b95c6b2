package agent

import (
	"fmt"
	"net/http"
	"os"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// DefaultIdleTimeout is how long the HTTP server keeps an idle keep-alive
// connection open when Options.IdleTimeout is not set: longer than a usual
// scrape interval (1m), so Prometheus reuses its connection, and bounded,
// so idle clients cannot hold connections (and their memory) forever.
const DefaultIdleTimeout = 2 * time.Minute

// LifecycleFlag is the flag that turns on the state-changing endpoints
// (POST /-/reload, POST /api/v1/tickets/flush), as Prometheus'.
const LifecycleFlag = "--web.enable-lifecycle"

// idleTimeout is the server's idle keep-alive timeout.
func (o Options) idleTimeout() time.Duration {
	if o.IdleTimeout > 0 {
		return o.IdleTimeout
	}
	return DefaultIdleTimeout
}

// crossOrigin refuses cross-site browser requests: a Sec-Fetch-Site other
// than same-origin or none, or else an Origin that is not the Host.
var crossOrigin = http.NewCrossOriginProtection()

// stateChanging registers a handler that changes the agent's state (POST
// only). It runs only when
//   - the lifecycle endpoints are on (Options.EnableLifecycle), or the
//     request is authenticated by the web config's basic_auth_users;
//   - the request is not a cross-site browser request (CSRF): see
//     crossOrigin;
//   - its Content-Type is not one a cross-site HTML form or a "simple"
//     fetch may send without asking (form, multipart, text/plain): a
//     request without a body or with application/json passes.
//
// Otherwise it answers 403 (415 for the Content-Type) saying why and what
// to do.
func (a *Agent) stateChanging(mux *http.ServeMux, pattern, hint string, h http.HandlerFunc) {
	_, path, _ := strings.Cut(pattern, " ")
	mux.HandleFunc(pattern, func(w http.ResponseWriter, r *http.Request) {
		if !a.lifecycleAllowed(r) {
			a.log.Warn("refused a lifecycle request: the endpoint is off", "path", path, "remote", r.RemoteAddr)
			http.Error(w, fmt.Sprintf("POST %s is off over TCP: use the unix socket %s (root and the members of the config's api.group), start l2agent with %s, or set basic_auth_users in the file of --web.config.file to allow it for authenticated requests. %s",
				path, a.SocketPath(), LifecycleFlag, hint), http.StatusForbidden)
			return
		}
		if err := crossOrigin.Check(r); err != nil {
			a.log.Warn("refused a cross-origin request", "path", path, "remote", r.RemoteAddr, "origin", r.Header.Get("Origin"), "sec_fetch_site", r.Header.Get("Sec-Fetch-Site"))
			http.Error(w, fmt.Sprintf("POST %s refused: %v; it takes requests from non-browser clients (curl, the l2agent CLI) or from the agent's own pages only", path, err), http.StatusForbidden)
			return
		}
		if ct := r.Header.Get("Content-Type"); simpleContentType(ct) {
			a.log.Warn("refused a request with a form Content-Type", "path", path, "remote", r.RemoteAddr, "content_type", ct)
			http.Error(w, fmt.Sprintf("POST %s refused: Content-Type %q is what a cross-site HTML form sends; send no body (curl -X POST URL) or Content-Type: application/json", path, ct),
				http.StatusUnsupportedMediaType)
			return
		}
		h(w, r)
	})
}

// lifecycleAllowed says whether r may use a state-changing endpoint: they
// are on, r came through the API socket from an allowed peer, or the web
// config asks for basic auth and r carries it. The
// exporter-toolkit has checked the credentials before the handler runs, and
// reads the web config at every request; so is it read here, so that adding
// or removing basic_auth_users takes effect as it does for the check.
func (a *Agent) lifecycleAllowed(r *http.Request) bool {
	return a.opts.EnableLifecycle || onSocket(r) || a.authenticated(r)
}

// webConfigHasUsers says whether the exporter-toolkit web config at path
// sets basic_auth_users. An unreadable file says no.
func webConfigHasUsers(path string) bool {
	b, err := os.ReadFile(path)
	if err != nil {
		return false
	}
	var c struct {
		Users map[string]string `yaml:"basic_auth_users"`
	}
	if yaml.Unmarshal(b, &c) != nil {
		return false
	}
	return len(c.Users) > 0
}

// simpleContentType says whether ct is a Content-Type a browser sends
// cross-site without a CORS preflight ("CORS-safelisted"): what a form on
// any web page can post to the agent.
func simpleContentType(ct string) bool {
	essence, _, _ := strings.Cut(ct, ";")
	switch strings.ToLower(strings.TrimSpace(essence)) {
	case "application/x-www-form-urlencoded", "multipart/form-data", "text/plain":
		return true
	}
	return false
}
