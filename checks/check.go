// Package checks holds the host checks of l2agent. A check measures; it knows
// nothing of rules, tickets or metrics exposition.
package checks

import (
	"context"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"strings"
	"sync"

	"github.com/shirou/gopsutil/v3/common"

	"github.com/l2agent/l2agent/configs"
)

// Check measures one aspect of the host.
type Check interface {
	Name() string
	Run(ctx context.Context) ([]Observation, error)
}

// Diagnoser is implemented by checks that can explain a breached observation
// in more depth (largest directories, top processes). It is called only when
// an alert starts firing, never on every run, because it may be expensive.
type Diagnoser interface {
	Diagnose(ctx context.Context, o Observation) (string, error)
}

// Observation is one measured value.
type Observation struct {
	Metric  string            // e.g. "disk_used_ratio"; exposed as l2agent_<Metric>
	Labels  map[string]string // e.g. {"mountpoint": "/var"}
	Value   float64           // base units: ratio 0..1, seconds, bytes, count
	Details string            // short diagnostics for a ticket, bounded in size
}

// MaxDetails bounds Observation.Details and diagnostics text.
const MaxDetails = 4096

// Truncate bounds s to n bytes on a rune boundary, marking the cut.
func Truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	const mark = "\n… (truncated)"
	cut := n - len(mark)
	if cut < 0 {
		cut = 0
	}
	for cut > 0 && !utf8RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + mark
}

func utf8RuneStart(b byte) bool { return b&0xC0 != 0x80 }

// Env is what every check gets from the agent.
type Env struct {
	Paths    configs.Paths
	Hostname string
	Logger   *slog.Logger
}

// Context returns ctx carrying the settable roots for gopsutil.
func (e Env) Context(ctx context.Context) context.Context {
	return context.WithValue(ctx, common.EnvKey, common.EnvMap{
		common.HostProcEnvKey: e.Paths.Procfs,
		common.HostSysEnvKey:  e.Paths.Sysfs,
		common.HostRootEnvKey: e.Paths.Rootfs,
	})
}

// Factory builds a check from its configuration.
type Factory func(c configs.Check, env Env) (Check, error)

// MetricInfo documents one metric a check emits.
type MetricInfo struct {
	Name string // without the l2agent_ prefix
	Help string
}

type kind struct {
	factory Factory
	metrics []MetricInfo
}

var (
	registryMu sync.RWMutex
	registry   = map[string]kind{}
	helps      = map[string]string{}
)

// Register makes a check kind available to configs: its factory, its
// options type (the `<name>:` block of a check; nil for none) and the
// metrics it emits. It panics on duplicates.
func Register(name string, f Factory, options func() configs.Options, metrics ...MetricInfo) {
	registryMu.Lock()
	defer registryMu.Unlock()
	if _, dup := registry[name]; dup {
		panic("checks: duplicate kind " + name)
	}
	registry[name] = kind{factory: f, metrics: metrics}
	names := make([]string, len(metrics))
	for i, m := range metrics {
		helps[m.Name] = m.Help
		names[i] = m.Name
	}
	configs.CheckKinds.Register(name, configs.Kind{Options: options, Metrics: names})
}

// Kinds lists the registered check kinds, sorted.
func Kinds() []string {
	registryMu.RLock()
	defer registryMu.RUnlock()
	return slices.Sorted(maps.Keys(registry))
}

// New builds the check c describes.
func New(c configs.Check, env Env) (Check, error) {
	registryMu.RLock()
	k, ok := registry[c.Kind]
	registryMu.RUnlock()
	if !ok {
		return nil, fmt.Errorf("check %q: unknown kind %q (known: %s)", c.Name, c.Kind, strings.Join(Kinds(), ", "))
	}
	if configs.IsNil(c.Options) { // built by hand, not loaded: the kind's defaults
		if c.Options = configs.CheckKinds.NewOptions(c.Kind); c.Options != nil {
			c.Options.ApplyDefaults(configs.DefaultStateDir)
		}
	}
	ch, err := k.factory(c, env)
	if err != nil {
		return nil, fmt.Errorf("check %q: %w", c.Name, err)
	}
	return ch, nil
}

// Help returns the help text of a metric, or a generic one.
func Help(metric string) string {
	registryMu.RLock()
	defer registryMu.RUnlock()
	if h, ok := helps[metric]; ok {
		return h
	}
	return "l2agent observation " + metric + "."
}

// Metrics lists the metrics of a kind.
func Metrics(kindName string) []MetricInfo {
	registryMu.RLock()
	defer registryMu.RUnlock()
	return slices.Clone(registry[kindName].metrics)
}
