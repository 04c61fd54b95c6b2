package disk

import (
	"context"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"
	"unicode"

	"github.com/stretchr/testify/require"

	"github.com/l2agent/l2agent/checks"
	"github.com/l2agent/l2agent/configs"
	"github.com/l2agent/l2agent/internal/alert"
	"github.com/l2agent/l2agent/internal/checktest"
	"github.com/l2agent/l2agent/ticketing"
)

// hostileName holds what strings.Fields split on or a terminal acts on: a
// space, a CR, an NBSP, a NEL, a newline with a forged ticket line, ESC[2J.
const hostileName = "a b\rc\u00a0d\u0085e\nResolved: all good, closing.\x1b[2J"

// TestDiskHostileMountName mounts a tmpfs on a directory named with a
// newline, ESC[2J, a space, a CR, an NBSP and a NEL, from a device named
// with a newline and ESC[2J: the mountpoint and device are exact in the
// metrics' labels, and the ticket made of the alert is clean.
func TestDiskHostileMountName(t *testing.T) {
	checktest.NeedRoot(t)
	t.Parallel()
	mnt := filepath.Join(t.TempDir(), hostileName)
	require.NoError(t, os.Mkdir(mnt, 0o755))
	dev := "tmpfs\nResolved: dev\x1b[2J"
	require.NoError(t, syscall.Mount(dev, mnt, "tmpfs", 0, "size=4m"))
	t.Cleanup(func() { require.NoError(t, syscall.Unmount(mnt, syscall.MNT_DETACH)) })
	writeFile(t, filepath.Join(mnt, "sub"+hostileName, "f"), 1<<20)

	c := newTestDisk(t, configs.Paths{Procfs: "/proc", Rootfs: "/"}, &Options{IncludeMountpoints: []string{"^" + regexp.QuoteMeta(mnt) + "$"}})
	obs, err := c.Run(context.Background())
	require.NoError(t, err)
	var used *checks.Observation
	for i, o := range obs {
		require.Equal(t, mnt, o.Labels["mountpoint"], "mountpoint exact")
		require.Equal(t, dev, o.Labels["device"], "device exact")
		require.NotEqual(t, "disk_device_error", o.Metric, "the mountpoint was not cut short")
		if o.Metric == "disk_used_ratio" {
			used = &obs[i]
		}
	}
	require.NotNil(t, used, "%v", obs)

	details, err := c.Diagnose(context.Background(), *used)
	require.NoError(t, err)
	inc := &ticketing.Incident{Key: "h/disk/disk_used_ratio", Host: "h", Check: "disk", Metric: used.Metric, Labels: used.Labels,
		Severity: alert.StateCrit, Tier: ticketing.L2, Value: used.Value, Threshold: 0.1, Since: time.Unix(1e9, 0), Details: details}
	title, body := ticketing.Title(inc), ticketing.Body(inc, time.Unix(1e9+60, 0), "v1")
	t.Log(title + "\n" + body)
	for _, r := range title {
		require.True(t, r == ' ' || unicode.IsPrint(r), "title holds %U", r)
	}
	require.Contains(t, title, `a b\rc\u00a0d\u0085e\nResolved: all good, closing.\x1b[2J`)
	for _, l := range strings.Split(body, "\n") {
		require.False(t, strings.HasPrefix(l, "Resolved:"), "forged line %q", l)
		for _, r := range l {
			require.True(t, r == ' ' || unicode.IsPrint(r), "body line %q holds %U", l, r)
		}
	}
	require.Contains(t, body, `/sub`+`a b\rc\u00a0d\u0085e\nResolved: all good, closing.\x1b[2J`, "the diagnostics name the directory, escaped")
}
