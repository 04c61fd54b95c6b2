package mfa

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/l2agent/l2agent/checks"
	"github.com/l2agent/l2agent/configs"
)

// TestRequiredPolicy: unless the config requires two-factor authentication,
// every finding is report-only but sshd accepting empty passwords.
func TestRequiredPolicy(t *testing.T) {
	t.Parallel()
	obs := func() []checks.Observation {
		return []checks.Observation{
			{Metric: "mfa_compliant", Labels: map[string]string{"control": "sshd"}},
			{Metric: "mfa_compliant", Labels: map[string]string{"control": "pam"}},
			{Metric: "mfa_users_unenrolled", Labels: map[string]string{"group": "sudo"}, Value: 1},
			{Metric: "mfa_sshd_permit_root_login", Value: 1},
			{Metric: "mfa_sshd_password_authentication", Value: 1},
			{Metric: "mfa_sshd_permit_empty_passwords", Value: 1},
		}
	}
	c := &mfaCheck{opts: Options{}.WithDefaults()}
	for _, o := range c.policy(obs()) {
		if o.Metric == "mfa_sshd_permit_empty_passwords" {
			require.Empty(t, o.ReportOnly, "empty passwords: a finding whatever the policy")
			continue
		}
		require.Contains(t, o.ReportOnly, "two-factor authentication is not required", o.Metric)
	}
	c.opts.Required = true
	for _, o := range c.policy(obs()) {
		require.Empty(t, o.ReportOnly, "required: %s is a finding", o.Metric)
	}
}

func TestRequiredOption(t *testing.T) {
	t.Parallel()
	cfg, err := configs.Parse("agent.yaml", []byte("checks:\n  - name: mfa\n    kind: mfa\n    mfa: {required: true}\n"))
	require.NoError(t, err)
	require.True(t, cfg.Checks[0].Options.(*Options).Required)
	cfg, err = configs.Parse("agent.yaml", []byte("checks:\n  - name: mfa\n    kind: mfa\n"))
	require.NoError(t, err)
	require.False(t, cfg.Checks[0].Options.(*Options).Required, "not required unless said")
}
