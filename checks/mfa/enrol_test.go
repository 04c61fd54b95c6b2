package mfa

import (
	"context"
	"os"
	"os/user"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

const mfaTestSecret = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP\n\" RATE_LIMIT 3 30\n\" TOTP_AUTH\n"

func TestMFAAccounts(t *testing.T) {
	t.Parallel()
	a := &mfaAccounts{users: map[string]*mfaAccount{}, groups: map[string]*mfaGroup{}}
	require.NoError(t, a.parse(strings.NewReader(`root:x:0:0:root:/root:/bin/bash
alice:x:1000:1000:Alice:/home/alice:/bin/bash
bob:x:1001:27::/home/bob:/bin/sh
broken:x:notanumber:1::/:/bin/sh
+nis
alice:x:2000:2000:dup:/nowhere:/bin/sh
`), strings.NewReader(`root:x:0:
sudo:x:27:alice,carol
alice:x:1000:
wheel:x:10:
`)))
	require.Equal(t, []string{"alice", "bob", "carol"}, a.membersOf("sudo"), "listed members and primary-group members")
	require.Empty(t, a.membersOf("wheel"))
	require.Nil(t, a.membersOf("admin"))
	require.Equal(t, []string{"sudo", "alice"}, a.groupsOf("alice"))
	require.Equal(t, "/home/alice", a.users["alice"].Home, "the first entry wins")
	require.NotContains(t, a.users, "broken")
	a.passwdFile, a.groupFile = "/etc/passwd", "/etc/group"
	require.Equal(t, "/etc/group:2", a.memberWhere("alice", "sudo"), "listed: the group's line")
	require.Equal(t, "/etc/group:2", a.memberWhere("carol", "sudo"), "listed without an account: the group's line")
	require.Equal(t, "/etc/passwd:3", a.memberWhere("bob", "sudo"), "primary group: the user's passwd line")
	require.Equal(t, "/etc/group", a.memberWhere("bob", "admin"), "no such group: the file")
}

// TestMFAEnrolmentFiles checks the factor files of each module for users
// that own files as the test's own uid.
func TestMFAEnrolmentFiles(t *testing.T) {
	t.Parallel()
	root := t.TempDir()
	uid := os.Getuid()
	acc := &mfaAccounts{users: map[string]*mfaAccount{}, groups: map[string]*mfaGroup{}}
	mk := func(name string) *mfaAccount {
		u := &mfaAccount{Name: name, UID: uid, GID: uid, Home: "/home/" + name}
		acc.users[name] = u
		require.NoError(t, os.MkdirAll(filepath.Join(root, u.Home), 0o755))
		return u
	}
	write := func(p, body string, mode os.FileMode) {
		p = filepath.Join(root, p)
		require.NoError(t, os.MkdirAll(filepath.Dir(p), 0o755))
		require.NoError(t, os.WriteFile(p, []byte(body), mode))
		require.NoError(t, os.Chmod(p, mode))
	}
	ga := mfaFactor{module: "pam_google_authenticator", rootfs: root, acc: acc}
	check := func(f mfaFactor, u *mfaAccount, want enrolState, why string) {
		t.Helper()
		got, gotWhy, err := f.enrolled(context.Background(), u)
		require.NoError(t, err)
		require.Equal(t, want, got, gotWhy)
		require.Contains(t, gotWhy, why)
	}

	u := mk("ok")
	write("/home/ok/.google_authenticator", mfaTestSecret, 0o400)
	check(ga, u, enrolYes, "")
	u = mk("rw")
	write("/home/rw/.google_authenticator", mfaTestSecret, 0o600)
	check(ga, u, enrolYes, "")
	u = mk("none")
	check(ga, u, enrolNo, "/home/none/.google_authenticator does not exist")
	u = mk("open")
	write("/home/open/.google_authenticator", mfaTestSecret, 0o644)
	check(ga, u, enrolNo, "has mode 0644, want 0400 or 0600")
	check(mfaFactor{module: ga.module, rootfs: root, acc: acc, args: []string{"allowed_perm=0644"}}, u, enrolYes, "")
	u = mk("empty")
	write("/home/empty/.google_authenticator", "", 0o600)
	check(ga, u, enrolNo, "is empty")
	u = mk("junk")
	write("/home/junk/.google_authenticator", "not a secret\n", 0o600)
	check(ga, u, enrolNo, "does not start with a base32 secret")
	u = mk("link")
	require.NoError(t, os.Symlink(filepath.Join(root, "/home/ok/.google_authenticator"), filepath.Join(root, "/home/link/.google_authenticator")))
	check(ga, u, enrolUnknown, "/home/link/.google_authenticator: is a symbolic link (not followed)")
	u = mk("custom")
	write("/var/lib/ga/custom", mfaTestSecret, 0o400)
	check(mfaFactor{module: ga.module, rootfs: root, acc: acc, args: []string{"secret=/var/lib/ga/${USER}", "user=custom"}}, u, enrolYes, "")

	oath := mfaFactor{module: "pam_oath", rootfs: root, acc: acc, args: []string{"usersfile=/etc/users.oath"}}
	check(oath, acc.users["ok"], enrolNo, "/etc/users.oath does not exist")
	write("/etc/users.oath", "# type user pin secret\nHOTP/T30 ok - 3132333435363738393031323334353637383930\n", 0o600)
	check(oath, acc.users["ok"], enrolYes, "")
	check(oath, acc.users["none"], enrolNo, "no entry for none in /etc/users.oath")

	u2f := mfaFactor{module: "pam_u2f", rootfs: root, acc: acc}
	write("/home/ok/.config/Yubico/u2f_keys", "ok:keyhandle,pubkey,es256,+presence\n", 0o600)
	check(u2f, acc.users["ok"], enrolYes, "")
	check(u2f, acc.users["none"], enrolNo, "/home/none/.config/Yubico/u2f_keys does not exist")
	write("/etc/u2f_mappings", "rw:kh,pk\n", 0o644)
	check(mfaFactor{module: "pam_u2f", rootfs: root, acc: acc, args: []string{"authfile=/etc/u2f_mappings"}}, acc.users["rw"], enrolYes, "")

	yk := mfaFactor{module: "pam_yubico", rootfs: root, acc: acc}
	write("/home/ok/.yubico/authorized_yubikeys", "ok:ccccccbcgujh\n", 0o600)
	check(yk, acc.users["ok"], enrolYes, "")
	check(yk, acc.users["rw"], enrolNo, "does not exist")
}

// TestMFAEnrolmentRealUsers creates real users in a real group (useradd,
// groupadd) and reads the real /etc/passwd and /etc/group: users with and
// without a secret file, with the wrong owner and the wrong mode, and one
// enrolled through /etc/users.oath of the PAM line.
func TestMFAEnrolmentRealUsers(t *testing.T) {
	mfaRealModule(t, "pam_google_authenticator")
	mfaRealModule(t, "pam_oath")
	group, users := mfaTestGroup(t, "enrolled", "nofile", "wrongowner", "wrongmode", "oath")
	dir := t.TempDir()
	usersOath := filepath.Join(dir, "users.oath")
	mfaWriteFiles(t, dir, map[string]string{
		"pam.d/sshd": "@include common-auth-mfa\n",
		"pam.d/common-auth-mfa": "auth [success=1 default=ignore] pam_oath.so usersfile=" + usersOath + " window=20\n" +
			"auth required pam_google_authenticator.so\n",
		"users.oath": "HOTP/T30 " + users[4] + " - 3132333435363738393031323334353637383930\n",
	})
	for i, name := range users {
		u, err := user.Lookup(name)
		require.NoError(t, err)
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		require.NoError(t, os.MkdirAll(u.HomeDir, 0o755))
		require.NoError(t, os.Chown(u.HomeDir, uid, gid))
		secret := filepath.Join(u.HomeDir, ".google_authenticator")
		switch i {
		case 0: // enrolled
			require.NoError(t, os.WriteFile(secret, []byte(mfaTestSecret), 0o400))
			require.NoError(t, os.Chown(secret, uid, gid))
		case 2: // owned by root
			require.NoError(t, os.WriteFile(secret, []byte(mfaTestSecret), 0o400))
		case 3: // readable by all
			require.NoError(t, os.WriteFile(secret, []byte(mfaTestSecret), 0o644))
			require.NoError(t, os.Chmod(secret, 0o644))
			require.NoError(t, os.Chown(secret, uid, gid))
		}
	}
	obs := runMFA(t, Options{
		Controls: []string{"enrolment"},
		Groups:   []string{group, "no-such-group-l2"},
		PAM:      PAMOptions{Dir: filepath.Join(dir, "pam.d")},
		// Accounts: the real /etc/passwd and /etc/group, the defaults
	})
	comp := mfaObs(t, obs, "mfa_compliant", "enrolment")
	t.Log("\n" + comp.Details)
	require.Equal(t, 0.0, comp.Value)
	un := mfaObs(t, obs, "mfa_users_unenrolled", group)
	t.Log("\n" + un.Details)
	require.Equal(t, 3.0, un.Value)
	require.Len(t, obs, 2, "a group that does not exist has no series")
	for _, want := range []string{
		": " + users[1] + ", member of group " + group + "\n  rule: members of " + group + ", no-such-group-l2 need a second factor enrolled\n" +
			"  pam_oath: no entry for " + users[1] + " in " + usersOath + "; pam_google_authenticator: ",
		".google_authenticator does not exist",
		".google_authenticator is owned by uid 0, not by " + users[2],
		".google_authenticator has mode 0644, want 0400 or 0600",
	} {
		require.Contains(t, un.Details, want)
	}
	for _, u := range users[1:4] {
		requireMemberFinding(t, un.Details, u, group)
	}
	require.NotContains(t, un.Details, " "+users[0]+", member")
	require.NotContains(t, un.Details, " "+users[4]+", member")
	require.Contains(t, comp.Details, "enrolment: NOT compliant: 3 user(s)")

	// everyone enrolled
	for _, name := range users[1:4] {
		u, err := user.Lookup(name)
		require.NoError(t, err)
		uid, _ := strconv.Atoi(u.Uid)
		secret := filepath.Join(u.HomeDir, ".google_authenticator")
		require.NoError(t, os.WriteFile(secret, []byte(mfaTestSecret), 0o600))
		require.NoError(t, os.Chmod(secret, 0o600))
		require.NoError(t, os.Chown(secret, uid, -1))
	}
	obs = runMFA(t, Options{Controls: []string{"enrolment"}, Groups: []string{group}, PAM: PAMOptions{Dir: filepath.Join(dir, "pam.d")}})
	require.Equal(t, 1.0, mfaObs(t, obs, "mfa_compliant", "enrolment").Value, mfaObs(t, obs, "mfa_compliant", "enrolment").Details)
	require.Equal(t, 0.0, mfaObs(t, obs, "mfa_users_unenrolled", group).Value)
}

// requireMemberFinding asserts that details lists user as an unenrolled
// member of group, citing the FILE:LINE that makes them one: the group's
// line that lists them, or their passwd line when it is their primary group.
func requireMemberFinding(t *testing.T, details, user, group string) {
	t.Helper()
	re := regexp.MustCompile(`(?m)^- (/[^:\n]+):(\d+): ` + regexp.QuoteMeta(user+", member of group "+group) + `$`)
	m := re.FindStringSubmatch(details)
	require.NotNil(t, m, "no finding for %s citing FILE:LINE in:\n%s", user, details)
	data, err := os.ReadFile(m[1])
	require.NoError(t, err)
	n, _ := strconv.Atoi(m[2])
	lines := strings.Split(string(data), "\n")
	require.True(t, n >= 1 && n <= len(lines), "line %d of %s", n, m[1])
	f := strings.Split(lines[n-1], ":")
	switch {
	case strings.HasSuffix(m[1], "group"):
		require.Equal(t, group, f[0], "%s:%d is not the line of group %s", m[1], n, group)
		require.Contains(t, strings.Split(f[len(f)-1], ","), user, "%s:%d does not list %s", m[1], n, user)
	default:
		require.Equal(t, user, f[0], "%s:%d is not the line of user %s", m[1], n, user)
	}
}
