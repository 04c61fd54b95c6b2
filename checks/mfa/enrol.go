package mfa

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/l2agent/l2agent/internal/fsutil"
	"golang.org/x/sys/unix"
)

// mfaAccount is one line of the passwd file.
type mfaAccount struct {
	Name     string
	UID, GID int
	Home     string
	Line     int // its line in the passwd file
}

// mfaGroup is one line of the group file.
type mfaGroup struct {
	Name    string
	GID     int
	Members []string // the explicit members; see mfaAccounts.membersOf
	Line    int      // its line in the group file
}

// mfaAccounts is the user and group database, read from files.
type mfaAccounts struct {
	users  map[string]*mfaAccount
	groups map[string]*mfaGroup
	gnames []string // in file order
	// passwdFile and groupFile name the files read, for the FILE:LINE that
	// a finding about a member cites.
	passwdFile, groupFile string
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
	a.passwdFile, a.groupFile = passwd, group
	return a, nil
}

func (a *mfaAccounts) parse(passwd, group io.Reader) error {
	sc := bufio.NewScanner(passwd)
	sc.Buffer(make([]byte, 0, 64*1024), 1<<20)
	for line := 1; sc.Scan(); line++ {
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
			a.users[f[0]] = &mfaAccount{Name: f[0], UID: uid, GID: gid, Home: f[5], Line: line}
		}
	}
	if err := sc.Err(); err != nil {
		return err
	}
	sc = bufio.NewScanner(group)
	sc.Buffer(make([]byte, 0, 64*1024), 1<<20)
	for line := 1; sc.Scan(); line++ {
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
		g := &mfaGroup{Name: f[0], GID: gid, Line: line}
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

// memberWhere is the FILE:LINE that makes user a member of group: the
// group's line when it lists the user, else the user's passwd line (the
// group is their primary one); the group's line for a name with no account.
func (a *mfaAccounts) memberWhere(user, group string) string {
	g := a.groups[group]
	if u := a.users[user]; u != nil && g != nil && !slices.Contains(g.Members, user) && u.GID == g.GID {
		return fmt.Sprintf("%s:%d", a.passwdFile, u.Line)
	}
	if g == nil {
		return a.groupFile
	}
	return fmt.Sprintf("%s:%d", a.groupFile, g.Line)
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

// errMFAUnreadable marks a factor store the check could not read: a shared
// file, or any file when the agent is not root. It fails the run.
var errMFAUnreadable = errors.New("cannot read")

// enrolState is what the check knows of a user's factor.
type enrolState int

const (
	enrolNo      enrolState = iota // no factor, or one PAM would refuse
	enrolYes                       // a factor PAM would accept
	enrolUnknown                   // its files cannot be read safely: a finding, never enrolled
)

// Bounds of reading the factor files: per file, and in bytes.
const (
	mfaReadTimeout = 2 * time.Second
	mfaMaxSecret   = 64 << 10 // pam_google_authenticator refuses bigger secret files
	mfaMaxKeys     = 1 << 20  // a per-user key file
	mfaMaxShared   = 16 << 20 // users.oath, a central authfile
)

// enrolled tells whether u has a factor for f.module; why says what is
// missing or wrong, or why it is unknown. err is set when the run cannot go
// on (a shared file unreadable, the agent not root).
func (f mfaFactor) enrolled(ctx context.Context, u *mfaAccount) (st enrolState, why string, err error) {
	switch f.module {
	case "pam_google_authenticator":
		return f.googleAuthenticator(ctx, u)
	case "pam_oath":
		return f.userInFile(ctx, u, f.arg("usersfile", "/etc/users.oath"), func(fields []string) bool {
			return len(fields) >= 2 && fields[1] == u.Name // TYPE USER PIN SECRET
		})
	case "pam_u2f":
		if p := f.arg("authfile", ""); p != "" {
			return f.userInFile(ctx, u, p, mfaColonUser(u.Name))
		}
		return f.ownFile(ctx, u, f.expand(u, "~/.config/Yubico/u2f_keys"), mfaColonUser(u.Name))
	case "pam_yubico":
		if strings.Contains(f.arg("mode", ""), "challenge") {
			return f.challengeFile(ctx, u)
		}
		if p := f.arg("authfile", ""); p != "" {
			return f.userInFile(ctx, u, p, mfaColonUser(u.Name))
		}
		return f.ownFile(ctx, u, f.expand(u, "~/.yubico/authorized_yubikeys"), mfaColonUser(u.Name))
	}
	return enrolNo, "", fmt.Errorf("no enrolment check for %s", f.module)
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

// expand resolves ~, ${HOME} and ${USER} in a factor path: the host's path,
// not under the rootfs.
func (f mfaFactor) expand(u *mfaAccount, p string) string {
	if rest, ok := strings.CutPrefix(p, "~/"); ok {
		p = filepath.Join(u.Home, rest)
	}
	p = strings.NewReplacer("${HOME}", u.Home, "${USER}", u.Name, "%h", u.Home, "%u", u.Name).Replace(p)
	return filepath.Clean(p)
}

// locate splits the host path p into a directory the user cannot change
// (under the rootfs, the host's links followed) and the path below it that
// is opened without following links: inside the home directory, the home
// directory itself and every component below it; elsewhere the file itself.
func (f mfaFactor) locate(u *mfaAccount, p string) (root, rel string) {
	home := filepath.Clean(u.Home)
	if r, err := filepath.Rel(home, p); err == nil && home != "/" && filepath.IsAbs(home) && r != "." && !strings.HasPrefix(r, "..") {
		return fsutil.InRoot(f.rootfs, filepath.Dir(home)), filepath.Join(filepath.Base(home), r)
	}
	return fsutil.InRoot(f.rootfs, filepath.Dir(p)), filepath.Base(p)
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

// read reads the factor file at host path p, which a user controls, with
// fsutil.ReadBeneath: no link followed, nothing but a regular file, at most
// max bytes and mfaReadTimeout. check sees the file's fstat before a byte is
// read. On failure it returns what to report: not enrolled when the file
// does not exist, unknown with the reason for anything else, or a run error
// when the agent lacks the permission.
func (f mfaFactor) read(ctx context.Context, u *mfaAccount, p string, max int64, check func(*unix.Stat_t) error) ([]byte, *unix.Stat_t, enrolState, string, error) {
	root, rel := f.locate(u, p)
	b, st, err := fsutil.ReadBeneath(ctx, root, rel, fsutil.Beneath{Max: max, Timeout: mfaReadTimeout, Check: check})
	if err == nil {
		return b, st, enrolYes, "", nil
	}
	state, why, err := f.judge(p, err)
	return nil, nil, state, why, err
}

// judge turns an error of reading a user's file at host path p into the
// verdict: missing is not enrolled, the agent lacking permission fails the
// run (as it always has without root), anything else is unknown.
func (f mfaFactor) judge(p string, err error) (enrolState, string, error) {
	if errors.Is(err, fs.ErrNotExist) {
		return enrolNo, p + " does not exist", nil
	}
	if errors.Is(err, fs.ErrPermission) && os.Geteuid() != 0 {
		return enrolNo, "", fmt.Errorf("%w %s: %v", errMFAUnreadable, p, f.unsafeText(err))
	}
	var why mfaRefused
	if errors.As(err, &why) {
		return enrolNo, f.unsafeText(err), nil
	}
	return enrolUnknown, "cannot be read safely: " + f.unsafeText(err), nil
}

// unsafeText is err with its path as the admin knows it.
func (f mfaFactor) unsafeText(err error) string {
	var ue *fsutil.UnsafeError
	if errors.As(err, &ue) {
		return f.show(ue.Path) + ": " + ue.Err.Error()
	}
	return err.Error()
}

// mfaRefused is a verdict on a file's metadata that PAM would refuse too: the
// user is not enrolled (rather than unknown).
type mfaRefused string

func (r mfaRefused) Error() string { return string(r) }

// notAlias refuses a file that is not owned by u and has more than one
// link: a hard link a user made to someone else's file, which root must not
// read for them.
func notAlias(u *mfaAccount, st *unix.Stat_t) error {
	if int(st.Uid) != u.UID && st.Nlink > 1 {
		return fmt.Errorf("has %d hard links and is owned by uid %d, not by %s (uid %d): not read", st.Nlink, st.Uid, u.Name, u.UID)
	}
	return nil
}

// googleAuthenticator checks the secret file as pam_google_authenticator
// does: a regular file (not a symlink), owned by the user (or by user=),
// mode 0400 or 0600 (or within allowed_perm=), holding a secret.
func (f mfaFactor) googleAuthenticator(ctx context.Context, u *mfaAccount) (enrolState, string, error) {
	p := f.expand(u, f.arg("secret", "~/.google_authenticator"))
	owner, ownerName := u.UID, u.Name
	if o := f.arg("user", ""); o != "" {
		if ou, ok := f.acc.users[o]; ok {
			owner, ownerName = ou.UID, o
		} else if n, err := strconv.Atoi(o); err == nil {
			owner, ownerName = n, o
		}
	}
	b, _, state, why, err := f.read(ctx, u, p, mfaMaxSecret, func(st *unix.Stat_t) error {
		if int(st.Uid) != owner && !f.flag("no_strict_owner") {
			return mfaRefused(fmt.Sprintf("%s is owned by uid %d, not by %s (uid %d)", p, st.Uid, ownerName, owner))
		}
		perm := st.Mode & 0o7777
		if allowed := f.arg("allowed_perm", ""); allowed != "" {
			a, err := strconv.ParseUint(allowed, 8, 32)
			if err == nil && perm&^uint32(a) != 0 {
				return mfaRefused(fmt.Sprintf("%s has mode %04o, allowed_perm is %04o", p, perm, a))
			}
		} else if perm&0o3577 != 0o400 {
			return mfaRefused(fmt.Sprintf("%s has mode %04o, want 0400 or 0600", p, perm))
		}
		if st.Size == 0 {
			return mfaRefused(p + " is empty")
		}
		return notAlias(&mfaAccount{Name: ownerName, UID: owner}, st)
	})
	if state != enrolYes || err != nil {
		return state, mfaStripPath(why, p), err
	}
	if !mfaGASecret(b) {
		return enrolNo, p + " does not start with a base32 secret", nil
	}
	return enrolYes, "", nil
}

// mfaStripPath drops the repeated path of a refusal: "P: P is empty" is
// "P is empty".
func mfaStripPath(why, p string) string {
	if rest, ok := strings.CutPrefix(why, p+": "+p); ok {
		return p + rest
	}
	return why
}

// mfaGASecret tells whether a google-authenticator secret file starts with
// a base32 secret line.
func mfaGASecret(b []byte) bool {
	line, _, _ := bytes.Cut(b, []byte("\n"))
	return mfaIsBase32(strings.TrimSpace(string(line)))
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
// u2f or yubico mapping); a missing file enrols nobody. The file is the
// admin's: it is read without following a link in its last component, and
// any failure fails the run.
func (f mfaFactor) userInFile(ctx context.Context, u *mfaAccount, path string, has func([]string) bool) (enrolState, string, error) {
	p := filepath.Clean(path)
	root, rel := fsutil.InRoot(f.rootfs, filepath.Dir(p)), filepath.Base(p)
	b, _, err := fsutil.ReadBeneath(ctx, root, rel, fsutil.Beneath{Max: mfaMaxShared, Timeout: mfaReadTimeout})
	if errors.Is(err, fs.ErrNotExist) {
		return enrolNo, p + " does not exist", nil
	}
	if err != nil {
		return enrolNo, "", fmt.Errorf("%w %s: %v", errMFAUnreadable, p, f.unsafeText(err))
	}
	if !mfaHasLine(b, has) {
		return enrolNo, "no entry for " + u.Name + " in " + p, nil
	}
	return enrolYes, "", nil
}

// ownFile checks a per-user key file: a regular file owned by the user (or
// root) with a line for the user.
func (f mfaFactor) ownFile(ctx context.Context, u *mfaAccount, p string, has func([]string) bool) (enrolState, string, error) {
	b, _, state, why, err := f.read(ctx, u, p, mfaMaxKeys, func(st *unix.Stat_t) error {
		if int(st.Uid) != u.UID && st.Uid != 0 {
			return mfaRefused(fmt.Sprintf("%s is owned by uid %d, not by %s (uid %d)", p, st.Uid, u.Name, u.UID))
		}
		return notAlias(u, st)
	})
	if state != enrolYes || err != nil {
		return state, mfaStripPath(why, p), err
	}
	if !mfaHasLine(b, has) {
		return enrolNo, "no entry for " + u.Name + " in " + p, nil
	}
	return enrolYes, "", nil
}

// challengeFile looks for a pam_yubico challenge-response file: a regular
// file named challenge* in ~/.yubico, or user* in chalresp_path. The
// directory is listed without following links.
func (f mfaFactor) challengeFile(ctx context.Context, u *mfaAccount) (enrolState, string, error) {
	dir, prefix := f.expand(u, "~/.yubico"), "challenge"
	if d := f.arg("chalresp_path", ""); d != "" {
		dir, prefix = filepath.Clean(d), u.Name
	}
	root, rel := f.locate(u, dir)
	es, err := fsutil.ListBeneath(ctx, root, rel, func(n string) bool { return strings.HasPrefix(n, prefix) },
		fsutil.Beneath{Timeout: mfaReadTimeout})
	if err != nil {
		state, why, err := f.judge(dir, err)
		if state == enrolNo && err == nil {
			why = "no challenge-response file " + filepath.Join(dir, prefix+"*") + ": " + why
		}
		return state, why, err
	}
	for _, e := range es {
		if e.Stat.Mode&unix.S_IFMT == unix.S_IFREG {
			return enrolYes, "", nil
		}
	}
	return enrolNo, "no challenge-response file " + filepath.Join(dir, prefix+"*"), nil
}

// mfaHasLine reports whether a line of a key file, split into fields,
// satisfies has; '#' lines are comments.
func mfaHasLine(b []byte, has func([]string) bool) bool {
	for len(b) > 0 {
		var line []byte
		line, b, _ = bytes.Cut(b, []byte("\n"))
		s := strings.TrimSpace(string(line))
		if s == "" || strings.HasPrefix(s, "#") {
			continue
		}
		if has(strings.Fields(s)) {
			return true
		}
	}
	return false
}
