package patches

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/l2agent/l2agent/checks"
	"github.com/l2agent/l2agent/configs"
	"github.com/l2agent/l2agent/internal/checktest"
	"github.com/l2agent/l2agent/internal/command"
)

func TestParseZypperOutputs(t *testing.T) {
	t.Parallel()
	s, err := parseZypperXML(checktest.Testdata(t, "zypper-list-patches-security.xml"))
	require.NoError(t, err)
	require.Len(t, s.Updates, 3, "zypper 1.14 lists the bugfix patch too")
	require.Equal(t, zypperUpdate{Kind: "patch", Name: "L2A-2026-0001", Edition: "2.0", Arch: "noarch", Status: "needed",
		Category: "security", Severity: "important", Summary: "Important: l2a-sec security update",
		Source: struct {
			Alias string `xml:"alias,attr"`
		}{"l2a"}}, s.Updates[0])

	s, err = parseZypperXML(checktest.Testdata(t, "zypper-list-updates.xml"))
	require.NoError(t, err)
	require.Len(t, s.Updates, 3)
	require.Equal(t, "2:1.0.0-1.el9", s.Updates[0].EditionOld)

	s, err = parseZypperXML(checktest.Testdata(t, "zypper-locks.xml"))
	require.NoError(t, err)
	require.Len(t, s.Locks.Lock, 1)

	_, err = parseZypperXML([]byte(`<?xml version='1.0'?><stream><message type="error">Repository 'x' is invalid.</message></stream>`))
	require.EqualError(t, err, "zypper: Repository 'x' is invalid.")
	_, err = parseZypperXML([]byte("Root privileges are required."))
	require.Error(t, err)

	require.Equal(t, time.Date(2026, 11, 25, 0, 25, 55, 0, time.UTC), parseZyppHistory(checktest.Testdata(t, "zypp-history"), time.UTC))
}

func FuzzParseZypperXML(f *testing.F) {
	for _, n := range []string{"zypper-list-patches-security.xml", "zypper-list-updates.xml", "zypper-locks.xml"} {
		f.Add(string(checktest.Testdata(f, n)))
	}
	f.Fuzz(func(t *testing.T, s string) {
		parseZypperXML([]byte(s))
		parseZyppHistory([]byte(s), time.UTC)
	})
}

func TestZypperBackend(t *testing.T) {
	t.Parallel()
	root := t.TempDir()
	require.NoError(t, os.MkdirAll(filepath.Join(root, "run"), 0o755))
	f := &fakeRunner{outputs: map[string]command.Output{
		"zypper list-updates": {Stdout: checktest.Testdata(t, "zypper-list-updates-locked.xml")},
		// --all ignores locks: what list-updates says with no lock (the
		// recorded --all with l2a-sec locked is that same list).
		"zypper list-updates --all": {Stdout: checktest.Testdata(t, "zypper-list-updates.xml")},
		"zypper list-patches":       {Stdout: checktest.Testdata(t, "zypper-list-patches-security.xml"), Exit: 101},
		"zypper locks":              {Stdout: checktest.Testdata(t, "zypper-locks.xml")},
	}}
	c := newTestPatches(t, checks.Env{Paths: configs.Paths{Rootfs: root, Procfs: "/proc"}}, Options{Backend: "zypper"})
	c.run = f.run
	obs, err := c.Run(context.Background())
	require.NoError(t, err)
	got, details := checktest.ObsByKey(t, obs)
	require.Equal(t, map[string]float64{
		`patches_pending{kind="all"}`: 3, `patches_pending{kind="security"}`: 2, "patches_held": 1, "reboot_required": 0,
		"patches_oldest_security_pending_seconds": 0, `patches_blocked{kind="all"}`: 1,
	}, got, "the locked l2a-other counts; zypper cannot say which blocked package a security patch needs")
	require.Contains(t, details[`patches_blocked{kind="all"}`], "  l2a-other.noarch 1.0-1 → 2.0-1 (l2a) [locked: not installed by an upgrade]\n")
	require.Equal(t, `Pending security updates (zypper):
  L2A-2026-0001 (important: Important: l2a-sec security update)
  L2A-2026-0003 (critical: Critical: l2a-a-rather-long-package-name-that-dnf-wraps security update)
`, details[`patches_pending{kind="security"}`])
	require.Contains(t, details[`patches_pending{kind="all"}`], "l2a-sec.noarch 1.0-1 → 1.1-1 (l2a)")
	for _, call := range f.calls {
		if call[0] == "zypper" {
			require.Contains(t, call, "--no-refresh")
		}
	}

	require.NoError(t, os.WriteFile(filepath.Join(root, "run", "reboot-needed"), nil, 0o644))
	obs, err = c.Run(context.Background())
	require.NoError(t, err)
	got, _ = checktest.ObsByKey(t, obs)
	require.Equal(t, 1.0, got["reboot_required"])

	require.NoError(t, os.MkdirAll(filepath.Join(root, "etc", "zypp"), 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(root, "etc", "zypp", "locks"), []byte("type: package\nmatch_exact: 1\nsolvable_name: l2a-other\n"), 0o644))
	f.outputs["zypper list-updates"] = command.Output{Stdout: []byte("<stream><message type=\"error\">System management is locked by the application with pid 1234 (zypper).</message></stream>"), Exit: 7}
	_, err = c.Run(context.Background())
	require.ErrorContains(t, err, "exit status 7")
}

// TestZypperLockedSecurity: with the package of a security patch locked
// (zypper 1.14.42's outputs, testdata/README.md) the patch stays needed
// and counts, and the locked package is named.
func TestZypperLockedSecurity(t *testing.T) {
	t.Parallel()
	f := &fakeRunner{outputs: map[string]command.Output{
		"zypper list-updates":       {Stdout: checktest.Testdata(t, "zypper-list-updates-locked-sec.xml")},
		"zypper list-updates --all": {Stdout: checktest.Testdata(t, "zypper-list-updates-all-locked-sec.xml")},
		"zypper list-patches":       {Stdout: checktest.Testdata(t, "zypper-list-patches-security-locked-sec.xml"), Exit: 101},
		"zypper locks":              {Stdout: checktest.Testdata(t, "zypper-locks-sec.xml")},
	}}
	c := newTestPatches(t, checks.Env{Paths: configs.Paths{Rootfs: t.TempDir(), Procfs: "/proc"}}, Options{Backend: "zypper"})
	c.run = f.run
	obs, err := c.Run(context.Background())
	require.NoError(t, err)
	got, details := checktest.ObsByKey(t, obs)
	require.Equal(t, 3.0, got[`patches_pending{kind="all"}`])
	require.Equal(t, 2.0, got[`patches_pending{kind="security"}`], "L2A-2026-0001 for the locked l2a-sec, and L2A-2026-0003")
	require.Equal(t, 1.0, got[`patches_blocked{kind="all"}`])
	require.Equal(t, 1.0, got["patches_held"])
	require.Contains(t, details[`patches_pending{kind="security"}`], "L2A-2026-0001 (important: Important: l2a-sec security update)")
	require.Contains(t, details[`patches_blocked{kind="all"}`], "  l2a-sec.noarch 1.0-1 → 1.1-1 (l2a) [locked: not installed by an upgrade]\n")

	us := zypperPackageUpdates(nil, []zypperUpdate{{Kind: "package", Name: "kernel-default", Arch: "x86_64"}, {Kind: "package", Name: "vim", Arch: "x86_64"}}, []string{"kernel*"})
	require.Equal(t, "locked", us[0].Blocked, "a lock by glob")
	require.Equal(t, "kept back", us[1].Blocked, "newer but not installable, and not locked")
}
