package agent

import (
	"compress/flate"
	"context"
	"os"
	"runtime"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func statusKiB(t *testing.T, field string) int {
	t.Helper()
	b, err := os.ReadFile("/proc/self/status")
	require.NoError(t, err)
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, field+":"); ok {
			n, err := strconv.Atoi(strings.TrimSuffix(strings.TrimSpace(v), " kB"))
			require.NoError(t, err)
			return n
		}
	}
	t.Fatalf("no %s in /proc/self/status", field)
	return 0
}

// pageOutCode takes the executable's read-only pages out of the resident
// set (this test binary's, here).
func TestPageOutCode(t *testing.T) {
	before := statusKiB(t, "RssFile")
	n, err := pageOutCode()
	require.NoError(t, err)
	require.Positive(t, n)
	after := statusKiB(t, "RssFile")
	require.Less(t, after, before/2, "RssFile %d kB → %d kB", before, after)
}

// Concurrent scrapes share at most maxGzipWriters writers; one that cannot
// get one waits until its request ends.
func TestGzipWritersBounded(t *testing.T) {
	var held []*flate.Writer
	for range maxGzipWriters {
		gz, err := getGzip(context.Background(), nil)
		require.NoError(t, err)
		held = append(held, gz)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := getGzip(ctx, nil)
	require.ErrorIs(t, err, context.Canceled, "none free: it waits for its request")
	for _, gz := range held {
		putGzip(gz)
	}
}

// A burst of scrapes ends with its heap returned to the OS (a forced GC);
// a lone scrape does not.
func TestBurstRelease(t *testing.T) {
	forced := func() uint32 {
		var m runtime.MemStats
		runtime.ReadMemStats(&m)
		return m.NumForcedGC
	}
	var b burstRelease
	start := forced()
	b.n = 1
	b.quiet()
	require.Equal(t, start, forced(), "one scrape is no burst")
	b.n = burstScrapes
	b.quiet()
	require.Greater(t, forced(), start)
	require.Zero(t, b.n)
}
