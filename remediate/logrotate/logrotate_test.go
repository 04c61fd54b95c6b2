package logrotate

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/l2agent/l2agent/configs"
	"github.com/l2agent/l2agent/internal/remediatetest"
)

func TestCommand(t *testing.T) {
	tc := remediatetest.CommandCase{Action: "logrotate", Check: "disk", Settings: "allow_configs: [/etc/logrotate.d/nginx]", Params: "{config: /etc/logrotate.d/nginx}",
		WantArgs: []string{"-f", "/etc/logrotate.d/nginx"}, WantResult: "success: rotated /etc/logrotate.d/nginx; alert cleared"}
	tc.Run(t)
}

func TestValidation(t *testing.T) {
	require.Equal(t, "/usr/sbin/logrotate", configs.Default().Remediation.Actions["logrotate"].Settings.(*Settings).Command)
	remediatetest.RequireErrors(t, `remediation:
  actions:
    logrotate: {allow_configs: [/etc/logrotate.d/nginx, etc/x, /etc/../y], command: logrotate}
  rules:
    - {check: disk, action: logrotate, params: {config: ""}}
    - {check: disk, action: logrotate, params: {config: /etc/logrotate.d/apache2}}
`,
		`test.yaml:3:57: remediation action logrotate: allow_configs "etc/x": must be a clean absolute path`,
		`test.yaml:3:64: remediation action logrotate: allow_configs "/etc/../y": must be a clean absolute path`,
		`test.yaml:3:85: remediation action logrotate: command "logrotate": must be a clean absolute path`,
		`test.yaml:5:48: remediation action logrotate: config is required`,
		`test.yaml:6:57: remediation action logrotate: config "/etc/logrotate.d/apache2" is not in allow_configs`,
	)
}
