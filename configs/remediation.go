package configs

// Remediation configures the guarded auto-remediations (the remediation
// issue). Owned by the remediation author: add fields with yaml tags,
// defaults in applyDefaults and checks in validate.
type Remediation struct{}

// applyDefaults fills what the config left out; stateDir is the agent's.
func (r *Remediation) applyDefaults(stateDir string) {}

// validate reports bad values; errf(path, format, args...) places an error
// at the position of path, e.g. "remediation.actions[0].allow_paths[1]".
func (r *Remediation) validate(errf func(path, format string, args ...any)) {}
