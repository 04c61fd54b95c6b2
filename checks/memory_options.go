package checks

import "github.com/l2agent/l2agent/configs"

// MemoryOptions configure the memory check (its `memory:` block).
type MemoryOptions struct {
	// TopProcesses is how many processes the diagnostics list (default 5).
	TopProcesses int `yaml:"top_processes"`
}

// ApplyDefaults implements configs.Options.
func (o *MemoryOptions) ApplyDefaults(string) {
	if o.TopProcesses <= 0 {
		o.TopProcesses = 5
	}
}

// Validate implements configs.Options.
func (o *MemoryOptions) Validate(string, configs.Errorf) {}
