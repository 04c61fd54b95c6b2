package agent

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/l2agent/l2agent/internal/alert"
)

// TestRealDiskAlert mounts a small tmpfs, fills it past crit and watches the
// alert key go pending → crit within `for` + interval, in /api/v1/status and
// /metrics, then frees it and watches it clear. It needs root (CI is root);
// in CI a missing privilege fails the test instead of skipping it.
func TestRealDiskAlert(t *testing.T) {
	mnt := mountTmpfs(t, "8m", "l2agent-test")

	a, srv := newTestAgent(t, fmt.Sprintf(`
hostname: disk-test
defaults: {jitter_max: 0s}
checks:
  - name: disk
    kind: disk
    schedule: "@every 1s"
    disk:
      include_mountpoints: ['^%s$']
    rules:
      - metric: disk_used_ratio
        warn: 0.5
        crit: 0.9
        for: 2s
        clear: 0.05
`, mnt))
	key := alert.Key("disk-test", "disk", "disk_used_ratio", nil) // prefix; labels follow
	key = strings.TrimSuffix(key, "{}")

	stateOf := func() (alert.State, string) {
		var st Status
		require.NoError(t, json.Unmarshal([]byte(apiGet(t, a, "/api/v1/status")), &st))
		for _, al := range st.Alerts {
			if strings.HasPrefix(al.Key, key+"{") && al.Labels["mountpoint"] == mnt {
				return al.State, al.Details
			}
		}
		return -2, ""
	}
	require.Eventually(t, func() bool { s, _ := stateOf(); return s == alert.StateOK }, 10*time.Second, 50*time.Millisecond)

	// Fill to ~94 % of 8 MiB in a subdirectory.
	require.NoError(t, os.MkdirAll(filepath.Join(mnt, "logs", "app"), 0o755))
	big := filepath.Join(mnt, "logs", "app", "big.log")
	require.NoError(t, os.WriteFile(big, make([]byte, 7700*1024), 0o644))
	filledAt := time.Now()

	var seen []alert.State
	require.Eventually(t, func() bool {
		s, _ := stateOf()
		if len(seen) == 0 || seen[len(seen)-1] != s {
			seen = append(seen, s)
		}
		return s == alert.StateCrit
	}, 15*time.Second, 50*time.Millisecond, "states seen: %v", seen)
	require.Contains(t, seen, alert.StatePending, "the breach is pending before it fires")
	require.GreaterOrEqual(t, time.Since(filledAt), 2*time.Second, "it fires only after `for`")
	// Diagnostics are taken right after the alert fires (a bounded scan).
	var details string
	require.Eventually(t, func() bool { _, details = stateOf(); return details != "" }, 10*time.Second, 20*time.Millisecond)
	require.Contains(t, details, filepath.Join(mnt, "logs"), "diagnostics name the largest directory")

	metrics := get(t, srv.URL+"/metrics")
	require.Contains(t, metrics, fmt.Sprintf(`l2agent_alert_state{check="disk",device="l2agent-test",fstype="tmpfs",metric="disk_used_ratio",mountpoint="%s"} 3`, mnt))

	require.NoError(t, os.Remove(big))
	require.Eventually(t, func() bool { s, _ := stateOf(); return s == alert.StateOK }, 10*time.Second, 50*time.Millisecond)
	require.Contains(t, get(t, srv.URL+"/metrics"), fmt.Sprintf(`l2agent_alert_state{check="disk",device="l2agent-test",fstype="tmpfs",metric="disk_used_ratio",mountpoint="%s"} 0`, mnt))
	_ = a
}
