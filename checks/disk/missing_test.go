package disk

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/l2agent/l2agent/checks"
	"github.com/l2agent/l2agent/configs"
	"github.com/l2agent/l2agent/internal/checktest"
)

func needRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		if os.Getenv("CI") == "true" {
			t.Fatal("CI=true: this test must run as root")
		}
		t.Skip("needs root to mount a tmpfs")
	}
}

// onlyUnder keeps the mounts at or under dir.
func onlyUnder(dir string) []string { return []string{"^" + regexp.QuoteMeta(dir) + "($|/)"} }

// missingByKey returns the disk_mount_missing observations by key.
func missingByKey(t *testing.T, obs []checks.Observation) map[string]float64 {
	t.Helper()
	out := map[string]float64{}
	for k, v := range checktest.ByKey(t, obs) {
		if strings.HasPrefix(k, "disk_mount_missing{") {
			out[k] = v
		}
	}
	return out
}

// TestDiskMountMissingTmpfs mounts a real tmpfs, runs, unmounts, runs:
// the mount is reported missing with its labels, after a restart too,
// until missing_for has passed.
func TestDiskMountMissingTmpfs(t *testing.T) {
	needRoot(t)
	t.Parallel()
	dir, state := t.TempDir(), t.TempDir()
	mnt := filepath.Join(dir, "data vol")
	require.NoError(t, os.Mkdir(mnt, 0o755))
	require.NoError(t, syscall.Mount("l2agent-missing-test", mnt, "tmpfs", 0, "size=1m"), "mount tmpfs")
	mounted := true
	t.Cleanup(func() {
		if mounted {
			_ = syscall.Unmount(mnt, syscall.MNT_DETACH)
		}
	})
	clk := &clock{t: time.Date(2026, 8, 1, 0, 0, 0, 0, time.UTC)}
	newCheck := func() *diskCheck {
		c := newTestDisk(t, configs.Paths{Procfs: "/proc", Rootfs: "/"}, &Options{IncludeMountpoints: onlyUnder(dir), StateDir: state})
		c.now = clk.now
		return c
	}
	key := fmt.Sprintf("disk_mount_missing{device=%q,fstype=%q,mountpoint=%q}", "l2agent-missing-test", "tmpfs", mnt)

	c := newCheck()
	obs, err := c.Run(context.Background())
	require.NoError(t, err)
	require.Equal(t, map[string]float64{key: 0}, missingByKey(t, obs), "present: 0")
	require.Contains(t, checktest.ByKey(t, obs), strings.Replace(key, "disk_mount_missing", "disk_used_ratio", 1))

	require.NoError(t, syscall.Unmount(mnt, 0), "unmount")
	mounted = false
	clk.add(time.Minute)
	obs, err = c.Run(context.Background())
	require.NoError(t, err)
	require.Equal(t, map[string]float64{key: 1}, missingByKey(t, obs), "gone: 1, with the labels it had")
	for k := range checktest.ByKey(t, obs) {
		require.True(t, strings.HasPrefix(k, "disk_mount_missing{"), "the other series of the mount are gone: %s", k)
	}
	require.Equal(t, "Not mounted; last seen 2026-08-01T00:00:00Z; reported missing until 2026-08-08T00:00:00Z (missing_for), or until forgotten in "+
		filepath.Join(state, "disk-disk.json")+".", obs[0].Details)

	// A restart: a new check with the same state dir still knows it.
	clk.add(24 * time.Hour)
	c = newCheck()
	obs, err = c.Run(context.Background())
	require.NoError(t, err)
	require.Equal(t, map[string]float64{key: 1}, missingByKey(t, obs), "after a restart")

	clk.add(6*24*time.Hour - time.Minute - time.Second)
	obs, err = c.Run(context.Background())
	require.NoError(t, err)
	require.Equal(t, map[string]float64{key: 1}, missingByKey(t, obs), "a second before missing_for")
	clk.add(time.Second)
	obs, err = c.Run(context.Background())
	require.NoError(t, err)
	require.Empty(t, missingByKey(t, obs), "forgotten after missing_for")
	b, err := os.ReadFile(filepath.Join(state, "disk-disk.json"))
	require.NoError(t, err)
	require.JSONEq(t, `{"version": 1, "mounts": []}`, string(b))
	require.Empty(t, newCheck().runOrFail(t), "and not after a restart either")
}

// runOrFail runs c and returns its disk_mount_missing observations.
func (c *diskCheck) runOrFail(t *testing.T) map[string]float64 {
	t.Helper()
	obs, err := c.Run(context.Background())
	require.NoError(t, err)
	return missingByKey(t, obs)
}

// TestDiskMountMissingRules drives the tracker with mount lists: what is
// forgotten at once, an admin editing or removing the file, a device that
// changed, a state dir that cannot be written.
func TestDiskMountMissingRules(t *testing.T) {
	t.Parallel()
	state := t.TempDir()
	clk := &clock{t: time.Date(2026, 8, 1, 0, 0, 0, 0, time.UTC)}
	c := newTestDisk(t, configs.Paths{Procfs: "testdata/procfs", Rootfs: "/"}, &Options{StateDir: state, ExcludeFSTypes: []string{"proc"}})
	c.now = clk.now
	m := func(mp, dev, fs string) mount { return mount{Mountpoint: mp, Device: dev, FSType: fs} }
	root, data, usb := m("/", "/dev/vda1", "ext4"), m("/srv/data", "/dev/vdb", "xfs"), m("/media/bob/STICK", "/dev/sdc1", "vfat")
	home, nfs := m("/home", "auto.home", "autofs"), m("/home/alice", "srv:/home/alice", "nfs4")
	run := func(all ...mount) map[string]float64 {
		t.Helper()
		clk.add(time.Minute)
		return missingByKey(t, c.missingMounts(all, c.filter.apply(all)))
	}
	k := func(m mount) string {
		return fmt.Sprintf("disk_mount_missing{device=%q,fstype=%q,mountpoint=%q}", m.Device, m.FSType, m.Mountpoint)
	}

	require.Len(t, run(root, data, usb, home, nfs), 5)
	require.Equal(t, map[string]float64{k(root): 0, k(data): 1, k(home): 1, k(nfs): 1}, run(root),
		"the USB stick is forgotten (forget_mountpoints); the NFS home is missing: so is the autofs mount above it")
	require.Equal(t, map[string]float64{k(root): 0, k(data): 1, k(home): 0}, run(root, home),
		"an automount under a present autofs mount is forgotten")

	// The device behind a mountpoint changed: the mountpoint is present.
	data2 := m("/srv/data", "/dev/vdc", "xfs")
	require.Equal(t, map[string]float64{k(root): 0, k(data2): 0, k(home): 0}, run(root, data2, home))
	require.Equal(t, map[string]float64{k(root): 0, k(data2): 1, k(home): 0}, run(root, home))

	// An admin forgets it by editing the file.
	path := filepath.Join(state, "disk-disk.json")
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	var s mountState
	require.NoError(t, json.Unmarshal(b, &s))
	require.Len(t, s.Mounts, 3)
	s.Mounts = s.Mounts[:1] // "/" only; "/home" comes back as it is present
	b, err = json.Marshal(s)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(path+".new", b, 0o600))
	require.NoError(t, os.Rename(path+".new", path))
	require.Equal(t, map[string]float64{k(root): 0, k(home): 0}, run(root, home), "removed from the file: forgotten")

	// Or removes the file: everything absent is forgotten.
	require.Equal(t, map[string]float64{k(root): 0, k(data2): 0, k(home): 0}, run(root, data2, home))
	require.NoError(t, os.Remove(path))
	require.Equal(t, map[string]float64{k(root): 0}, run(root))
	_, err = os.Stat(path)
	require.NoError(t, err, "written again")

	// A filter that no longer keeps a mount forgets it: not missing.
	require.Equal(t, map[string]float64{k(root): 0, k(data2): 0}, run(root, data2))
	c.filter.exclude = append(c.filter.exclude, regexp.MustCompile(`^/srv/`))
	require.Equal(t, map[string]float64{k(root): 0}, run(root, data2))

	// A bad file is logged and replaced; the mounts in memory are kept.
	c.filter.exclude = nil
	run(root, data2)
	require.NoError(t, os.WriteFile(path, []byte("{not json"), 0o600))
	require.Equal(t, map[string]float64{k(root): 0, k(data2): 1}, run(root))
	b, err = os.ReadFile(path)
	require.NoError(t, err)
	_, err = parseMountState(b)
	require.NoError(t, err, "rewritten")

	// A state dir that cannot be written: kept in memory, still reported.
	c2 := newTestDisk(t, configs.Paths{Procfs: "testdata/procfs", Rootfs: "/"}, &Options{StateDir: "/proc/l2agent-no-such-dir"})
	c2.now = clk.now
	c2.missingMounts([]mount{root, data}, []mount{root, data})
	require.Equal(t, map[string]float64{k(root): 0, k(data): 1}, missingByKey(t, c2.missingMounts([]mount{root}, []mount{root})))
	require.True(t, c2.tracker.failed)
}

func TestParseMountState(t *testing.T) {
	t.Parallel()
	got, err := parseMountState([]byte(`{"version":1,"mounts":[{"mountpoint":"/srv/a b","device":"/dev/x","fstype":"xfs","last_seen":"2026-08-01T00:00:00Z"}]}`))
	require.NoError(t, err)
	require.Equal(t, map[string]seenMount{"/srv/a b": {Mountpoint: "/srv/a b", Device: "/dev/x", FSType: "xfs", LastSeen: time.Date(2026, 8, 1, 0, 0, 0, 0, time.UTC)}}, got)
	for bad, want := range map[string]string{
		`{"version":2,"mounts":[]}`: "version 2",
		`{"version":1,"mounts":[{"mountpoint":"rel","fstype":"x","last_seen":"2026-08-01T00:00:00Z"}]}`:                                                                    "not absolute",
		`{"version":1,"mounts":[{"mountpoint":"/a","last_seen":"2026-08-01T00:00:00Z"}]}`:                                                                                  "no fstype",
		`{"version":1,"mounts":[{"mountpoint":"/a","fstype":"x"}]}`:                                                                                                        "no last_seen",
		`{"version":1,"mounts":[{"mountpoint":"/a","fstype":"x","last_seen":"2026-08-01T00:00:00Z"},{"mountpoint":"/a","fstype":"y","last_seen":"2026-08-01T00:00:00Z"}]}`: "listed twice",
		`{"version":1} x`: "decode",
		``:                "decode",
	} {
		_, err := parseMountState([]byte(bad))
		require.ErrorContains(t, err, want, bad)
	}
}

func FuzzParseMountState(f *testing.F) {
	f.Add([]byte(`{"version":1,"mounts":[{"mountpoint":"/srv/a\nb","device":"dev\u001b[2J","fstype":"xfs","last_seen":"2026-08-01T00:00:00Z"}]}`))
	f.Add([]byte(`{"version":1,"mounts":[]}`))
	f.Add([]byte(`{"version":1,"mounts":null}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		got, err := parseMountState(b)
		if err != nil {
			return
		}
		for mp, m := range got {
			if mp != m.Mountpoint || !strings.HasPrefix(mp, "/") || m.FSType == "" || m.LastSeen.IsZero() {
				t.Fatalf("entry %q: %+v", mp, m)
			}
		}
		// What it accepts, it writes back and reads the same.
		tr := mountTracker{path: filepath.Join(t.TempDir(), "s.json"), seen: got}
		if err := tr.save(time.Now()); err != nil {
			t.Fatal(err)
		}
		b2, err := os.ReadFile(tr.path)
		if err != nil {
			t.Fatal(err)
		}
		again, err := parseMountState(b2)
		if err != nil || len(again) != len(got) {
			t.Fatalf("round trip: %v, %d of %d", err, len(again), len(got))
		}
		for mp, m := range got {
			if a := again[mp]; a.Device != m.Device || a.FSType != m.FSType || !a.LastSeen.Equal(m.LastSeen) {
				t.Fatalf("round trip of %q: %+v, want %+v", mp, a, m)
			}
		}
	})
}

// TestDiskTimeToFullTmpfs fills a real tmpfs while the check's clock moves
// 30 s a run: a 15-minute burst followed by a flat line never gives a time
// to full; a steady fill does, close to free space / rate.
func TestDiskTimeToFullTmpfs(t *testing.T) {
	needRoot(t)
	t.Parallel()
	const kib, mib = 1 << 10, 1 << 20
	for _, tc := range []struct {
		name      string
		writeRuns int // runs during which 512 KiB is written before each
		runs      int
		opts      Options
	}{
		{"burst", 30, 6 * 120, Options{}}, // 15 minutes of writing, then 5h45m flat
		{"steady", 100, 100, Options{}},   // 50 minutes of writing
		// The gate before issue 15: 3 samples over a minute, any R².
		{"burst ungated", 30, 6 * 120, Options{FillMinSpan: configs.Duration(time.Minute), FillMinSamples: 3, FillMinR2: 1e-9}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			mnt := t.TempDir()
			mountTmpfs(t, mnt, "80m")
			f, err := os.Create(filepath.Join(mnt, "fill"))
			require.NoError(t, err)
			defer f.Close()
			clk := &clock{t: time.Date(2026, 8, 1, 0, 0, 0, 0, time.UTC)}
			o := tc.opts
			o.IncludeMountpoints = onlyUnder(mnt)
			c := newTestDisk(t, configs.Paths{Procfs: "/proc", Rootfs: "/"}, &o)
			c.now = clk.now
			var got []checks.Observation
			for i := range tc.runs {
				if i < tc.writeRuns {
					_, err := f.Write(make([]byte, 512*kib))
					require.NoError(t, err)
				}
				obs, err := c.Run(context.Background())
				require.NoError(t, err)
				for _, o := range obs {
					if o.Metric == "disk_time_to_full_seconds" {
						got = append(got, o)
					}
				}
				clk.add(30 * time.Second)
			}
			switch tc.name {
			case "burst":
				require.Empty(t, got, "a 15-minute burst is no steady fill")
				return
			case "burst ungated":
				require.NotEmpty(t, got, "without the gate the burst gives a time to full")
				require.Less(t, got[0].Value, 86400.0, "a full within a day")
				return
			}
			// Trusted from the 61st run (30 minutes); 1 MiB a minute.
			require.Len(t, got, 40)
			last := got[len(got)-1]
			var st syscall.Statfs_t
			require.NoError(t, syscall.Statfs(mnt, &st))
			avail := float64(st.Bavail) * float64(st.Bsize)
			require.InEpsilon(t, avail/(mib/60.0), last.Value, 0.02, "free / (1 MiB a minute)")
			require.Regexp(t, `^Fill rate 60\.0 MiB/h fitted over 49m30s \(100 samples\), R² 1\.000\.$`, last.Details)
			t.Logf("time to full %s; %s", time.Duration(last.Value*float64(time.Second)), last.Details)
		})
	}
}

func TestOptionsFitAndMissing(t *testing.T) {
	t.Parallel()
	o := &Options{}
	o.ApplyDefaults("/var/lib/x")
	require.Equal(t, configs.Duration(30*time.Minute), o.FillMinSpan)
	require.Equal(t, 10, o.FillMinSamples)
	require.Equal(t, 0.9, o.FillMinR2)
	require.Equal(t, configs.Duration(7*24*time.Hour), o.MissingFor)
	require.Equal(t, "/var/lib/x", o.StateDir)
	require.Equal(t, DefaultForgetMountpoints, o.ForgetMountpoints)
	o.MoveStateDir("/var/lib/x", "/home/u/.l2agent")
	require.Equal(t, "/home/u/.l2agent", o.StateDir)
	o.MoveStateDir("/var/lib/x", "/elsewhere")
	require.Equal(t, "/home/u/.l2agent", o.StateDir, "only a state dir left at the agent's moves")

	var errs []string
	errf := func(path, format string, args ...any) { errs = append(errs, path+": "+fmt.Sprintf(format, args...)) }
	o.Validate("checks[0].disk", errf)
	require.Empty(t, errs)
	bad := &Options{FillWindow: configs.Duration(time.Hour), FillMinSpan: configs.Duration(2 * time.Hour), FillMinSamples: 2, FillMinR2: 1.5,
		StateDir: "rel", ForgetMountpoints: []string{"("}}
	bad.ApplyDefaults("/var/lib/x")
	bad.Validate("d", errf)
	require.Len(t, errs, 5, errs)
	for _, want := range []string{"d.forget_mountpoints[0]", "d.fill_min_span: disk fill_min_span 2h0m0s is longer than fill_window 1h0m0s",
		"d.fill_min_samples: disk fill_min_samples 2: want 3 to 1000", "d.fill_min_r2", `d.state_dir: disk state_dir "rel"`} {
		require.True(t, slices.ContainsFunc(errs, func(e string) bool { return strings.HasPrefix(e, want) }), "%s in %v", want, errs)
	}
}
