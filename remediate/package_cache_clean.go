package remediate

import (
	"context"
	"errors"
	"fmt"
	"os"
	"syscall"

	"github.com/l2agent/l2agent/internal/textfmt"
)

// packageManager is one package manager and what the actions run with it.
type packageManager struct {
	name     string
	command  string   // default absolute path
	clean    []string // args of package_cache_clean
	cache    string   // the package cache, to measure what cleaning freed
	security []string // args of security_updates; nil: not supported
	secCmd   string   // default program of security_updates, if not command
}

var packageManagers = []packageManager{
	{name: "apt", command: "/usr/bin/apt-get", clean: []string{"clean"}, cache: "/var/cache/apt/archives",
		secCmd: "/usr/bin/unattended-upgrade", security: []string{"-v"}},
	{name: "dnf", command: "/usr/bin/dnf", clean: []string{"clean", "packages"}, cache: "/var/cache/dnf",
		security: []string{"upgrade", "--security", "-y"}},
	{name: "zypper", command: "/usr/bin/zypper", clean: []string{"--non-interactive", "clean"}, cache: "/var/cache/zypp/packages",
		security: []string{"--non-interactive", "patch", "--category", "security"}},
	{name: "apk", command: "/sbin/apk", clean: []string{"cache", "clean"}, cache: "/var/cache/apk"},
}

// findManager returns the configured manager, or the first one whose
// program exists under root.
func findManager(name, root string) (packageManager, error) {
	for _, m := range packageManagers {
		if name != "" && m.name == name {
			return m, nil
		}
		if name == "" {
			if _, err := os.Stat(joinRoot(root, m.command)); err == nil {
				return m, nil
			}
		}
	}
	if name != "" {
		return packageManager{}, fmt.Errorf("unknown package manager %q", name)
	}
	return packageManager{}, errors.New("no package manager found (apt-get, dnf, zypper, apk): set manager and command")
}

func joinRoot(root, p string) string {
	if root == "" || root == "/" {
		return p
	}
	return root + p
}

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

func (c *packageCacheClean) Plan(ctx context.Context, a Alert) (Plan, error) {
	m, err := findManager(c.manager, c.root)
	if err != nil {
		return Plan{}, err
	}
	cmd := m.command
	if c.command != "" {
		cmd = c.command
	}
	argv := append([]string{cmd}, m.clean...)
	return Plan{Action: c.Name(), Text: fmt.Sprintf("run %s (empties %s)", ArgvString(argv), m.cache),
		Data: cachePlan{argv: argv, cache: joinRoot(c.root, m.cache)}}, nil
}

func (c *packageCacheClean) Apply(ctx context.Context, p Plan) (Outcome, error) {
	cp, ok := p.Data.(cachePlan)
	if !ok {
		return Outcome{}, errors.New("package_cache_clean: not a package_cache_clean plan")
	}
	before, okBefore := freeBytes(cp.cache)
	r, err := RunCommand(ctx, cp.argv...)
	var freed int64
	if after, okAfter := freeBytes(cp.cache); okBefore && okAfter && after > before {
		freed = after - before // about: other writers share the filesystem
	}
	o, err := CommandOutcome(r, err, "package cache cleaned, about "+textfmt.HumanBytes(freed)+" freed")
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
