package disk

import (
	"context"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/l2agent/l2agent/checks"
	"github.com/l2agent/l2agent/configs"
	"github.com/l2agent/l2agent/internal/checktest"
)

// newTestDisk builds a disk check whose state dir is a temporary one
// unless o names one.
func newTestDisk(t *testing.T, paths configs.Paths, o *Options) *diskCheck {
	t.Helper()
	if o == nil {
		o = &Options{}
	}
	if o.StateDir == "" {
		o.StateDir = t.TempDir()
	}
	c, err := checks.New(configs.Check{Name: "disk", Kind: "disk", Options: o}, checks.Env{Paths: paths})
	require.NoError(t, err)
	return c.(*diskCheck)
}

func TestParseMountinfo(t *testing.T) {
	t.Parallel()
	f, err := os.Open("testdata/procfs/1/mountinfo")
	require.NoError(t, err)
	defer f.Close()
	ms, err := parseMountinfo(f)
	require.NoError(t, err)
	require.Len(t, ms, 18)
	require.Equal(t, mount{ID: 26, Root: "/", Mountpoint: "/", FSType: "ext4", Device: "/dev/vda"}, ms[5])
	byMP := map[string]mount{}
	for _, m := range ms {
		byMP[m.Mountpoint] = m // the last of a mountpoint wins, as in dedupeMounts
	}
	require.Equal(t, mount{ID: 43, Root: "/", Mountpoint: "/srv/my data", FSType: "xfs", Device: "/dev/vdc"}, byMP["/srv/my data"],
		"escaped space; two optional fields")
	require.Equal(t, mount{ID: 44, Root: "/srv/export", Mountpoint: "/mnt/export", FSType: "ext4", Device: "/dev/vda"}, byMP["/mnt/export"],
		"bind mount of a subdirectory")
	require.True(t, byMP["/boot"].ReadOnly, "ro mount option")
	require.True(t, byMP["/var"].ReadOnly, "ro superblock option: remounted read-only after errors")
	require.True(t, byMP["/snap/core22/1380"].ReadOnly)
	require.False(t, byMP["/run"].ReadOnly)

	for _, bad := range []string{
		"26 1 254:0 / / rw,relatime ext4 /dev/vda rw\n", // no "-"
		"26 1 254:0 / / rw,relatime - ext4\n",           // no source
		"26 1 - ext4 /dev/vda rw\n",                     // "-" too early
		"x 1 254:0 / / rw - ext4 /dev/vda rw\n",         // no mount ID
		"26  1 254:0 / / rw - ext4 /dev/vda\n",          // two spaces: an empty field shifts the rest
	} {
		_, err := parseMountinfo(strings.NewReader(bad))
		require.ErrorContains(t, err, "line 1", bad)
	}
	ms, err = parseMountinfo(strings.NewReader("\n26 1 254:0 / / rw - ext4 /dev/vda\n"))
	require.NoError(t, err, "superblock options may be missing")
	require.Equal(t, []mount{{ID: 26, Root: "/", Mountpoint: "/", FSType: "ext4", Device: "/dev/vda"}}, ms)

	// Names are data: only space, tab, newline and backslash are escaped by
	// the kernel; CR, NBSP, NEL, ESC and U+2028 are written as they are and
	// must neither split a field nor end a line.
	odd := "/mnt/a b\tc\nd\\e\rf\u00a0g\u0085h\x1b[2Ji\u2028j\r"
	ms, err = parseMountinfo(strings.NewReader("70 26 0:99 / /mnt/a\\040b\\011c\\012d\\134e\rf\u00a0g\u0085h\x1b[2Ji\u2028j\r rw,relatime shared:9 - tmpfs dev\\012Resolved:\x1b[2J\r rw,size=1024k\r\n"))
	require.NoError(t, err)
	require.Equal(t, []mount{{ID: 70, Root: "/", Mountpoint: odd, FSType: "tmpfs", Device: "dev\nResolved:\x1b[2J\r"}}, ms)
}

func TestUnescapeOctal(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		`/plain`:            "/plain",
		`/my\040disk`:       "/my disk",
		`/a\011b\012c\134d`: "/a\tb\nc\\d",
		`/x\12`:             `/x\12`,  // too short
		`/x\400`:            `/x\400`, // more than a byte
		`/x\08a`:            `/x\08a`, // not octal
		`/x\`:               `/x\`,
	} {
		require.Equal(t, want, unescapeOctal(in), in)
	}
}

func FuzzParseMountinfo(f *testing.F) {
	for _, p := range []string{"testdata/procfs/1/mountinfo", "testdata/procfs-old/self/mountinfo"} {
		b, err := os.ReadFile(p)
		require.NoError(f, err)
		f.Add(string(b))
	}
	f.Add(`1 2 3:4 / /a\040b\ rw shared:1 - - \134 ro` + "\n")
	f.Add("70 26 0:99 / /mnt/a\\012b\rc\u00a0d\u0085e\x1b[2J rw shared:9 - tmpfs dev\\012x\r rw\r\n")
	f.Fuzz(func(t *testing.T, s string) {
		ms, err := parseMountinfo(strings.NewReader(s))
		if err != nil {
			return
		}
		if len(ms) > strings.Count(s, "\n")+1 {
			t.Fatalf("%d mounts from %d lines", len(ms), strings.Count(s, "\n")+1)
		}
		for _, m := range ms {
			if m.ID < 0 || m.Mountpoint == "" || m.FSType == "" {
				t.Fatalf("mount %+v", m)
			}
		}
		if d := dedupeMounts(ms); len(d) > len(ms) {
			t.Fatal("dedupe added mounts")
		}
	})
}

func mountpoints(ms []mount) []string {
	var mps []string
	for _, m := range ms {
		mps = append(mps, m.Mountpoint+" "+m.FSType)
	}
	return mps
}

func TestDiskMountSelection(t *testing.T) {
	t.Parallel()
	paths := configs.Paths{Procfs: "testdata/procfs", Rootfs: "/"}
	for _, tc := range []struct {
		name string
		o    *Options
		want []string
	}{
		{"defaults", nil, []string{"/ ext4", "/run tmpfs", "/boot ext4", "/srv/my data xfs", "/mnt/export ext4", "/var ext4", "/tmp tmpfs", "/home nfs4"}},
		{"include mountpoints", &Options{IncludeMountpoints: []string{`^/(var|tmp)$`, `^/$`}}, []string{"/ ext4", "/var ext4", "/tmp tmpfs"}},
		{"include fstypes", &Options{IncludeFSTypes: []string{"ext4", "xfs"}}, []string{"/ ext4", "/boot ext4", "/srv/my data xfs", "/mnt/export ext4", "/var ext4"}},
		{"exclude fstypes replaces the defaults", &Options{ExcludeFSTypes: []string{"tmpfs", "nfs4", "proc", "sysfs", "devtmpfs", "cgroup2", "devpts", "overlay", "squashfs"}, ExcludeMountpoints: []string{}},
			[]string{"/ ext4", "/boot ext4", "/srv/my data xfs", "/mnt/export ext4", "/var ext4"}},
		{"exclude mountpoints", &Options{ExcludeMountpoints: []string{`^/(srv|mnt)/`, `^/(dev|proc|sys|var/lib/docker)($|/)`}},
			[]string{"/ ext4", "/run tmpfs", "/boot ext4", "/var ext4", "/tmp tmpfs", "/home nfs4"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ms, err := newTestDisk(t, paths, tc.o).mounts()
			require.NoError(t, err)
			require.Equal(t, tc.want, mountpoints(ms))
		})
	}

	// Without <procfs>/1/mountinfo, self/mountinfo is read.
	ms, err := newTestDisk(t, configs.Paths{Procfs: "testdata/procfs-old", Rootfs: "/"}, nil).mounts()
	require.NoError(t, err)
	require.Len(t, ms, 8)
	_, err = newTestDisk(t, configs.Paths{Procfs: "testdata/nonexistent", Rootfs: "/"}, nil).mounts()
	require.ErrorContains(t, err, "read testdata/nonexistent/1/mountinfo")
	require.ErrorContains(t, err, "read testdata/nonexistent/self/mountinfo")

	_, err = checks.New(configs.Check{Kind: "disk", Options: &Options{IncludeMountpoints: []string{"("}}}, checks.Env{})
	require.ErrorContains(t, err, "mountpoint pattern")
}

// fakeStatfs serves statfs results by path; paths in block wait for it to close.
type fakeStatfs struct {
	st    map[string]syscall.Statfs_t
	block chan struct{}
	slow  string
}

func (f *fakeStatfs) statfs(path string, st *syscall.Statfs_t) error {
	if path == f.slow {
		<-f.block
	}
	s, ok := f.st[path]
	if !ok {
		return syscall.EIO
	}
	*st = s
	return nil
}

func TestDiskRunFake(t *testing.T) {
	t.Parallel()
	const gib = 1 << 30
	fs := &fakeStatfs{st: map[string]syscall.Statfs_t{
		// 100 GiB in 4 KiB blocks, 30 GiB free of which 25 GiB for non-root.
		"/host":             {Bsize: 4096, Frsize: 4096, Blocks: 100 * gib / 4096, Bfree: 30 * gib / 4096, Bavail: 25 * gib / 4096, Files: 1000, Ffree: 250},
		"/host/run":         {Bsize: 4096, Frsize: 4096, Blocks: 1000, Bfree: 1000, Bavail: 1000},         // no inode count
		"/host/boot":        {Bsize: 1024, Blocks: 1000, Bfree: 600, Bavail: 550, Files: 100, Ffree: 100}, // no f_frsize
		"/host/srv/my data": {Bsize: 4096, Frsize: 4096, Blocks: 10, Bfree: 0, Bavail: 0, Files: 10, Ffree: 0},
		"/host/mnt/export":  {Bsize: 4096, Frsize: 4096, Blocks: 100 * gib / 4096, Bfree: 30 * gib / 4096, Bavail: 25 * gib / 4096, Files: 1000, Ffree: 250},
		"/host/var":         {Bsize: 4096, Frsize: 4096},
		"/host/tmp":         {Bsize: 4096, Frsize: 4096, Blocks: 512, Bfree: 256, Bavail: 256, Files: 64, Ffree: 32},
		// /host/home fails with EIO.
	}}
	c := newTestDisk(t, configs.Paths{Procfs: "testdata/procfs", Rootfs: "/host"}, nil)
	c.statfs = fs.statfs
	c.samples["/gone"] = []fillSample{{t: time.Now()}}
	obs, err := c.Run(context.Background())
	require.NoError(t, err)
	got := checktest.ByKey(t, obs)
	l := func(mp, dev, fstype string) string {
		return fmt.Sprintf("{device=%q,fstype=%q,mountpoint=%q}", dev, fstype, mp)
	}
	root, run, boot, srv := l("/", "/dev/vda", "ext4"), l("/run", "tmpfs", "tmpfs"), l("/boot", "/dev/vdb1", "ext4"), l("/srv/my data", "/dev/vdc", "xfs")
	export, va, tmp, home := l("/mnt/export", "/dev/vda", "ext4"), l("/var", "/dev/vdd", "ext4"), l("/tmp", "tmpfs", "tmpfs"), l("/home", "server:/export/home", "nfs4")
	want := map[string]float64{
		"disk_size_bytes" + root: 100 * gib, "disk_free_bytes" + root: 25 * gib,
		"disk_used_ratio" + root: 70.0 / 95, "disk_inodes_used_ratio" + root: 0.75, "disk_read_only" + root: 0,
		"disk_size_bytes" + export: 100 * gib, "disk_free_bytes" + export: 25 * gib,
		"disk_used_ratio" + export: 70.0 / 95, "disk_inodes_used_ratio" + export: 0.75, "disk_read_only" + export: 0,
		"disk_size_bytes" + run: 1000 * 4096, "disk_free_bytes" + run: 1000 * 4096, "disk_used_ratio" + run: 0, "disk_read_only" + run: 0,
		"disk_size_bytes" + boot: 1000 * 1024, "disk_free_bytes" + boot: 550 * 1024,
		"disk_used_ratio" + boot: 400.0 / 950, "disk_inodes_used_ratio" + boot: 0, "disk_read_only" + boot: 1,
		"disk_size_bytes" + srv: 40960, "disk_free_bytes" + srv: 0, "disk_used_ratio" + srv: 1, "disk_inodes_used_ratio" + srv: 1, "disk_read_only" + srv: 0,
		"disk_size_bytes" + va: 0, "disk_free_bytes" + va: 0, "disk_read_only" + va: 1, // nothing to divide by: no ratios
		"disk_size_bytes" + tmp: 512 * 4096, "disk_free_bytes" + tmp: 256 * 4096,
		"disk_used_ratio" + tmp: 0.5, "disk_inodes_used_ratio" + tmp: 0.5, "disk_read_only" + tmp: 0,
		"disk_read_only" + home: 0, "disk_device_error" + home: 1,
	}
	for _, k := range []string{root, run, boot, srv, export, va, tmp, home} {
		want["disk_mount_missing"+k] = 0
	}
	require.Len(t, got, len(want), got)
	for k, v := range want {
		require.Contains(t, got, k)
		require.InDelta(t, v, got[k], 1e-12, k)
	}
	for _, o := range obs {
		if o.Metric == "disk_device_error" {
			require.Contains(t, o.Details, "statfs /host/home: input/output error")
		}
	}
	require.NotContains(t, c.samples, "/gone", "histories of vanished mounts are dropped")
	require.Len(t, c.samples["/"], 1)
}

func TestDiskStatfsHangs(t *testing.T) {
	t.Parallel()
	fs := &fakeStatfs{st: map[string]syscall.Statfs_t{
		"/host":      {Bsize: 4096, Frsize: 4096, Blocks: 10, Bfree: 5, Bavail: 5},
		"/host/home": {Bsize: 4096, Frsize: 4096, Blocks: 10, Bfree: 5, Bavail: 5},
	}, slow: "/host/home", block: make(chan struct{})}
	c := newTestDisk(t, configs.Paths{Procfs: "testdata/procfs", Rootfs: "/host"}, &Options{IncludeMountpoints: []string{`^/(home)?$`}})
	c.statfs = fs.statfs

	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	_, err := c.Run(ctx)
	require.ErrorIs(t, err, context.DeadlineExceeded)

	// The hung call is still pending: the next run does not wait for it.
	obs, err := c.Run(context.Background())
	require.NoError(t, err)
	got := checktest.ByKey(t, obs)
	require.Equal(t, 1.0, got[`disk_device_error{device="server:/export/home",fstype="nfs4",mountpoint="/home"}`])
	require.Equal(t, 0.5, got[`disk_used_ratio{device="/dev/vda",fstype="ext4",mountpoint="/"}`])

	close(fs.block)
	require.Eventually(t, func() bool {
		obs, err := c.Run(context.Background())
		return err == nil && checktest.ByKey(t, obs)[`disk_used_ratio{device="server:/export/home",fstype="nfs4",mountpoint="/home"}`] == 0.5
	}, 5*time.Second, 10*time.Millisecond)
}

// clock is a settable time source for the fill fit.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time      { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) add(d time.Duration) { c.mu.Lock(); defer c.mu.Unlock(); c.t = c.t.Add(d) }

func TestTimeToFull(t *testing.T) {
	t.Parallel()
	const avail = 1e9
	newCheck := func(o *Options) (*diskCheck, *clock) {
		clk := &clock{t: time.Date(2026, 8, 1, 0, 0, 0, 0, time.UTC)}
		c := newTestDisk(t, configs.Paths{Procfs: "testdata/procfs", Rootfs: "/"}, o)
		c.now = clk.now
		return c, clk
	}

	t.Run("filling", func(t *testing.T) {
		c, clk := newCheck(&Options{FillWindow: configs.Duration(time.Hour)})
		var ttf float64
		var fit fillFit
		var ok bool
		for i := range 80 { // 10 MB/s with ±1 MB noise, every 30s
			used := 5e9 + 10e6*30*float64(i) + 1e6*float64(i%2*2-1)
			ttf, fit, ok = c.timeToFull("/", uint64(used), avail)
			require.Equal(t, i >= 60, ok, "needs 30 minutes (i=%d)", i)
			clk.add(30 * time.Second)
		}
		require.InEpsilon(t, avail/10e6, ttf, 0.01)
		require.Greater(t, fit.r2, 0.999)
		require.Equal(t, 80, fit.n)
		require.Regexp(t, `^Fill rate 33\.\d GiB/h fitted over 39m30s \(80 samples\), R² 1\.000\.$`, fit.String())
	})

	t.Run("needs samples", func(t *testing.T) {
		c, clk := newCheck(&Options{FillWindow: configs.Duration(time.Hour)})
		for i := range 9 { // 9 samples over 40 minutes
			_, fit, ok := c.timeToFull("/", uint64(1e9+1e6*i), avail)
			require.False(t, ok)
			if i > 0 {
				require.InDelta(t, 1.0, fit.r2, 1e-9, "a perfect line, yet too few samples")
			}
			clk.add(5 * time.Minute)
		}
		_, _, ok := c.timeToFull("/", uint64(1e9+1e6*9), avail)
		require.True(t, ok, "the 10th sample")
	})

	t.Run("short window keeps its span", func(t *testing.T) {
		c, clk := newCheck(&Options{FillWindow: configs.Duration(10 * time.Minute)})
		require.Equal(t, configs.Duration(10*time.Minute), c.opts.FillMinSpan, "a config with a window under 30m still gets a time to full")
		var ok bool
		for i := range 30 {
			_, _, ok = c.timeToFull("/", uint64(1e9+1e6*i), avail)
			clk.add(30 * time.Second)
		}
		require.True(t, ok)
	})

	for name, rate := range map[string]float64{"steady": 0, "shrinking": -1e6} {
		t.Run(name, func(t *testing.T) {
			c, clk := newCheck(&Options{FillWindow: configs.Duration(time.Hour)})
			for i := range 60 {
				_, _, ok := c.timeToFull("/", uint64(5e9+rate*float64(i)), avail)
				require.False(t, ok)
				clk.add(time.Minute)
			}
		})
	}

	t.Run("burst", func(t *testing.T) {
		// A 15-minute build writes 2 GB, then the disk is flat: whatever the
		// span, the ramp is at most half of it and R² stays under 0.9.
		c, clk := newCheck(nil)
		used := 5e9
		for i := range 6 * 120 { // 6 hours, every 30 s
			if i < 30 {
				used += 2e9 / 30
			}
			_, fit, ok := c.timeToFull("/", uint64(used), avail)
			require.False(t, ok, "i=%d fit %s", i, fit)
			clk.add(30 * time.Second)
		}
	})

	t.Run("window", func(t *testing.T) {
		c, clk := newCheck(&Options{FillWindow: configs.Duration(40 * time.Minute), FillMinSpan: configs.Duration(10 * time.Minute)})
		used := 5e9
		for range 40 { // shrinking fast for 40 minutes
			used -= 1e8
			_, _, ok := c.timeToFull("/", uint64(used), avail)
			require.False(t, ok)
			clk.add(time.Minute)
		}
		var ttf float64
		var ok bool
		for range 41 { // then growing at 1 MB/s: the old samples leave the window
			used += 60e6
			ttf, _, ok = c.timeToFull("/", uint64(used), avail)
			clk.add(time.Minute)
		}
		require.True(t, ok)
		require.InEpsilon(t, avail/1e6, ttf, 1e-6)
		require.Len(t, c.samples["/"], 41, "samples older than the window are pruned")
	})

	t.Run("bounded samples", func(t *testing.T) {
		c, clk := newCheck(&Options{FillWindow: configs.Duration(1000 * time.Second), FillMinSpan: configs.Duration(time.Second)}) // keeps at most one sample a second
		for i := range 100 {
			c.timeToFull("/", uint64(i), avail)
			clk.add(250 * time.Millisecond)
		}
		require.Len(t, c.samples["/"], 25)
	})
}

func TestFitFill(t *testing.T) {
	t.Parallel()
	t0 := time.Unix(0, 0)
	f := fitFill([]fillSample{{t0, 100}, {t0.Add(time.Minute), 160}, {t0.Add(2 * time.Minute), 220}})
	require.InDelta(t, 1.0, f.slope, 1e-12)
	require.InDelta(t, 1.0, f.r2, 1e-12)
	require.Equal(t, 2*time.Minute, f.span)
	require.Equal(t, 3, f.n)
	require.Equal(t, fillFit{n: 1}, fitFill([]fillSample{{t0, 1}}))
	require.Equal(t, fillFit{n: 2}, fitFill([]fillSample{{t0, 1}, {t0, 2}}), "no time passed: no slope")
	f = fitFill([]fillSample{{t0, 5}, {t0.Add(time.Minute), 5}, {t0.Add(2 * time.Minute), 5}})
	require.Zero(t, f.slope)
	require.Zero(t, f.r2, "flat: nothing explained")
	// A step halfway: the best line explains 3/4 of the variance.
	var s []fillSample
	for i := range 100 {
		s = append(s, fillSample{t0.Add(time.Duration(i) * time.Minute), float64(i / 50)})
	}
	require.InDelta(t, 0.75, fitFill(s).r2, 0.01)
}

// TestDiskReal compares the figures of "/" with statfs(2) and df(1).
func TestDiskReal(t *testing.T) {
	t.Parallel()
	c := newTestDisk(t, configs.Paths{Procfs: "/proc", Sysfs: "/sys", Rootfs: "/"}, nil)
	obs, err := c.Run(context.Background())
	require.NoError(t, err)
	got := map[string]float64{}
	for _, o := range obs {
		if o.Labels["mountpoint"] == "/" {
			got[o.Metric] = o.Value
		}
	}
	require.NotEmpty(t, got, "no observations for / in %v", obs)
	require.NotContains(t, got, "disk_device_error")

	var st syscall.Statfs_t
	require.NoError(t, syscall.Statfs("/", &st))
	bs := float64(st.Frsize)
	size, used, avail := float64(st.Blocks)*bs, float64(st.Blocks-st.Bfree)*bs, float64(st.Bavail)*bs
	require.InEpsilon(t, size, got["disk_size_bytes"], 0.01)
	require.InEpsilon(t, avail, got["disk_free_bytes"], 0.01)
	require.InDelta(t, used/(used+avail), got["disk_used_ratio"], 0.01)

	out, err := exec.Command("df", "-B1", "--output=used,avail", "/").Output()
	if err != nil {
		t.Logf("no df: %v", err)
		return
	}
	f := strings.Fields(string(out)) // Used Avail <used> <avail>
	require.Len(t, f, 4, string(out))
	dfUsed, err := strconv.ParseFloat(f[2], 64)
	require.NoError(t, err)
	dfAvail, err := strconv.ParseFloat(f[3], 64)
	require.NoError(t, err)
	require.InEpsilon(t, dfAvail, got["disk_free_bytes"], 0.01)
	require.InDelta(t, dfUsed/(dfUsed+dfAvail), got["disk_used_ratio"], 0.01)
	t.Logf("/: used_ratio %.4f (df %.4f), free %.0f (df %.0f)", got["disk_used_ratio"], dfUsed/(dfUsed+dfAvail), got["disk_free_bytes"], dfAvail)
}

func writeFile(t *testing.T, path string, size int) {
	t.Helper()
	require.NoError(t, os.MkdirAll(filepath.Dir(path), 0o755))
	require.NoError(t, os.WriteFile(path, make([]byte, size), 0o644))
}

func TestScanDirs(t *testing.T) {
	t.Parallel()
	const mib = 1 << 20
	outside := t.TempDir()
	writeFile(t, filepath.Join(outside, "huge"), 8*mib)
	root := t.TempDir()
	writeFile(t, filepath.Join(root, "a", "b", "c", "d", "f"), 2*mib) // below max depth, counted in its parents
	writeFile(t, filepath.Join(root, "a", "g"), mib)
	writeFile(t, filepath.Join(root, "h", "f"), 2*mib)
	require.NoError(t, os.Link(filepath.Join(root, "h", "f"), filepath.Join(root, "h", "link")), "hard links count once")
	require.NoError(t, os.Mkdir(filepath.Join(root, "s"), 0o755))
	sparse, err := os.Create(filepath.Join(root, "s", "sparse"))
	require.NoError(t, err)
	require.NoError(t, sparse.Truncate(1<<30), "1 GiB apparent, nothing allocated")
	require.NoError(t, sparse.Close())
	require.NoError(t, os.Symlink(outside, filepath.Join(root, "out")))

	s := scanDirs(context.Background(), root, 3, 1000, 3)
	require.NoError(t, s.err)
	require.Empty(t, s.stopped)
	require.Equal(t, []string{"a", "a/b", "a/b/c", "h", "s"}, slices.Sorted(maps.Keys(s.sizes)), "depth 1..3 only")
	require.GreaterOrEqual(t, s.sizes["a"], uint64(3*mib))
	require.Less(t, s.sizes["a"], uint64(3*mib+64<<10))
	require.GreaterOrEqual(t, s.sizes["h"], uint64(2*mib))
	require.Less(t, s.sizes["h"], uint64(2*mib+64<<10))
	require.Less(t, s.sizes["s"], uint64(64<<10), "sparse files count their allocation")

	txt := s.format("/data", 3)
	lines := strings.Split(strings.TrimSuffix(txt, "\n"), "\n")
	require.Len(t, lines, 9, txt)
	require.Equal(t, "Largest directories under /data (allocated size, up to 3 levels deep, this mount only):", lines[0])
	require.Regexp(t, `^\s+3\.\d MiB  /data/a$`, lines[1])
	require.Regexp(t, `^\s+2\.\d MiB  /data/a/b$`, lines[2])
	require.Regexp(t, `^\s+2\.\d MiB  /data/a/b/c$`, lines[3])
	require.Equal(t, "Largest files:", lines[4])
	require.Equal(t, "   2.0 MiB  /data/a/b/c/d/f", lines[5], "at any depth")
	require.Equal(t, "   2.0 MiB  /data/h/f", lines[6], "a hard link counts once")
	require.Equal(t, "   1.0 MiB  /data/a/g", lines[7])
	require.Regexp(t, `^Complete scan: 12 entries in [\d.]+m?s\.$`, lines[8])
	require.NotContains(t, txt, "out")

	s = scanDirs(context.Background(), root, 3, 4, 3)
	require.Equal(t, "entry limit (4) reached", s.stopped)
	require.Equal(t, 4, s.entries)
	require.Contains(t, s.format("/data", 10), "PARTIAL scan: entry limit (4) reached after 4 entries")

	ctx, cancel := context.WithDeadline(context.Background(), time.Now().Add(-time.Second))
	defer cancel()
	s = scanDirs(ctx, root, 3, 1000, 3)
	require.Equal(t, "time limit reached", s.stopped)
	require.Contains(t, s.format("/data", 10), "PARTIAL scan: time limit reached after 0 entries")
	require.Contains(t, s.format("/data", 10), "(no subdirectories)")

	s = scanDirs(context.Background(), filepath.Join(root, "missing"), 3, 1000, 3)
	require.ErrorContains(t, s.err, "read "+filepath.Join(root, "missing"))
}

func TestDiskDiagnoseErrors(t *testing.T) {
	t.Parallel()
	c := newTestDisk(t, configs.Paths{Procfs: "/proc", Rootfs: "/"}, nil)
	_, err := c.Diagnose(context.Background(), checks.Observation{Metric: "disk_used_ratio"})
	require.ErrorContains(t, err, "no mountpoint label")
	_, err = c.Diagnose(context.Background(), checks.Observation{Labels: map[string]string{"mountpoint": "/nonexistent/l2agent"}})
	require.ErrorContains(t, err, "read /nonexistent/l2agent")
}

// mountTmpfs mounts a tmpfs on dir until the test ends.
func mountTmpfs(t *testing.T, dir, size string) {
	t.Helper()
	require.NoError(t, syscall.Mount("tmpfs", dir, "tmpfs", 0, "size="+size), "mount tmpfs on %s", dir)
	t.Cleanup(func() {
		if err := syscall.Unmount(dir, 0); err != nil {
			require.NoError(t, syscall.Unmount(dir, syscall.MNT_DETACH), "unmount %s", dir)
		}
	})
}

// TestDiskDiagnoseTmpfs runs Diagnose on a tmpfs with another tmpfs mounted
// inside it and a symlink pointing out of it.
func TestDiskDiagnoseTmpfs(t *testing.T) {
	if os.Geteuid() != 0 {
		if os.Getenv("CI") == "true" {
			t.Fatal("CI=true: this test must run as root")
		}
		t.Skip("needs root to mount a tmpfs")
	}
	t.Parallel()
	const kib, mib = 1 << 10, 1 << 20
	outside := t.TempDir()
	writeFile(t, filepath.Join(outside, "huge"), 6*mib)
	mnt := t.TempDir()
	mountTmpfs(t, mnt, "16m")
	writeFile(t, filepath.Join(mnt, "big", "a", "b", "c", "file"), 2*mib)
	writeFile(t, filepath.Join(mnt, "big", "file"), mib)
	writeFile(t, filepath.Join(mnt, "medium", "file"), 3*mib/2)
	writeFile(t, filepath.Join(mnt, "small", "file"), 256*kib)
	require.NoError(t, os.Mkdir(filepath.Join(mnt, "inner"), 0o755))
	mountTmpfs(t, filepath.Join(mnt, "inner"), "8m")
	writeFile(t, filepath.Join(mnt, "inner", "sub", "file"), 5*mib) // the largest, but another mount
	require.NoError(t, os.Symlink(outside, filepath.Join(mnt, "link")))

	c := newTestDisk(t, configs.Paths{Procfs: "/proc", Rootfs: "/"}, &Options{
		Diagnostics: Diagnostics{MaxDepth: 3, MaxEntries: 1000, Timeout: configs.Duration(10 * time.Second), Top: 10},
	})
	s, err := c.Diagnose(context.Background(), checks.Observation{Metric: "disk_used_ratio", Labels: map[string]string{"mountpoint": mnt}})
	require.NoError(t, err)
	t.Log("\n" + s)
	require.Equal(t, fmt.Sprintf(`Largest directories under %[1]s (allocated size, up to 3 levels deep, this mount only):
   3.0 MiB  %[1]s/big
   2.0 MiB  %[1]s/big/a
   2.0 MiB  %[1]s/big/a/b
   1.5 MiB  %[1]s/medium
 256.0 KiB  %[1]s/small
Largest files:
   2.0 MiB  %[1]s/big/a/b/c/file
   1.5 MiB  %[1]s/medium/file
   1.0 MiB  %[1]s/big/file
 256.0 KiB  %[1]s/small/file
1 directories are other mounts (bind mounts included) and are not counted.
`, mnt), s[:strings.LastIndex(strings.TrimSuffix(s, "\n"), "\n")+1])
	require.Regexp(t, `Complete scan: 12 entries in [\d.]+m?s\.\n$`, s)
	require.NotContains(t, s, "inner")
	require.NotContains(t, s, outside)

	// Bounded by MaxEntries: says it is partial.
	c.opts.Diagnostics.MaxEntries = 3
	s, err = c.Diagnose(context.Background(), checks.Observation{Labels: map[string]string{"mountpoint": mnt}})
	require.NoError(t, err)
	require.Contains(t, s, "PARTIAL scan: entry limit (3) reached after 3 entries")
}
