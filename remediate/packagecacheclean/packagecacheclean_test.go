package packagecacheclean

import (
	"testing"
	"time"

	"github.com/l2agent/l2agent/configs"
	"github.com/l2agent/l2agent/internal/remediatetest"
	"github.com/stretchr/testify/require"
)

func TestCommand(t *testing.T) {
	for _, tc := range []remediatetest.CommandCase{
		{Action: "package_cache_clean", Check: "disk", Settings: "manager: apt", Params: "{}",
			WantArgs: []string{"clean"}},
		{Action: "package_cache_clean", Check: "disk", Settings: "manager: dnf", Params: "{}",
			WantArgs: []string{"clean", "packages"}},
		{Action: "package_cache_clean", Check: "disk", Settings: "manager: zypper", Params: "{}",
			WantArgs: []string{"--non-interactive", "clean"}},
		{Action: "package_cache_clean", Check: "disk", Settings: "manager: apk", Params: "{}",
			WantArgs: []string{"cache", "clean"}},
	} {
		t.Run(tc.Name(), tc.Run)
	}
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
