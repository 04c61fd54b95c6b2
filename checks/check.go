// Package checks is what every host check of l2agent shares: the Check
// interface, Observation, Env, the opt-in Diagnoser and the registry of kinds.
// A check measures; it knows nothing of rules, tickets or metrics exposition.
//
// Each kind is its own unit, checks/<kind>/ (disk, cpu, memory, patches,
// antivirus, mfa): its code, its options type, its tests and testdata. It
// calls Register from init(), and checks/all links every unit in. This
// package imports none of them.
package checks

import (
	"context"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"strings"
	"sync"

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
	Metric  string            `json:"metric"`            // e.g. "disk_used_ratio"; exposed as l2agent_<Metric>
	Labels  map[string]string `json:"labels,omitempty"`  // e.g. {"mountpoint": "/var"}
	Value   float64           `json:"value"`             // base units: ratio 0..1, seconds, bytes, count
	Details string            `json:"details,omitempty"` // short diagnostics for a ticket, bounded in size
	// ReportOnly, when set, says why a breach of this series files no
	// ticket: a finding of a policy the config does not require (no
	// antivirus at all while antivirus.required is false). The series keeps
	// its metric and alert state; ticketing leaves it alone. The check
	// decides, from its options, series by series. (Left out of JSON when
	// empty: /api/v1/status and `l2agent check --json` show it only when set.)
	ReportOnly string `json:"report_only,omitempty"`
}

// BoolValue is the Observation value of a yes/no finding: 1 or 0.
func BoolValue(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

// MaxDetails bounds Observation.Details and diagnostics text.
const MaxDetails = 4096

// Env is what every check gets from the agent.
type Env struct {
	Paths    configs.Paths
	Hostname string
	Logger   *slog.Logger
}

// Log returns the logger of e, or slog.Default() when it has none.
func (e Env) Log() *slog.Logger {
	if e.Logger != nil {
		return e.Logger
	}
	return slog.Default()
}

// CommandRoot is the root the programs of the checks run chrooted into
// (command.Options.Root): paths.rootfs when paths.chroot is set, else "".
func (e Env) CommandRoot() string {
	if e.Paths.Chroot && e.Paths.Rootfs != "" && e.Paths.Rootfs != "/" {
		return e.Paths.Rootfs
	}
	return ""
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
	c.Options = configs.CheckKinds.OptionsOr(c.Kind, c.Options) // built by hand: the defaults
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
