package mfa

import (
	"bytes"
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"

	"github.com/l2agent/l2agent/checks"
	"github.com/l2agent/l2agent/configs"
	"github.com/l2agent/l2agent/internal/fsutil"
)

// mfaRootOnly is the content of the root-only files the hostile user points
// the agent at: a valid secret and a valid key line, so that following a
// link would count the user enrolled, and a marker no output may hold.
const mfaRootOnly = "ROOTONLYSECRETQQ"

// TestMFAEnrolmentUnsafe plants in a home directory what its user can: a
// FIFO, a directory, a symbolic link to a root-only file (at the file and at
// a component above it), a hard link, a 2 MB key file. Each is unknown or
// not enrolled, never enrolled, the run never blocks, and no byte of the
// root-only file is in the reasons.
func TestMFAEnrolmentUnsafe(t *testing.T) {
	t.Parallel()
	root := t.TempDir()
	uid := os.Getuid()
	private := t.TempDir()
	require.NoError(t, os.MkdirAll(filepath.Join(private, "Yubico"), 0o700))
	require.NoError(t, os.WriteFile(filepath.Join(private, "secret"), []byte(mfaRootOnly+"\n"), 0o600))
	acc := &mfaAccounts{users: map[string]*mfaAccount{}, groups: map[string]*mfaGroup{}}
	mk := func(name string) (*mfaAccount, string) {
		u := &mfaAccount{Name: name, UID: uid, GID: uid, Home: "/home/" + name}
		acc.users[name] = u
		home := filepath.Join(root, u.Home)
		require.NoError(t, os.MkdirAll(filepath.Join(home, ".config/Yubico"), 0o755))
		return u, home
	}
	require.NoError(t, os.WriteFile(filepath.Join(private, "Yubico/u2f_keys"), []byte("bigkeys:"+mfaRootOnly+",pk\nlinkcfg:"+mfaRootOnly+",pk\n"), 0o600))
	ga := mfaFactor{module: "pam_google_authenticator", rootfs: root, acc: acc}
	u2f := mfaFactor{module: "pam_u2f", rootfs: root, acc: acc}
	check := func(f mfaFactor, u *mfaAccount, want enrolState, why string) {
		t.Helper()
		got, gotWhy, err := f.enrolled(context.Background(), u)
		require.NoError(t, err)
		require.Equal(t, want, got, gotWhy)
		require.Contains(t, gotWhy, why)
		require.NotContains(t, gotWhy, mfaRootOnly)
	}

	u, home := mk("fifo")
	require.NoError(t, unix.Mkfifo(filepath.Join(home, ".google_authenticator"), 0o600))
	check(ga, u, enrolUnknown, "/home/fifo/.google_authenticator: is not a regular file (FIFO)")
	require.NoError(t, unix.Mkfifo(filepath.Join(home, ".config/Yubico/u2f_keys"), 0o600))
	check(u2f, u, enrolUnknown, "/home/fifo/.config/Yubico/u2f_keys: is not a regular file (FIFO)")

	u, home = mk("dir")
	require.NoError(t, os.Mkdir(filepath.Join(home, ".google_authenticator"), 0o700))
	check(ga, u, enrolUnknown, "is not a regular file (directory)")
	require.NoError(t, os.Mkdir(filepath.Join(home, ".config/Yubico/u2f_keys"), 0o700))
	check(u2f, u, enrolUnknown, "is not a regular file (directory)")

	u, home = mk("link")
	require.NoError(t, os.Symlink(filepath.Join(private, "secret"), filepath.Join(home, ".google_authenticator")))
	check(ga, u, enrolUnknown, "/home/link/.google_authenticator: is a symbolic link (not followed)")
	require.NoError(t, os.Symlink(filepath.Join(private, "missing"), filepath.Join(home, ".config/Yubico/u2f_keys")))
	check(u2f, u, enrolUnknown, "is a symbolic link")

	// a link above the file: ~/.config to a root-only tree with an entry
	u, home = mk("linkcfg")
	require.NoError(t, os.RemoveAll(filepath.Join(home, ".config")))
	require.NoError(t, os.Symlink(private, filepath.Join(home, ".config")))
	check(u2f, u, enrolUnknown, "/home/linkcfg/.config: is a symbolic link (not followed)")

	// a link loop in place of the home directory's component
	u, home = mk("loop")
	require.NoError(t, os.RemoveAll(filepath.Join(home, ".config")))
	require.NoError(t, os.Symlink(".config", filepath.Join(home, ".config")))
	check(u2f, u, enrolUnknown, "/home/loop/.config: is a symbolic link")

	// one 2 MB line and no entry for the user: unknown, was "enrolled"
	u, home = mk("bigkeys")
	require.NoError(t, os.WriteFile(filepath.Join(home, ".config/Yubico/u2f_keys"), []byte(strings.Repeat("k", 2<<20)+"\n"), 0o600))
	check(u2f, u, enrolUnknown, "/home/bigkeys/.config/Yubico/u2f_keys: is larger than the limit")
	// a long line within the bound is read whole: no entry, not enrolled
	require.NoError(t, os.WriteFile(filepath.Join(home, ".config/Yubico/u2f_keys"), []byte(strings.Repeat("k", 900<<10)+"\nother:kh,pk\n"), 0o600))
	check(u2f, u, enrolNo, "no entry for bigkeys in /home/bigkeys/.config/Yubico/u2f_keys")
	require.NoError(t, os.WriteFile(filepath.Join(home, ".config/Yubico/u2f_keys"), []byte(strings.Repeat("k", 900<<10)+"\nbigkeys:kh,pk\n"), 0o600))
	check(u2f, u, enrolYes, "")

	// a hard link to a file of another owner is not read
	if uid == 0 {
		u, home = mk("hard")
		u.UID = 4242 // the home's user, not root
		require.NoError(t, os.Link(filepath.Join(private, "Yubico/u2f_keys"), filepath.Join(home, ".config/Yubico/u2f_keys")))
		check(u2f, u, enrolUnknown, "has 2 hard links and is owned by uid 0, not by hard (uid 4242): not read")
	}
}

// TestMFAHostileUserSwap is the attack of issue 22: a throwaway unprivileged
// account swaps (renameat2 RENAME_EXCHANGE, in a loop) its enrolment file,
// or a directory above it, with a FIFO, a symbolic link to a root-only file
// or tree, or a directory, while the check runs again and again. Every run
// finishes within its timeout and reports; the user is never counted
// enrolled (its real files enrol nobody, the root-only ones would); and no
// byte of the root-only files, nor their owner, reaches the diagnostics or
// the log.
func TestMFAHostileUserSwap(t *testing.T) {
	group, users := mfaTestGroup(t, "mallory")
	name := users[0]
	uid := mfaUIDOf(t, name)
	home := mfaHomeOf(t, name)
	own := func(p string) { require.NoError(t, os.Lchown(p, uid, -1)) }
	require.NoError(t, os.MkdirAll(filepath.Join(home, ".config/Yubico"), 0o700))
	for _, p := range []string{home, filepath.Join(home, ".config"), filepath.Join(home, ".config/Yubico")} {
		own(p)
	}
	write := func(p, body string) {
		require.NoError(t, os.WriteFile(p, []byte(body), 0o600))
		own(p)
	}
	// the user's real files: well formed, but enrol nobody
	secret := filepath.Join(home, ".google_authenticator")
	write(secret, "NOTASECRET\n")
	keys := filepath.Join(home, ".config/Yubico/u2f_keys")
	write(keys, "someoneelse:kh,pk\n")

	// root-only: a valid secret, and a tree with a key line for the user
	private := t.TempDir()
	require.NoError(t, os.Chmod(private, 0o700))
	require.NoError(t, os.WriteFile(filepath.Join(private, "secret"), []byte(mfaRootOnly+"\n"), 0o600))
	require.NoError(t, os.MkdirAll(filepath.Join(private, "Yubico"), 0o700))
	require.NoError(t, os.WriteFile(filepath.Join(private, "Yubico/u2f_keys"), []byte(name+":"+mfaRootOnly+",pk\n"), 0o600))

	// what the user swaps in, in its home
	fifo := filepath.Join(home, "fifo")
	require.NoError(t, unix.Mkfifo(fifo, 0o600))
	own(fifo)
	t.Cleanup(func() { mfaUnblockFIFOs(home) })
	link := filepath.Join(home, "link")
	require.NoError(t, os.Symlink(filepath.Join(private, "secret"), link))
	own(link)
	treeLink := filepath.Join(home, "treelink")
	require.NoError(t, os.Symlink(private, treeLink))
	own(treeLink)
	dir := filepath.Join(home, "dir")
	require.NoError(t, os.Mkdir(dir, 0o700))
	own(dir)

	pamDir := t.TempDir()
	mfaWriteFiles(t, pamDir, map[string]string{"sshd": "auth required pam_google_authenticator.so\nauth required pam_u2f.so\n"})
	var logs mfaSyncBuffer
	ch, err := checks.New(configs.Check{Name: "mfa", Kind: "mfa", Options: &Options{
		Controls: []string{"enrolment"}, Groups: []string{group}, PAM: PAMOptions{Dir: pamDir},
		Enrolment: EnrolOptions{Modules: []string{"pam_google_authenticator", "pam_u2f"}},
	}}, checks.Env{Paths: configs.Paths{Rootfs: "/"}, Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	require.NoError(t, err)

	for _, c := range []struct{ name, a, b string }{
		{"secret and FIFO", secret, fifo},
		{"secret and link to a root-only secret", secret, link},
		{"secret and directory", secret, dir},
		{"keys and FIFO", keys, fifo},
		{"~/.config and link to a root-only tree", filepath.Join(home, ".config"), treeLink},
	} {
		t.Run(c.name, func(t *testing.T) {
			seen := mfaSwapRuns(t, ch, c.a, c.b, group, name, &logs)
			t.Logf("reasons seen over the runs: %v", seen)
		})
	}
	require.Zero(t, fsutil.Stuck(), "no read of a factor file was left blocked")
}

// mfaSwapRuns swaps a and b in a loop while it runs the check 200 times,
// and checks every run; it returns how often each reason was seen.
func mfaSwapRuns(t *testing.T, ch checks.Check, a, b, group, name string, logs *mfaSyncBuffer) map[string]int {
	var stop atomic.Bool
	var swaps atomic.Int64
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for !stop.Load() {
			if err := unix.Renameat2(unix.AT_FDCWD, a, unix.AT_FDCWD, b, unix.RENAME_EXCHANGE); err != nil {
				t.Errorf("renameat2 %s %s: %v", a, b, err)
				return
			}
			swaps.Add(1)
		}
	}()
	defer func() {
		stop.Store(true)
		wg.Wait()
		if swaps.Load()%2 == 1 { // put a back in place for the next case
			require.NoError(t, unix.Renameat2(unix.AT_FDCWD, a, unix.AT_FDCWD, b, unix.RENAME_EXCHANGE))
		}
	}()
	const timeout = 20 * time.Second
	seen := map[string]int{}
	for i := range 200 {
		ctx, cancel := context.WithTimeout(context.Background(), timeout)
		type ran struct {
			obs []checks.Observation
			err error
		}
		done := make(chan ran, 1)
		go func() { obs, err := ch.Run(ctx); done <- ran{obs, err} }()
		var r ran
		select {
		case r = <-done:
		case <-time.After(timeout + 10*time.Second):
			cancel()
			t.Fatalf("run %d did not finish within its %s timeout (blocked reading a factor file)", i, timeout)
		}
		cancel()
		require.NoError(t, r.err, "run %d", i)
		comp := mfaObs(t, r.obs, "mfa_compliant", "enrolment")
		un := mfaObs(t, r.obs, "mfa_users_unenrolled", group)
		require.Equal(t, 0.0, comp.Value, "run %d: counted enrolled:\n%s", i, comp.Details)
		require.Equal(t, 1.0, un.Value, "run %d: counted enrolled:\n%s", i, un.Details)
		requireMemberFinding(t, un.Details, name, group)
		for _, d := range []string{comp.Details, un.Details} {
			require.NotContains(t, d, mfaRootOnly, "run %d: a root-only byte in the diagnostics", i)
			require.NotContains(t, d, "owned by uid 0", "run %d: the owner of a root-only file in the diagnostics", i)
		}
		for _, why := range strings.Split(un.Details, "; ") {
			why = strings.TrimSpace(why[strings.LastIndex(why, ": ")+1:])
			seen[why]++
		}
	}
	require.NotContains(t, logs.String(), mfaRootOnly, "a root-only byte in the log")
	t.Logf("%d swaps during the runs", swaps.Load())
	return seen
}

// mfaUnblockFIFOs opens every FIFO of dir for writing and closes it, so that
// a reader blocked on one (the code before issue 22) returns.
func mfaUnblockFIFOs(dir string) {
	_ = filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err == nil && d.Type()&os.ModeNamedPipe != 0 {
			if fd, err := unix.Open(p, unix.O_WRONLY|unix.O_NONBLOCK, 0); err == nil {
				unix.Close(fd)
			}
		}
		return nil
	})
}

// mfaSyncBuffer is a log sink safe for a run left behind.
type mfaSyncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *mfaSyncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *mfaSyncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// FuzzMFAEnrolFiles feeds the parsers of the enrolment files (the secret's
// first line, key files, passwd and group) arbitrary bytes: no panic, and a
// key file matches only on a line that names the user.
func FuzzMFAEnrolFiles(f *testing.F) {
	f.Add([]byte(mfaTestSecret))
	f.Add([]byte("alice:kh,pk,es256,+presence\n# bob:x\n"))
	f.Add([]byte("HOTP/T30 alice - 3132333435363738393031323334353637383930\n"))
	f.Add([]byte("root:x:0:0:root:/root:/bin/bash\nsudo:x:27:alice\n"))
	f.Add([]byte(strings.Repeat("k", 70000)))
	f.Fuzz(func(t *testing.T, b []byte) {
		_ = mfaGASecret(b)
		has := mfaColonUser("alice")
		if mfaHasLine(b, has) {
			require.Contains(t, string(b), "alice:")
		}
		a := &mfaAccounts{users: map[string]*mfaAccount{}, groups: map[string]*mfaGroup{}}
		_ = a.parse(bytes.NewReader(b), bytes.NewReader(b))
		for g := range a.groups {
			_ = a.membersOf(g)
		}
	})
}
