package remediate

import (
	"context"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	_ "github.com/l2agent/l2agent/checks" // registers the check kinds the default config names
	"github.com/l2agent/l2agent/configs"
	"github.com/l2agent/l2agent/internal/testkit"
	_ "github.com/l2agent/l2agent/ticketing/all" // and its ticket backend
)

// parseRemediation parses a remediation: block with the config loader, so
// that defaults and validation are the real ones.
func parseRemediation(t *testing.T, yaml string) configs.Remediation {
	t.Helper()
	cfg, err := configs.Parse("test.yaml", []byte(yaml))
	require.NoError(t, err)
	return cfg.Remediation
}

func cleared(ok bool) VerifyFunc {
	return func(context.Context) (bool, error) { return ok, nil }
}

func newTestEngine(t *testing.T, yaml string, clk *testkit.Clock) (*Engine, *prometheus.Registry, string) {
	t.Helper()
	dir := t.TempDir()
	reg := prometheus.NewRegistry()
	e, err := New(parseRemediation(t, yaml), dir, nil, reg, clk.Now)
	require.NoError(t, err)
	return e, reg, dir
}
