package memory

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/l2agent/l2agent/checks"
	"github.com/l2agent/l2agent/configs"
	"github.com/l2agent/l2agent/internal/checktest"
)

func newTestMemory(t *testing.T, procfs string) checks.Check {
	t.Helper()
	c, err := checks.New(configs.Check{Name: "memory", Kind: "memory"}, checks.Env{Paths: configs.Paths{Procfs: procfs, Sysfs: "/nonexistent", Rootfs: "/"}})
	require.NoError(t, err)
	return c
}

func TestMemoryFake(t *testing.T) {
	t.Parallel()
	const kB = 1024
	for _, tc := range []struct {
		procfs string
		want   map[string]float64
	}{
		{"testdata/procfs", map[string]float64{
			"memory_available_ratio":     24207000.0 / 24683620,
			"memory_available_bytes":     24207000 * kB,
			"memory_total_bytes":         24683620 * kB,
			"memory_swap_used_ratio":     (2097148.0 - 1572860) / 2097148,
			"memory_oom_kills_total":     3,
			"memory_pressure_some_ratio": 0.0225,
			"memory_pressure_full_ratio": 0.011,
		}},
		// No MemAvailable (before 3.14), no swap, no oom_kill (before 4.13), no PSI.
		{"testdata/procfs-old", map[string]float64{
			"memory_available_ratio": (23537528.0 + 18480 + 826224) / 24683620,
			"memory_available_bytes": (23537528 + 18480 + 826224) * kB,
			"memory_total_bytes":     24683620 * kB,
			"memory_swap_used_ratio": 0,
		}},
	} {
		t.Run(tc.procfs, func(t *testing.T) {
			t.Parallel()
			obs, err := newTestMemory(t, tc.procfs).Run(context.Background())
			require.NoError(t, err)
			got := checktest.ByKey(t, obs)
			require.Len(t, got, len(tc.want), got)
			for k, v := range tc.want {
				require.InDelta(t, v, got[k], 1e-12, k)
			}
		})
	}
}

func TestMemoryMissing(t *testing.T) {
	t.Parallel()
	_, err := newTestMemory(t, "testdata/nonexistent").Run(context.Background())
	require.ErrorContains(t, err, "read testdata/nonexistent/meminfo")
}

func TestParseKeyValues(t *testing.T) {
	t.Parallel()
	kv, err := readKeyValues("testdata/procfs/vmstat")
	require.NoError(t, err)
	require.EqualValues(t, 3, kv["oom_kill"])
	kv, err = readKeyValues("testdata/procfs/meminfo")
	require.NoError(t, err)
	require.EqualValues(t, 24683620, kv["MemTotal"])
	loadavg := filepath.Join(t.TempDir(), "loadavg")
	require.NoError(t, os.WriteFile(loadavg, []byte("2.47 1.13 0.46 5/101 8786\n"), 0o644))
	_, err = readKeyValues(loadavg)
	require.Error(t, err, "no key value lines")
}

func TestMemoryReal(t *testing.T) {
	t.Parallel()
	c := newTestMemory(t, "/proc")
	obs, err := c.Run(context.Background())
	require.NoError(t, err)
	got := checktest.ByKey(t, obs)
	for _, k := range []string{"memory_available_ratio", "memory_swap_used_ratio"} {
		require.Contains(t, got, k)
		require.True(t, got[k] >= 0 && got[k] <= 1, "%s=%v", k, got[k])
	}
	require.Greater(t, got["memory_total_bytes"], 0.0)
	require.LessOrEqual(t, got["memory_available_bytes"], got["memory_total_bytes"])
	for _, k := range []string{"memory_pressure_some_ratio", "memory_pressure_full_ratio"} {
		if v, ok := got[k]; ok {
			require.True(t, v >= 0 && v <= 1, "%s=%v", k, v)
		}
	}

	s, err := c.(checks.Diagnoser).Diagnose(context.Background(), obs[0])
	require.NoError(t, err)
	require.GreaterOrEqual(t, checktest.ProcessLines(s), 1, s)
	t.Log("\n" + s)
}
