package ticketing

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"

	"github.com/l2agent/l2agent/configs"
)

// Factory builds a backend from its config block; b.Options holds the
// backend's own options, of the type it registered.
type Factory func(b configs.Backend) (Ticketer, error)

var (
	registryMu sync.RWMutex
	registry   = map[string]Factory{}
)

// Register makes a backend kind available to configs: its factory and its
// options type (the `<kind>:` block of a backend; nil for none). It panics
// on duplicates.
func Register(kind string, f Factory, options func() configs.Options) {
	registryMu.Lock()
	defer registryMu.Unlock()
	if _, dup := registry[kind]; dup {
		panic("ticketing: duplicate backend kind " + kind)
	}
	registry[kind] = f
	configs.BackendKinds.Register(kind, configs.Kind{Options: options})
}

// Kinds lists the registered backend kinds, sorted.
func Kinds() []string {
	registryMu.RLock()
	defer registryMu.RUnlock()
	return slices.Sorted(maps.Keys(registry))
}

// NewBackend builds the ticket backend b describes.
func NewBackend(b configs.Backend) (Ticketer, error) {
	registryMu.RLock()
	f, ok := registry[b.Kind]
	registryMu.RUnlock()
	if !ok {
		return nil, fmt.Errorf("ticketing backend %q: kind %q is not built in (known: %s)", b.Name, b.Kind, strings.Join(Kinds(), ", "))
	}
	b.Options = configs.BackendKinds.OptionsOr(b.Kind, b.Options) // built by hand: the defaults
	return f(b)
}
