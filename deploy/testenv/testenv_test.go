package testenv

import (
	"context"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestPrometheusScrapesItself starts the real Debian Prometheus scraping
// itself and finds up == 1 through the query API.
func TestPrometheusScrapesItself(t *testing.T) {
	start := time.Now()
	p := StartPrometheusJobs(t, []Job{{Name: "prometheus", Targets: []string{SelfTarget}}}, time.Second)
	t.Logf("prometheus ready at %s after %s", p.URL, time.Since(start).Round(time.Millisecond))

	res := p.WaitFor(t, `up{job="prometheus"}`, 30*time.Second, func(s []Sample) bool {
		return len(s) == 1 && s[0].Value == 1
	})
	t.Logf("up after %s: %v", time.Since(start).Round(time.Millisecond), res)
	if got := res[0].Metric["instance"]; got != p.Addr {
		t.Errorf("instance = %q, want %q", got, p.Addr)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	vec, err := p.Query(ctx, `up`)
	if err != nil {
		t.Fatal(err)
	}
	if len(vec) != 1 || vec[0].Value != 1 || vec[0].Metric["job"] != "prometheus" || vec[0].Metric["__name__"] != "up" {
		t.Errorf("Query(up) = %v, want one sample up{job=\"prometheus\"} 1", vec)
	}

	// A scalar comes back as one label-less sample.
	vec, err = p.Query(ctx, `scalar(up) * 2`)
	if err != nil {
		t.Fatal(err)
	}
	if len(vec) != 1 || vec[0].Value != 2 || len(vec[0].Metric) != 0 {
		t.Errorf("Query(scalar(up) * 2) = %v, want one sample 2", vec)
	}

	// A PromQL error is an error, not an empty vector.
	if _, err := p.Query(ctx, `up{`); err == nil || !strings.Contains(err.Error(), "bad_data") {
		t.Errorf("Query(`up{`) error = %v, want a bad_data error", err)
	}
}

// TestStartPrometheusAgentJob checks the l2agent job and its targets: a
// target that refuses connections is scraped and reported down.
func TestStartPrometheusAgentJob(t *testing.T) {
	target := "127.0.0.1:" + strconv.Itoa(FreePort(t))
	p := StartPrometheus(t, []string{target}, 500*time.Millisecond)
	res := p.WaitFor(t, `up{job="l2agent"}`, 30*time.Second, func(s []Sample) bool { return len(s) == 1 })
	if res[0].Value != 0 || res[0].Metric["instance"] != target {
		t.Errorf("up{job=\"l2agent\"} = %v, want 0 for %s", res, target)
	}
}

func TestPromtool(t *testing.T) {
	out, err := Promtool(t, []byte("# HELP l2agent_up Whether the agent is up.\n# TYPE l2agent_up gauge\nl2agent_up 1\n"))
	if err != nil || out != "" {
		t.Errorf("clean metrics: promtool said %q, %v; want nothing", out, err)
	}
	out, err = Promtool(t, []byte("# HELP l2agent_runs Runs.\n# TYPE l2agent_runs counter\nl2agent_runs 3\n"))
	if err == nil || !strings.Contains(out, `should have "_total" suffix`) {
		t.Errorf("counter without _total: promtool said %q, %v; want a lint error", out, err)
	}
	out, err = Promtool(t, []byte("l2agent_up{ 1\n"))
	if err == nil || !strings.Contains(out, "parsing error") {
		t.Errorf("unparsable metrics: promtool said %q, %v; want a parse error", out, err)
	}
}

func TestFreePort(t *testing.T) {
	port := FreePort(t)
	l, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(port))
	if err != nil {
		t.Fatalf("port %d from FreePort is not free: %v", port, err)
	}
	l.Close()
}

func TestLookBin(t *testing.T) {
	if p, err := lookBin("sh"); err != nil || p == "" {
		t.Errorf("lookBin(sh) = %q, %v", p, err)
	}
	// Found in the fallback directories even with an empty PATH.
	t.Setenv("PATH", "")
	if p, err := lookBin("sh"); err != nil || !strings.HasPrefix(p, "/") {
		t.Errorf("lookBin(sh) with empty PATH = %q, %v", p, err)
	}
	if _, err := lookBin("l2agent-no-such-binary"); err == nil {
		t.Error("lookBin found a binary that does not exist")
	}
}

func TestPrometheusConfig(t *testing.T) {
	got := prometheusConfig("127.0.0.1:9", []Job{
		{Name: "l2agent", Targets: []string{"127.0.0.1:1", SelfTarget}},
		{Name: "x", MetricsPath: "/m"},
	}, 30*time.Second)
	want := `global:
  scrape_interval: 30000ms
  scrape_timeout: 10000ms
  evaluation_interval: 30000ms
scrape_configs:
  - job_name: "l2agent"
    static_configs:
      - targets: ["127.0.0.1:1", "127.0.0.1:9"]
  - job_name: "x"
    metrics_path: "/m"
    static_configs:
      - targets: []
`
	if got != want {
		t.Errorf("prometheusConfig =\n%s\nwant\n%s", got, want)
	}
}
