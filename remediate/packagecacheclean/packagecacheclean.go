// Package packagecacheclean is the remediation action package_cache_clean:
// it empties the package manager's download cache.
package packagecacheclean

import (
	"context"
	"errors"
	"fmt"
	"syscall"

	"github.com/l2agent/l2agent/internal/textfmt"
	"github.com/l2agent/l2agent/remediate"
	"github.com/l2agent/l2agent/remediate/internal/pkgmgr"
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
		Data: cachePlan{argv: argv, cache: pkgmgr.JoinRoot(c.root, m.Cache)}}, nil
}

func (c *packageCacheClean) Apply(ctx context.Context, p remediate.Plan) (remediate.Outcome, error) {
	cp, ok := p.Data.(cachePlan)
	if !ok {
		return remediate.Outcome{}, errors.New("package_cache_clean: not a package_cache_clean plan")
	}
	before, okBefore := freeBytes(cp.cache)
	r, err := remediate.RunCommand(ctx, cp.argv...)
	var freed int64
	if after, okAfter := freeBytes(cp.cache); okBefore && okAfter && after > before {
		freed = after - before // about: other writers share the filesystem
	}
	o, err := remediate.CommandOutcome(r, err, "package cache cleaned, about "+textfmt.HumanBytes(freed)+" freed")
	o.FreedBytes = freed
	return o, err
}

// freeBytes is the free space of the filesystem holding p.
func freeBytes(p string) (int64, bool) {
	var s syscall.Statfs_t
	if syscall.Statfs(p, &s) != nil {
		return 0, false
	}
	return int64(s.Bfree) * s.Bsize, true
}
