package mfa

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/l2agent/l2agent/checks"
	"github.com/l2agent/l2agent/configs"
)

func TestMFAConfig(t *testing.T) {
	t.Parallel()
	cfg, err := configs.Parse("agent.yaml", []byte("checks:\n  - name: mfa\n    kind: mfa\n    rules:\n      - metric: mfa_compliant\n        direction: below\n        crit: 0\n"))
	require.NoError(t, err)
	o := cfg.Checks[0].Options.(*Options)
	require.NotNil(t, o)
	require.Equal(t, Controls, o.Controls)
	require.Equal(t, []string{"sudo", "wheel", "admin"}, o.Groups)
	require.Equal(t, "/usr/sbin/sshd", o.SSHD.Binary)
	require.Equal(t, "/etc/ssh/sshd_config", o.SSHD.Config)
	require.Equal(t, []string{"keyboard-interactive"}, o.SSHD.SecondFactorMethods)
	require.Equal(t, "/etc/pam.d", o.PAM.Dir)
	require.Equal(t, "sshd", o.PAM.SSHDService)
	require.Equal(t, "sudo", o.PAM.SudoService)
	require.Equal(t, "/etc/passwd", o.Accounts.Passwd)
	require.Equal(t, DefaultModules, o.Modules)
	require.Equal(t, ScopeAll, o.Scope, "every connection is judged unless the config says otherwise")
	cfg, err = configs.Parse("agent.yaml", []byte("checks:\n  - name: mfa\n    kind: mfa\n    mfa: {scope: groups}\n"))
	require.NoError(t, err)
	require.Equal(t, ScopeGroups, cfg.Checks[0].Options.(*Options).Scope)

	_, err = configs.Parse("agent.yaml", []byte(`checks:
  - name: mfa
    kind: mfa
    mfa:
      controls: [sshd, ssh, sshd]
      groups: ["wheel", "a b"]
      sshd:
        binary: sbin/sshd
        probe_address: not-an-ip
      pam:
        sudo_service: ../sudo
        module_dirs: ["lib/security"]
      enrolment:
        modules: [pam_duo]
      nope: 1
      scope: admins
`))
	require.Error(t, err)
	for _, want := range []string{
		`agent.yaml:15:7: unknown key "nope"`,
		`agent.yaml:16:14: mfa scope "admins": want one of all, groups`,
		`mfa control "ssh": want one of sshd, pam, sudo, enrolment`,
		`mfa control "sshd" listed twice`,
		`group "a b": want a plain name`,
		`sshd.binary "sbin/sshd": must be an absolute path`,
		`sshd.probe_address "not-an-ip": want an IP address`,
		`pam.sudo_service "../sudo": want a service name`,
		`module dir "lib/security": must be an absolute path`,
		`enrolment module "pam_duo": factor files are known for pam_google_authenticator, pam_oath, pam_u2f, pam_yubico only`,
	} {
		require.Contains(t, err.Error(), want)
	}
	_, err = configs.Parse("agent.yaml", []byte("checks:\n  - name: mfa\n    kind: mfa\n    rules:\n      - metric: mfa_nope\n        crit: 1\n"))
	require.ErrorContains(t, err, `kind mfa has no metric "mfa_nope"`)
}

// TestMFAAllControls runs every control on a host that fails each of them:
// sshd lets a group in with a key only, the sshd PAM stack has nullok, sudo's
// has no MFA module, and a member of the group has no factor. Its output is
// the example of the README.
func TestMFAAllControls(t *testing.T) {
	sshd, hostKey := mfaSSHDEnv(t)
	mfaRealModule(t, "pam_google_authenticator")
	group, users := mfaTestGroup(t, "alice", "bob")
	dir := t.TempDir()
	mfaWriteFiles(t, dir, map[string]string{
		"ssh/sshd_config": "Include " + dir + "/ssh/sshd_config.d/*.conf\nKbdInteractiveAuthentication yes\nUsePAM yes\nPermitRootLogin no\n" +
			"AuthenticationMethods publickey,keyboard-interactive\n",
		"ssh/sshd_config.d/admins.conf": "# break-glass access for the admins\nMatch Group " + group + "\n    AuthenticationMethods publickey\n",
		"pam.d/common-auth":             "auth [success=1 default=ignore] pam_unix.so nullok\nauth requisite pam_deny.so\nauth required pam_permit.so\n",
		"pam.d/sshd":                    "# Debian's, with Google Authenticator added\n@include common-auth\nauth required pam_google_authenticator.so nullok\n",
		"pam.d/sudo":                    "#%PAM-1.0\n@include common-auth\n",
	})
	// alice is enrolled, bob is not
	aliceHome := mfaHomeOf(t, users[0])
	require.NoError(t, os.MkdirAll(aliceHome, 0o700))
	secret := filepath.Join(aliceHome, ".google_authenticator")
	require.NoError(t, os.WriteFile(secret, []byte(mfaTestSecret), 0o400))
	require.NoError(t, os.Chown(secret, mfaUIDOf(t, users[0]), -1))

	obs := runMFA(t, Options{
		Groups: []string{group},
		SSHD:   SSHDOptions{Binary: sshd, Config: filepath.Join(dir, "ssh/sshd_config"), Args: []string{"-h", hostKey}},
		PAM:    PAMOptions{Dir: filepath.Join(dir, "pam.d")},
	})
	var all []string
	for _, o := range obs {
		all = append(all, o.Metric+mfaLabels(o))
		t.Logf("%s%s = %g\n%s", o.Metric, mfaLabels(o), o.Value, o.Details)
	}
	require.Equal(t, []string{
		`mfa_compliant{control="sshd"}`, "mfa_sshd_permit_root_login", "mfa_sshd_password_authentication", "mfa_sshd_permit_empty_passwords",
		`mfa_compliant{control="pam"}`, `mfa_compliant{control="sudo"}`, `mfa_compliant{control="enrolment"}`, `mfa_users_unenrolled{group="` + group + `"}`,
	}, all)
	for _, ctl := range []string{"sshd", "pam", "sudo", "enrolment"} {
		require.Equal(t, 0.0, mfaObs(t, obs, "mfa_compliant", ctl).Value, ctl)
	}
	require.Equal(t, 1.0, mfaObs(t, obs, "mfa_users_unenrolled", group).Value)
	sshdDetails := mfaObs(t, obs, "mfa_compliant", "sshd").Details
	require.Contains(t, sshdDetails, "\n- "+filepath.Join(dir, "ssh/sshd_config.d/admins.conf")+":3")
	require.Equal(t, 1, strings.Count(sshdDetails, "\n- "), "the nullok of the PAM stack is control pam's finding, not sshd's too")
	require.Contains(t, sshdDetails, "note: the second factor goes through PAM service sshd")
	require.Contains(t, mfaObs(t, obs, "mfa_compliant", "pam").Details, filepath.Join(dir, "pam.d/sshd")+":3")
	require.Contains(t, mfaObs(t, obs, "mfa_compliant", "sudo").Details, "\n- "+filepath.Join(dir, "pam.d/sudo")+":2: @include common-auth\n  rule: no MFA module in the auth stack of service sudo")
	requireMemberFinding(t, mfaObs(t, obs, "mfa_users_unenrolled", group).Details, users[1], group)
}

func mfaHomeOf(t *testing.T, name string) string {
	t.Helper()
	a, err := readMFAAccounts("/etc/passwd", "/etc/group")
	require.NoError(t, err)
	require.Contains(t, a.users, name)
	return a.users[name].Home
}

func mfaUIDOf(t *testing.T, name string) int {
	t.Helper()
	a, err := readMFAAccounts("/etc/passwd", "/etc/group")
	require.NoError(t, err)
	return a.users[name].UID
}

func mfaLabels(o checks.Observation) string {
	for _, k := range []string{"control", "group"} {
		if v, ok := o.Labels[k]; ok {
			return "{" + k + `="` + v + `"}`
		}
	}
	return ""
}

func TestMFAFormatBounded(t *testing.T) {
	t.Parallel()
	var fs []mfaFinding
	for range 200 {
		fs = append(fs, mfaFinding{Where: "/etc/pam.d/sshd:1", Text: strings.Repeat("x", 50), Rule: "r"})
	}
	s := formatMFA("head", fs, nil)
	require.LessOrEqual(t, len(s), checks.MaxDetails)
	require.True(t, strings.HasSuffix(s, "(truncated)"))
}

// TestMFAChroot: with paths.chroot sshd -T runs chrooted into the rootfs, so
// its binary and config are named as the host names them, and the agent
// finds both under the rootfs, includes and all, for file:line.
func TestMFAChroot(t *testing.T) {
	t.Parallel()
	root := t.TempDir()
	mfaWriteFiles(t, root, map[string]string{
		"etc/passwd":                      "root:x:0:0:root:/root:/bin/bash\nalice:x:1000:1000::/home/alice:/bin/bash\n",
		"etc/group":                       "root:x:0:\nsudo:x:27:alice\n",
		"etc/ssh/sshd_config":             "Include /etc/ssh/sshd_config.d/*.conf\nUsePAM yes\n",
		"etc/ssh/sshd_config.d/pass.conf": "# for the old scanner\nPasswordAuthentication yes\n",
		"etc/pam.d/sshd":                  "auth required pam_unix.so\n",
		"usr/sbin/sshd":                   "",
	})
	sshdT, err := os.ReadFile("testdata/sshd-T-debian12.txt")
	require.NoError(t, err)
	var o Options
	o.Controls = []string{"sshd"}
	o.ApplyDefaults("")
	ch, err := checks.New(configs.Check{Name: "mfa", Kind: "mfa", Options: &o}, checks.Env{Paths: configs.Paths{Rootfs: root, Chroot: true}})
	require.NoError(t, err)
	c := ch.(*mfaCheck)
	var calls [][]string
	c.run = func(_ context.Context, argv []string) ([]byte, error) {
		calls = append(calls, argv)
		return sshdT, nil
	}
	obs, err := c.Run(context.Background())
	require.NoError(t, err)
	require.NotEmpty(t, calls, "sshd is installed under the rootfs")
	for _, argv := range calls {
		require.Equal(t, []string{"/usr/sbin/sshd", "-T", "-f", "/etc/ssh/sshd_config"}, argv[:4], "the host's paths, as the chrooted sshd sees them")
	}
	pw := mfaObs(t, obs, "mfa_sshd_password_authentication", "")
	require.Equal(t, 1.0, pw.Value)
	require.Contains(t, pw.Details, "/etc/ssh/sshd_config.d/pass.conf:2", "the include found under the rootfs, named as on the host")
	require.NotContains(t, pw.Details, root)

	// Not chrooted, sshd.binary is the agent's own: absent here, so sshd is not reported.
	o.SSHD.Binary = filepath.Join(root, "nonexistent/sshd")
	ch, err = checks.New(configs.Check{Name: "mfa", Kind: "mfa", Options: &o}, checks.Env{Paths: configs.Paths{Rootfs: root}})
	require.NoError(t, err)
	obs, err = ch.Run(context.Background())
	require.NoError(t, err)
	require.Empty(t, obs)
}

// TestMFAOneDefectOneFinding: a defect of the sshd PAM stack fails control
// pam only; sshd, whose own settings are right, stays compliant. A stack
// that requires a module not on disk is "users cannot log in", with its
// FILE:LINE, and no bypass.
func TestMFAOneDefectOneFinding(t *testing.T) {
	sshd, hostKey := mfaSSHDEnv(t)
	mfaRealModule(t, "pam_google_authenticator")
	group, _ := mfaTestGroup(t, "alice")
	dir := t.TempDir()
	mfaWriteFiles(t, dir, map[string]string{
		"ssh/sshd_config": "UsePAM yes\nKbdInteractiveAuthentication yes\nPermitRootLogin no\nPasswordAuthentication no\nAuthenticationMethods publickey,keyboard-interactive\n",
		"pam.d/sshd":      "auth required pam_unix.so\nauth required pam_google_authenticator.so nullok\n",
		"pam.d/sshd-gone": "auth required pam_unix.so\nauth required pam_google_authenticator.so\nauth required pam_u2f_removed.so\n",
	})
	opts := Options{
		Controls: []string{"sshd", "pam"},
		Groups:   []string{group},
		SSHD:     SSHDOptions{Binary: sshd, Config: filepath.Join(dir, "ssh/sshd_config"), Args: []string{"-h", hostKey}},
		PAM:      PAMOptions{Dir: filepath.Join(dir, "pam.d")},
	}
	for _, tc := range []struct{ service, where, rule, head string }{
		{"sshd", "pam.d/sshd:2", "nullok: users without an enrolled factor pass pam_google_authenticator without one", "lets users in without a second factor"},
		{"sshd-gone", "pam.d/sshd-gone:3", "users cannot log in through PAM service sshd-gone: the module file pam_u2f_removed.so is not on disk", "pam: NOT compliant: users cannot log in through PAM service sshd-gone"},
	} {
		opts.PAM.SSHDService = tc.service
		obs := runMFA(t, opts)
		s, p := mfaObs(t, obs, "mfa_compliant", "sshd"), mfaObs(t, obs, "mfa_compliant", "pam")
		t.Logf("\n%s\n%s", s.Details, p.Details)
		require.Equal(t, 1.0, s.Value, "sshd's settings are right: %s", s.Details)
		require.NotContains(t, s.Details, "\n- ")
		require.Contains(t, s.Details, "note: the second factor goes through PAM service "+tc.service)
		require.Equal(t, 0.0, p.Value)
		require.Contains(t, p.Details, tc.head)
		require.Contains(t, p.Details, "\n- "+filepath.Join(dir, tc.where)+": ")
		require.Contains(t, p.Details, tc.rule)
		require.Equal(t, 1, strings.Count(p.Details, "\n- "), "one finding")
	}
}
