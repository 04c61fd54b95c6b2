package patches

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/l2agent/l2agent/checks"
	"github.com/l2agent/l2agent/configs"
	"github.com/l2agent/l2agent/internal/checktest"
)

// rpmRepo is a local RPM repository (file://) with updateinfo, made with
// rpmbuild and createrepo_c: each test's has l2a-sec 1.1 (security advisory
// L2A-2026-0001 of testdata/rpm-updateinfo.xml), l2a-other 2.0 (a bugfix)
// and l2a-current 1.0; newRPMRepo builds the packages (RPMS) only.
type rpmRepo struct {
	Dir, RPMS string // the repository; every built package
}

// zyppNoLog keeps zypper from appending to the test machine's
// /var/log/zypper.log (it does even with --root: about 7 KiB a run).
const zyppNoLog = "ZYPP_LOGFILE=/dev/null"

// rpmRun runs a command of the test's setup, failing the test with its output.
func rpmRun(t testing.TB, argv ...string) {
	t.Helper()
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Env = append(os.Environ(), zyppNoLog)
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "%v: %s", argv, out)
}

// buildRPM builds an empty noarch package name-version-1.
func buildRPM(t testing.TB, top, name, version string) {
	t.Helper()
	spec := filepath.Join(top, "SPECS", name+"-"+version+".spec")
	require.NoError(t, os.MkdirAll(filepath.Dir(spec), 0o755))
	require.NoError(t, os.WriteFile(spec, fmt.Appendf(nil, "Name: %s\nVersion: %s\nRelease: 1\nSummary: l2agent test package\n"+
		"License: MIT\nBuildArch: noarch\n%%description\nl2agent test package.\n%%files\n", name, version), 0o644))
	rpmRun(t, checktest.NeedTool(t, "rpmbuild"), "-bb", "--quiet", "--define", "_topdir "+top, spec)
}

func newRPMRepo(t testing.TB) rpmRepo {
	t.Helper()
	checktest.NeedRoot(t)
	checktest.NeedTool(t, "createrepo_c")
	top := t.TempDir()
	r := rpmRepo{RPMS: filepath.Join(top, "RPMS", "noarch")}
	for _, p := range [][2]string{{"l2a-sec", "1.0"}, {"l2a-sec", "1.1"}, {"l2a-other", "1.0"}, {"l2a-other", "2.0"},
		{"l2a-current", "1.0"}, {"l2a-current", "1.1"}} {
		buildRPM(t, top, p[0], p[1])
	}
	return r
}

// add puts a built package into the repository (index makes it visible).
func (r rpmRepo) add(t testing.TB, nvr string) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(r.RPMS, nvr+".noarch.rpm"))
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(filepath.Join(r.Dir, nvr+".noarch.rpm"), b, 0o644))
}

// index writes the repository's metadata, with the advisories.
func (r rpmRepo) index(t testing.TB) {
	t.Helper()
	require.NoError(t, os.RemoveAll(filepath.Join(r.Dir, "repodata")))
	rpmRun(t, checktest.NeedTool(t, "createrepo_c"), "-q", r.Dir)
	ui, err := filepath.Abs(filepath.Join("testdata", "rpm-updateinfo.xml"))
	require.NoError(t, err)
	rpmRun(t, checktest.NeedTool(t, "modifyrepo_c"), "--mdtype=updateinfo", ui, filepath.Join(r.Dir, "repodata"))
}

// installRoot makes a root with its own rpm database holding
// l2a-sec 1.0, l2a-other 1.0 and l2a-current 1.0.
func (r rpmRepo) installRoot(t testing.TB) string {
	t.Helper()
	root := t.TempDir()
	rpm := checktest.NeedTool(t, "rpm")
	rpmRun(t, rpm, "--root", root, "--initdb")
	argv := []string{rpm, "--root", root, "-i", "--justdb", "--nodeps"}
	for _, p := range []string{"l2a-sec-1.0-1", "l2a-other-1.0-1", "l2a-current-1.0-1"} {
		argv = append(argv, filepath.Join(r.RPMS, p+".noarch.rpm"))
	}
	rpmRun(t, argv...)
	return root
}

// rpmReuseCase is one backend's run of TestRPMReuse.
type rpmReuseCase struct {
	backend, tool string
	setup         func(t testing.TB, r rpmRepo, root string) // repository configured, metadata cached
	refresh       func(t testing.TB, root string)            // dnf makecache, zypper refresh
	repoConfig    func(t testing.TB, root string)            // a change to the repository's configuration
	// after the repository config changed: pending all, blocked all
	afterConfig [2]float64
}

// TestRPMReuse: the real dnf and zypper against a local repository. A run
// whose inputs did not change reuses the last answer (dnf or zypper did not
// run) and reports the same; a package installed, new metadata, a changed
// repository configuration and a day passing make the tool run again, and
// what it then says is reported; the run after each reuses again (what the
// tools write themselves, their logs, locks, the rpmdb's -shm and zypper's
// @System solv cache, is not taken for a change).
func TestRPMReuse(t *testing.T) {
	t.Parallel()
	r := newRPMRepo(t)
	for _, tc := range rpmReuseCases() {
		t.Run(tc.backend, func(t *testing.T) {
			t.Parallel()
			testRPMReuse(t, r, tc)
		})
	}
}

func rpmReuseCases() []rpmReuseCase {
	return []rpmReuseCase{
		{backend: "dnf", tool: "dnf", setup: dnfSetup, refresh: func(t testing.TB, root string) {
			rpmRun(t, checktest.NeedTool(t, "dnf"), "--installroot="+root, "--releasever=1", "-q", "makecache")
		}, repoConfig: func(t testing.TB, root string) { // exclude l2a-other: still pending, but blocked
			f := filepath.Join(root, "etc", "yum.repos.d", "l2a.repo")
			b, err := os.ReadFile(f)
			require.NoError(t, err)
			require.NoError(t, os.WriteFile(f, append(b, "excludepkgs=l2a-other\n"...), 0o644))
		}, afterConfig: [2]float64{2, 1}},
		{backend: "zypper", tool: "zypper", setup: zypperSetup, refresh: func(t testing.TB, root string) {
			rpmRun(t, checktest.NeedTool(t, "zypper"), "--root", root, "--non-interactive", "refresh")
		}, repoConfig: func(t testing.TB, root string) { // the repository disabled: nothing pending
			rpmRun(t, checktest.NeedTool(t, "zypper"), "--root", root, "--non-interactive", "modifyrepo", "--disable", "l2a")
		}, afterConfig: [2]float64{0, 0}},
	}
}

// hostFor makes a host for tc: its own copy of the repository, a root with
// the old versions installed, the repository configured and its metadata
// cached.
func hostFor(t testing.TB, built rpmRepo, tc rpmReuseCase) (rpmRepo, string) {
	t.Helper()
	r := rpmRepo{Dir: t.TempDir(), RPMS: built.RPMS}
	for _, p := range []string{"l2a-sec-1.1-1", "l2a-other-2.0-1", "l2a-current-1.0-1"} {
		r.add(t, p)
	}
	r.index(t)
	root := r.installRoot(t)
	tc.setup(t, r, root)
	return r, root
}

func testRPMReuse(t *testing.T, built rpmRepo, tc rpmReuseCase) {
	r, root := hostFor(t, built, tc)
	c := newTestPatches(t, checks.Env{Paths: configs.Paths{Rootfs: root, Procfs: "/proc"}}, Options{Backend: tc.backend})
	runner := &countingRunner{env: []string{zyppNoLog}}
	c.run = runner.run
	now := time.Now()
	c.now = func() time.Time { return now }
	pending := func() map[string]float64 {
		t.Helper()
		obs, err := c.Run(context.Background())
		require.NoError(t, err)
		got, _ := checktest.ObsByKey(t, obs)
		return counts(got)
	}
	runs := 0
	ran := func(what string) { // the tool ran for this run, and the next run reuses
		t.Helper()
		require.Greater(t, runner.count(tc.tool), runs, "%s: %s ran again", what, tc.tool)
		runs = runner.count(tc.tool)
		now = now.Add(time.Minute)
		pending()
		require.Equal(t, runs, runner.count(tc.tool), "%s, then nothing: reused", what)
	}

	first := pending()
	require.Equal(t, 2.0, first[`patches_pending{kind="all"}`], "l2a-sec and l2a-other")
	require.Equal(t, 1.0, first[`patches_pending{kind="security"}`], "L2A-2026-0001 for l2a-sec")
	ran("first run")
	now = now.Add(time.Hour)
	require.Equal(t, first, pending(), "nothing changed: the same answer")
	require.Equal(t, runs, runner.count(tc.tool), "…without %s", tc.tool)

	// l2a-sec installed at 1.1: the rpm database changed.
	rpmRun(t, checktest.NeedTool(t, "rpm"), "--root", root, "-U", "--justdb", "--nodeps", filepath.Join(r.RPMS, "l2a-sec-1.1-1.noarch.rpm"))
	got := pending()
	require.Equal(t, 1.0, got[`patches_pending{kind="all"}`], "l2a-sec is up to date")
	require.Equal(t, 0.0, got[`patches_pending{kind="security"}`])
	ran("a package installed")

	// New metadata: l2a-current 1.1 published, the metadata refreshed.
	r.add(t, "l2a-current-1.1-1")
	r.index(t)
	runs = runner.count(tc.tool)
	pending()
	require.Equal(t, runs, runner.count(tc.tool), "the repository changed, but not yet the host's metadata: reused")
	tc.refresh(t, root)
	got = pending()
	require.Equal(t, 2.0, got[`patches_pending{kind="all"}`], "l2a-other and the new l2a-current")
	ran("new metadata")

	tc.repoConfig(t, root)
	got = pending()
	require.Equal(t, tc.afterConfig[0], got[`patches_pending{kind="all"}`])
	require.Equal(t, tc.afterConfig[1], got[`patches_blocked{kind="all"}`])
	ran("the repository's configuration changed")

	now = now.Add(reuseMax)
	require.Equal(t, got, pending())
	ran("a day passed")
}

// dnfSetup configures the repository in the root and caches its metadata.
func dnfSetup(t testing.TB, r rpmRepo, root string) {
	t.Helper()
	for _, d := range []string{"etc/dnf", "etc/yum.repos.d"} {
		require.NoError(t, os.MkdirAll(filepath.Join(root, d), 0o755))
	}
	require.NoError(t, os.WriteFile(filepath.Join(root, "etc/dnf/dnf.conf"), []byte("[main]\ngpgcheck=0\n"), 0o644))
	require.NoError(t, os.WriteFile(filepath.Join(root, "etc/yum.repos.d/l2a.repo"),
		fmt.Appendf(nil, "[l2a]\nname=l2agent test repository\nbaseurl=file://%s\ngpgcheck=0\nenabled=1\n", r.Dir), 0o644))
	rpmRun(t, checktest.NeedTool(t, "dnf"), "--installroot="+root, "--releasever=1", "-q", "makecache")
}

// zypperSetup adds the repository to the root and refreshes it.
func zypperSetup(t testing.TB, r rpmRepo, root string) {
	t.Helper()
	z := checktest.NeedTool(t, "zypper")
	rpmRun(t, z, "--root", root, "--non-interactive", "addrepo", "-G", "-n", "l2agent test repository", "file://"+r.Dir, "l2a")
	rpmRun(t, z, "--root", root, "--non-interactive", "refresh")
}

// BenchmarkRPMReuse: what one run of the check costs with the real dnf and
// zypper on the test repository, when the tool is asked (its inputs
// changed: the memo is dropped before each run) and when its answer is
// reused. child-cpu-ms/op is the CPU time of the commands the run waited
// for (getrusage RUSAGE_CHILDREN), cpu-ms/op the benchmark process's own.
//
//	go test -run '^$' -bench RPMReuse -benchtime 20x ./checks/patches/
func BenchmarkRPMReuse(b *testing.B) {
	r := newRPMRepo(b)
	for _, tc := range rpmReuseCases() {
		_, root := hostFor(b, r, tc)
		c := newTestPatches(b, checks.Env{Paths: configs.Paths{Rootfs: root, Procfs: "/proc"}}, Options{Backend: tc.backend})
		c.run = (&countingRunner{env: []string{zyppNoLog}}).run
		for _, mode := range []string{"queried", "reused"} {
			b.Run(tc.backend+"/"+mode, func(b *testing.B) {
				_, err := c.Run(context.Background())
				require.NoError(b, err)
				self, children := rusageCPU(syscall.RUSAGE_SELF), rusageCPU(syscall.RUSAGE_CHILDREN)
				b.ResetTimer()
				for range b.N {
					if mode == "queried" {
						c.mu.Lock()
						c.dnfMemo, c.zypperMemo = nil, nil
						c.mu.Unlock()
					}
					if _, err := c.Run(context.Background()); err != nil {
						b.Fatal(err)
					}
				}
				b.ReportMetric(float64(rusageCPU(syscall.RUSAGE_SELF)-self)/1e6/float64(b.N), "cpu-ms/op")
				b.ReportMetric(float64(rusageCPU(syscall.RUSAGE_CHILDREN)-children)/1e6/float64(b.N), "child-cpu-ms/op")
			})
		}
	}
}

// rusageCPU is the user and system CPU time of who.
func rusageCPU(who int) time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(who, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
