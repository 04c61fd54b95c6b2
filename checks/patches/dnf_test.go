package patches

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/l2agent/l2agent/checks"
	"github.com/l2agent/l2agent/configs"
	"github.com/l2agent/l2agent/internal/checktest"
	"github.com/l2agent/l2agent/internal/command"
)

func TestParseDnfOutputs(t *testing.T) {
	t.Parallel()
	us := parseDnfCheckUpdate(checktest.Testdata(t, "dnf-check-update.txt"))
	require.Equal(t, []pkgUpdate{
		{Name: "l2a-a-rather-long-package-name-that-dnf-wraps.noarch", Candidate: "2:1.0.1-3.el9_4", Source: "l2a"},
		{Name: "l2a-other.noarch", Candidate: "2.0-1", Source: "l2a"},
		{Name: "l2a-sec.noarch", Candidate: "1.1-1", Source: "l2a"},
	}, us)
	// On a terminal dnf wraps a long name; obsoletes and installed security
	// notes end the list.
	us = parseDnfCheckUpdate([]byte(`
kernel-core.x86_64                5.14.0-362.18.1.el9_3             baseos
python3-a-very-long-package-name-indeed.noarch
                                  1.2-3.el9                         appstream
Obsoleting Packages
grub2-tools.x86_64                1:2.06-70.el9_3.2                 baseos
    grub2-tools.x86_64            1:2.06-70.el9_3.1                 @baseos
Security: kernel-core-5.14.0-362.18.1.el9_3.x86_64 is an installed security update
`))
	require.Equal(t, []pkgUpdate{
		{Name: "kernel-core.x86_64", Candidate: "5.14.0-362.18.1.el9_3", Source: "baseos"},
		{Name: "python3-a-very-long-package-name-indeed.noarch", Candidate: "1.2-3.el9", Source: "appstream"},
	}, us)

	sec := parseDnfUpdateinfo(checktest.Testdata(t, "dnf-updateinfo-list-security.txt"))
	require.Equal(t, map[string]dnfFix{
		"l2a-a-rather-long-package-name-that-dnf-wraps.noarch": {version: "2:1.0.1-3.el9_4", advisory: "L2A-2026-0003 Critical"},
		"l2a-sec.noarch": {version: "1.1-1", advisory: "L2A-2026-0001 Important"},
	}, sec)
	// yum (EL7) chatter and dnf 5's columns.
	sec = parseDnfUpdateinfo([]byte(`Loaded plugins: fastestmirror
RHSA-2024:0001 Important/Sec. openssl-libs-1:1.0.2k-26.el7_9.x86_64
RHSA-2024:0002 Moderate/Sec.  openssl-libs-1:1.0.2k-25.el7_9.x86_64
updateinfo list done
Name                    Type        Severity  Package                         Issued
FEDORA-2024-0a1b2c3d4e  security    Moderate  curl-8.6.0-7.fc40.x86_64        2024-03-27 01:23:45
FEDORA-2024-0a1b2c3d4f  bugfix      None      vim-9.1.0-1.fc40.x86_64         2024-03-27 01:23:45
`))
	require.Equal(t, map[string]dnfFix{
		"openssl-libs.x86_64": {version: "1:1.0.2k-26.el7_9", advisory: "RHSA-2024:0001 Important"},
		"curl.x86_64":         {version: "8.6.0-7.fc40", advisory: "FEDORA-2024-0a1b2c3d4e Moderate"},
	}, sec)

	require.Equal(t, map[string]string{
		"l2a-current.noarch": "1.0-1", "l2a-other.noarch": "1.0-1", "l2a-sec.noarch": "1.0-1",
		"l2a-a-rather-long-package-name-that-dnf-wraps.noarch": "2:1.0.0-1.el9",
	}, parseRpmQA(checktest.Testdata(t, "rpm-qa.txt")))
	require.Equal(t, time.Date(2026, 11, 25, 0, 25, 59, 0, time.UTC), parseDnfRPMLog(checktest.Testdata(t, "dnf.rpm.log")).UTC())

	for _, bad := range []string{"x", "a.b", "-1-2.x", "name-1.noarch", "a-b-c."} {
		_, _, ok := splitNEVRA(bad)
		require.False(t, ok, bad)
	}
}

func FuzzParseDnf(f *testing.F) {
	f.Add(string(checktest.Testdata(f, "dnf-check-update.txt")))
	f.Add(string(checktest.Testdata(f, "dnf-updateinfo-list-security.txt")))
	f.Add("a\n b c\nRHSA-1 x/Sec. n-1:2-3.x\nN security S p-1-1.a d t\n")
	f.Fuzz(func(t *testing.T, s string) {
		for _, u := range parseDnfCheckUpdate([]byte(s)) {
			if !strings.Contains(u.Name, ".") {
				t.Fatalf("name without arch: %+v", u)
			}
		}
		for name, fix := range parseDnfUpdateinfo([]byte(s)) {
			if name == "" || fix.version == "" {
				t.Fatalf("empty fix %q %+v", name, fix)
			}
		}
		parseRpmQA([]byte(s))
		parseDnfRPMLog([]byte(s))
	})
}

func TestDnfBackend(t *testing.T) {
	t.Parallel()
	root := t.TempDir()
	repomd := filepath.Join(root, "var/cache/dnf/l2a-067d9b95e20f5275/repodata/repomd.xml")
	require.NoError(t, os.MkdirAll(filepath.Dir(repomd), 0o755))
	require.NoError(t, os.WriteFile(repomd, []byte("<repomd/>"), 0o644))
	refreshed := time.Now().Add(-3 * time.Hour)
	require.NoError(t, os.Chtimes(repomd, refreshed, refreshed))
	require.NoError(t, os.MkdirAll(filepath.Join(root, "var/log"), 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(root, "var/log/dnf.rpm.log"), checktest.Testdata(t, "dnf.rpm.log"), 0o644))

	f := &fakeRunner{outputs: map[string]command.Output{
		"dnf check-update":     {Stdout: checktest.Testdata(t, "dnf-check-update.txt"), Exit: 100},
		"dnf updateinfo":       {Stdout: checktest.Testdata(t, "dnf-updateinfo-list-security.txt")},
		"rpm":                  {Stdout: checktest.Testdata(t, "rpm-qa.txt")},
		"needs-restarting":     {Stdout: checktest.Testdata(t, "needs-restarting-reboot.txt"), Exit: 1},
		"dnf needs-restarting": {Stdout: checktest.Testdata(t, "needs-restarting-reboot.txt"), Exit: 1},
	}}
	c := newTestPatches(t, checks.Env{Paths: configs.Paths{Rootfs: root, Procfs: "/proc"}}, Options{Backend: "dnf",
		Dnf: DnfOptions{Command: "dnf", NeedsRestarting: []string{"needs-restarting", "-r"}}})
	c.run = f.run
	obs, err := c.Run(context.Background())
	require.NoError(t, err)
	got, details := checktest.ObsByKey(t, obs)
	require.Equal(t, 3.0, got[`patches_pending{kind="all"}`])
	require.Equal(t, 2.0, got[`patches_pending{kind="security"}`])
	require.Equal(t, 1.0, got["reboot_required"])
	require.InDelta(t, 3*3600, got["patches_lists_age_seconds"], 60)
	require.Equal(t, float64(time.Date(2026, 11, 25, 0, 25, 59, 0, time.UTC).Unix()), got["patches_last_upgrade_timestamp_seconds"])
	require.Equal(t, `Pending security updates (dnf):
  l2a-a-rather-long-package-name-that-dnf-wraps.noarch 2:1.0.0-1.el9 → 2:1.0.1-3.el9_4 (L2A-2026-0003 Critical, l2a)
  l2a-sec.noarch 1.0-1 → 1.1-1 (L2A-2026-0001 Important, l2a)
`, details[`patches_pending{kind="security"}`])
	require.Contains(t, details["reboot_required"], "Reboot is required to fully utilize these updates.")
	require.NotContains(t, got, "patches_held")
	for _, call := range f.calls {
		if call[0] == "dnf" {
			require.Equal(t, "-C", call[1], "never refreshes metadata: %v", call)
		}
	}

	// Nothing pending: exit 0; no reboot needed. An unchanged host reuses
	// the answer; a package installed (the rpm database changed) asks dnf
	// again.
	n := len(f.calls)
	_, err = c.Run(context.Background())
	require.NoError(t, err)
	require.Equal(t, []string{"rpm", "--root=" + root, "--eval", "%{_dbpath}"}, f.calls[n])
	require.Len(t, f.calls, n+1, "nothing changed: only rpm named its database")
	rpmdb := filepath.Join(root, "var/lib/rpm/rpmdb.sqlite")
	require.NoError(t, os.MkdirAll(filepath.Dir(rpmdb), 0o755))
	require.NoError(t, os.WriteFile(rpmdb, []byte("1"), 0o644))
	f.outputs["dnf check-update"] = command.Output{}
	f.outputs["dnf updateinfo"] = command.Output{}
	f.outputs["needs-restarting"] = command.Output{Stdout: checktest.Testdata(t, "needs-restarting-ok.txt")}
	obs, err = c.Run(context.Background())
	require.NoError(t, err)
	got, _ = checktest.ObsByKey(t, obs)
	require.Equal(t, 0.0, got[`patches_pending{kind="all"}`])
	require.Equal(t, 0.0, got["reboot_required"])

	// check-update failing (exit 1: no cache) fails the run with dnf's message.
	require.NoError(t, os.WriteFile(repomd, []byte("<repomd></repomd>"), 0o644))
	f.outputs["dnf check-update"] = command.Output{Stderr: "Error: Cache-only enabled but no cache for 'baseos'\n", Exit: 1}
	_, err = c.Run(context.Background())
	require.ErrorContains(t, err, "Cache-only enabled but no cache for 'baseos'")
}

// TestDnfExcluded: a security update of an excluded (or version-locked)
// package is pending, counted and named, from dnf 4.14's own outputs with
// l2a-sec excluded (testdata/README.md).
func TestDnfExcluded(t *testing.T) {
	t.Parallel()
	f := &fakeRunner{outputs: map[string]command.Output{
		"dnf check-update":                       {Stdout: checktest.Testdata(t, "dnf-check-update-excluded.txt"), Exit: 100},
		"dnf updateinfo":                         {Stdout: checktest.Testdata(t, "dnf-updateinfo-list-security-excluded.txt")},
		"dnf check-update --disableexcludes=all": {Stdout: checktest.Testdata(t, "dnf-check-update.txt"), Exit: 100},
		"dnf updateinfo --disableexcludes=all":   {Stdout: checktest.Testdata(t, "dnf-updateinfo-list-security.txt")},
		"rpm":                                    {Stdout: checktest.Testdata(t, "rpm-qa.txt")},
		"needs-restarting":                       {Stdout: checktest.Testdata(t, "needs-restarting-ok.txt")},
	}}
	c := newTestPatches(t, checks.Env{Paths: configs.Paths{Rootfs: t.TempDir(), Procfs: "/proc"}}, Options{Backend: "dnf",
		Dnf: DnfOptions{Command: "dnf", NeedsRestarting: []string{"needs-restarting", "-r"}}})
	c.run = f.run
	obs, err := c.Run(context.Background())
	require.NoError(t, err)
	got, details := checktest.ObsByKey(t, obs)
	require.Equal(t, 3.0, got[`patches_pending{kind="all"}`])
	require.Equal(t, 2.0, got[`patches_pending{kind="security"}`], "the excluded l2a-sec still counts")
	require.Equal(t, 1.0, got[`patches_blocked{kind="all"}`])
	require.Equal(t, 1.0, got[`patches_blocked{kind="security"}`])
	require.Contains(t, details[`patches_pending{kind="security"}`],
		"  l2a-sec.noarch 1.0-1 → 1.1-1 (L2A-2026-0001 Important, l2a) [excluded: not installed by an upgrade]\n")
	require.Contains(t, details[`patches_blocked{kind="all"}`], "l2a-sec.noarch")
	var unrestricted int
	for _, call := range f.calls {
		if slices.Contains(call, "--disableexcludes=all") {
			unrestricted++
			require.Contains(t, call, "--disableplugin=versionlock")
		}
	}
	require.Equal(t, 2, unrestricted, "check-update and updateinfo with excludes lifted")
}
