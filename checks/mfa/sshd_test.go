package mfa

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/l2agent/l2agent/checks"
	"github.com/l2agent/l2agent/configs"
)

func TestMFAParseSSHDT(t *testing.T) {
	t.Parallel()
	f, err := os.Open("testdata/sshd-T-debian12.txt")
	require.NoError(t, err)
	defer f.Close()
	eff, err := parseSSHDT(f)
	require.NoError(t, err)
	require.Equal(t, []string{"any"}, eff["authenticationmethods"])
	require.Equal(t, []string{"yes"}, eff["usepam"])
	require.Equal(t, []string{"no"}, eff["kbdinteractiveauthentication"])
	require.Equal(t, []string{"without-password"}, eff["permitrootlogin"])
	require.Len(t, eff["hostkey"], 3, "repeated keywords keep every value")

	_, err = parseSSHDT(strings.NewReader("usepam yes\nNot A Keyword\n"))
	require.ErrorContains(t, err, "line 2")
	_, err = parseSSHDT(strings.NewReader("\n"))
	require.Error(t, err)
}

func TestMFASplitSSHDLine(t *testing.T) {
	t.Parallel()
	for line, want := range map[string]string{
		"AuthenticationMethods publickey,keyboard-interactive": "authenticationmethods|publickey,keyboard-interactive",
		"  UsePAM=yes": "usepam|yes",
		"PermitRootLogin = no # trailing comment":    "permitrootlogin|no",
		`Banner "/etc/my banner" x`:                  "banner|/etc/my banner|x",
		"Match User alice,bob Address 10.0.0.0/8":    "match|User|alice,bob|Address|10.0.0.0/8",
		"AcceptEnv LANG LC_*":                        "acceptenv|LANG|LC_*",
		`ForceCommand echo 'a b' \"c`:                `forcecommand|echo|a b|"c`,
		"X11Forwarding\tyes":                         "x11forwarding|yes",
		"\tChallengeResponseAuthentication no #x #y": "challengeresponseauthentication|no",
	} {
		kw, args, ok := splitSSHDLine(line)
		require.True(t, ok, line)
		require.Equal(t, want, strings.Join(append([]string{kw}, args...), "|"), line)
	}
	for _, line := range []string{"", "   ", "# comment", "  #UsePAM no"} {
		_, _, ok := splitSSHDLine(line)
		require.False(t, ok, line)
	}
}

func TestMFASSHDMatchLists(t *testing.T) {
	t.Parallel()
	require.Equal(t, 1, sshdMatchAddrList("10.1.2.3", "10.0.0.0/8"))
	require.Equal(t, -1, sshdMatchAddrList("10.9.0.1", "10.0.0.0/8,!10.9.0.0/16"))
	require.Equal(t, 1, sshdMatchAddrList("192.168.1.7", "192.168.1.*"))
	require.Equal(t, 0, sshdMatchAddrList("192.0.2.1", "10.0.0.0/8,fe80::/10"))
	require.Equal(t, 1, sshdMatchAddrList("fe80::1", "10.0.0.0/8,fe80::/10"))
	require.Equal(t, 1, sshdMatchList("deploy", "dep*,!root"))
	require.Equal(t, -1, sshdMatchList("root", "*,!root"))
	require.Equal(t, "10.0.0.1", sshdSynthAddr("10.0.0.0/8,!10.9.0.0/16", "192.0.2.1"))
	require.Equal(t, "192.0.2.1", sshdSynthAddr("!10.0.0.0/8", "192.0.2.1"))
	require.Equal(t, "192.0.2.1", sshdSynthAddr("*,!10.0.0.0/8", "192.0.2.1"))
	require.Equal(t, "198.51.100.1", sshdSynthAddr("*,!192.0.2.0/24", "192.0.2.1"))
	require.Equal(t, "10.1.1.1", sshdSynthAddr("10.1.*.?", "192.0.2.1"))
	require.Equal(t, "10.0.0.5", sshdSynthAddr("10.0.0.5/32", "192.0.2.1"))
	require.Equal(t, "bastionx.example.com", sshdSynthName("!evil*,bastion*.example.com", "x"))
}

func TestMFASSHDConfigIncludeAndSource(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	mfaWriteFiles(t, dir, map[string]string{
		"sshd_config": "# main\nInclude " + dir + "/conf.d/*.conf\nAuthenticationMethods publickey,keyboard-interactive\n" +
			"Match User deploy\n  Include " + dir + "/deploy.inc\nMatch all\n  PermitRootLogin no\n",
		"conf.d/10-a.conf": "AuthenticationMethods any\n",
		"conf.d/20-b.conf": "Match Address 10.0.0.0/8\n  AuthenticationMethods publickey\n",
		"deploy.inc":       "PasswordAuthentication yes\n",
	})
	cfg, err := sshdConfigReader{}.read(filepath.Join(dir, "sshd_config"))
	require.NoError(t, err)
	require.Len(t, cfg.Matches, 3)
	where := func(kw string, p sshdProbe) string {
		d := cfg.source(kw, p, nil)
		if d == nil {
			return "default"
		}
		return fmt.Sprintf("%s:%d", filepath.Base(d.File), d.Line)
	}
	// the first global value wins, even from an included file read first
	require.Equal(t, "10-a.conf:1", where("authenticationmethods", sshdProbe{}))
	// a Match in an included file ends with it: the main file's lines after the Include are global
	require.Equal(t, "20-b.conf:2", where("authenticationmethods", sshdProbe{Addr: "10.0.0.1"}))
	require.Equal(t, "deploy.inc:1", where("passwordauthentication", sshdProbe{User: "deploy"}))
	require.Equal(t, "default", where("passwordauthentication", sshdProbe{User: "alice"}))
	require.Equal(t, "sshd_config:7", where("permitrootlogin", sshdProbe{}))

	ps := cfg.probes([]string{"alice"}, "192.0.2.1", nil)
	var specs []string
	for _, p := range ps {
		specs = append(specs, p.spec())
	}
	require.Equal(t, []string{
		"user=alice,host=192.0.2.1,addr=192.0.2.1",
		"user=alice,host=10.0.0.1,addr=10.0.0.1", // conf.d/20-b.conf is read at line 2
		"user=deploy,host=192.0.2.1,addr=192.0.2.1",
	}, specs)
}

// mfaSSHDEnv is a real sshd to run `sshd -T` against temp configs: its host
// key in a temp dir, and /run/sshd, which sshd -T checks for when run as root.
func mfaSSHDEnv(t *testing.T) (sshd, hostKey string) {
	t.Helper()
	sshd = "/usr/sbin/sshd"
	_, err := os.Stat(sshd)
	mfaRequireReal(t, err == nil, "sshd is not installed (Debian: openssh-server)")
	keygen, err := exec.LookPath("ssh-keygen")
	mfaRequireReal(t, err == nil, "ssh-keygen is not installed (Debian: openssh-client)")
	hostKey = filepath.Join(t.TempDir(), "ssh_host_ed25519_key")
	out, err := exec.Command(keygen, "-q", "-t", "ed25519", "-N", "", "-f", hostKey).CombinedOutput()
	require.NoError(t, err, "%s", out)
	if os.Geteuid() == 0 {
		// sshd -T as root insists on the privilege separation directory the
		// ssh service creates; make it if this host never ran sshd.
		if _, err := os.Stat("/run/sshd"); errors.Is(err, fs.ErrNotExist) {
			require.NoError(t, os.MkdirAll("/run/sshd", 0o755))
			t.Cleanup(func() { os.Remove("/run/sshd") })
		}
	}
	return sshd, hostKey
}

// mfaTestGroup creates a real group and users in it (useradd, groupadd) and
// removes them when the test ends. Homes are made by the caller.
func mfaTestGroup(t *testing.T, users ...string) (group string, names []string) {
	t.Helper()
	mfaRequireReal(t, os.Geteuid() == 0, "needs root to create users and groups")
	for _, bin := range []string{"useradd", "groupadd", "userdel", "groupdel"} {
		_, err := exec.LookPath(bin)
		mfaRequireReal(t, err == nil, bin+" is not installed (Debian: passwd)")
	}
	tag := fmt.Sprintf("%05d%02d", os.Getpid()%100000, time.Now().UnixNano()%100)
	group = "l2g" + tag
	run := func(argv ...string) {
		t.Helper()
		out, err := exec.Command(argv[0], argv[1:]...).CombinedOutput()
		require.NoError(t, err, "%s: %s", strings.Join(argv, " "), out)
	}
	run("groupadd", group)
	t.Cleanup(func() { exec.Command("groupdel", group).Run() })
	for i, u := range users {
		name := fmt.Sprintf("l2%c%s", 'a'+i, tag)
		home := filepath.Join(t.TempDir(), u)
		if i == 0 { // the first user has the group as primary group, the others as supplementary
			run("useradd", "-M", "-N", "-g", group, "-d", home, "-s", "/bin/sh", name)
		} else {
			run("useradd", "-M", "-N", "-g", "users", "-G", group, "-d", home, "-s", "/bin/sh", name)
		}
		t.Cleanup(func() { exec.Command("userdel", name).Run() })
		names = append(names, name)
	}
	return group, names
}

// TestMFASSHDReal runs the check against a real sshd -T on a table of
// configs; the expected diagnostics name the offending file:line.
func TestMFASSHDReal(t *testing.T) {
	sshd, hostKey := mfaSSHDEnv(t)
	mfaRealModule(t, "pam_google_authenticator")
	group, users := mfaTestGroup(t, "admin")
	admin := users[0]

	pamDir := t.TempDir()
	mfaWriteFiles(t, pamDir, map[string]string{
		"sshd":       "auth required pam_google_authenticator.so\n",
		"sshd-weak":  "auth required pam_google_authenticator.so nullok\n",
		"sshd-empty": "auth required pam_unix.so\n",
	})
	const compliant = "UsePAM yes\nKbdInteractiveAuthentication yes\nAuthenticationMethods publickey,keyboard-interactive\n"
	for _, tc := range []struct {
		name      string
		files     map[string]string // relative to the case's dir; sshd_config is the main file; {dir} is replaced
		pamSvc    string
		compliant bool
		where     []string // "file:line" of each finding, relative to the case's dir
		texts     []string // more text the details must hold
		flags     map[string]float64
		flagWhere map[string]string // metric → "file:line: text" of its finding, relative to the case's dir
		scope     string
		noFlags   bool // sshd refuses the config: no flag series
	}{
		{
			name:      "compliant",
			files:     map[string]string{"sshd_config": "# two factors for everyone\n" + compliant + "PermitRootLogin no\nPasswordAuthentication no\n"},
			compliant: true,
			texts:     []string{"AuthenticationMethods publickey,keyboard-interactive"},
			flags:     map[string]float64{"mfa_sshd_permit_root_login": 0, "mfa_sshd_password_authentication": 0, "mfa_sshd_permit_empty_passwords": 0},
		},
		{
			name:  "AuthenticationMethods missing",
			files: map[string]string{"sshd_config": "UsePAM yes\nKbdInteractiveAuthentication yes\n"},
			where: []string{"sshd_config"},
			texts: []string{"AuthenticationMethods not set (default: any)", `with "any" one method is enough`},
			flags: map[string]float64{"mfa_sshd_permit_root_login": 1, "mfa_sshd_password_authentication": 1},
		},
		{
			name:  "AuthenticationMethods any in an included file",
			files: map[string]string{"sshd_config": "Include {dir}/conf.d/*.conf\n" + compliant, "conf.d/50-cloud.conf": "# cloud image\nAuthenticationMethods any\n"},
			where: []string{"conf.d/50-cloud.conf:2"},
		},
		{
			name: "Match Group lets admins in with publickey only",
			files: map[string]string{"sshd_config": compliant + "PermitRootLogin no\n\nMatch Group " + group + "\n" +
				"    AuthenticationMethods publickey\n"},
			where: []string{`sshd_config:7 (in "Match Group ` + group + `" at {dir}/sshd_config:6)`},
			texts: []string{`"publickey" is one method`, "for: user=" + admin},
		},
		{
			name: "Match Address exception",
			files: map[string]string{"sshd_config": compliant + "Include {dir}/conf.d/*.conf\n",
				"conf.d/10-lan.conf": "# the LAN gets in with a password\nMatch Address 10.0.0.0/8,!10.9.0.0/16\n  AuthenticationMethods publickey password\n  PermitEmptyPasswords yes\n"},
			where: []string{`conf.d/10-lan.conf:3 (in "Match Address 10.0.0.0/8,!10.9.0.0/16" at {dir}/conf.d/10-lan.conf:2)`},
			texts: []string{`"publickey" is one method`, `"password" is one method`, "addr=10.0.0.1"},
			flags: map[string]float64{"mfa_sshd_permit_empty_passwords": 1},
		},
		{
			name: "two factors only from outside the LAN",
			files: map[string]string{"sshd_config": "AuthenticationMethods publickey\nUsePAM yes\nKbdInteractiveAuthentication yes\n" +
				"Match Address *,!10.0.0.0/8\n  AuthenticationMethods publickey,keyboard-interactive\n"},
			where: []string{"sshd_config:1"},
			texts: []string{"for: any connection that matches no Match block; user=" + admin + " host=10.0.0.1 addr=10.0.0.1"},
		},
		{
			name: "Match Address with two factors too",
			files: map[string]string{"sshd_config": compliant + "PermitRootLogin no\nMatch Address 10.0.0.0/8\n" +
				"  AuthenticationMethods publickey,keyboard-interactive password,keyboard-interactive\n"},
			compliant: true,
		},
		{
			name:  "Match User deploy",
			files: map[string]string{"sshd_config": compliant + "Match User deploy\n  AuthenticationMethods publickey\n"},
			where: []string{`sshd_config:5 (in "Match User deploy" at {dir}/sshd_config:4)`},
			texts: []string{"for: user=deploy"},
		},
		{
			name:      "password through a PAM stack that requires a second factor",
			files:     map[string]string{"sshd_config": "UsePAM yes\nAuthenticationMethods publickey,password\n"},
			compliant: true,
		},
		{
			name:  "password without PAM is not a second factor",
			files: map[string]string{"sshd_config": "UsePAM no\nAuthenticationMethods publickey,password\n"},
			where: []string{"sshd_config:2"},
			texts: []string{`"publickey,password" has none (password is a second factor only through a PAM auth stack that requires one, and UsePAM is no)`},
		},
		{
			name:   "password through a PAM stack with nullok",
			files:  map[string]string{"sshd_config": "UsePAM yes\nAuthenticationMethods publickey,password\n"},
			pamSvc: "sshd-weak",
			where:  []string{filepath.Join(pamDir, "sshd-weak") + ":1"},
			texts:  []string{"control pam is not evaluated", "nullok"},
		},
		{
			name:   "password through a PAM stack without an MFA module",
			files:  map[string]string{"sshd_config": "UsePAM yes\nAuthenticationMethods publickey,password\n"},
			pamSvc: "sshd-empty",
			where:  []string{filepath.Join(pamDir, "sshd-empty") + ":1"},
			texts:  []string{"no MFA module in the auth stack"},
		},
		{
			name: "lockout: every list needs a disabled method, sshd refuses the config",
			files: map[string]string{"sshd_config": "UsePAM yes\nKbdInteractiveAuthentication no\nPasswordAuthentication no\n" +
				"AuthenticationMethods publickey,keyboard-interactive password,keyboard-interactive\n"},
			where: []string{"sshd_config:4"},
			texts: []string{"sshd: NOT compliant: users cannot log in: sshd refuses its configuration\n",
				"rule: users cannot log in: sshd refuses its configuration (AuthenticationMethods cannot be satisfied by enabled authentication methods), so sshd does not start or restart with it: " +
					`"publickey,keyboard-interactive" needs what {dir}/sshd_config:2: KbdInteractiveAuthentication no turns off; ` +
					`"password,keyboard-interactive" needs what {dir}/sshd_config:3: PasswordAuthentication no turns off`},
			noFlags: true,
		},
		{
			name: "lockout in a Match block",
			files: map[string]string{"sshd_config": compliant + "PermitRootLogin no\nMatch Group " + group + "\n" +
				"  KbdInteractiveAuthentication no\n  AuthenticationMethods publickey,keyboard-interactive\n"},
			where: []string{`sshd_config:7 (in "Match Group ` + group + `" at {dir}/sshd_config:5)`},
			texts: []string{"rule: users cannot log in: every AuthenticationMethods list names a disabled method: " +
				`"publickey,keyboard-interactive" needs what {dir}/sshd_config:6 (in "Match Group ` + group + `" at {dir}/sshd_config:5): KbdInteractiveAuthentication no turns off`,
				"for: user=" + admin},
		},
		{
			name: "one usable list is no lockout",
			files: map[string]string{"sshd_config": "UsePAM yes\nPasswordAuthentication no\n" +
				"AuthenticationMethods publickey,keyboard-interactive password,keyboard-interactive\n"},
			compliant: true,
		},
		{
			name:      "scope groups: Match User of someone else",
			scope:     ScopeGroups,
			files:     map[string]string{"sshd_config": compliant + "PermitRootLogin no\nMatch User deploy\n  AuthenticationMethods publickey\n"},
			compliant: true,
			texts:     []string{"mfa.scope: groups"},
		},
		{
			name:  "scope groups: one factor only for others",
			scope: ScopeGroups,
			files: map[string]string{"sshd_config": "UsePAM yes\nKbdInteractiveAuthentication yes\nAuthenticationMethods publickey\nPermitRootLogin no\n" +
				"Match Group " + group + "\n  AuthenticationMethods publickey,keyboard-interactive\n"},
			compliant: true,
			flags:     map[string]float64{"mfa_sshd_permit_root_login": 0},
		},
		{
			name: "scope all: one factor for others is a finding",
			files: map[string]string{"sshd_config": "UsePAM yes\nKbdInteractiveAuthentication yes\nAuthenticationMethods publickey\nPermitRootLogin no\n" +
				"Match Group " + group + "\n  AuthenticationMethods publickey,keyboard-interactive\n"},
			where: []string{"sshd_config:3"},
			texts: []string{"for: any connection that matches no Match block"},
		},
		{
			name:  "scope groups: Match Group of the admins",
			scope: ScopeGroups,
			files: map[string]string{"sshd_config": compliant + "PermitRootLogin no\nMatch Group " + group + "\n  AuthenticationMethods publickey\n"},
			where: []string{`sshd_config:6 (in "Match Group ` + group + `" at {dir}/sshd_config:5)`},
			texts: []string{"for: user=" + admin + " host=192.0.2.1 addr=192.0.2.1\n"},
		},
		{
			name:  "scope groups: root where it may log in",
			scope: ScopeGroups,
			files: map[string]string{"sshd_config": compliant + "PermitRootLogin no\nMatch Address 10.0.0.0/8 User root\n  PermitRootLogin yes\n  AuthenticationMethods publickey\n"},
			where: []string{`sshd_config:7 (in "Match Address 10.0.0.0/8 User root" at {dir}/sshd_config:5)`},
			texts: []string{"for: user=root host=10.0.0.1 addr=10.0.0.1\n"},
			flags: map[string]float64{"mfa_sshd_permit_root_login": 1, "mfa_sshd_password_authentication": 1},
			flagWhere: map[string]string{
				"mfa_sshd_permit_root_login":       `sshd_config:6 (in "Match Address 10.0.0.0/8 User root" at {dir}/sshd_config:5): PermitRootLogin yes`,
				"mfa_sshd_password_authentication": "sshd_config: PasswordAuthentication not set (default: yes)",
			},
		},
		{
			name:  "keyboard-interactive without PAM",
			files: map[string]string{"sshd_config": "UsePAM no\nKbdInteractiveAuthentication yes\nAuthenticationMethods publickey,keyboard-interactive\n"},
			where: []string{"sshd_config:1"},
			texts: []string{"UsePAM must be yes"},
		},
		{
			name:   "keyboard-interactive through a PAM stack with nullok",
			files:  map[string]string{"sshd_config": compliant},
			pamSvc: "sshd-weak",
			where:  []string{filepath.Join(pamDir, "sshd-weak") + ":1"},
			texts:  []string{"control pam is not evaluated"},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			files := map[string]string{}
			for k, v := range tc.files {
				files[k] = strings.ReplaceAll(v, "{dir}", dir)
			}
			mfaWriteFiles(t, dir, files)
			opts := Options{
				Controls: []string{"sshd"},
				Scope:    tc.scope,
				Groups:   []string{group},
				SSHD:     SSHDOptions{Binary: sshd, Config: filepath.Join(dir, "sshd_config"), Args: []string{"-h", hostKey}},
				PAM:      PAMOptions{Dir: pamDir, SSHDService: tc.pamSvc},
			}
			obs := runMFA(t, opts)
			o := mfaObs(t, obs, "mfa_compliant", "sshd")
			t.Log("\n" + o.Details)
			require.Equal(t, checks.BoolValue(tc.compliant), o.Value, o.Details)
			for _, w := range tc.where {
				w = strings.ReplaceAll(w, "{dir}", dir)
				if !filepath.IsAbs(w) {
					w = filepath.Join(dir, w)
				}
				require.Contains(t, o.Details, "\n- "+w+": ")
			}
			require.Equal(t, len(tc.where), strings.Count(o.Details, "\n- "), "one finding per line expected")
			for _, s := range tc.texts {
				require.Contains(t, o.Details, strings.ReplaceAll(s, "{dir}", dir))
			}
			if tc.noFlags {
				require.Len(t, obs, 1, "only the sshd control when sshd refuses its config")
			}
			for m, v := range tc.flags {
				f := mfaObs(t, obs, m, "")
				require.Equal(t, v, f.Value, "%s: %s", m, f.Details)
			}
			for m, w := range tc.flagWhere {
				f := mfaObs(t, obs, m, "")
				require.Contains(t, f.Details, "\n- "+filepath.Join(dir, strings.ReplaceAll(w, "{dir}", dir))+"\n", m)
			}
		})
	}
}

// TestMFASSHDErrors: a config sshd refuses is a finding citing sshd's line
// ("users cannot log in"), and the PAM control is still judged; sshd failing
// for another reason fails the run with sshd's words; a missing sshd is "not
// installed": no sshd series.
func TestMFASSHDErrors(t *testing.T) {
	sshd, hostKey := mfaSSHDEnv(t)
	mfaRealModule(t, "pam_google_authenticator")
	dir := t.TempDir()
	mfaWriteFiles(t, dir, map[string]string{
		"sshd_config":         "UsePAM yes\nInclude " + dir + "/conf.d/*.conf\n",
		"conf.d/10-typo.conf": "# a typo\nPermitRootLogin maybe\n",
		"pam.d/sshd":          "auth required pam_google_authenticator.so nullok\n",
	})
	opts := Options{Controls: []string{"sshd", "pam"}, SSHD: SSHDOptions{Binary: sshd, Config: filepath.Join(dir, "sshd_config"), Args: []string{"-h", hostKey}},
		PAM: PAMOptions{Dir: filepath.Join(dir, "pam.d")}}
	obs := runMFA(t, opts)
	require.Len(t, obs, 2, "the sshd control, no flags, and the pam control: %v", obs)
	o := mfaObs(t, obs, "mfa_compliant", "sshd")
	t.Log("\n" + o.Details)
	require.Equal(t, 0.0, o.Value)
	require.Contains(t, o.Details, "- "+filepath.Join(dir, "conf.d/10-typo.conf")+":2: PermitRootLogin maybe\n  rule: users cannot log in: sshd refuses its configuration (unsupported option \"maybe\".)")
	require.Equal(t, 1, strings.Count(o.Details, "\n- "), "one finding")
	p := mfaObs(t, obs, "mfa_compliant", "pam")
	require.Equal(t, 0.0, p.Value)
	require.Contains(t, p.Details, "- "+filepath.Join(dir, "pam.d/sshd")+":1: ")

	// an option sshd does not know, in the main file
	mfaWriteFiles(t, dir, map[string]string{"sshd_config": "NoSuchOption yes\n"})
	o = mfaObs(t, runMFA(t, opts), "mfa_compliant", "sshd")
	require.Contains(t, o.Details, "- "+filepath.Join(dir, "sshd_config")+":1: NoSuchOption yes\n  rule: users cannot log in: sshd refuses its configuration (Bad configuration option: NoSuchOption)")

	// sshd failing for another reason than its config: the run fails
	opts.SSHD.Args = []string{"-h", filepath.Join(dir, "no-such-hostkey")}
	mfaWriteFiles(t, dir, map[string]string{"sshd_config": "UsePAM yes\n"})
	_, err := newMFA(t, opts).Run(context.Background())
	require.ErrorContains(t, err, "sshd effective config")

	opts.SSHD.Binary = filepath.Join(dir, "no-sshd")
	opts.Controls = []string{"sshd"}
	obs = runMFA(t, opts)
	require.Empty(t, obs)

	// a hung command is killed when the run's context ends
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err = mfaCommand(ctx, "", []string{"/bin/sh", "-c", "sleep 30 & sleep 30"})
	require.ErrorIs(t, err, context.DeadlineExceeded)
	require.Less(t, time.Since(start), 5*time.Second)
	_, err = mfaCommand(context.Background(), "", []string{"/bin/sh", "-c", "echo oops >&2; exit 3"})
	require.ErrorContains(t, err, "exit status 3: oops")
}

func newMFA(t *testing.T, o Options) *mfaCheck {
	t.Helper()
	ch, err := checks.New(configs.Check{Name: "mfa", Kind: "mfa", Options: &o}, checks.Env{Paths: configs.Paths{Rootfs: "/"}})
	require.NoError(t, err)
	return ch.(*mfaCheck)
}

func runMFA(t *testing.T, o Options) []checks.Observation {
	t.Helper()
	obs, err := newMFA(t, o).Run(context.Background())
	require.NoError(t, err)
	return obs
}

// mfaObs returns the observation of metric whose control or group label is
// label ("" for none).
func mfaObs(t *testing.T, obs []checks.Observation, metric, label string) checks.Observation {
	t.Helper()
	for _, o := range obs {
		if o.Metric == metric && (label == "" || o.Labels["control"] == label || o.Labels["group"] == label) {
			return o
		}
	}
	require.Failf(t, "no observation", "%s{%s} in %v", metric, label, obs)
	return checks.Observation{}
}

func FuzzMFAParseSSHDT(f *testing.F) {
	b, err := os.ReadFile("testdata/sshd-T-debian12.txt")
	require.NoError(f, err)
	f.Add(string(b))
	f.Add("authenticationmethods publickey,keyboard-interactive password,keyboard-interactive\nusepam yes\n")
	f.Add(" \f")
	f.Fuzz(func(t *testing.T, s string) {
		eff, err := parseSSHDT(strings.NewReader(s))
		if err != nil {
			return
		}
		n := 0
		for k, vs := range eff {
			if k == "" && len(vs) > 0 && strings.TrimSpace(s) == "" {
				t.Fatal("empty keyword from blank input")
			}
			n += len(vs)
		}
		if n > strings.Count(s, "\n")+1 {
			t.Fatalf("%d values from %d lines", n, strings.Count(s, "\n")+1)
		}
		c := &mfaCheck{opts: Options{}.WithDefaults()}
		cfg := &sshdConfig{Main: "sshd_config"}
		_, _ = c.sshdFindings(cfg, eff, sshdProbe{}, nil, nil, false)
	})
}

func FuzzMFASSHDConfig(f *testing.F) {
	b, err := os.ReadFile("testdata/sshd_config-debian12")
	require.NoError(f, err)
	f.Add(string(b))
	f.Add("Include *.conf\nMatch Group adm*,!x Address 10.0.0.0/8,10.?.*.1 User=a\n AuthenticationMethods \"publickey\" # c\nMatch all\n")
	f.Fuzz(func(t *testing.T, s string) {
		// every include is s again, until the depth limit
		r := sshdConfigReader{
			open: func(string) (io.ReadCloser, error) { return io.NopCloser(strings.NewReader(s)), nil },
			glob: func(p string) ([]string, error) { return []string{p}, nil },
		}
		cfg, err := r.read("/etc/ssh/sshd_config")
		if err != nil {
			return
		}
		ps := cfg.probes([]string{"alice"}, "192.0.2.1", nil)
		for _, p := range ps {
			if strings.ContainsAny(p.spec(), " \t\n") {
				t.Fatalf("probe spec with blanks: %q", p.spec())
			}
			_ = cfg.source("authenticationmethods", p, nil)
		}
	})
}

// FuzzMFASSHDRefusal: whatever sshd prints when it fails, a refusal is a
// finding citing FILE:LINE, and anything else stays the run's error.
func FuzzMFASSHDRefusal(f *testing.F) {
	fileLine := regexp.MustCompile(`^\S+:\d+$`)
	f.Add("/etc/ssh/sshd_config: line 1: Bad configuration option: NoSuchOption\n/etc/ssh/sshd_config: terminating, 1 bad configuration options\n")
	f.Add("/etc/ssh/sshd_config.d/x.conf line 3: Directive 'Port' is not allowed within a Match block\n")
	f.Add("Disabled method \"keyboard-interactive\" in AuthenticationMethods list \"publickey,keyboard-interactive\"\n" + sshdUnsatisfiable + "\n")
	f.Add("sshd: no hostkeys available -- exiting.\n")
	cfg, err := sshdConfigReader{}.read("testdata/sshd_config-debian12")
	require.NoError(f, err)
	f.Fuzz(func(t *testing.T, stderr string) {
		err := fmt.Errorf("sshd effective config: %w: %w", errSSHDRefused, errors.New("exit status 255: "+stderr))
		r := newSSHDResult(ScopeAll)
		if got := r.refusal(cfg, err, sshdProbe{}, nil); got != nil {
			require.Equal(t, err, got)
			require.Empty(t, r.set.order)
			return
		}
		fs := r.set.list()
		require.Len(t, fs, 1)
		require.Contains(t, fs[0].Rule, lockoutRule)
		// FILE:LINE, or the main file when the AuthenticationMethods that
		// cannot be satisfied is sshd's default
		require.True(t, fileLine.MatchString(fs[0].Where) || fs[0].Where == cfg.Main, "FILE:LINE: %q", fs[0].Where)
		plain := errors.New("exit status 1: " + stderr)
		require.Equal(t, plain, r.refusal(cfg, plain, sshdProbe{}, nil), "not marked as a refusal: the run's error")
	})
}
