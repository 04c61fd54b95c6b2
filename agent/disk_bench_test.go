package agent

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/l2agent/l2agent/internal/testkit"
)

// k8sMountinfo writes <dir>/procfs/1/mountinfo for a Kubernetes node with n
// mounts besides / and /boot: half tmpfs volumes of pods (projected service
// account tokens, under /var/lib/kubelet: excluded by default), half overlay
// root filesystems of containers (under /run/containerd: checked); it
// makes each mountpoint a directory under <dir>/rootfs, so statfs sees a
// real filesystem. It returns the procfs and rootfs paths.
func k8sMountinfo(tb testing.TB, dir string, n int) (procfs, rootfs string) {
	procfs, rootfs = filepath.Join(dir, "procfs"), filepath.Join(dir, "rootfs")
	require.NoError(tb, os.MkdirAll(filepath.Join(procfs, "1"), 0o755))
	var b strings.Builder
	b.WriteString("26 1 254:0 / / rw,relatime shared:1 - ext4 /dev/vda1 rw\n")
	b.WriteString("27 26 254:1 / /boot rw,relatime shared:2 - ext4 /dev/vda2 rw\n")
	for i := range n {
		var mp string
		if i%2 == 0 {
			mp = fmt.Sprintf("/var/lib/kubelet/pods/%08x-0000-4000-8000-000000000000/volumes/kubernetes.io~projected/kube-api-access-%05d", i, i)
			fmt.Fprintf(&b, "%d 26 0:%d / %s rw,relatime shared:%d - tmpfs tmpfs rw,size=4194304k\n", 100+i, 100+i, mp, 100+i)
		} else {
			mp = fmt.Sprintf("/run/containerd/io.containerd.runtime.v2.task/k8s.io/%064x/rootfs", i)
			fmt.Fprintf(&b, "%d 26 0:%d / %s rw,relatime shared:%d - overlay overlay rw,lowerdir=/var/lib/containerd/l/%d:/var/lib/containerd/l/base,upperdir=/var/lib/containerd/u/%d,workdir=/var/lib/containerd/w/%d\n", 100+i, 100+i, mp, 100+i, i, i, i)
		}
		require.NoError(tb, os.MkdirAll(filepath.Join(rootfs, mp), 0o755))
	}
	require.NoError(tb, os.MkdirAll(filepath.Join(rootfs, "boot"), 0o755))
	require.NoError(tb, os.WriteFile(filepath.Join(procfs, "1", "mountinfo"), []byte(b.String()), 0o644))
	return procfs, rootfs
}

// BenchmarkDiskMounts: one run of the disk check (with the default rules)
// and the scrape that follows, on a node with 10 and with 500 mounts; the
// cost per mount is reported (ns/mount) so that the two can be compared.
func BenchmarkDiskMounts(b *testing.B) {
	for _, n := range []int{10, 500} {
		b.Run(fmt.Sprintf("mounts=%d", n), func(b *testing.B) {
			dir := b.TempDir()
			procfs, rootfs := k8sMountinfo(b, dir, n)
			p := filepath.Join(dir, "agent.yaml")
			require.NoError(b, writeFile(p, fmt.Sprintf(`state_dir: %s
paths: {procfs: %s, rootfs: %s}
checks:
  - name: disk
    kind: disk
    rules:
      - {metric: disk_used_ratio, warn: 0.85, crit: 0.95, for: 5m, clear: 0.02}
      - {metric: disk_inodes_used_ratio, warn: 0.85, crit: 0.95, for: 5m, clear: 0.02}
      - {metric: disk_time_to_full_seconds, direction: below, warn: 86400, crit: 14400, for: 15m}
      - {metric: disk_read_only, crit: 1, labels: {mountpoint: /}}
`, filepath.Join(dir, "state"), procfs, rootfs)))
			a, err := New(Options{ConfigFile: p, Logger: testkit.QuietLogger()})
			require.NoError(b, err)
			req := httptest.NewRequest(http.MethodGet, "/metrics", nil)
			req.Header.Set("Accept-Encoding", "gzip")
			var size int
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				res, err := a.RunAll(context.Background())
				if err != nil || res[0].Error != "" {
					b.Fatal(err, res[0].Error)
				}
				rec := httptest.NewRecorder()
				a.serveMetrics(rec, req)
				size = rec.Body.Len()
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(n+2), "ns/mount")
			b.ReportMetric(float64(size), "gzip-bytes")
		})
	}
}
