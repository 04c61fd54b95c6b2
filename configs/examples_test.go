package configs_test

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/l2agent/l2agent/checks/antivirus"
	"github.com/l2agent/l2agent/checks/mfa"
	"github.com/l2agent/l2agent/configs"
)

// policies returns whether cfg requires antivirus and two-factor
// authentication, failing unless it has exactly one check of each kind.
func policies(t *testing.T, cfg *configs.Config) (av, twoFactor bool) {
	t.Helper()
	var avs, mfas []bool
	for _, c := range cfg.Checks {
		switch o := c.Options.(type) {
		case *antivirus.Options:
			avs = append(avs, o.Required)
		case *mfa.Options:
			mfas = append(mfas, o.Required)
		}
	}
	require.Len(t, avs, 1, "one antivirus check")
	require.Len(t, mfas, 1, "one mfa check")
	return avs[0], mfas[0]
}

// TestDefaultRequiresNoPolicy: out of the box, antivirus and 2FA are not
// required (their findings are reported, not ticketed).
func TestDefaultRequiresNoPolicy(t *testing.T) {
	av, twoFactor := policies(t, configs.Default())
	require.False(t, av, "the default does not require antivirus")
	require.False(t, twoFactor, "the default does not require two-factor authentication")
}

// TestExampleConfigs: every file of examples/ validates and is listed in
// its README; the strict profile requires both policies and enables real
// remediation actions, each used by a rule, with every rule's action enabled.
func TestExampleConfigs(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("examples", "*.yaml"))
	require.NoError(t, err)
	require.Contains(t, files, filepath.Join("examples", "strict.yaml"))
	readme, err := os.ReadFile(filepath.Join("examples", "README.md"))
	require.NoError(t, err)
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			_, err := configs.Load(f)
			require.NoError(t, err)
			require.Contains(t, string(readme), "("+filepath.Base(f)+")", "examples/README.md links it")
		})
	}

	t.Run("strict", func(t *testing.T) {
		cfg, err := configs.Load(filepath.Join("examples", "strict.yaml"))
		require.NoError(t, err)
		av, twoFactor := policies(t, cfg)
		require.True(t, av, "strict requires antivirus")
		require.True(t, twoFactor, "strict requires two-factor authentication")

		var enabled []string
		for name, p := range cfg.Remediation.Actions {
			if p.Enabled {
				_, known := configs.ActionKinds.Lookup(name)
				require.True(t, known, "action %s is a registered action", name)
				require.False(t, p.DryRun, "action %s really runs", name)
				enabled = append(enabled, name)
			}
		}
		require.NotEmpty(t, enabled, "strict enables remediation")
		require.False(t, cfg.Remediation.DryRun)
		var used []string
		for _, r := range cfg.Remediation.Rules {
			require.Contains(t, enabled, r.Action, "the rule for %s/%s runs an enabled action", r.Check, r.Metric)
			used = append(used, r.Action)
		}
		for _, name := range enabled {
			require.True(t, slices.Contains(used, name), "enabled action %s is used by a rule", name)
			require.Contains(t, string(readme), "`"+name+"`", "examples/README.md names the action %s", name)
		}
		// Every check of the default, with the default's rules: strict adds
		// policies and rules, never drops one.
		def := configs.Default()
		for _, dc := range def.Checks {
			i := slices.IndexFunc(cfg.Checks, func(c configs.Check) bool { return c.Name == dc.Name })
			require.GreaterOrEqual(t, i, 0, "strict has the default's check %s", dc.Name)
			for _, dr := range dc.Rules {
				require.True(t, slices.ContainsFunc(cfg.Checks[i].Rules, func(r configs.Rule) bool {
					return r.Metric == dr.Metric && strings.EqualFold(r.Direction, dr.Direction) &&
						eqPtr(r.Warn, dr.Warn) && eqPtr(r.Crit, dr.Crit) && r.For == dr.For
				}), "strict keeps the default rule %s of check %s", dr.Metric, dc.Name)
			}
		}
	})
}

func eqPtr(a, b *float64) bool { return a == nil && b == nil || a != nil && b != nil && *a == *b }
