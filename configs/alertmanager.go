package configs

// AlertmanagerOptions configure the alertmanager backend (fleet mode).
// Owned by that backend's author: add fields with yaml tags, defaults in
// applyDefaults and checks in validate.
type AlertmanagerOptions struct{}

// applyDefaults fills the fields left out of the config.
func (o *AlertmanagerOptions) applyDefaults() {}

// validate reports bad values; path is the position of the block.
func (o *AlertmanagerOptions) validate(path string, errf func(path, format string, args ...any)) {}
