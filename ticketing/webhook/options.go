package webhook

import (
	"fmt"

	"github.com/l2agent/l2agent/configs"
	"github.com/l2agent/l2agent/ticketing"
)

// Options configure a generic JSON webhook: its `webhook:` block.
type Options struct {
	URL        string         `yaml:"url"`
	Secret     configs.Secret `yaml:"secret"` // HMAC-SHA256 key for the signature header
	SecretFile string         `yaml:"secret_file"`
}

// ApplyDefaults implements configs.Options; a webhook has no defaults.
func (o *Options) ApplyDefaults(string) {}

// Validate implements configs.Options.
func (o *Options) Validate(path string, errf configs.Errorf) {
	configs.CheckURL(errf, path+".url", o.URL)
	configs.OneSecret(errf, path, "secret", o.Secret, o.SecretFile)
}

func init() {
	ticketing.Register("webhook", func(b configs.Backend) (ticketing.Ticketer, error) {
		o := b.Options.(*Options)
		secret, err := configs.SecretValue(o.Secret, o.SecretFile)
		if err != nil {
			return nil, fmt.Errorf("ticketing backend %q: %w", b.Name, err)
		}
		return New(o.URL, secret, b.Timeout.D()), nil
	}, func() configs.Options { return &Options{} })
}
