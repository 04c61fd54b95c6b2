package logrotate

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/l2agent/l2agent/configs"
	"github.com/l2agent/l2agent/internal/remediatetest"
)

const appConfig = `# rotated by l2agent's test
/var/log/app/*.log "/var/log/app/with space.txt"
{
	daily
	rotate 7
	postrotate
		[ -f /run/app.pid ] && kill -USR1 "$(cat /run/app.pid)" || { echo none; }
	endscript
}
`

// hostWithApp writes the app's logrotate config and one log under a new
// root and returns the root.
func hostWithApp(t *testing.T, log bool) string {
	t.Helper()
	root := t.TempDir()
	remediatetest.Fill(t, 0, filepath.Join(root, "var/log/app/.keep"))
	require.NoError(t, os.MkdirAll(filepath.Join(root, "etc/logrotate.d"), 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(root, "etc/logrotate.d/app"), []byte(appConfig), 0o644))
	if log {
		remediatetest.Fill(t, 5000, filepath.Join(root, "var/log/app/a.log"))
	}
	return root
}

func TestCommand(t *testing.T) {
	root := hostWithApp(t, true)
	logs := filepath.Join(root, "var/log/app")
	tc := remediatetest.CommandCase{Action: "logrotate", Check: "disk", Settings: "allow_configs: [/etc/logrotate.d/app]", Params: "{config: /etc/logrotate.d/app}",
		Root: root, Script: fmt.Sprintf("mv '%[1]s/a.log' '%[1]s/a.log.1' && : > '%[1]s/a.log'", logs),
		WantArgs: []string{"-f", "/etc/logrotate.d/app"}, WantResult: "success: rotated /etc/logrotate.d/app; alert cleared"}
	tc.Run(t)
}

// logrotate exits 0 when no log matches (missingok) or none needed
// rotating; a read-only log directory makes it fail or, with a stand-in that
// exits 0, change nothing. Each is a failure with the reason.
func TestNoEffect(t *testing.T) {
	const settings, params = "allow_configs: [/etc/logrotate.d/app]", "{config: /etc/logrotate.d/app}"
	const ran = "failed: STANDIN -f /etc/logrotate.d/app exited 0; no effect: "
	t.Run("nothing to rotate", func(t *testing.T) {
		tc := remediatetest.CommandCase{Action: "logrotate", Check: "disk", Settings: settings, Params: params, Root: hostWithApp(t, false),
			WantArgs: []string{"-f", "/etc/logrotate.d/app"}, WantResult: ran + "nothing to rotate (no log file matches /var/log/app/*.log /var/log/app/with space.txt)"}
		tc.Run(t)
	})
	t.Run("nothing rotated", func(t *testing.T) {
		tc := remediatetest.CommandCase{Action: "logrotate", Check: "disk", Settings: settings, Params: params, Root: hostWithApp(t, true),
			WantArgs: []string{"-f", "/etc/logrotate.d/app"}, WantResult: ran + "nothing rotated (1 logs matching /var/log/app/*.log /var/log/app/with space.txt unchanged)"}
		tc.Run(t)
	})
	t.Run("read-only file system", func(t *testing.T) {
		root := hostWithApp(t, false)
		logs := filepath.Join(root, "var/log/app")
		remediatetest.ReadOnlyTmpfs(t, logs, func() { remediatetest.Fill(t, 5000, filepath.Join(logs, "a.log")) })
		tc := remediatetest.CommandCase{Action: "logrotate", Check: "disk", Settings: settings, Params: params, Root: root,
			Script:   fmt.Sprintf("mv '%[1]s/a.log' '%[1]s/a.log.1' 2>/dev/null", logs), // fails; exits 0 all the same
			WantArgs: []string{"-f", "/etc/logrotate.d/app"}, WantResult: ran + "read-only file system (/var/log/app)"}
		tc.Run(t)
	})
	t.Run("config unreadable", func(t *testing.T) {
		root := t.TempDir()
		tc := remediatetest.CommandCase{Action: "logrotate", Check: "disk", Settings: settings, Params: params, Root: root,
			WantArgs: []string{"-f", "/etc/logrotate.d/app"},
			WantResult: ran + "cannot tell which logs it rotates: read /etc/logrotate.d/app: open " + root +
				"/etc/logrotate.d/app: no such file or directory"}
		tc.Run(t)
	})
}

// The patterns of a config: before each block's `{`, quoted or not, on the
// header line or the lines before; directives, block insides and scripts
// (braces and all) are skipped; includes are followed.
func TestConfigPatterns(t *testing.T) {
	root := t.TempDir()
	write := func(p, body string) {
		require.NoError(t, os.MkdirAll(filepath.Dir(filepath.Join(root, p)), 0o755))
		require.NoError(t, os.WriteFile(filepath.Join(root, p), []byte(body), 0o644))
	}
	write("/etc/logrotate.conf", "weekly\nrotate 4\ncreate\ninclude /etc/logrotate.d\n/var/log/wtmp {\n    missingok\n    monthly\n}\n")
	write("/etc/logrotate.d/nginx", "/var/log/nginx/*.log {\n\tdaily\n\tsharedscripts\n\tprerotate\n\t\tif [ -d /etc/logrotate.d/httpd-prerotate ]; then run-parts /etc/logrotate.d/httpd-prerotate; fi \\\n\tendscript\n\tpostrotate\n\t\tinvoke-rc.d nginx rotate >/dev/null 2>&1\n\tendscript\n}\n")
	write("/etc/logrotate.d/app", appConfig)
	pats, err := configPatterns(root, "/etc/logrotate.conf")
	require.NoError(t, err)
	require.Equal(t, []string{"/var/log/wtmp", "/var/log/app/*.log", "/var/log/app/with space.txt", "/var/log/nginx/*.log"}, pats)
	_, err = configPatterns(root, "/etc/logrotate.d/none")
	require.ErrorContains(t, err, "read /etc/logrotate.d/none")
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

func FuzzParseConfig(f *testing.F) {
	f.Add(appConfig)
	f.Add("include /etc/x\n/a {\n}\n\"/b c\"\n{\npostrotate\n}\nendscript\n}\n")
	f.Fuzz(func(t *testing.T, text string) {
		pats, _ := parseConfig(text)
		for _, p := range pats {
			require.NotEmpty(t, p)
			require.NotContains(t, p, "\n")
		}
	})
}
