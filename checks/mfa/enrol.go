package mfa

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"

	"github.com/l2agent/l2agent/internal/fsutil"
)

// mfaAccount is one line of the passwd file.
type mfaAccount struct {
	Name     string
	UID, GID int
	Home     string
}

// mfaGroup is one line of the group file.
type mfaGroup struct {
	Name    string
	GID     int
	Members []string // the explicit members; see mfaAccounts.membersOf
}

// mfaAccounts is the user and group database, read from files.
type mfaAccounts struct {
	users  map[string]*mfaAccount
	groups map[string]*mfaGroup
	gnames []string // in file order
}

// readMFAAccounts reads passwd(5) and group(5) files. Lines that do not
// parse are skipped, like NSS files does; the first entry of a name wins.
func readMFAAccounts(passwd, group string) (*mfaAccounts, error) {
	a := &mfaAccounts{users: map[string]*mfaAccount{}, groups: map[string]*mfaGroup{}}
	pf, err := os.Open(passwd)
	if err != nil {
		return nil, fmt.Errorf("read accounts: %w", err)
	}
	defer pf.Close()
	gf, err := os.Open(group)
	if err != nil {
		return nil, fmt.Errorf("read groups: %w", err)
	}
	defer gf.Close()
	if err := a.parse(pf, gf); err != nil {
		return nil, fmt.Errorf("read %s, %s: %w", passwd, group, err)
	}
	return a, nil
}

func (a *mfaAccounts) parse(passwd, group io.Reader) error {
	sc := bufio.NewScanner(passwd)
	sc.Buffer(make([]byte, 0, 64*1024), 1<<20)
	for sc.Scan() {
		// name:password:uid:gid:gecos:home:shell
		f := strings.Split(sc.Text(), ":")
		if len(f) < 7 || f[0] == "" || strings.HasPrefix(f[0], "+") || strings.HasPrefix(f[0], "-") {
			continue
		}
		uid, err1 := strconv.Atoi(f[2])
		gid, err2 := strconv.Atoi(f[3])
		if err1 != nil || err2 != nil {
			continue
		}
		if _, dup := a.users[f[0]]; !dup {
			a.users[f[0]] = &mfaAccount{Name: f[0], UID: uid, GID: gid, Home: f[5]}
		}
	}
	if err := sc.Err(); err != nil {
		return err
	}
	sc = bufio.NewScanner(group)
	sc.Buffer(make([]byte, 0, 64*1024), 1<<20)
	for sc.Scan() {
		// name:password:gid:member,member
		f := strings.Split(sc.Text(), ":")
		if len(f) < 4 || f[0] == "" || strings.HasPrefix(f[0], "+") || strings.HasPrefix(f[0], "-") {
			continue
		}
		gid, err := strconv.Atoi(f[2])
		if err != nil {
			continue
		}
		if _, dup := a.groups[f[0]]; dup {
			continue
		}
		g := &mfaGroup{Name: f[0], GID: gid}
		for _, m := range strings.Split(f[3], ",") {
			if m = strings.TrimSpace(m); m != "" && !slices.Contains(g.Members, m) {
				g.Members = append(g.Members, m)
			}
		}
		a.groups[f[0]] = g
		a.gnames = append(a.gnames, f[0])
	}
	return sc.Err()
}

// membersOf returns the members of a group: the listed ones and the users
// whose primary group it is, sorted.
func (a *mfaAccounts) membersOf(group string) []string {
	g := a.groups[group]
	if g == nil {
		return nil
	}
	ms := slices.Clone(g.Members)
	for _, u := range a.users {
		if u.GID == g.GID && !slices.Contains(ms, u.Name) {
			ms = append(ms, u.Name)
		}
	}
	slices.Sort(ms)
	return ms
}

// groupsOf returns the groups of a user, primary included.
func (a *mfaAccounts) groupsOf(user string) []string {
	u := a.users[user]
	var gs []string
	for _, name := range a.gnames {
		g := a.groups[name]
		if slices.Contains(g.Members, user) || (u != nil && u.GID == g.GID) {
			gs = append(gs, name)
		}
	}
	return gs
}

func (a *mfaAccounts) groupNames() []string { return a.gnames }

// mfaFactor says whether a user has a second factor for one module.
type mfaFactor struct {
	module string
	args   []string // of the first line of the module in the PAM stacks
	rootfs string
	acc    *mfaAccounts
}

// errMFAUnreadable marks a factor store the check could not read (not root).
var errMFAUnreadable = errors.New("cannot read")

// enrolled reports whether u has a factor for f.module; why says what is
// missing or wrong. err is set when a shared file could not be read.
func (f mfaFactor) enrolled(u *mfaAccount) (ok bool, why string, err error) {
	switch f.module {
	case "pam_google_authenticator":
		return f.googleAuthenticator(u)
	case "pam_oath":
		return f.userInFile(u, f.arg("usersfile", "/etc/users.oath"), func(fields []string) bool {
			return len(fields) >= 2 && fields[1] == u.Name // TYPE USER PIN SECRET
		})
	case "pam_u2f":
		if p := f.arg("authfile", ""); p != "" {
			return f.userInFile(u, p, mfaColonUser(u.Name))
		}
		return f.ownFile(u, f.expand(u, "~/.config/Yubico/u2f_keys"), mfaColonUser(u.Name))
	case "pam_yubico":
		if strings.Contains(f.arg("mode", ""), "challenge") {
			dir := f.arg("chalresp_path", "")
			pat := f.expand(u, "~/.yubico/challenge*")
			if dir != "" {
				pat = filepath.Join(f.rootfs, dir, u.Name+"*")
			}
			if m, _ := filepath.Glob(pat); len(m) > 0 {
				return true, "", nil
			}
			return false, "no challenge-response file " + strings.TrimPrefix(pat, strings.TrimSuffix(f.rootfs, "/")), nil
		}
		if p := f.arg("authfile", ""); p != "" {
			return f.userInFile(u, p, mfaColonUser(u.Name))
		}
		return f.ownFile(u, f.expand(u, "~/.yubico/authorized_yubikeys"), mfaColonUser(u.Name))
	}
	return false, "", fmt.Errorf("no enrolment check for %s", f.module)
}

func mfaColonUser(name string) func([]string) bool {
	return func(fields []string) bool { return len(fields) > 0 && strings.HasPrefix(fields[0], name+":") }
}

// arg returns the value of a name=value module argument, or def.
func (f mfaFactor) arg(name, def string) string {
	for _, a := range f.args {
		if v, ok := strings.CutPrefix(a, name+"="); ok {
			return v
		}
	}
	return def
}

func (f mfaFactor) flag(name string) bool { return slices.Contains(f.args, name) }

// expand resolves ~, ${HOME} and ${USER} in a factor path and puts it under
// the rootfs.
func (f mfaFactor) expand(u *mfaAccount, p string) string {
	if rest, ok := strings.CutPrefix(p, "~/"); ok {
		p = filepath.Join(u.Home, rest)
	}
	p = strings.NewReplacer("${HOME}", u.Home, "${USER}", u.Name, "%h", u.Home, "%u", u.Name).Replace(p)
	return filepath.Join(f.rootfs, p)
}

// show is a path as the admin knows it, without the rootfs.
func (f mfaFactor) show(p string) string {
	if f.rootfs == "" || f.rootfs == "/" {
		return p
	}
	if rel, err := filepath.Rel(f.rootfs, p); err == nil && !strings.HasPrefix(rel, "..") {
		return "/" + rel
	}
	return p
}

// googleAuthenticator checks the secret file as pam_google_authenticator
// does: a regular file (not a symlink), owned by the user (or by user=),
// mode 0400 or 0600 (or within allowed_perm=), holding a secret.
func (f mfaFactor) googleAuthenticator(u *mfaAccount) (bool, string, error) {
	p := f.expand(u, f.arg("secret", "~/.google_authenticator"))
	fi, err := os.Lstat(p)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return false, f.show(p) + " does not exist", nil
	case err != nil:
		return false, "", fmt.Errorf("%w %s: %v", errMFAUnreadable, f.show(p), err)
	case fi.Mode()&fs.ModeSymlink != 0:
		return false, f.show(p) + " is a symlink", nil
	case !fi.Mode().IsRegular():
		return false, f.show(p) + " is not a regular file", nil
	}
	st := fi.Sys().(*syscall.Stat_t)
	owner, ownerName := u.UID, u.Name
	if o := f.arg("user", ""); o != "" {
		if ou, ok := f.acc.users[o]; ok {
			owner, ownerName = ou.UID, o
		} else if n, err := strconv.Atoi(o); err == nil {
			owner, ownerName = n, o
		}
	}
	if int(st.Uid) != owner && !f.flag("no_strict_owner") {
		return false, fmt.Sprintf("%s is owned by uid %d, not by %s (uid %d)", f.show(p), st.Uid, ownerName, owner), nil
	}
	perm := uint32(st.Mode) & 0o7777
	if allowed := f.arg("allowed_perm", ""); allowed != "" {
		a, err := strconv.ParseUint(allowed, 8, 32)
		if err == nil && perm&^uint32(a) != 0 {
			return false, fmt.Sprintf("%s has mode %04o, allowed_perm is %04o", f.show(p), perm, a), nil
		}
	} else if perm&0o3577 != 0o400 {
		return false, fmt.Sprintf("%s has mode %04o, want 0400 or 0600", f.show(p), perm), nil
	}
	if fi.Size() == 0 {
		return false, f.show(p) + " is empty", nil
	}
	b, err := fsutil.ReadHead(p, 256)
	if err != nil {
		return true, "", nil // not readable to this user: the metadata is all there is to check
	}
	line, _, _ := strings.Cut(string(b), "\n")
	if !mfaIsBase32(strings.TrimSpace(line)) {
		return false, f.show(p) + " does not start with a base32 secret", nil
	}
	return true, "", nil
}

func mfaIsBase32(s string) bool {
	if len(s) < 16 {
		return false
	}
	for _, c := range strings.TrimRight(s, "=") {
		if !(c >= 'A' && c <= 'Z' || c >= '2' && c <= '7') {
			return false
		}
	}
	return true
}

// userInFile looks for the user in a shared file (users.oath, a central
// u2f or yubico mapping); a missing file enrols nobody.
func (f mfaFactor) userInFile(u *mfaAccount, path string, has func([]string) bool) (bool, string, error) {
	p := filepath.Join(f.rootfs, path)
	found, err := mfaScanFields(p, has)
	if errors.Is(err, fs.ErrNotExist) {
		return false, f.show(p) + " does not exist", nil
	}
	if err != nil {
		return false, "", fmt.Errorf("%w %s: %v", errMFAUnreadable, f.show(p), err)
	}
	if !found {
		return false, "no entry for " + u.Name + " in " + f.show(p), nil
	}
	return true, "", nil
}

// ownFile checks a per-user key file: a regular file owned by the user with
// a line for the user.
func (f mfaFactor) ownFile(u *mfaAccount, p string, has func([]string) bool) (bool, string, error) {
	fi, err := os.Lstat(p)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return false, f.show(p) + " does not exist", nil
	case err != nil:
		return false, "", fmt.Errorf("%w %s: %v", errMFAUnreadable, f.show(p), err)
	case !fi.Mode().IsRegular():
		return false, f.show(p) + " is not a regular file", nil
	}
	if uid := int(fi.Sys().(*syscall.Stat_t).Uid); uid != u.UID && uid != 0 {
		return false, fmt.Sprintf("%s is owned by uid %d, not by %s (uid %d)", f.show(p), uid, u.Name, u.UID), nil
	}
	found, err := mfaScanFields(p, has)
	if err != nil {
		return true, "", nil // unreadable to this user: it exists with the right owner
	}
	if !found {
		return false, "no entry for " + u.Name + " in " + f.show(p), nil
	}
	return true, "", nil
}

// mfaScanFields reports whether a line of the file, split into fields, satisfies
// has; '#' lines are comments.
func mfaScanFields(p string, has func([]string) bool) (bool, error) {
	fh, err := os.Open(p)
	if err != nil {
		return false, err
	}
	defer fh.Close()
	sc := bufio.NewScanner(fh)
	sc.Buffer(make([]byte, 0, 64*1024), 1<<20)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		if has(strings.Fields(line)) {
			return true, nil
		}
	}
	return false, sc.Err()
}
