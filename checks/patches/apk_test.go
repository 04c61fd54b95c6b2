package patches

import (
	"context"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/l2agent/l2agent/checks"
	"github.com/l2agent/l2agent/configs"
	"github.com/l2agent/l2agent/internal/checktest"
	"github.com/l2agent/l2agent/internal/command"
)

func TestParseApkUpgradable(t *testing.T) {
	t.Parallel()
	us := parseApkUpgradable(checktest.Testdata(t, "apk-list-upgradable.txt"))
	require.Len(t, us, 6)
	require.Equal(t, pkgUpdate{Name: "busybox-binsh", Installed: "1.36.1-r15", Candidate: "1.36.1-r19", Source: "x86_64"}, us[1])
	require.Equal(t, pkgUpdate{Name: "py3-setuptools", Installed: "68.2.2-r0", Candidate: "70.3.0-r0", Source: "noarch"}, us[4])
	require.Empty(t, parseApkUpgradable([]byte("musl-1.2.4-r2 x86_64 {musl} (MIT) [installed]\nbad [upgradable from: x]\nnover-r1 x {} () [upgradable from: a-1-r0]\n")))
}

func FuzzParseApkUpgradable(f *testing.F) {
	f.Add(string(checktest.Testdata(f, "apk-list-upgradable.txt")))
	f.Fuzz(func(t *testing.T, s string) {
		for _, u := range parseApkUpgradable([]byte(s)) {
			if u.Name == "" || !strings.Contains(u.Candidate, "-r") {
				t.Fatalf("bad update %+v", u)
			}
		}
	})
}

func TestApkBackend(t *testing.T) {
	t.Parallel()
	f := &fakeRunner{outputs: map[string]command.Output{"apk list": {Stdout: checktest.Testdata(t, "apk-list-upgradable.txt")}}}
	c := newTestPatches(t, checks.Env{Paths: configs.Paths{Rootfs: t.TempDir(), Procfs: "/proc"}}, Options{Backend: "apk"})
	c.run = f.run
	obs, err := c.Run(context.Background())
	require.NoError(t, err)
	got, details := checktest.ObsByKey(t, obs)
	require.Equal(t, map[string]float64{`patches_pending{kind="all"}`: 6}, got, "apk cannot tell security updates apart")
	require.Contains(t, details[`patches_pending{kind="all"}`], "libssl3 3.1.4-r1 → 3.1.4-r5 (x86_64)")
}
