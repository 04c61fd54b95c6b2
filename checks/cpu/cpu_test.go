package cpu

import (
	"context"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/l2agent/l2agent/checks"
	"github.com/l2agent/l2agent/configs"
	"github.com/l2agent/l2agent/internal/checktest"
)

func newTestCPU(t *testing.T, procfs string) *cpuCheck {
	t.Helper()
	c, err := checks.New(configs.Check{Name: "cpu", Kind: "cpu"}, checks.Env{Paths: configs.Paths{Procfs: procfs, Sysfs: "/nonexistent", Rootfs: "/"}})
	require.NoError(t, err)
	return c.(*cpuCheck)
}

func TestCPUFake(t *testing.T) {
	t.Parallel()
	c := newTestCPU(t, "testdata/procfs")
	// testdata/procfs/stat: cpu  14985 0 8369 68822 265 0 154 0 0 0 (USER_HZ ticks).
	c.prev = &cpuTimes{User: 10000, System: 5000, Idle: 60000, Iowait: 200, Softirq: 100}
	obs, err := c.Run(context.Background())
	require.NoError(t, err)
	busy := float64((14985 - 10000) + (8369 - 5000) + (154 - 100))
	total := busy + (68822 - 60000) + (265 - 200)
	want := map[string]float64{
		"cpu_utilization_ratio":           busy / total,
		"cpu_iowait_ratio":                65 / total,
		`cpu_load_per_core{window="1m"}`:  2.47 / 2,
		`cpu_load_per_core{window="5m"}`:  1.13 / 2,
		`cpu_load_per_core{window="15m"}`: 0.46 / 2,
		"cpu_pressure_some_ratio":         0.3473,
	}
	got := checktest.ByKey(t, obs)
	require.Len(t, got, len(want), got)
	for k, v := range want {
		require.InDelta(t, v, got[k], 1e-9, k)
	}
	require.Equal(t, uint64(14985), c.prev.User, "the reading is kept for the next run")
}

func TestCPUFirstRun(t *testing.T) {
	t.Parallel()
	c := newTestCPU(t, "testdata/procfs-old")
	c.firstGap = time.Millisecond
	obs, err := c.Run(context.Background())
	require.NoError(t, err)
	got := checktest.ByKey(t, obs)
	// The fake /proc/stat does not move: no utilization; no PSI in this tree.
	require.Equal(t, map[string]float64{
		`cpu_load_per_core{window="1m"}`:  2.47 / 2,
		`cpu_load_per_core{window="5m"}`:  1.13 / 2,
		`cpu_load_per_core{window="15m"}`: 0.46 / 2,
	}, got)

	c = newTestCPU(t, "testdata/procfs")
	c.firstGap = time.Hour
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Millisecond)
	defer cancel()
	_, err = c.Run(ctx)
	require.ErrorIs(t, err, context.DeadlineExceeded, "the first-run wait honours ctx")
}

func TestCPUMissing(t *testing.T) {
	t.Parallel()
	_, err := newTestCPU(t, "testdata/nonexistent").Run(context.Background())
	require.ErrorContains(t, err, "read testdata/nonexistent/stat")
}

func TestCPURatios(t *testing.T) {
	t.Parallel()
	prev := cpuTimes{User: 10, Idle: 10, Iowait: 5}
	util, iowait, ok := cpuRatios(prev, cpuTimes{User: 20, Idle: 20, Iowait: 4})
	require.True(t, ok)
	require.Equal(t, 0.5, util, "iowait went backwards: counted as 0; guest is inside user")
	require.Equal(t, 0.0, iowait)
	_, _, ok = cpuRatios(prev, prev)
	require.False(t, ok)
}

func TestParseLoadavg(t *testing.T) {
	t.Parallel()
	l, err := parseLoadavg("0.52 0.58 0.59 2/1234 5678\n")
	require.NoError(t, err)
	require.Equal(t, [3]float64{0.52, 0.58, 0.59}, l)
	for _, bad := range []string{"", "0.1 0.2", "0.1 x 0.3", "0.1 0.2 -1"} {
		_, err := parseLoadavg(bad)
		require.Error(t, err, bad)
	}
}

func TestCPUReal(t *testing.T) {
	t.Parallel()
	c := newTestCPU(t, "/proc")
	for i := range 2 { // the first run waits for a second reading; the second uses the first's
		if i > 0 {
			time.Sleep(100 * time.Millisecond) // /proc/stat moves in 10ms ticks
		}
		obs, err := c.Run(context.Background())
		require.NoError(t, err)
		got := checktest.ByKey(t, obs)
		for _, k := range []string{"cpu_utilization_ratio", "cpu_iowait_ratio", "cpu_pressure_some_ratio"} {
			if k == "cpu_pressure_some_ratio" {
				if _, ok := got[k]; !ok {
					continue // kernel without PSI
				}
			}
			require.Contains(t, got, k)
			require.True(t, got[k] >= 0 && got[k] <= 1, "%s=%v", k, got[k])
		}
		for _, w := range []string{"1m", "5m", "15m"} {
			require.GreaterOrEqual(t, got[`cpu_load_per_core{window="`+w+`"}`], 0.0)
		}
	}

	// Keep this process busy so that it ranks among the top.
	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	for range 2 {
		go func() {
			for ctx.Err() == nil {
			}
		}()
	}
	s, err := c.Diagnose(context.Background(), checks.Observation{Metric: "cpu_utilization_ratio"})
	stop()
	require.NoError(t, err)
	require.GreaterOrEqual(t, checktest.ProcessLines(s), 1, s)
	require.Regexp(t, fmt.Sprintf(`(?m)^\s+%d\s+\S+\s+[1-9]\d*\.\d%%`, os.Getpid()), s, "this busy process is listed with its CPU use")
	t.Log("\n" + s)
}
