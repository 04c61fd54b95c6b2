package mfa

import (
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// mfaRequireReal fails the test under CI=true, where every real component
// must be installed (deploy/testenv/install.sh mfa), and skips it otherwise.
func mfaRequireReal(t testing.TB, ok bool, what string) {
	t.Helper()
	if ok {
		return
	}
	if os.Getenv("CI") == "true" {
		t.Fatalf("CI=true: %s", what)
	}
	t.Skip(what)
}

// mfaRealModule returns the file of a PAM module installed on this host.
func mfaRealModule(t testing.TB, name string) string {
	t.Helper()
	l := newPAMLoader("/etc/pam.d", "/", DefaultPAMModuleDirs, nil, nil)
	p := l.findModule(name + ".so")
	mfaRequireReal(t, p != "", name+".so is not installed (Debian: libpam-google-authenticator, libpam-oath)")
	return p
}

func mfaWriteFiles(t testing.TB, dir string, files map[string]string) {
	t.Helper()
	for name, body := range files {
		p := filepath.Join(dir, name)
		require.NoError(t, os.MkdirAll(filepath.Dir(p), 0o755))
		require.NoError(t, os.WriteFile(p, []byte(body), 0o644))
	}
}

func TestMFAParsePAMControl(t *testing.T) {
	t.Parallel()
	acts := parsePAMControl("[success=2 default=ignore]")
	require.Equal(t, pamAction(2), acts[pamSuccess])
	require.Equal(t, pamActIgnore, acts[pamAuthErr])
	require.Equal(t, pamActIgnore, acts[pamIgnore])

	acts = parsePAMControl("[success=ok new_authtok_reqd=ok ignore=ignore default=bad]") // = required
	require.Equal(t, pamActOK, acts[pamSuccess])
	require.Equal(t, pamActIgnore, acts[pamIgnore])
	require.Equal(t, pamActBad, acts[pamAuthErr])

	acts = parsePAMControl("[success=done user_unknown=ignore]") // unset values are bad
	require.Equal(t, pamActDone, acts[pamSuccess])
	require.Equal(t, pamActIgnore, acts[10])
	require.Equal(t, pamActBad, acts[pamAuthErr])

	acts = parsePAMControl("[default=die success=ok]") // default only fills what is unset
	require.Equal(t, pamActOK, acts[pamSuccess])
	require.Equal(t, pamActDie, acts[pamAuthErr])

	for _, bad := range []string{"[success=]", "[success ok]", "[nonsense=ok]", "[success=x]", "[success=ok default]"} {
		require.Equal(t, pamAllActions(pamActBad), parsePAMControl(bad), bad)
	}
}

func TestMFAParsePAMLines(t *testing.T) {
	t.Parallel()
	lines, err := parsePAMLines(strings.NewReader(`# comment
auth	[success=1 default=ignore]	pam_unix.so nullok
   # indented comment

auth required pam_exec.so \
    quiet /usr/bin/true # trailing comment \
session optional pam_x.so arg=[a b \] c] last
@include common-auth
-auth sufficient pam_systemd_home.so
`))
	require.NoError(t, err)
	var got []string
	for _, l := range lines {
		got = append(got, strings.Join(l.tokens, "|"))
	}
	require.Equal(t, []string{
		"auth|[success=1 default=ignore]|pam_unix.so|nullok",
		"auth|required|pam_exec.so|quiet|/usr/bin/true",
		"session|optional|pam_x.so|arg=a b ] c|last",
		"@include|common-auth",
		"-auth|sufficient|pam_systemd_home.so",
	}, got)
	require.Equal(t, []int{2, 5, 7, 8, 9}, []int{lines[0].line, lines[1].line, lines[2].line, lines[3].line, lines[4].line})
}

// TestMFAPAMStacks evaluates PAM stacks written to a temp pam.d against the
// PAM modules installed on the host (Debian's libpam-google-authenticator
// and libpam-oath; pam_u2f is deliberately not installed).
func TestMFAPAMStacks(t *testing.T) {
	mfaRealModule(t, "pam_google_authenticator")
	mfaRealModule(t, "pam_oath")
	debianCommonAuth := "auth [success=1 default=ignore] pam_unix.so nullok\nauth requisite pam_deny.so\nauth required pam_permit.so\nauth optional pam_cap.so\n"
	for _, tc := range []struct {
		name      string
		files     map[string]string
		compliant bool
		where     string // file:line of the finding, relative to the pam.d dir
		rule      string // part of the rule
	}{
		{
			name: "required after common-auth",
			files: map[string]string{
				"common-auth": debianCommonAuth,
				"sshd":        "# Debian's sshd, with Google Authenticator\n@include common-auth\nauth required pam_google_authenticator.so\naccount required pam_nologin.so\n",
			},
			compliant: true,
		},
		{
			name: "requisite oath instead of the password",
			files: map[string]string{
				"sshd": "auth requisite pam_oath.so usersfile=/etc/users.oath window=20\n@include common-account\n",
			},
			compliant: true,
		},
		{
			name: "bracket syntax equal to requisite",
			files: map[string]string{
				"sshd": "auth [success=ok ignore=ignore default=die] pam_google_authenticator.so\nauth required pam_permit.so\n",
			},
			compliant: true,
		},
		{
			name: "done on success, pam_deny otherwise",
			files: map[string]string{
				"sshd": "auth [success=done default=ignore] pam_google_authenticator.so\nauth requisite pam_deny.so\n",
			},
			compliant: true,
		},
		{
			name: "nullok",
			files: map[string]string{
				"common-auth": debianCommonAuth,
				"sshd":        "@include common-auth\nauth required pam_google_authenticator.so nullok\n",
			},
			where: "sshd:2", rule: "nullok: users without an enrolled factor pass pam_google_authenticator without one",
		},
		{
			name: "sufficient pam_unix before the MFA module",
			files: map[string]string{
				"sshd": "auth sufficient pam_unix.so\nauth required pam_google_authenticator.so\n",
			},
			where: "sshd:1", rule: "sufficient pam_unix ends the stack with success before the MFA module runs",
		},
		{
			name: "optional",
			files: map[string]string{
				"sshd": "auth required pam_unix.so\nauth optional pam_google_authenticator.so\n",
			},
			where: "sshd:2", rule: "control optional lets the stack go on when pam_google_authenticator fails",
		},
		{
			name: "jump over the MFA module",
			files: map[string]string{
				"sshd": "auth [success=2 default=ignore] pam_unix.so\nauth requisite pam_deny.so\nauth required pam_google_authenticator.so\nauth required pam_permit.so\n",
			},
			where: "sshd:1", rule: "success=2 on pam_unix jumps over the MFA module",
		},
		{
			name: "nested includes, required deep down",
			files: map[string]string{
				"common-auth": debianCommonAuth,
				"mfa-otp":     "auth required pam_google_authenticator.so\n",
				"mfa":         "auth include mfa-otp\n",
				"sshd":        "@include common-auth\nauth substack mfa\nauth required pam_permit.so\n",
			},
			compliant: true,
		},
		{
			name: "nested includes, sufficient deep down",
			files: map[string]string{
				"common-auth": debianCommonAuth,
				"mfa-otp":     "auth sufficient pam_permit.so\nauth required pam_google_authenticator.so\n",
				"mfa":         "auth include mfa-otp\n",
				"sshd":        "@include common-auth\nauth include mfa\n",
			},
			where: "mfa-otp:1", rule: "sufficient pam_permit ends the stack",
		},
		{
			name: "sufficient inside a substack ends only the substack",
			files: map[string]string{
				"mfa":  "auth sufficient pam_unix.so\nauth required pam_google_authenticator.so\n",
				"sshd": "auth substack mfa\nauth required pam_google_authenticator.so\n",
			},
			compliant: true,
		},
		{
			name: "missing module file",
			files: map[string]string{
				"sshd": "auth required pam_unix.so\nauth required pam_u2f.so cue\n",
			},
			where: "sshd:2", rule: "users cannot log in through PAM service sshd: the module file pam_u2f.so is not on disk",
		},
		{
			name: "a required module that is not on disk locks users out",
			files: map[string]string{
				"common-auth": debianCommonAuth,
				"sshd":        "@include common-auth\nauth required pam_google_authenticator.so\nauth requisite pam_faillock_typo.so preauth\n",
			},
			where: "sshd:3", rule: "users cannot log in through PAM service sshd: the module file pam_faillock_typo.so is not on disk (not found in the PAM module directories), and libpam fails the stack without it",
		},
		{
			name: "an optional module that is not on disk is no lockout",
			files: map[string]string{
				"sshd": "auth optional pam_nosuch.so\nauth required pam_google_authenticator.so\n",
			},
			compliant: true,
		},
		{
			name: "missing module file, dash prefix",
			files: map[string]string{
				"sshd": "auth required pam_google_authenticator.so\n-auth sufficient pam_u2f.so\n",
			},
			where: "sshd:2", rule: "not on disk",
		},
		{
			name: "no MFA module",
			files: map[string]string{
				"common-auth": debianCommonAuth,
				"sshd":        "@include common-auth\n",
			},
			where: "sshd:1", rule: "no MFA module in the auth stack of service sshd: the auth stack must run one of pam_google_authenticator",
		},
		{
			name: "missing include fails closed",
			files: map[string]string{
				"sshd": "auth include no-such-file\nauth sufficient pam_google_authenticator.so\n",
			},
			compliant: true, // the failing include makes every path fail
		},
		{
			name: "service without auth lines uses other",
			files: map[string]string{
				"other": "auth required pam_google_authenticator.so\n",
				"sshd":  "account required pam_unix.so\n",
			},
			compliant: true,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			mfaWriteFiles(t, dir, tc.files)
			l := newPAMLoader(dir, "/", DefaultPAMModuleDirs, DefaultModules, DefaultOptionalArgs)
			st, err := l.authStack("sshd")
			require.NoError(t, err)
			v := evalPAMStack(st, DefaultModules)
			text := formatMFA("pam", v.Findings, st.Notes)
			t.Log("\n" + text)
			require.Equal(t, tc.compliant, v.Compliant, text)
			if tc.where != "" {
				require.Contains(t, text, "- "+filepath.Join(dir, tc.where)+":", text)
				require.Contains(t, text, tc.rule)
				require.Equal(t, 1, strings.Count(text, "\n- "), "one finding per defect")
			}
			require.Equal(t, strings.Contains(tc.rule, lockoutRule), len(v.Lockout) > 0, "a lockout is reported as such, and only then")
		})
	}
}

func TestMFAPAMBypassResetAndJumps(t *testing.T) {
	t.Parallel()
	mod := func(name, control string, level int) pamEntry {
		e := pamEntry{Name: name, Path: "/x/" + name + ".so", Level: level, MFA: name == "pam_google_authenticator", File: "f", Line: 1, Text: "auth " + control + " " + name}
		switch control {
		case "required":
			e.Actions = pamControlActions(pamActBad, map[int]pamAction{pamSuccess: pamActOK, pamNewAuthtok: pamActOK, pamIgnore: pamActIgnore})
		case "sufficient":
			e.Actions = pamControlActions(pamActIgnore, map[int]pamAction{pamSuccess: pamActDone, pamNewAuthtok: pamActDone})
		default:
			e.Actions = parsePAMControl(control)
		}
		return e
	}
	// reset after the MFA failure forgets it
	path := pamBypass([]pamEntry{mod("pam_unix", "required", 0), mod("pam_google_authenticator", "required", 0), mod("pam_unix", "[success=reset default=bad]", 0), mod("pam_permit", "required", 0)})
	require.NotNil(t, path)
	// a jump that overruns the stack fails it
	require.Nil(t, pamBypass([]pamEntry{mod("pam_google_authenticator", "[success=ok default=5]", 0), mod("pam_permit", "required", 0)}))
	// a jump counts a substack as one entry
	require.Nil(t, pamBypass([]pamEntry{
		mod("pam_unix", "[success=1 default=bad]", 0),
		{Kind: pamSubstack, Level: 0, File: "f", Line: 2},
		mod("pam_permit", "sufficient", 1),
		mod("pam_google_authenticator", "required", 0),
	}))
	// an empty stack fails
	require.Nil(t, pamBypass(nil))
}

func FuzzMFAPAMStack(f *testing.F) {
	for _, p := range []string{"testdata/pam.d/sshd", "testdata/pam.d/common-auth", "testdata/pam.d/other"} {
		b, err := os.ReadFile(p)
		require.NoError(f, err)
		f.Add(string(b))
	}
	f.Add("auth [success=2 default=ignore] pam_unix.so\nauth substack x\n-auth [success=reset default=1] pam_google_authenticator.so nullok\nauth requisite pam_deny.so \\\n  x\n")
	f.Fuzz(func(t *testing.T, s string) {
		lines, err := parsePAMLines(strings.NewReader(s))
		if err != nil {
			return
		}
		if len(lines) > strings.Count(s, "\n")+1 {
			t.Fatalf("%d lines from %d", len(lines), strings.Count(s, "\n")+1)
		}
		// every file of the stack is s: includes recurse until the level limit
		l := newPAMLoader("/pam.d", "/", nil, DefaultModules, DefaultOptionalArgs)
		l.open = func(string) (io.ReadCloser, error) { return io.NopCloser(strings.NewReader(s)), nil }
		st, err := l.authStack("sshd")
		if err != nil {
			return
		}
		if len(st.Entries) > pamMaxEntries {
			t.Fatalf("%d entries", len(st.Entries))
		}
		v := evalPAMStack(st, DefaultModules)
		if v.Compliant && len(v.MFA) == 0 {
			t.Fatal("compliant without an MFA module")
		}
		if len(v.Lockout) > 0 && pamSearch(st.Entries, pamAnyOutcome) != nil {
			t.Fatal("a lockout while some run of the stack succeeds")
		}
		_ = formatMFA("x", v.Findings, st.Notes)
	})
}
