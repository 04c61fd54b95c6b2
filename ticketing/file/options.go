package file

import (
	"path/filepath"

	"github.com/l2agent/l2agent/configs"
	"github.com/l2agent/l2agent/ticketing"
)

// Options configure the JSON-lines file backend: its `file:` block.
type Options struct {
	Path string `yaml:"path"` // default: <state_dir>/tickets.jsonl
}

// DefaultName is the file's name in the state dir.
const DefaultName = "tickets.jsonl"

// ApplyDefaults implements configs.Options: the file defaults to
// <state_dir>/tickets.jsonl.
func (o *Options) ApplyDefaults(stateDir string) {
	if o.Path == "" {
		o.Path = filepath.Join(stateDir, DefaultName)
	}
}

// MoveStateDir implements configs.StateDirMover: a file left at its
// default follows the state dir.
func (o *Options) MoveStateDir(from, to string) {
	if o.Path == filepath.Join(from, DefaultName) {
		o.Path = filepath.Join(to, DefaultName)
	}
}

// Validate implements configs.Options; any path will do.
func (o *Options) Validate(string, configs.Errorf) {}

func init() {
	ticketing.Register("file", func(b configs.Backend) (ticketing.Ticketer, error) {
		return New(b.Options.(*Options).Path)
	}, func() configs.Options { return &Options{} })
}
