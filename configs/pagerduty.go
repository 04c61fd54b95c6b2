package configs

// PagerDutyOptions configure the pagerduty ticket backend. Owned by that backend's
// author: add fields with yaml tags, defaults in applyDefaults and checks in
// validate (use checkURL and oneSecret from ticketing.go for URLs and secrets).
type PagerDutyOptions struct{}

// applyDefaults fills the fields left out of the config.
func (o *PagerDutyOptions) applyDefaults() {}

// validate reports bad values; path is the position of the block, e.g.
// "ticketing.backends[1].pagerduty"; errf(path+".field", format, args...) places an error.
func (o *PagerDutyOptions) validate(path string, errf func(path, format string, args ...any)) {}
