// Package testenv gives l2agent's tests the real components they test
// against: binaries from Debian packages (see install.sh beside this file),
// a throw-away Prometheus server scraping the agent, and promtool's metrics
// linter.
//
// A test whose real component is missing is skipped on a developer machine
// (with a hint to run deploy/testenv/install.sh) and fails when CI=true, so
// CI can never go green by skipping.
package testenv

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// InstallHint is the command that installs every missing component.
const InstallHint = "deploy/testenv/install.sh"

// binDirs are searched after PATH: Debian puts some daemons in sbin, which
// is not on every user's PATH.
var binDirs = []string{"/usr/bin", "/usr/sbin", "/sbin", "/bin"}

// InCI reports whether the tests run in CI (environment CI=true or CI=1).
func InCI() bool {
	v := os.Getenv("CI")
	return strings.EqualFold(v, "true") || v == "1"
}

// lookBin finds bin on PATH and then in binDirs. A bin with a slash is
// checked as it is.
func lookBin(bin string) (string, error) {
	if strings.ContainsRune(bin, '/') {
		return exec.LookPath(bin)
	}
	if p, err := exec.LookPath(bin); err == nil {
		return p, nil
	}
	for _, dir := range binDirs {
		p := filepath.Join(dir, bin)
		if fi, err := os.Stat(p); err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0 {
			return p, nil
		}
	}
	return "", fmt.Errorf("%s not found on PATH nor in %s", bin, strings.Join(binDirs, ", "))
}

// Need returns the path of the executable bin. When it is missing the test
// fails if InCI, and is skipped otherwise.
func Need(t testing.TB, bin string) string {
	t.Helper()
	p, err := lookBin(bin)
	if err == nil {
		return p
	}
	if InCI() {
		t.Fatalf("testenv: %v (CI=true, so this fails instead of skipping; CI must run %s)", err, InstallHint)
	}
	t.Skipf("testenv: %v; install the test components with: sudo %s", err, InstallHint)
	return ""
}

// FreePort returns a TCP port on 127.0.0.1 that was free a moment ago.
func FreePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("testenv: finding a free port: %v", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// Job is one scrape job of a Prometheus started by StartPrometheusJobs.
type Job struct {
	Name        string
	Targets     []string // host:port; SelfTarget stands for the Prometheus itself
	MetricsPath string   // default /metrics
	// Extra is YAML added to the job as it is, indented by four spaces, e.g.
	// "scheme: https\ntls_config: {ca_file: /x/ca.pem}".
	Extra string
}

// SelfTarget, as a Job target, is replaced by the address of the Prometheus
// being started, so a job can scrape Prometheus itself.
const SelfTarget = "self"

// AgentJob is the job name StartPrometheus gives its targets.
const AgentJob = "l2agent"

// readyTimeout bounds the wait for a started Prometheus to become ready.
var readyTimeout = 30 * time.Second

// Prometheus is a Prometheus server started for one test.
type Prometheus struct {
	URL     string // http://127.0.0.1:PORT, no trailing slash
	Addr    string // 127.0.0.1:PORT
	Dir     string // temporary directory with prometheus.yml, data/ and prometheus.log
	LogPath string

	cmd    *exec.Cmd
	done   chan struct{} // closed when the process has exited
	client *http.Client
}

// StartPrometheus starts /usr/bin/prometheus scraping the given host:port
// targets as job "l2agent" every scrapeInterval, waits until it is ready
// and stops it when the test ends.
func StartPrometheus(t testing.TB, scrapeTargets []string, scrapeInterval time.Duration) *Prometheus {
	t.Helper()
	return StartPrometheusJobs(t, []Job{{Name: AgentJob, Targets: scrapeTargets}}, scrapeInterval)
}

// StartPrometheusJobs is StartPrometheus with any scrape jobs.
func StartPrometheusJobs(t testing.TB, jobs []Job, scrapeInterval time.Duration) *Prometheus {
	t.Helper()
	bin := Need(t, "prometheus")
	if scrapeInterval <= 0 {
		scrapeInterval = time.Second
	}
	dir := t.TempDir()
	var lastErr error
	// The port from FreePort can be taken before Prometheus binds it; try
	// again with another one when that happens.
	for attempt := 0; attempt < 3; attempt++ {
		addr := fmt.Sprintf("127.0.0.1:%d", FreePort(t))
		p, err := startPrometheus(t, bin, dir, addr, jobs, scrapeInterval)
		if err == nil {
			return p
		}
		lastErr = err
		if !errors.Is(err, errAddrInUse) {
			break
		}
	}
	t.Fatalf("testenv: starting prometheus: %v", lastErr)
	return nil
}

var errAddrInUse = errors.New("address already in use")

func startPrometheus(t testing.TB, bin, dir, addr string, jobs []Job, interval time.Duration) (*Prometheus, error) {
	t.Helper()
	cfgPath := filepath.Join(dir, "prometheus.yml")
	if err := os.WriteFile(cfgPath, []byte(prometheusConfig(addr, jobs, interval)), 0o644); err != nil {
		return nil, err
	}
	logPath := filepath.Join(dir, "prometheus.log")
	logFile, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	defer logFile.Close()

	cmd := exec.Command(bin,
		"--config.file="+cfgPath,
		"--storage.tsdb.path="+filepath.Join(dir, "data"),
		"--web.listen-address="+addr,
		"--log.level=info",
	)
	cmd.Dir = dir
	cmd.Stdout = logFile
	cmd.Stderr = logFile
	cmd.SysProcAttr = sysProcAttr()
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	p := &Prometheus{
		URL:     "http://" + addr,
		Addr:    addr,
		Dir:     dir,
		LogPath: logPath,
		cmd:     cmd,
		done:    make(chan struct{}),
		client:  &http.Client{Timeout: 10 * time.Second},
	}
	go func() {
		_ = cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() {
		p.stop()
		if t.Failed() {
			t.Logf("testenv: prometheus log (%s):\n%s", logPath, p.Log())
		}
	})

	deadline := time.Now().Add(readyTimeout)
	for {
		if p.ready() {
			return p, nil
		}
		select {
		case <-p.done:
			log := p.Log()
			if strings.Contains(log, "address already in use") {
				return nil, fmt.Errorf("%w: %s", errAddrInUse, addr)
			}
			return nil, fmt.Errorf("prometheus exited before it was ready (%s); log:\n%s", cmd.ProcessState, log)
		case <-time.After(100 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("prometheus at %s not ready after %s", addr, readyTimeout)
		}
	}
}

// prometheusConfig renders prometheus.yml. Durations are written in
// milliseconds, which every Prometheus version parses.
func prometheusConfig(self string, jobs []Job, interval time.Duration) string {
	timeout := interval
	if timeout > 10*time.Second {
		timeout = 10 * time.Second
	}
	ms := func(d time.Duration) string { return fmt.Sprintf("%dms", max(d.Milliseconds(), 1)) }
	var b strings.Builder
	fmt.Fprintf(&b, "global:\n  scrape_interval: %s\n  scrape_timeout: %s\n  evaluation_interval: %s\n",
		ms(interval), ms(timeout), ms(interval))
	b.WriteString("scrape_configs:\n")
	for _, j := range jobs {
		fmt.Fprintf(&b, "  - job_name: %s\n", strconv.Quote(j.Name))
		if j.MetricsPath != "" {
			fmt.Fprintf(&b, "    metrics_path: %s\n", strconv.Quote(j.MetricsPath))
		}
		for _, l := range strings.Split(strings.TrimSpace(j.Extra), "\n") {
			if l != "" {
				fmt.Fprintf(&b, "    %s\n", l)
			}
		}
		b.WriteString("    static_configs:\n      - targets: [")
		for i, target := range j.Targets {
			if target == SelfTarget {
				target = self
			}
			if i > 0 {
				b.WriteString(", ")
			}
			b.WriteString(strconv.Quote(target))
		}
		b.WriteString("]\n")
	}
	return b.String()
}

func (p *Prometheus) ready() bool {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, p.URL+"/-/ready", nil)
	if err != nil {
		return false
	}
	resp, err := p.client.Do(req)
	if err != nil {
		return false
	}
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}

// stop terminates Prometheus: SIGTERM, then SIGKILL after 5 s.
func (p *Prometheus) stop() {
	select {
	case <-p.done:
		return
	default:
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(5 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.done
	}
}

// Log returns what Prometheus has logged so far.
func (p *Prometheus) Log() string {
	b, err := os.ReadFile(p.LogPath)
	if err != nil {
		return fmt.Sprintf("(reading %s: %v)", p.LogPath, err)
	}
	return string(b)
}

// Sample is one element of an instant vector.
type Sample struct {
	Metric map[string]string
	Value  float64
}

func (s Sample) String() string {
	return fmt.Sprintf("%v => %g", s.Metric, s.Value)
}

// Query runs an instant query at the current time via /api/v1/query and
// returns the resulting vector. A scalar result is returned as one Sample
// with no labels; a matrix or string result is an error.
func (p *Prometheus) Query(ctx context.Context, promql string) ([]Sample, error) {
	u := p.URL + "/api/v1/query?" + url.Values{"query": {promql}}.Encode()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, err
	}
	resp, err := p.client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var body struct {
		Status    string `json:"status"`
		ErrorType string `json:"errorType"`
		Error     string `json:"error"`
		Data      struct {
			ResultType string          `json:"resultType"`
			Result     json.RawMessage `json:"result"`
		} `json:"data"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		return nil, fmt.Errorf("query %q: decoding response (HTTP %d): %w", promql, resp.StatusCode, err)
	}
	if body.Status != "success" {
		return nil, fmt.Errorf("query %q: %s: %s (HTTP %d)", promql, body.ErrorType, body.Error, resp.StatusCode)
	}
	switch body.Data.ResultType {
	case "vector":
		var raw []struct {
			Metric map[string]string  `json:"metric"`
			Value  [2]json.RawMessage `json:"value"`
		}
		if err := json.Unmarshal(body.Data.Result, &raw); err != nil {
			return nil, fmt.Errorf("query %q: decoding vector: %w", promql, err)
		}
		out := make([]Sample, 0, len(raw))
		for _, r := range raw {
			v, err := parseValue(r.Value[1])
			if err != nil {
				return nil, fmt.Errorf("query %q: %w", promql, err)
			}
			if r.Metric == nil {
				r.Metric = map[string]string{}
			}
			out = append(out, Sample{Metric: r.Metric, Value: v})
		}
		return out, nil
	case "scalar":
		var raw [2]json.RawMessage
		if err := json.Unmarshal(body.Data.Result, &raw); err != nil {
			return nil, fmt.Errorf("query %q: decoding scalar: %w", promql, err)
		}
		v, err := parseValue(raw[1])
		if err != nil {
			return nil, fmt.Errorf("query %q: %w", promql, err)
		}
		return []Sample{{Metric: map[string]string{}, Value: v}}, nil
	default:
		return nil, fmt.Errorf("query %q: result type %q, want vector", promql, body.Data.ResultType)
	}
}

// parseValue decodes a sample value, which the API sends as a JSON string
// ("1", "NaN", "+Inf").
func parseValue(raw json.RawMessage) (float64, error) {
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		return 0, fmt.Errorf("sample value %s: %w", raw, err)
	}
	v, err := strconv.ParseFloat(s, 64)
	if err != nil {
		return 0, fmt.Errorf("sample value %q: %w", s, err)
	}
	return v, nil
}

// WaitFor polls promql until ok accepts the result and returns that result.
// When timeout passes first, the test fails with the last result or error.
func (p *Prometheus) WaitFor(t testing.TB, promql string, timeout time.Duration, ok func([]Sample) bool) []Sample {
	t.Helper()
	deadline := time.Now().Add(timeout)
	var (
		last    []Sample
		lastErr error
		polls   int
	)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		res, err := p.Query(ctx, promql)
		cancel()
		polls++
		if err == nil {
			if ok(res) {
				return res
			}
			last, lastErr = res, nil
		} else {
			lastErr = err
		}
		if time.Now().After(deadline) {
			break
		}
		select {
		case <-p.done:
			t.Fatalf("testenv: prometheus exited while waiting for %q (%s)", promql, p.cmd.ProcessState)
		case <-time.After(200 * time.Millisecond):
		}
	}
	if lastErr != nil {
		t.Fatalf("testenv: %q not as wanted after %s (%d polls); last error: %v", promql, timeout, polls, lastErr)
	}
	t.Fatalf("testenv: %q not as wanted after %s (%d polls); last result: %v", promql, timeout, polls, last)
	return nil
}

// Promtool runs `promtool check metrics` on metricsText (Prometheus text
// exposition format) and returns its combined output and its error, which
// is non-nil when promtool exits non-zero (1: cannot parse, 3: lint
// problems). A clean exposition gives "" and nil.
func Promtool(t testing.TB, metricsText []byte) (string, error) {
	t.Helper()
	bin := Need(t, "promtool")
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, "check", "metrics")
	cmd.Stdin = bytes.NewReader(metricsText)
	out, err := cmd.CombinedOutput()
	var exitErr *exec.ExitError
	if err != nil && !errors.As(err, &exitErr) {
		t.Fatalf("testenv: running promtool: %v", err)
	}
	return string(out), err
}
