package configs

// MFAOptions configure the mfa check. Owned by the mfa check's author: add
// fields with yaml tags, defaults in applyDefaults and checks in validate.
type MFAOptions struct{}

// applyDefaults fills the fields left out of the config.
func (o *MFAOptions) applyDefaults() {}

// validate reports bad values; path is the position of the block, e.g.
// "checks[2].mfa"; errf(path+".field", format, args...) places an error.
func (o *MFAOptions) validate(path string, errf func(path, format string, args ...any)) {}
