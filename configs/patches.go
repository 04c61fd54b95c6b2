package configs

// PatchesOptions configure the patches check. Owned by the patches check's author: add
// fields with yaml tags, defaults in applyDefaults and checks in validate.
type PatchesOptions struct{}

// applyDefaults fills the fields left out of the config.
func (o *PatchesOptions) applyDefaults() {}

// validate reports bad values; path is the position of the block, e.g.
// "checks[2].patches"; errf(path+".field", format, args...) places an error.
func (o *PatchesOptions) validate(path string, errf func(path, format string, args ...any)) {}
