package rt

import (
	"cmp"
	"time"

	"github.com/l2agent/l2agent/configs"
	"github.com/l2agent/l2agent/ticketing"
)

// Options configure a Request Tracker 5 backend (REST 2.0): its `rt:` block.
type Options struct {
	URL         string         `yaml:"url"` // e.g. https://rt.example.com (REST 2.0 is under /REST/2.0/)
	Token       configs.Secret `yaml:"token"`
	TokenFile   string         `yaml:"token_file"`
	QueueL2     string         `yaml:"queue_l2"`
	QueueL3     string         `yaml:"queue_l3"`
	QueueL4     string         `yaml:"queue_l4"`
	CustomField string         `yaml:"custom_field"` // ticket CF holding the alert key
	PriorityL2  int            `yaml:"priority_l2"`
	PriorityL3  int            `yaml:"priority_l3"`
	PriorityL4  int            `yaml:"priority_l4"`
	OwnerL3     string         `yaml:"owner_l3"` // optional owner set on escalation to L3
	OwnerL4     string         `yaml:"owner_l4"`
	// ReuseResolved: a ticket of the key that Find meets resolved (after
	// the agent lost its record of the incident) is taken back when it was
	// resolved within this long; older, or rejected or deleted, a new
	// ticket refers to it. Default 24h (ticketing.reopen_window's
	// default); 0: never.
	ReuseResolved *configs.Duration `yaml:"reuse_resolved"`
}

// DefaultReuseResolved is reuse_resolved's default: reopen_window's.
const DefaultReuseResolved = 24 * time.Hour

// ApplyDefaults implements configs.Options: it fills what the config left out.
func (o *Options) ApplyDefaults(string) {
	o.QueueL2 = cmp.Or(o.QueueL2, "General")
	o.QueueL3 = cmp.Or(o.QueueL3, o.QueueL2)
	o.QueueL4 = cmp.Or(o.QueueL4, o.QueueL3)
	o.CustomField = cmp.Or(o.CustomField, "HostCheckKey")
	o.PriorityL2 = cmp.Or(o.PriorityL2, 50)
	o.PriorityL3 = cmp.Or(o.PriorityL3, 100) // RT shows 50 and 80 both as "Medium"
	o.PriorityL4 = cmp.Or(o.PriorityL4, 100)
	if o.ReuseResolved == nil {
		d := configs.Duration(DefaultReuseResolved)
		o.ReuseResolved = &d
	}
}

// Validate implements configs.Options.
func (o *Options) Validate(path string, errf configs.Errorf) {
	configs.CheckURL(errf, path+".url", o.URL)
	configs.OneSecret(errf, path, "token", o.Token, o.TokenFile)
}

func init() {
	ticketing.Register("rt", func(b configs.Backend) (ticketing.Ticketer, error) {
		return New(b.Name, *b.Options.(*Options), b.Timeout.D())
	}, func() configs.Options { return &Options{} })
}
