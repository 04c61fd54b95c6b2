package antivirus

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/l2agent/l2agent/checks"
	"github.com/l2agent/l2agent/configs"
	"github.com/l2agent/l2agent/internal/checktest"
)

// startNamed runs a copy of sleep under another name until the test ends.
func startNamed(t *testing.T, name string) int {
	t.Helper()
	sleep := checktest.NeedTool(t, "sleep")
	p := filepath.Join(t.TempDir(), name)
	b, err := os.ReadFile(sleep)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(p, b, 0o755))
	cmd := exec.Command(p, "300")
	require.NoError(t, cmd.Start())
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGKILL)
		cmd.Wait()
	})
	return cmd.Process.Pid
}

func TestProcessEngine(t *testing.T) {
	t.Parallel()
	pid := startNamed(t, "l2a-edr-sensor-with-a-long-name")
	dir := t.TempDir()
	systemctl := writeScript(t, dir, "systemctl", `[ "$1 $2" = "is-active --" ] || exit 2
shift 2
rc=0
for u; do
  case $u in l2a-sensor.service) echo active ;; l2a-failed.service) echo failed; rc=3 ;; *) echo inactive; rc=3 ;; esac
done
exit $rc
`)
	newCheck := func(pe ...ProcessEngine) checks.Check {
		c, err := checks.New(configs.Check{Name: "av", Kind: "antivirus", Options: &Options{
			Engines: []string{}, Processes: pe, Systemctl: systemctl,
			ClamAV: ClamAVOptions{ClamdConf: "/nonexistent/clamd.conf"}, MDATP: MDATPOptions{Path: "/nonexistent/mdatp"}}},
			checks.Env{Paths: configs.Paths{Procfs: "/proc", Rootfs: "/"}})
		require.NoError(t, err)
		return c
	}
	c := newCheck(
		ProcessEngine{Name: "sensor", Processes: []string{"l2a-edr-sensor-with-a-long-name"}, Units: []string{"l2a-sensor.service"}},
		ProcessEngine{Name: "broken", Processes: []string{"l2a-edr-sensor-with-a-long-name", "l2a-absent"}, Units: []string{"l2a-sensor.service", "l2a-failed.service"}},
	)
	obs, err := c.Run(context.Background())
	require.NoError(t, err)
	got, details := checktest.ObsByKey(t, obs)
	require.Equal(t, map[string]float64{`antivirus_up{engine="sensor"}`: 1, `antivirus_up{engine="broken"}`: 0}, got)
	require.Equal(t, "process l2a-edr-sensor-with-a-long-name running (pid "+strconv.Itoa(pid)+")\nunit l2a-sensor.service active", details[`antivirus_up{engine="sensor"}`])
	require.Equal(t, "process l2a-edr-sensor-with-a-long-name running (pid "+strconv.Itoa(pid)+")\nprocess l2a-absent NOT running\nunit l2a-sensor.service active\nunit l2a-failed.service NOT active (failed)",
		details[`antivirus_up{engine="broken"}`])

	// systemctl that cannot answer (no systemd): the unit state is unknown, the engine down.
	c = newCheck(ProcessEngine{Name: "x", Units: []string{"a.service"}})
	c.(*antivirusCheck).opts.Systemctl = writeScript(t, dir, "systemctl-broken", "echo 'System has not been booted with systemd as init system (PID 1). Can'\\''t operate.' >&2; exit 1\n")
	obs, err = c.Run(context.Background())
	require.NoError(t, err)
	require.Equal(t, 0.0, obs[0].Value)
	require.Contains(t, obs[0].Details, "state unknown")
	require.Contains(t, obs[0].Details, "has not been booted with systemd")

	// Nothing installed, nothing configured: the host has no antivirus.
	obs, err = newCheck().Run(context.Background())
	require.NoError(t, err)
	require.Len(t, obs, 1)
	require.Equal(t, map[string]string{"engine": "none"}, obs[0].Labels)
	require.Equal(t, 0.0, obs[0].Value)
}
