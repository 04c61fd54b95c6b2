package configs

// JiraOptions configure the jira ticket backend. Owned by that backend's
// author: add fields with yaml tags, defaults in applyDefaults and checks in
// validate (use checkURL and oneSecret from ticketing.go for URLs and secrets).
type JiraOptions struct{}

// applyDefaults fills the fields left out of the config.
func (o *JiraOptions) applyDefaults() {}

// validate reports bad values; path is the position of the block, e.g.
// "ticketing.backends[1].jira"; errf(path+".field", format, args...) places an error.
func (o *JiraOptions) validate(path string, errf func(path, format string, args ...any)) {}
