package patches

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/l2agent/l2agent/checks"
	"github.com/l2agent/l2agent/configs"
	"github.com/l2agent/l2agent/internal/checktest"
	"github.com/l2agent/l2agent/internal/command"
)

// countingRunner runs commands for real and counts the runs of each
// program (by base name). With env set, commands run through env(1) with
// those variables set.
type countingRunner struct {
	env  []string
	mu   sync.Mutex
	runs map[string]int
}

func (r *countingRunner) run(ctx context.Context, argv ...string) (command.Output, error) {
	r.mu.Lock()
	if r.runs == nil {
		r.runs = map[string]int{}
	}
	r.runs[filepath.Base(argv[0])]++
	r.mu.Unlock()
	if len(r.env) > 0 {
		argv = append(append([]string{"env"}, r.env...), argv...)
	}
	return command.Capture(ctx, argv...)
}

// count is how many times program ran.
func (r *countingRunner) count(program string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.runs[program]
}

func (r *countingRunner) simulations() int { return r.count("apt-get") }

// TestAptReuse: against a real apt repository, a run whose inputs did not
// change reuses the last simulation (no apt-get at all) and reports the
// same; a pin added in preferences.d, a changed dpkg status, refreshed
// lists, or a day passing make apt simulate again, and what it then says
// is reported.
func TestAptReuse(t *testing.T) {
	t.Parallel()
	r := newAptRepo(t)
	procfs := t.TempDir()
	require.NoError(t, os.MkdirAll(filepath.Join(procfs, "sys", "kernel"), 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(procfs, "sys", "kernel", "osrelease"), []byte("6.1.0-18-amd64\n"), 0o644))
	c := newTestPatches(t, checks.Env{Paths: configs.Paths{Rootfs: "/", Procfs: procfs}},
		Options{Backend: "apt", Apt: AptOptions{Options: r.Options, Upgrade: "upgrade"}})
	runner := &countingRunner{}
	c.run = runner.run
	now := time.Now()
	c.now = func() time.Time { return now }
	pending := func() map[string]float64 {
		t.Helper()
		obs, err := c.Run(context.Background())
		require.NoError(t, err)
		got, _ := checktest.ObsByKey(t, obs)
		return got
	}

	first := pending()
	sims := runner.simulations()
	require.Equal(t, 2, sims, "upgrade, then dist-upgrade ignoring holds (two packages are held)")
	require.Equal(t, 6.0, first[`patches_pending{kind="all"}`])

	now = now.Add(time.Hour)
	second := pending()
	require.Equal(t, counts(first), counts(second), "nothing changed: the same answer")
	require.Equal(t, sims, runner.simulations(), "…without apt-get")
	require.InDelta(t, first["patches_oldest_security_pending_seconds"]+3600, second["patches_oldest_security_pending_seconds"], 1,
		"ages go on with the clock")

	// A pin that keeps l2a-other at its installed version.
	pin := "Package: l2a-other\nPin: version 1.0\nPin-Priority: 1001\n"
	require.NoError(t, os.WriteFile(filepath.Join(r.Root, "etc", "apt", "preferences.d", "l2a-other"), []byte(pin), 0o644))
	pinned := pending()
	require.Greater(t, runner.simulations(), sims, "preferences.d changed: simulated again")
	require.Equal(t, 5.0, pinned[`patches_pending{kind="all"}`], "l2a-other is pinned to what is installed")
	sims = runner.simulations()

	// l2a-sec installed at its candidate: the dpkg status changed.
	status := filepath.Join(r.Root, "var", "lib", "dpkg", "status")
	b, err := os.ReadFile(status)
	require.NoError(t, err)
	b = []byte(strings.Replace(string(b), "Package: l2a-sec\nStatus: install ok installed\nPriority: optional\nMaintainer: l2agent tests <tests@l2agent.invalid>\nArchitecture: all\nVersion: 1.0\n",
		"Package: l2a-sec\nStatus: install ok installed\nPriority: optional\nMaintainer: l2agent tests <tests@l2agent.invalid>\nArchitecture: all\nVersion: 1.1\n", 1))
	require.NoError(t, os.WriteFile(status, b, 0o644))
	upgraded := pending()
	require.Greater(t, runner.simulations(), sims, "dpkg status changed: simulated again")
	require.Equal(t, 4.0, upgraded[`patches_pending{kind="all"}`], "l2a-sec is up to date")
	sims = runner.simulations()

	aptUpdate(t, r) // rewrites no list when the repository did not change…
	pending()
	t.Logf("after apt-get update of an unchanged repository: %d simulations more", runner.simulations()-sims)
	sims = runner.simulations()

	require.NoError(t, os.Chtimes(filepath.Join(r.Root, "var", "lib", "apt", "lists"), now, now)) // the directory, not a list: no change
	now = now.Add(reuseMax)
	require.Equal(t, counts(upgraded), counts(pending()))
	require.Greater(t, runner.simulations(), sims, "reused for at most reuseMax")
}

// counts keeps the series that count updates (not ages and times).
func counts(m map[string]float64) map[string]float64 {
	out := map[string]float64{}
	for k, v := range m {
		if strings.HasPrefix(k, "patches_pending") || strings.HasPrefix(k, "patches_blocked") || k == "patches_held" {
			out[k] = v
		}
	}
	return out
}
