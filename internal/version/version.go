// Package version is the agent's version as it names itself to the
// systems it talks to: every HTTP client sends "User-Agent:
// l2agent/<version>" (UserAgent). The version is set once, at start, by
// package agent from what `l2agent version` prints (agent.Version, set at
// link time, or the module's build info); until then it is "dev". It is a
// leaf so that the ticket backends, which agent imports, can read it.
package version

import "sync/atomic"

var current atomic.Pointer[string]

// Set makes v the version; an empty v is ignored.
func Set(v string) {
	if v != "" {
		current.Store(&v)
	}
}

// Get is the version: the one Set last, else "dev".
func Get() string {
	if v := current.Load(); v != nil {
		return *v
	}
	return "dev"
}

// UserAgent is the User-Agent header of every HTTP client of the agent:
// "l2agent/<version>".
func UserAgent() string { return "l2agent/" + Get() }
