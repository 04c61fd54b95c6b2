package agent

import (
	"context"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"

	"github.com/l2agent/l2agent/internal/fsutil"
)

// TestFileReadsStuckMetric: a read of a user's file that blocks (the
// callback stands in for an open or read stalled in the kernel by a FUSE
// file system its user controls) is abandoned at its timeout and shows in
// l2agent_file_reads_stuck until it returns.
func TestFileReadsStuckMetric(t *testing.T) {
	_, srv := newTestAgent(t, `
hostname: t1
checks: []
`)
	stuckNow := func() int {
		m := regexp.MustCompile(`(?m)^l2agent_file_reads_stuck (\d+)$`).FindStringSubmatch(get(t, srv.URL+"/metrics"))
		require.NotNil(t, m, "l2agent_file_reads_stuck is not exposed")
		n, err := strconv.Atoi(m[1])
		require.NoError(t, err)
		return n
	}
	before := stuckNow()
	dir := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(dir, "f"), []byte("x"), 0o600))
	release := make(chan struct{})
	_, _, err := fsutil.ReadBeneath(context.Background(), dir, "f", fsutil.Beneath{Timeout: time.Millisecond, Check: func(*unix.Stat_t) error {
		<-release
		return nil
	}})
	require.ErrorIs(t, err, fsutil.ErrTimeout)
	require.Equal(t, before+1, stuckNow())
	close(release)
	require.Eventually(t, func() bool { return stuckNow() == before }, 10*time.Second, 5*time.Millisecond)
}
