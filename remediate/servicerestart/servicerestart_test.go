package servicerestart

import (
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/l2agent/l2agent/configs"
	"github.com/l2agent/l2agent/internal/remediatetest"
)

// systemctlScript is a stand-in systemctl: is-active prints the unit's
// state (kept next to the stand-in) and exits 3 unless it is active;
// restart sets the state to restarted.
func systemctlScript(initial, restarted string) string {
	return fmt.Sprintf(`state=STANDIN.state
[ -f "$state" ] || echo %s > "$state"
case "$1" in
is-active) cat "$state"; [ "$(cat "$state")" = active ] && exit 0; exit 3;;
--no-ask-password) echo %s > "$state";;
esac`, initial, restarted)
}

var unitCalls = [][]string{{"is-active", "clamav-daemon.service"}, {"--no-ask-password", "restart", "clamav-daemon.service"}, {"is-active", "clamav-daemon.service"}}

func TestCommand(t *testing.T) {
	for _, tc := range []remediatetest.CommandCase{
		{Action: "service_restart", Check: "antivirus", Settings: "allow_units: [clamav-daemon.service]", Params: "{unit: clamav-daemon.service}",
			Script:    systemctlScript("failed", "active"),
			WantCalls: unitCalls, WantResult: "success: restarted clamav-daemon.service; alert cleared"},
		{Action: "service_restart", Check: "antivirus", Settings: "allow_units: [clamav-daemon.service]", Params: "{unit: clamav-daemon.service}",
			Script: "[ \"$1\" = is-active ] && { echo failed; exit 3; }\necho 'Job for clamav-daemon.service failed.' >&2", Code: 1,
			WantCalls: unitCalls[:2], WantResult: "failed: STANDIN exited with status 1"},
	} {
		t.Run(tc.Name(), tc.Run)
	}
}

// systemctl restart exits 0 for a Type=simple service that dies at once:
// the unit is still not active, and the restart is a failure that says so.
func TestNoEffect(t *testing.T) {
	tc := remediatetest.CommandCase{Action: "service_restart", Check: "antivirus", Settings: "allow_units: [clamav-daemon.service]", Params: "{unit: clamav-daemon.service}",
		Script:    systemctlScript("failed", "failed"),
		WantCalls: unitCalls,
		WantResult: "failed: STANDIN --no-ask-password restart clamav-daemon.service exited 0; " +
			"no effect: unit still inactive (clamav-daemon.service is failed after the restart; was failed)"}
	tc.Run(t)
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
