package memory

import (
	"context"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
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
	kv, err := readKeyValues("testdata/procfs/vmstat", vmstatKeys)
	require.NoError(t, err)
	require.Equal(t, map[string]uint64{"oom_kill": 3}, kv, "only the keys asked for")
	kv, err = readKeyValues("testdata/procfs/meminfo", meminfoKeys)
	require.NoError(t, err)
	require.EqualValues(t, 24683620, kv["MemTotal"])
	require.Len(t, kv, len(meminfoKeys))
	loadavg := filepath.Join(t.TempDir(), "loadavg")
	require.NoError(t, os.WriteFile(loadavg, []byte("2.47 1.13 0.46 5/101 8786\n"), 0o644))
	_, err = readKeyValues(loadavg, meminfoKeys)
	require.ErrorContains(t, err, "no key value lines")

	kv, err = parseKeyValues(strings.NewReader("a 1\nMemTotal:\t 7 kB\nb: x\nMemFree 9"), meminfoKeys)
	require.NoError(t, err, "a file with key value lines but none asked for is not an error")
	require.Equal(t, map[string]uint64{"MemTotal": 7, "MemFree": 9}, kv, "tabs; no newline at the end")
	_, err = parseKeyValues(strings.NewReader("MemTotal: "+strings.Repeat("1", 5000)+"\n"), meminfoKeys)
	require.ErrorContains(t, err, "longer than 4096 bytes")
}

// keyValuesFields is parseKeyValues written the plain way, for the fuzz test.
func keyValuesFields(s string, keys []string) (map[string]uint64, bool) {
	kv, lines := map[string]uint64{}, 0
	for l := range strings.Lines(s) {
		f := strings.Fields(l)
		if len(f) < 2 {
			continue
		}
		if n, err := strconv.ParseUint(f[1], 10, 64); err == nil {
			lines++
			if k := strings.TrimSuffix(f[0], ":"); slices.Contains(keys, k) {
				kv[k] = n
			}
		}
	}
	return kv, lines > 0
}

func FuzzParseKeyValues(f *testing.F) {
	for _, p := range []string{"testdata/procfs/meminfo", "testdata/procfs/vmstat"} {
		if b, err := os.ReadFile(p); err == nil {
			f.Add(string(b))
		}
	}
	f.Add("MemTotal: 1 kB\nMemTotal 2\n a  3 \n")
	f.Fuzz(func(t *testing.T, s string) {
		for _, c := range []byte(s) {
			if c >= 0x80 {
				t.Skip() // strings.Fields also splits on Unicode spaces; the kernel writes ASCII
			}
		}
		keys := append(slices.Clone(meminfoKeys), "a", "oom_kill")
		kv, err := parseKeyValues(strings.NewReader(s), keys)
		long := false
		for l := range strings.Lines(s) {
			long = long || len(l) > 4096 || (len(l) == 4096 && !strings.HasSuffix(l, "\n"))
		}
		want, ok := keyValuesFields(s, keys)
		switch {
		case long:
			if err == nil {
				t.Fatalf("a line longer than the buffer was not refused")
			}
		case ok != (err == nil):
			t.Fatalf("%q: err %v, plain version ok %v", s, err, ok)
		case ok && !maps.Equal(kv, want):
			t.Fatalf("%q: %v, plain version %v", s, kv, want)
		}
	})
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
