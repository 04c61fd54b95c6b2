package cpu

import "github.com/l2agent/l2agent/configs"

// Options configure the cpu check (its `cpu:` block).
type Options struct {
	// TopProcesses is how many processes the diagnostics list (default 5).
	TopProcesses int `yaml:"top_processes"`
}

// ApplyDefaults implements configs.Options.
func (o *Options) ApplyDefaults(string) {
	if o.TopProcesses <= 0 {
		o.TopProcesses = 5
	}
}

// Validate implements configs.Options.
func (o *Options) Validate(string, configs.Errorf) {}
