package agent

import (
	"bytes"
	"compress/gzip"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"

	"github.com/l2agent/l2agent/checks"
	"github.com/l2agent/l2agent/configs"
	"github.com/l2agent/l2agent/internal/command"
	"github.com/l2agent/l2agent/internal/testkit"
)

func init() {
	checks.Register("test_many", func(c configs.Check, _ checks.Env) (checks.Check, error) {
		return funcCheck{c.Name, func(context.Context) ([]checks.Observation, error) {
			obs := make([]checks.Observation, 0, 500)
			for i := range 500 {
				obs = append(obs, checks.Observation{Metric: "test_many_ratio", Labels: map[string]string{"mountpoint": fmt.Sprintf("/srv/%03d", i), "fstype": "ext4"}, Value: float64(i) / 500})
			}
			return obs, nil
		}}, nil
	}, nil, checks.MetricInfo{Name: "test_many_ratio", Help: "A test ratio."})
}

// manyAgent has 500 observations and 500 alert keys: 1,000 series of its own.
func manyAgent(tb testing.TB) *Agent {
	p := tb.TempDir() + "/agent.yaml"
	require.NoError(tb, writeFile(p, `checks:
  - name: many
    kind: test_many
    rules: [{metric: test_many_ratio, warn: 0.5, crit: 0.9}]
`))
	a, err := New(Options{ConfigFile: p, Logger: testkit.QuietLogger()})
	require.NoError(tb, err)
	_, err = a.RunAll(context.Background())
	require.NoError(tb, err)
	return a
}

func TestMetricsExposition(t *testing.T) {
	a := manyAgent(t)
	n, err := testutil.GatherAndCount(a.Gatherer(), "l2agent_test_many_ratio", "l2agent_alert_state")
	require.NoError(t, err)
	require.Equal(t, 1001, n, "500 values, 500 alert keys and the check run key")
	problems, err := testutil.GatherAndLint(a.Gatherer(), "l2agent_test_many_ratio", "l2agent_alert_state", "l2agent_check_duration_seconds")
	require.NoError(t, err)
	require.Empty(t, problems)
	require.NoError(t, testutil.GatherAndCompare(a.Gatherer(), strings.NewReader(`
# HELP l2agent_check_runs_total Runs of a check.
# TYPE l2agent_check_runs_total counter
l2agent_check_runs_total{check="many"} 1
# HELP l2agent_check_errors_total Runs of a check that failed, timed out or panicked.
# TYPE l2agent_check_errors_total counter
l2agent_check_errors_total{check="many"} 0
`), "l2agent_check_runs_total", "l2agent_check_errors_total"))

	rec := httptest.NewRecorder()
	a.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	require.Equal(t, 200, rec.Code)
	body := rec.Body.String()
	require.Contains(t, body, `l2agent_test_many_ratio{fstype="ext4",mountpoint="/srv/499"} 0.998`)
	require.Contains(t, body, `l2agent_alert_state{check="many",fstype="ext4",metric="test_many_ratio",mountpoint="/srv/499"} 3`)
	require.Contains(t, body, `l2agent_alert_state{check="many",fstype="ext4",metric="test_many_ratio",mountpoint="/srv/300"} 2`)
}

func TestEndpoints(t *testing.T) {
	a := manyAgent(t)
	h := a.Handler()
	for _, tc := range []struct {
		method, path string
		code         int
		body         string
	}{
		{"GET", "/-/healthy", 200, "Healthy"},
		{"GET", "/-/ready", 200, "Ready"},
		{"GET", "/api/v1/status", 403, "Use the unix socket"}, // TestAPINotOverTCP
		{"GET", "/-/reload", 405, ""},
		{"POST", "/metrics", 405, ""},
		{"GET", "/nope", 404, ""},
	} {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(tc.method, tc.path, nil))
		require.Equal(t, tc.code, rec.Code, "%s %s", tc.method, tc.path)
		require.Contains(t, rec.Body.String(), tc.body)
	}
	require.Contains(t, apiGet(t, a, "/api/v1/status"), `"state": "crit"`)
}

// BenchmarkMetricsHandler: one scrape of ~1,000 series of check results
// (plus the Go runtime and process metrics), served from the snapshot.
func BenchmarkMetricsHandler(b *testing.B) { benchmarkScrape(b, "") }

// benchmarkScrape serves /metrics of manyAgent, with Accept-Encoding
// encoding ("" for none), b.N times.
func benchmarkScrape(b *testing.B, encoding string) {
	a := manyAgent(b)
	h := a.Handler()
	req := httptest.NewRequest(http.MethodGet, "/metrics", nil)
	if encoding != "" {
		req.Header.Set("Accept-Encoding", encoding)
	}
	b.ReportAllocs()
	for b.Loop() {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code != 200 {
			b.Fatal(rec.Code)
		}
	}
}

// BenchmarkMetricsRender: rendering the ~1,000 series of check results
// anew, as happens once after each check run (not per scrape).
func BenchmarkMetricsRender(b *testing.B) {
	a := manyAgent(b)
	b.ReportAllocs()
	for b.Loop() {
		a.snap.invalidate()
		if _, err := a.snap.get(); err != nil {
			b.Fatal(err)
		}
	}
}

func init() {
	checks.Register("test_child", func(c configs.Check, _ checks.Env) (checks.Check, error) {
		return funcCheck{c.Name, func(ctx context.Context) ([]checks.Observation, error) {
			// A program that builds a 64 MiB string, as the checks run apt-get or sshd.
			out, err := command.Capture(ctx, "awk", `BEGIN { s = "x"; while (length(s) < 67108864) s = s s; print length(s) }`)
			if err != nil || out.Exit != 0 {
				return nil, fmt.Errorf("awk: %v %d", err, out.Exit)
			}
			return nil, nil
		}}, nil
	}, nil)
}

// The peak RSS of the programs a check runs is exported per check; a check
// that runs none has no such series.
func TestChildMaxRSSMetric(t *testing.T) {
	p := t.TempDir() + "/agent.yaml"
	require.NoError(t, writeFile(p, "checks:\n  - {name: child, kind: test_child}\n  - {name: many, kind: test_many}\n"))
	a, err := New(Options{ConfigFile: p, Logger: testkit.QuietLogger()})
	require.NoError(t, err)
	res, err := a.RunAll(context.Background())
	require.NoError(t, err)
	require.Empty(t, res[0].Error)
	rec := httptest.NewRecorder()
	a.serveMetrics(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	m := regexp.MustCompile(`(?m)^l2agent_check_child_max_rss_bytes\{check="child"\} (\S+)$`).FindStringSubmatch(rec.Body.String())
	require.NotNil(t, m, rec.Body.String())
	v, err := strconv.ParseFloat(m[1], 64)
	require.NoError(t, err)
	require.GreaterOrEqual(t, v, float64(64<<20))
	require.NotContains(t, rec.Body.String(), `l2agent_check_child_max_rss_bytes{check="many"}`)
}

// BenchmarkMetricsHandlerGzip: a scrape as Prometheus asks for it (gzip),
// with 1,000 series of check results.
func BenchmarkMetricsHandlerGzip(b *testing.B) { benchmarkScrape(b, "gzip") }

// A gzip scrape is one valid gzip member (checked by Go's reader, which
// verifies the CRC and size, and by gzip(1)) holding the live metrics then
// the snapshot of check results, compressed once per change; after a run
// changes the snapshot the next scrape holds the new one.
func TestMetricsGzipPrecompressed(t *testing.T) {
	a := manyAgent(t)
	h := a.Handler()
	scrape := func() string {
		t.Helper()
		req := httptest.NewRequest(http.MethodGet, "/metrics", nil)
		req.Header.Set("Accept-Encoding", "gzip")
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		require.Equal(t, 200, rec.Code)
		require.Equal(t, "gzip", rec.Header().Get("Content-Encoding"))
		body := rec.Body.Bytes()
		br := bytes.NewReader(body)
		zr, err := gzip.NewReader(br)
		require.NoError(t, err)
		zr.Multistream(false)
		text, err := io.ReadAll(zr)
		require.NoError(t, err, "CRC-32 and size match")
		require.Zero(t, br.Len(), "one member, nothing after it")
		if gz, err := exec.LookPath("gzip"); err == nil {
			cmd := exec.Command(gz, "-t")
			cmd.Stdin = bytes.NewReader(body)
			out, err := cmd.CombinedOutput()
			require.NoError(t, err, "gzip -t: %s", out)
		}
		return string(text)
	}
	snap, err := a.snap.get()
	require.NoError(t, err)
	first := scrape()
	require.Contains(t, first, "go_goroutines ")
	require.Contains(t, first, "process_resident_memory_bytes ")
	require.True(t, strings.HasSuffix(first, string(snap)), "the snapshot follows the live metrics")
	require.Equal(t, 500, strings.Count(first, "\nl2agent_test_many_ratio{"))

	again := scrape()
	require.True(t, strings.HasSuffix(again, string(snap)), "the same snapshot while nothing ran")
	_, err = a.RunAll(context.Background())
	require.NoError(t, err)
	second := scrape()
	require.Contains(t, second, `l2agent_check_runs_total{check="many"} 2`, "the new snapshot")
	require.NotContains(t, second, `l2agent_check_runs_total{check="many"} 1`)
}
