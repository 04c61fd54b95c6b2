package antivirus

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/l2agent/l2agent/checks"
	"github.com/l2agent/l2agent/configs"
)

// TestRequiredPolicy: a host without any engine is report-only unless the
// config requires antivirus; an engine that is named (or installed) and
// down is a finding whatever the policy.
func TestRequiredPolicy(t *testing.T) {
	t.Parallel()
	run := func(required bool, engines ...string) checks.Observation {
		t.Helper()
		c, err := checks.New(configs.Check{Name: "av", Kind: "antivirus", Options: &Options{
			Required: required, Engines: engines,
			ClamAV: ClamAVOptions{ClamdConf: "/nonexistent/clamd.conf"}, MDATP: MDATPOptions{Path: "/nonexistent/mdatp"}}},
			checks.Env{Paths: configs.Paths{Procfs: "/proc", Rootfs: "/"}})
		require.NoError(t, err)
		obs, err := c.Run(context.Background())
		require.NoError(t, err)
		require.NotEmpty(t, obs)
		require.Equal(t, "antivirus_up", obs[0].Metric)
		require.Equal(t, 0.0, obs[0].Value)
		return obs[0]
	}
	none := run(false)
	require.Equal(t, "none", none.Labels["engine"])
	require.Contains(t, none.ReportOnly, "antivirus is not required")
	require.Contains(t, none.ReportOnly, "required: false")

	none = run(true)
	require.Equal(t, "none", none.Labels["engine"])
	require.Empty(t, none.ReportOnly, "required: no engine is a finding")

	for _, required := range []bool{false, true} {
		clam := run(required, "clamav")
		require.Equal(t, "clamav", clam.Labels["engine"])
		require.Empty(t, clam.ReportOnly, "a named engine that is down is a finding (required: %v)", required)
	}
}

func TestRequiredOption(t *testing.T) {
	t.Parallel()
	cfg, err := configs.Parse("agent.yaml", []byte("checks:\n  - name: av\n    kind: antivirus\n    antivirus: {required: true}\n    rules: [{metric: antivirus_up, direction: below, crit: 0}]\n"))
	require.NoError(t, err)
	require.True(t, cfg.Checks[0].Options.(*Options).Required)
	cfg, err = configs.Parse("agent.yaml", []byte("checks:\n  - name: av\n    kind: antivirus\n    rules: [{metric: antivirus_up, direction: below, crit: 0}]\n"))
	require.NoError(t, err)
	require.False(t, cfg.Checks[0].Options.(*Options).Required, "not required unless said")
	_, err = configs.Parse("agent.yaml", []byte("checks:\n  - name: av\n    kind: antivirus\n    antivirus: {required: always}\n"))
	require.ErrorContains(t, err, `agent.yaml:4:27: checks[0].antivirus.required: expected true or false, got "always"`)
}
