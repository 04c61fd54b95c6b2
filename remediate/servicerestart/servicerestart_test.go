package servicerestart

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/l2agent/l2agent/configs"
	"github.com/l2agent/l2agent/internal/remediatetest"
)

func TestCommand(t *testing.T) {
	for _, tc := range []remediatetest.CommandCase{
		{Action: "service_restart", Check: "antivirus", Settings: "allow_units: [clamav-daemon.service]", Params: "{unit: clamav-daemon.service}",
			WantArgs: []string{"--no-ask-password", "restart", "clamav-daemon.service"}, WantResult: "success: restarted clamav-daemon.service; alert cleared"},
		{Action: "service_restart", Check: "antivirus", Settings: "allow_units: [clamav-daemon.service]", Params: "{unit: clamav-daemon.service}",
			Script: "echo 'Job for clamav-daemon.service failed.' >&2", Code: 1,
			WantArgs: []string{"--no-ask-password", "restart", "clamav-daemon.service"}, WantResult: "failed: STANDIN exited with status 1"},
	} {
		t.Run(tc.Name(), tc.Run)
	}
}

func TestValidation(t *testing.T) {
	require.Equal(t, "/usr/bin/systemctl", configs.Default().Remediation.Actions["service_restart"].Settings.(*Settings).Command)
	remediatetest.RequireErrors(t, `remediation:
  actions:
    service_restart: {allow_units: [nginx.service, "x; reboot", sshd], command: /usr/bin/../bin/systemctl}
  rules:
    - {check: web, action: service_restart, params: {unit: ""}}
    - {check: web, action: service_restart, params: {unit: sshd.service}}
`,
		`test.yaml:3:52: remediation action service_restart: "x; reboot" is not a systemd unit name such as clamav-daemon.service`,
		`test.yaml:3:65: remediation action service_restart: "sshd" is not a systemd unit name such as clamav-daemon.service`,
		`test.yaml:3:81: remediation action service_restart: command "/usr/bin/../bin/systemctl": must be a clean absolute path`,
		`test.yaml:5:53: remediation action service_restart: unit is required`,
		`test.yaml:6:60: remediation action service_restart: unit "sshd.service" is not in allow_units`,
	)
}
