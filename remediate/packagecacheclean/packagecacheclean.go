// Package packagecacheclean is the remediation action package_cache_clean:
// it empties the package manager's download cache.
package packagecacheclean

import (
	"context"
	"errors"
	"fmt"

	"github.com/l2agent/l2agent/internal/textfmt"
	"github.com/l2agent/l2agent/remediate"
	"github.com/l2agent/l2agent/remediate/internal/pkgmgr"
	"github.com/l2agent/l2agent/remediate/internal/space"
)

// packageCacheClean empties the package manager's download cache:
// apt-get clean, dnf clean packages, zypper clean, apk cache clean.
type packageCacheClean struct {
	manager string
	command string
	root    string
}

type cachePlan struct {
	argv  []string
	cache string
}

func (c *packageCacheClean) Name() string { return "package_cache_clean" }

func (c *packageCacheClean) Plan(ctx context.Context, a remediate.Alert) (remediate.Plan, error) {
	m, err := pkgmgr.Find(c.manager, c.root)
	if err != nil {
		return remediate.Plan{}, err
	}
	cmd := m.Command
	if c.command != "" {
		cmd = c.command
	}
	argv := append([]string{cmd}, m.Clean...)
	return remediate.Plan{Action: c.Name(), Text: fmt.Sprintf("run %s (empties %s)", remediate.ArgvString(argv), m.Cache),
		Expect: "space freed in " + m.Cache,
		Data:   cachePlan{argv: argv, cache: pkgmgr.JoinRoot(c.root, m.Cache)}}, nil
}

// Apply runs the manager's clean and measures what the cache holds on disk
// before and after: the space freed is the effect. A cache that was empty,
// or on a read-only file system, where the manager exits 0 all the same,
// is no effect.
func (c *packageCacheClean) Apply(ctx context.Context, p remediate.Plan) (remediate.Outcome, error) {
	cp, ok := p.Data.(cachePlan)
	if !ok {
		return remediate.Outcome{}, errors.New("package_cache_clean: not a package_cache_clean plan")
	}
	dirs := []string{cp.cache}
	before := space.MeasureAll(ctx, dirs, nil)
	r, err := remediate.RunCommand(ctx, cp.argv...)
	after := space.MeasureAll(ctx, dirs, nil)
	freed, effect, none := space.Freed("cached packages", before, after)
	text := "package cache cleaned, freed " + textfmt.HumanBytes(freed)
	if freed <= 0 {
		text = remediate.Exited0(cp.argv) + ", freed 0 B"
	}
	o, err := remediate.CommandOutcome(r, err, text)
	o.FreedBytes, o.Effect, o.NoEffect = freed, effect, none
	return o, err
}
