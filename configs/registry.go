package configs

import (
	"fmt"
	"maps"
	"reflect"
	"slices"
	"sync"
)

// Options is a unit's own block of settings: a check's `disk:`, a ticket
// backend's `rt:`, a remediation action's settings or params. Each unit
// (checks/<kind>, ticketing/<backend>, remediate/<action>) defines its type,
// with its defaults and validation, and registers it in a Family; the
// loader decodes, defaults and validates it without knowing the kind.
type Options interface {
	// ApplyDefaults fills what the config left out; stateDir is the agent's.
	ApplyDefaults(stateDir string)
	// Validate reports bad values through errf, each at path+".key".
	Validate(path string, errf Errorf)
}

// Errorf places a validation error at the position where the value at path
// (e.g. "checks[2].patches.apt.options[1]") was written.
type Errorf func(path, format string, args ...any)

// Kind is what a unit registers: how to make its options, and for checks
// the metrics its rules may name.
type Kind struct {
	// Options returns a new, empty options value (a pointer to a struct);
	// nil when the kind has no options block.
	Options func() Options
	// Params returns a new, empty params value (remediation actions: the
	// `params:` of the action and of its rules); nil when it takes none.
	Params func() Params
	// Metrics are the metric names a check kind emits.
	Metrics []string
}

// Params are the parameters of a remediation action: the action's own
// defaults (its `params:`) merged with a rule's (MergeParams). Both checks
// see the action's settings (its allowlists).
type Params interface {
	// Validate checks the values as written at path.
	Validate(path string, errf Errorf, settings Options)
	// Complete checks that a rule's merged params are enough to run.
	Complete(path string, errf Errorf, settings Options)
}

// Family is a name-keyed registry of kinds: check kinds, ticket backends or
// remediation actions. Units register from init(); a duplicate panics.
type Family struct {
	what  string
	mu    sync.RWMutex
	kinds map[string]Kind
}

// The three families a config names kinds of.
var (
	CheckKinds   = &Family{what: "check kind"}
	BackendKinds = &Family{what: "ticketing backend kind"}
	ActionKinds  = &Family{what: "remediation action"}
)

// Register adds a kind. It panics on a duplicate name, or on options that
// are not pointers to structs.
func (f *Family) Register(name string, k Kind) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, dup := f.kinds[name]; dup {
		panic(fmt.Sprintf("configs: duplicate %s %q", f.what, name))
	}
	if k.Options != nil {
		mustStructPointer(f.what, name, k.Options())
	}
	if k.Params != nil {
		mustStructPointer(f.what, name, k.Params())
	}
	if f.kinds == nil {
		f.kinds = map[string]Kind{}
	}
	k.Metrics = slices.Clone(k.Metrics)
	f.kinds[name] = k
}

func mustStructPointer(what, name string, v any) {
	t := reflect.TypeOf(v)
	if t == nil || t.Kind() != reflect.Pointer || t.Elem().Kind() != reflect.Struct {
		panic(fmt.Sprintf("configs: %s %q: options must be a pointer to a struct, got %T", what, name, v))
	}
}

// Lookup returns the kind registered as name.
func (f *Family) Lookup(name string) (Kind, bool) {
	f.mu.RLock()
	defer f.mu.RUnlock()
	k, ok := f.kinds[name]
	return k, ok
}

// Names lists the registered kinds, sorted.
func (f *Family) Names() []string {
	f.mu.RLock()
	defer f.mu.RUnlock()
	return slices.Sorted(maps.Keys(f.kinds))
}

// IsNil reports whether o is nil or a nil pointer.
func IsNil(o Options) bool {
	return o == nil || reflect.ValueOf(o).IsNil()
}

// NewOptions returns name's empty options, or nil.
func (f *Family) NewOptions(name string) Options {
	if k, ok := f.Lookup(name); ok && k.Options != nil {
		return k.Options()
	}
	return nil
}

// OptionsOr returns o, or, when o is nil (options built by hand, not
// loaded), name's options with their defaults; nil for a kind without.
func (f *Family) OptionsOr(name string, o Options) Options {
	if !IsNil(o) {
		return o
	}
	if o = f.NewOptions(name); o != nil {
		o.ApplyDefaults(DefaultStateDir)
	}
	return o
}

// NewParams returns name's empty params, or nil.
func (f *Family) NewParams(name string) Params {
	if k, ok := f.Lookup(name); ok && k.Params != nil {
		return k.Params()
	}
	return nil
}

// MergeParams returns a copy of base with every field that is set (not the
// zero value) in over replaced. Both must be the same pointer-to-struct type;
// a nil side gives the other.
func MergeParams(base, over Params) Params {
	if base == nil {
		return over
	}
	if over == nil {
		return base
	}
	out := reflect.New(reflect.TypeOf(base).Elem())
	out.Elem().Set(reflect.ValueOf(base).Elem())
	ov := reflect.ValueOf(over).Elem()
	for i := range ov.NumField() {
		if f := ov.Field(i); !f.IsZero() {
			out.Elem().Field(i).Set(f)
		}
	}
	return out.Interface().(Params)
}

// StateDirMover is implemented by options whose defaults live in the state
// dir (a ticket file, a check's state), so that they follow it when the
// agent falls back to a per-user state dir.
type StateDirMover interface {
	MoveStateDir(from, to string)
}

// MoveStateDir sets the state dir to dir, and moves every option that
// defaulted into the old one along.
func (c *Config) MoveStateDir(dir string) {
	from := c.StateDir
	var all []Options
	for _, ch := range c.Checks {
		all = append(all, ch.Options)
	}
	for _, b := range c.Ticketing.Backends {
		all = append(all, b.Options)
	}
	for _, p := range c.Remediation.Actions {
		all = append(all, p.Settings)
	}
	for _, o := range all {
		if m, ok := o.(StateDirMover); ok {
			m.MoveStateDir(from, dir)
		}
	}
	c.StateDir = dir
}
