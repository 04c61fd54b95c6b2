package remediate

import (
	"fmt"
	"maps"
	"slices"
	"sync"

	"github.com/l2agent/l2agent/configs"
)

// Env is what actions read the host through; tests point it elsewhere.
type Env struct {
	Procfs string // /proc, for files open for writing
	Root   string // /, for package caches, reboot-required and dpkg status
	// Hook, when set (tests only), is called before each filesystem step of
	// an action (event: "unlink", "lstat", "opendir"), to race it.
	Hook func(event, path string)
}

// DefaultEnv reads the host itself.
var DefaultEnv = Env{Procfs: "/proc", Root: "/"}

// Factory builds an action from its settings (the action's block of
// remediation.actions) and params (its own merged with a rule's; nil when
// the action takes none).
type Factory func(settings configs.Options, params configs.Params, env Env) (Action, error)

var (
	registryMu sync.RWMutex
	registry   = map[string]Factory{}
)

// Register makes an action available to configs: its factory, its settings
// type and its params type (nil when it takes none). It panics on
// duplicates.
func Register(name string, f Factory, settings func() configs.Options, params func() configs.Params) {
	registryMu.Lock()
	defer registryMu.Unlock()
	if _, dup := registry[name]; dup {
		panic("remediate: duplicate action " + name)
	}
	registry[name] = f
	configs.ActionKinds.Register(name, configs.Kind{Options: settings, Params: params})
}

// Names lists the registered actions, sorted.
func Names() []string {
	registryMu.RLock()
	defer registryMu.RUnlock()
	return slices.Sorted(maps.Keys(registry))
}

// newAction builds the named action with its policy and params.
func newAction(name string, p configs.ActionPolicy, params configs.Params, env Env) (Action, error) {
	registryMu.RLock()
	f, ok := registry[name]
	registryMu.RUnlock()
	if !ok {
		return nil, fmt.Errorf("unknown action %q", name)
	}
	settings := configs.ActionKinds.OptionsOr(name, p.Settings) // built by hand: the defaults
	return f(settings, params, env)
}

// ParamsOr returns an action's params as a *T, or a new empty T when the
// action got none (a factory's params are nil then).
func ParamsOr[T any](p configs.Params) *T {
	if t, ok := any(p).(*T); ok && t != nil {
		return t
	}
	return new(T)
}
