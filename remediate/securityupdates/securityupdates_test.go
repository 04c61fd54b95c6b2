package securityupdates

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/l2agent/l2agent/configs"
	"github.com/l2agent/l2agent/internal/alert"
	"github.com/l2agent/l2agent/internal/remediatetest"
	"github.com/l2agent/l2agent/internal/testkit"
	"github.com/l2agent/l2agent/remediate"
)

func TestSecurityUpdates(t *testing.T) {
	root := t.TempDir()
	status := filepath.Join(root, "var/lib/dpkg/status")
	require.NoError(t, os.MkdirAll(filepath.Dir(status), 0o755))
	require.NoError(t, os.MkdirAll(filepath.Join(root, "var/run"), 0o755))
	require.NoError(t, os.MkdirAll(filepath.Join(root, "etc/apt/apt.conf.d"), 0o755))
	dpkg := "Package: openssl\nStatus: install ok installed\nArchitecture: amd64\nVersion: 3.0.1\n\nPackage: gone\nStatus: deinstall ok config-files\nArchitecture: amd64\nVersion: 1\n"
	require.NoError(t, os.WriteFile(status, []byte(dpkg), 0o644))
	// The stand-in upgrades openssl and leaves a reboot-required flag.
	script := fmt.Sprintf("sed -i 's/3.0.1/3.0.2/' '%s'\ntouch '%s/var/run/reboot-required'\necho 'Packages that will be upgraded: openssl'", status, root)
	cmd, argvFile := testkit.StandIn(t, "unattended-upgrade", script, 0)
	yaml := fmt.Sprintf(`
remediation:
  actions:
    security_updates: {enabled: true, manager: apt, command: %s, maintenance_window: "0 2 * * *", maintenance_duration: 2h}
  rules:
    - {check: patches, metric: patches_pending, labels: {kind: security}, action: security_updates}
`, cmd)
	clk := testkit.NewClock("2026-08-01T12:00:00Z")
	dir := t.TempDir()
	e, err := remediate.NewWithEnv(remediatetest.Parse(t, yaml), dir, nil, nil, clk.Now, remediate.Env{Procfs: "/proc", Root: root})
	require.NoError(t, err)
	a := remediate.Alert{Key: "h/patches", Check: "patches", Metric: "patches_pending", Labels: map[string]string{"kind": "security"}, State: alert.StateWarn, Value: 3}

	// Outside the window: nothing runs.
	at, attempted := e.Remediate(context.Background(), a, remediatetest.Cleared(true))
	require.False(t, attempted)
	require.True(t, strings.HasPrefix(at.Result, remediate.ResultSkippedWindow), at.Result)
	_, err = os.Stat(argvFile)
	require.True(t, os.IsNotExist(err))

	// Automatic reboots configured: refused, never run.
	clk.Add(15 * time.Hour) // 03:00 the next day
	conf := filepath.Join(root, "etc/apt/apt.conf.d/50unattended-upgrades")
	require.NoError(t, os.WriteFile(conf, []byte("Unattended-Upgrade::Automatic-Reboot \"true\";\n"), 0o644))
	at, attempted = e.Remediate(context.Background(), a, remediatetest.Cleared(true))
	require.True(t, attempted)
	require.Contains(t, at.Result, "failed: plan: refusing")
	_, err = os.Stat(argvFile)
	require.True(t, os.IsNotExist(err))

	require.NoError(t, os.WriteFile(conf, []byte("// Unattended-Upgrade::Automatic-Reboot \"true\";\nUnattended-Upgrade::Automatic-Reboot \"false\";\n"), 0o644))
	clk.Add(24 * time.Hour)
	at, attempted = e.Remediate(context.Background(), a, remediatetest.Cleared(false))
	require.True(t, attempted)
	require.Equal(t, []string{cmd, "-v"}, testkit.RecordedArgv(t, argvFile))
	require.Equal(t, "not_verified: 1 packages changed; a reboot is required (not done); alert still firing after the action", at.Result)
	require.Contains(t, at.Output, "openssl:amd64 3.0.1 → 3.0.2")
	recs, err := remediate.ReadAudit(filepath.Join(dir, remediate.AuditFile), 0)
	require.NoError(t, err)
	require.True(t, recs[len(recs)-1].RebootRequired)
	require.Equal(t, "installed packages upgraded (/var/lib/dpkg)", recs[len(recs)-1].Expect)
	require.Equal(t, "1 packages upgraded: openssl:amd64 3.0.1 → 3.0.2", recs[len(recs)-1].Effect)
}

const dpkgStatus = "Package: openssl\nStatus: install ok installed\nArchitecture: amd64\nVersion: 3.0.1\n"

// unattended-upgrade exits 0 when it found nothing it may upgrade, and when
// it could not write a package database the sandbox left read-only: no
// installed version changed, a failure with the reason.
func TestNoEffect(t *testing.T) {
	const settings = `manager: apt, maintenance_window: "0 * * * *"`
	const ran = "failed: STANDIN -v exited 0, no package changed; no effect: "
	t.Run("nothing upgraded", func(t *testing.T) {
		root := t.TempDir()
		require.NoError(t, os.MkdirAll(filepath.Join(root, "var/lib/dpkg"), 0o755))
		require.NoError(t, os.WriteFile(filepath.Join(root, "var/lib/dpkg/status"), []byte(dpkgStatus), 0o644))
		tc := remediatetest.CommandCase{Action: "security_updates", Check: "patches", Settings: settings, Params: "{}", Root: root,
			Script:   "echo 'No packages found that can be upgraded unattended and no pending auto-removals'",
			WantArgs: []string{"-v"}, WantResult: ran + "nothing upgraded (no installed package changed; 1 read from /var/lib/dpkg)"}
		tc.Run(t)
	})
	t.Run("read-only file system", func(t *testing.T) {
		root := t.TempDir()
		dpkg := filepath.Join(root, "var/lib/dpkg")
		remediatetest.ReadOnlyTmpfs(t, dpkg, func() {
			require.NoError(t, os.WriteFile(filepath.Join(dpkg, "status"), []byte(dpkgStatus), 0o644))
		})
		tc := remediatetest.CommandCase{Action: "security_updates", Check: "patches", Settings: settings, Params: "{}", Root: root,
			Script:   fmt.Sprintf("sed -i 's/3.0.1/3.0.2/' '%s/status' 2>/dev/null", dpkg), // fails; exits 0 all the same
			WantArgs: []string{"-v"}, WantResult: ran + "read-only file system (/var/lib/dpkg)"}
		tc.Run(t)
	})
	t.Run("no package database", func(t *testing.T) {
		tc := remediatetest.CommandCase{Action: "security_updates", Check: "patches", Settings: settings, Params: "{}", Root: t.TempDir(),
			WantArgs: []string{"-v"}, WantResult: ran + "cannot read the installed packages (/var/lib/dpkg)"}
		tc.Run(t)
	})
}

func TestValidation(t *testing.T) {
	p := configs.Default().Remediation.Actions["security_updates"]
	require.Equal(t, configs.Duration(time.Hour), p.Timeout)
	require.Equal(t, configs.Duration(24*time.Hour), p.Cooldown)
	remediatetest.RequireErrors(t, `remediation:
  actions:
    security_updates: {enabled: true, manager: apk}
`,
		`test.yaml:3:23: remediation action security_updates: runs only inside a maintenance window: set maintenance_window (a cron spec)`,
		`test.yaml:3:48: remediation action security_updates: apk has no security-only updates`)
	remediatetest.RequireErrors(t, `remediation:
  actions:
    security_updates: {manager: yum, command: /usr/bin/yum}
`,
		`test.yaml:3:33: remediation action security_updates: manager "yum": want apt, dnf, zypper, apk`)
}
