package packagecacheclean

import (
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/l2agent/l2agent/configs"
	"github.com/l2agent/l2agent/internal/remediatetest"
	"github.com/l2agent/l2agent/internal/textfmt"
)

// Each manager's clean command, on a stand-in that empties the cache under
// a test root: the space freed is measured in the cache, counted and
// audited.
func TestCommand(t *testing.T) {
	for _, m := range []struct {
		manager, cache string
		args           []string
	}{
		{"apt", "/var/cache/apt/archives", []string{"clean"}},
		{"dnf", "/var/cache/dnf", []string{"clean", "packages"}},
		{"zypper", "/var/cache/zypp/packages", []string{"--non-interactive", "clean"}},
		{"apk", "/var/cache/apk", []string{"cache", "clean"}},
	} {
		t.Run(m.manager, func(t *testing.T) {
			root := t.TempDir()
			cache := filepath.Join(root, m.cache)
			size := remediatetest.Fill(t, 20000, filepath.Join(cache, "a.pkg"), filepath.Join(cache, "sub", "b.pkg"))
			tc := remediatetest.CommandCase{Action: "package_cache_clean", Check: "disk", Settings: "manager: " + m.manager, Params: "{}", Root: root,
				Script:   fmt.Sprintf("rm -rf '%s'/*", cache),
				WantArgs: m.args, WantResult: "success: package cache cleaned, freed " + textfmt.HumanBytes(size) + "; alert cleared", WantFreed: size}
			tc.Run(t)
		})
	}
}

// apt-get clean exits 0 when it could not delete anything: an empty cache,
// or one on a read-only file system (as under the packaged systemd unit
// without a ReadWritePaths= drop-in). Either is a failure, with the reason.
func TestNoEffect(t *testing.T) {
	t.Run("nothing to free", func(t *testing.T) {
		root := t.TempDir()
		cache := filepath.Join(root, "var/cache/apt/archives")
		remediatetest.Fill(t, 0, filepath.Join(cache, "lock"))
		tc := remediatetest.CommandCase{Action: "package_cache_clean", Check: "disk", Settings: "manager: apt", Params: "{}", Root: root,
			WantArgs:   []string{"clean"},
			WantResult: "failed: STANDIN clean exited 0, freed 0 B; no effect: nothing to free (no cached packages in " + cache + ")"}
		tc.Run(t)
	})
	t.Run("read-only file system", func(t *testing.T) {
		root := t.TempDir()
		cache := filepath.Join(root, "var/cache/apt/archives")
		var size int64
		remediatetest.ReadOnlyTmpfs(t, cache, func() { size = remediatetest.Fill(t, 20000, filepath.Join(cache, "a.deb")) })
		tc := remediatetest.CommandCase{Action: "package_cache_clean", Check: "disk", Settings: "manager: apt", Params: "{}", Root: root,
			Script:   fmt.Sprintf("rm -f '%s'/*.deb 2>/dev/null", cache), // fails; exits 0 as apt-get does
			WantArgs: []string{"clean"},
			WantResult: fmt.Sprintf("failed: STANDIN clean exited 0, freed 0 B; no effect: read-only file system (%s: %s of cached packages left)",
				cache, textfmt.HumanBytes(size))}
		tc.Run(t)
	})
}

func TestValidation(t *testing.T) {
	p := configs.Default().Remediation.Actions["package_cache_clean"]
	require.Equal(t, configs.Duration(5*time.Minute), p.Timeout)
	require.Equal(t, configs.Duration(30*time.Minute), p.Cooldown)
	remediatetest.RequireErrors(t, `remediation:
  actions:
    package_cache_clean: {manager: pacman, command: apt-get}
`,
		`test.yaml:3:36: remediation action package_cache_clean: manager "pacman": want apt, dnf, zypper, apk`,
		`test.yaml:3:53: remediation action package_cache_clean: command "apt-get": must be a clean absolute path`)
	remediatetest.RequireErrors(t, `remediation:
  actions:
    package_cache_clean: {command: /usr/bin/apt-get}
`,
		`test.yaml:3:36: remediation action package_cache_clean: set manager along with command`)
}
