package diskcleanup

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/l2agent/l2agent/configs"
	"github.com/l2agent/l2agent/internal/alert"
	"github.com/l2agent/l2agent/internal/remediatetest"
	"github.com/l2agent/l2agent/internal/testkit"
	"github.com/l2agent/l2agent/remediate"
)

// mountTmpfs mounts a fresh tmpfs at dir (as root), unmounted at cleanup.
func mountTmpfs(t *testing.T, dir string) {
	t.Helper()
	if os.Geteuid() != 0 {
		testkit.RequireCI(t, "disk_cleanup test needs root to mount a tmpfs")
	}
	require.NoError(t, os.MkdirAll(dir, 0o755))
	if err := syscall.Mount("tmpfs", dir, "tmpfs", 0, "size=64m,mode=0755"); err != nil {
		testkit.RequireCI(t, "cannot mount a tmpfs: %v", err)
	}
	t.Cleanup(func() { _ = syscall.Unmount(dir, syscall.MNT_DETACH) })
}

func bindMount(t *testing.T, src, dst string) {
	t.Helper()
	require.NoError(t, os.MkdirAll(dst, 0o755))
	out, err := exec.Command("mount", "--bind", src, dst).CombinedOutput()
	if err != nil {
		testkit.RequireCI(t, "mount --bind: %v: %s", err, out)
	}
	t.Cleanup(func() { _ = syscall.Unmount(dst, syscall.MNT_DETACH) })
}

// hashTree hashes every name, type, mode, size, content and symlink target
// below root, without following symlinks.
func hashTree(t *testing.T, root string) string {
	t.Helper()
	h := sha256.New()
	var lines []string
	require.NoError(t, filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		require.NoError(t, err)
		fi, err := os.Lstat(p)
		require.NoError(t, err)
		line := fmt.Sprintf("%q %v %d %d", p, fi.Mode(), fi.Size(), fi.ModTime().UnixNano())
		switch {
		case fi.Mode()&fs.ModeSymlink != 0:
			target, err := os.Readlink(p)
			require.NoError(t, err)
			line += " -> " + target
		case fi.Mode().IsRegular():
			b, err := os.ReadFile(p)
			require.NoError(t, err)
			sum := sha256.Sum256(b)
			line += " " + hex.EncodeToString(sum[:])
		}
		lines = append(lines, line)
		return nil
	}))
	sort.Strings(lines)
	for _, l := range lines {
		h.Write([]byte(l + "\n"))
	}
	return hex.EncodeToString(h.Sum(nil))
}

func writeAged(t *testing.T, p string, size int, age time.Duration) {
	t.Helper()
	require.NoError(t, os.MkdirAll(filepath.Dir(p), 0o755))
	require.NoError(t, os.WriteFile(p, []byte(strings.Repeat("x", size)), 0o644))
	mt := time.Now().Add(-age)
	require.NoError(t, os.Chtimes(p, mt, mt))
}

func statfsFree(t *testing.T, p string) int64 {
	var s syscall.Statfs_t
	require.NoError(t, syscall.Statfs(p, &s))
	return int64(s.Bfree) * s.Bsize
}

func TestDiskCleanupTmpfs(t *testing.T) {
	base := t.TempDir()
	mnt := filepath.Join(base, "mnt")
	mountTmpfs(t, mnt)
	outside := filepath.Join(base, "outside") // on another filesystem
	logs := filepath.Join(mnt, "logs")        // the allowlisted directory
	other := filepath.Join(mnt, "other")      // same tmpfs, not allowlisted
	keep := filepath.Join(mnt, "keep")        // same tmpfs, bind-mounted into logs
	const old, young = 30 * 24 * time.Hour, time.Hour
	weird := "we;ird\n$(touch pwned) 'q\" \xff\xfe.gz" // newline, shell syntax, non-UTF-8

	// Outside: what symlinks and bind mounts point at; must not change.
	for _, p := range []string{"file.gz", "dir/a.gz", "racetarget/r.gz", "swaptarget.gz", "bindsrc/b.gz"} {
		writeAged(t, filepath.Join(outside, p), 3000, old)
	}
	for _, p := range []string{"o.gz"} {
		writeAged(t, filepath.Join(other, p), 5000, old)
		writeAged(t, filepath.Join(keep, "k.gz"), 5000, old)
	}
	// Allowlisted: old files that must go ...
	gone := []string{"old.gz", "app.log.1", "sub/deep/old2.gz", weird, "race/r.gz"}
	for _, p := range gone {
		writeAged(t, filepath.Join(logs, p), 10000, old)
	}
	// ... and what must stay.
	writeAged(t, filepath.Join(logs, "new.gz"), 10000, young)
	writeAged(t, filepath.Join(logs, "old.txt"), 10000, old) // no glob matches
	writeAged(t, filepath.Join(logs, "writing.gz"), 10000, old)
	writeAged(t, filepath.Join(logs, "swap.gz"), 10000, old)
	writeAged(t, filepath.Join(logs, "hard.gz"), 10000, old)
	require.NoError(t, os.Link(filepath.Join(logs, "hard.gz"), filepath.Join(other, "hard.gz")))
	require.NoError(t, os.Symlink(filepath.Join(outside, "dir"), filepath.Join(logs, "linkdir")))
	require.NoError(t, os.Symlink(filepath.Join(outside, "file.gz"), filepath.Join(logs, "linkfile.gz")))
	bindMount(t, filepath.Join(outside, "bindsrc"), filepath.Join(logs, "bind"))
	bindMount(t, keep, filepath.Join(logs, "samefs-bind"))
	w, err := os.OpenFile(filepath.Join(logs, "writing.gz"), os.O_WRONLY|os.O_APPEND, 0)
	require.NoError(t, err)
	defer w.Close()

	outsideHash, otherHash, keepHash := hashTree(t, outside), hashTree(t, other), hashTree(t, keep)

	d := newDiskCleanup(&Settings{AllowPaths: []string{logs}},
		&Params{Globs: []string{"*.gz", "*.log.[0-9]*"}, OlderThan: configs.Duration(7 * 24 * time.Hour)}, remediate.DefaultEnv)

	// A directory that is not allowlisted is refused outright.
	d2 := newDiskCleanup(&Settings{AllowPaths: []string{logs}}, &Params{Paths: []string{other}, Globs: []string{"*"}, OlderThan: 1}, remediate.DefaultEnv)
	_, err = d2.Plan(context.Background(), remediate.Alert{})
	require.ErrorContains(t, err, "outside allow_paths")
	d3 := newDiskCleanup(&Settings{AllowPaths: []string{logs}}, &Params{Paths: []string{logs + "/../other"}, Globs: []string{"*"}, OlderThan: 1}, remediate.DefaultEnv)
	_, err = d3.Plan(context.Background(), remediate.Alert{})
	require.Error(t, err)

	plan, err := d.Plan(context.Background(), remediate.Alert{Labels: map[string]string{"mountpoint": "$(reboot)"}})
	require.NoError(t, err)
	t.Logf("plan:\n%s", plan.Text)
	dp := plan.Data.(diskPlan)
	var planned []string
	for _, f := range dp.Files {
		planned = append(planned, f.Rel)
	}
	// swap.gz is planned: it is swapped for a symlink only during Apply.
	require.ElementsMatch(t, append(append([]string{}, gone...), "swap.gz"), planned)
	require.Contains(t, plan.Text, fmt.Sprintf("%q", filepath.Join(logs, weird)), "odd names are quoted in the plan")
	require.Contains(t, plan.Text, "open for writing")
	require.Contains(t, plan.Text, "directories on another mount")
	require.Contains(t, plan.Text, "symlinks (never followed)")

	// Races during Apply: the race directory becomes a symlink to outside
	// just before it is opened, and swap.gz a symlink to an outside file
	// just before it is unlinked.
	d.ev.Hook = func(event, p string) {
		switch {
		case event == "opendir" && p == filepath.Join(logs, "race"):
			require.NoError(t, os.Rename(p, p+".moved"))
			require.NoError(t, os.Symlink(filepath.Join(outside, "racetarget"), p))
		case event == "unlink" && p == filepath.Join(logs, "swap.gz"):
			require.NoError(t, os.Rename(p, p+".moved"))
			require.NoError(t, os.Symlink(filepath.Join(outside, "swaptarget.gz"), p))
		}
	}
	before := statfsFree(t, mnt)
	out, err := d.Apply(context.Background(), plan)
	after := statfsFree(t, mnt)
	require.NoError(t, err)
	t.Logf("outcome: %s\n%s", out.Result, out.Output)
	require.True(t, out.Success)

	for _, p := range []string{"old.gz", "app.log.1", "sub/deep/old2.gz", weird} {
		_, err := os.Lstat(filepath.Join(logs, p))
		require.ErrorIs(t, err, fs.ErrNotExist, p)
	}
	for _, p := range []string{"new.gz", "old.txt", "writing.gz", "hard.gz", "linkdir", "linkfile.gz", "race", "race.moved/r.gz", "swap.gz", "swap.gz.moved", "bind/b.gz", "samefs-bind/k.gz", "sub/deep"} {
		_, err := os.Lstat(filepath.Join(logs, p))
		require.NoError(t, err, "%s must stay", p)
	}
	require.Equal(t, int64(4*12288), out.FreedBytes, "4 files of 10000 bytes, 3 pages each")
	require.Equal(t, after-before, out.FreedBytes, "bytes freed match statfs")
	require.Equal(t, "deleted 4 of 6 planned files, freed 48.0 KiB; 2 changed or gone since the plan, left alone", out.Result)
	require.Equal(t, outsideHash, hashTree(t, outside), "nothing outside changed")
	require.Equal(t, otherHash, hashTree(t, other), "the directory that is not allowlisted did not change")
	require.Equal(t, keepHash, hashTree(t, keep), "the bind-mounted directory did not change")
}

// Through the engine and the config: plan, audit and the freed-bytes metric.
func TestDiskCleanupEngine(t *testing.T) {
	base := t.TempDir()
	mnt := filepath.Join(base, "mnt")
	mountTmpfs(t, mnt)
	writeAged(t, filepath.Join(mnt, "log", "a.log.1"), 5000, 10*24*time.Hour)
	writeAged(t, filepath.Join(mnt, "log", "b.log"), 5000, 10*24*time.Hour)
	yaml := fmt.Sprintf(`
remediation:
  actions:
    disk_cleanup: {enabled: true, allow_paths: [%s]}
  rules:
    - {check: disk, metric: disk_used_ratio, labels: {mountpoint: %q}, action: disk_cleanup, params: {globs: ["*.log.[0-9]*"], older_than: 7d}}
`, mnt, mnt)
	clk := testkit.NewClock("2026-08-01T12:00:00Z")
	e, _, dir := remediatetest.NewEngine(t, yaml, clk)
	a := remediate.Alert{Key: "h/disk/x", Check: "disk", Metric: "disk_used_ratio", Labels: map[string]string{"mountpoint": mnt}, State: alert.StateCrit}
	p, err := e.Plan(context.Background(), "disk_cleanup", a)
	require.NoError(t, err)
	require.Contains(t, p.Text, "a.log.1")
	require.NotContains(t, p.Text, "b.log")
	at, attempted := e.Remediate(context.Background(), a, remediatetest.Cleared(true))
	require.True(t, attempted)
	require.True(t, at.Success, at.Result)
	require.Equal(t, "success: deleted 1 of 1 planned files, freed 8.0 KiB; alert cleared", at.Result)
	recs, err := remediate.ReadAudit(filepath.Join(dir, remediate.AuditFile), 0)
	require.NoError(t, err)
	require.Len(t, recs, 1)
	require.Equal(t, int64(8192), recs[0].FreedBytes)
	require.Equal(t, "space freed in "+mnt, recs[0].Expect)
	require.Equal(t, "deleted 1 files, freed 8.0 KiB in "+mnt, recs[0].Effect)
	line, _ := os.ReadFile(filepath.Join(dir, remediate.AuditFile))
	t.Logf("audit line: %s", line)
	if f := os.Getenv("REMEDIATE_AUDIT_SAMPLE"); f != "" {
		_ = os.WriteFile(f, line, 0o644)
	}
}

// A cleanup that frees nothing fails with the reason, whether no file
// matched or the directory is on a read-only file system (as /var/log under
// the packaged systemd unit without a ReadWritePaths= drop-in); it is not
// verified, so an alert that clears by itself is not counted as a fix.
func TestDiskCleanupNoEffect(t *testing.T) {
	run := func(t *testing.T, dir string) (remediate.Record, alert.Attempt) {
		t.Helper()
		yaml := fmt.Sprintf(`
remediation:
  actions:
    disk_cleanup: {enabled: true, allow_paths: [%s]}
  rules:
    - {check: disk, action: disk_cleanup, params: {globs: ["*.log.[0-9]*"], older_than: 7d}}
`, dir)
		e, reg, auditDir := remediatetest.NewEngine(t, yaml, testkit.NewClock("2026-08-01T12:00:00Z"))
		a := remediate.Alert{Key: "h/disk/x", Check: "disk", Metric: "disk_used_ratio", State: alert.StateCrit}
		at, attempted := e.Remediate(context.Background(), a, func(context.Context) (bool, error) {
			t.Error("a cleanup without effect must not be verified")
			return true, nil
		})
		require.True(t, attempted)
		require.False(t, at.Success)
		require.Equal(t, 1.0, remediatetest.Counter(t, reg, "l2agent_remediation_runs_total", map[string]string{"action": "disk_cleanup", "result": "failed"}))
		recs, err := remediate.ReadAudit(filepath.Join(auditDir, remediate.AuditFile), 0)
		require.NoError(t, err)
		require.Len(t, recs, 1)
		return recs[0], at
	}
	t.Run("nothing to free", func(t *testing.T) {
		dir := t.TempDir()
		writeAged(t, filepath.Join(dir, "a.log.1"), 5000, time.Hour) // too new
		rec, at := run(t, dir)
		want := "nothing to free (no file older than 7d matching *.log.[0-9]* in " + dir + ")"
		require.Equal(t, "failed: nothing to delete; no effect: "+want, at.Result)
		require.Equal(t, "no effect: "+want, rec.Reason)
	})
	t.Run("read-only file system", func(t *testing.T) {
		dir := filepath.Join(t.TempDir(), "log")
		remediatetest.ReadOnlyTmpfs(t, dir, func() { writeAged(t, filepath.Join(dir, "a.log.1"), 5000, 10*24*time.Hour) })
		rec, at := run(t, dir)
		require.Equal(t, "failed: deleted 0 of 1 planned files, freed 0 B; 1 files could not be deleted: read-only file system", at.Result)
		require.Contains(t, at.Output, "a.log.1: read-only file system")
		require.Empty(t, rec.Effect)
		_, err := os.Stat(filepath.Join(dir, "a.log.1"))
		require.NoError(t, err)
	})
}
