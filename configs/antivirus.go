package configs

// AntivirusOptions configure the antivirus check. Owned by the antivirus check's author: add
// fields with yaml tags, defaults in applyDefaults and checks in validate.
type AntivirusOptions struct{}

// applyDefaults fills the fields left out of the config.
func (o *AntivirusOptions) applyDefaults() {}

// validate reports bad values; path is the position of the block, e.g.
// "checks[2].antivirus"; errf(path+".field", format, args...) places an error.
func (o *AntivirusOptions) validate(path string, errf func(path, format string, args ...any)) {}
