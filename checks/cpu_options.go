package checks

import "github.com/l2agent/l2agent/configs"

// CPUOptions configure the cpu check (its `cpu:` block).
type CPUOptions struct {
	// TopProcesses is how many processes the diagnostics list (default 5).
	TopProcesses int `yaml:"top_processes"`
}

// ApplyDefaults implements configs.Options.
func (o *CPUOptions) ApplyDefaults(string) {
	if o.TopProcesses <= 0 {
		o.TopProcesses = 5
	}
}

// Validate implements configs.Options.
func (o *CPUOptions) Validate(string, configs.Errorf) {}
