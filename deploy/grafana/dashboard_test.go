// Package grafana_test checks deploy/grafana/l2agent.json: its shape (variables,
// data source, matchers), and every PromQL expression of its panels and of the
// recording rules in deploy/prometheus/l2agent.rules.yml against a real
// Prometheus that scrapes a real agent built from this tree.
package grafana_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/l2agent/l2agent/deploy/testenv"
)

const (
	dashboardPath = "l2agent.json"
	rulesPath     = "../prometheus/l2agent.rules.yml"
)

// mustHaveData are the panels that return series on any host running the
// default checks (disk, cpu, memory) within seconds of the agent's start.
var mustHaveData = []string{
	"Hosts by worst alert state",
	"Alert keys by state",
	"Agents down",
	"Check up",
	"Alert state over time",
	"Time since last successful run",
	"Disk used",
	"Free space",
	"CPU utilization",
	"Load per core",
	"Memory used",
	"Swap used",
}

type target struct {
	Datasource struct {
		Type string `json:"type"`
		UID  string `json:"uid"`
	} `json:"datasource"`
	Expr  string `json:"expr"`
	RefID string `json:"refId"`
}

type panel struct {
	ID         int    `json:"id"`
	Type       string `json:"type"`
	Title      string `json:"title"`
	Datasource *struct {
		Type string `json:"type"`
		UID  string `json:"uid"`
	} `json:"datasource"`
	Targets []target `json:"targets"`
	Panels  []panel  `json:"panels"`
}

type dashboard struct {
	SchemaVersion int     `json:"schemaVersion"`
	UID           string  `json:"uid"`
	Panels        []panel `json:"panels"`
	Templating    struct {
		List []struct {
			Name       string `json:"name"`
			Type       string `json:"type"`
			Query      any    `json:"query"`
			Definition string `json:"definition"`
			Multi      bool   `json:"multi"`
			IncludeAll bool   `json:"includeAll"`
			AllValue   string `json:"allValue"`
		} `json:"list"`
	} `json:"templating"`
}

// query is one panel target.
type query struct {
	panel, ref, expr string
}

func (q query) String() string { return fmt.Sprintf("%q/%s", q.panel, q.ref) }

func loadDashboard(t *testing.T) (dashboard, []query) {
	t.Helper()
	b, err := os.ReadFile(dashboardPath)
	if err != nil {
		t.Fatal(err)
	}
	var d dashboard
	if err := json.Unmarshal(b, &d); err != nil {
		t.Fatalf("%s: %v", dashboardPath, err)
	}
	var qs []query
	var walk func([]panel)
	walk = func(ps []panel) {
		for _, p := range ps {
			for _, tg := range p.Targets {
				qs = append(qs, query{p.Title, tg.RefID, tg.Expr})
			}
			walk(p.Panels)
		}
	}
	walk(d.Panels)
	return d, qs
}

// grafanaVars replaces Grafana's variables with values Prometheus accepts:
// the regex matchers of $instance and $check with ".*" (the "All" value),
// the interval variables with a duration.
var grafanaVars = strings.NewReplacer(
	"${instance}", ".*", "$instance", ".*",
	"${check}", ".*", "$check", ".*",
	"${__rate_interval}", "1m", "$__rate_interval", "1m",
	"${__interval}", "1m", "$__interval", "1m",
	"${__range}", "5m", "$__range", "5m",
)

func substitute(expr string) string { return grafanaVars.Replace(expr) }

// TestDashboardShape checks the dashboard without Prometheus: variables, data
// source of every panel and target, and the $instance/$check matchers.
func TestDashboardShape(t *testing.T) {
	d, qs := loadDashboard(t)
	if d.SchemaVersion < 36 {
		t.Errorf("schemaVersion %d, want ≥ 36", d.SchemaVersion)
	}
	if d.UID == "" {
		t.Error("dashboard has no uid")
	}
	vars := map[string]string{}
	for _, v := range d.Templating.List {
		def := v.Definition
		if s, ok := v.Query.(string); ok && def == "" {
			def = s
		}
		vars[v.Name] = def
		switch v.Name {
		case "datasource":
			if v.Type != "datasource" || v.Query != "prometheus" {
				t.Errorf("variable datasource: type %q query %v, want datasource/prometheus", v.Type, v.Query)
			}
		case "instance", "check":
			if v.Type != "query" || !v.Multi || !v.IncludeAll || v.AllValue != ".*" {
				t.Errorf("variable %s: want a multi-value query variable with All = .*", v.Name)
			}
		}
	}
	wantVars := map[string]string{
		"datasource": "",
		"instance":   "label_values(l2agent_build_info, instance)",
		"check":      "label_values(l2agent_check_up, check)",
	}
	for name, def := range wantVars {
		got, ok := vars[name]
		if !ok {
			t.Errorf("variable %s missing", name)
		} else if def != "" && got != def {
			t.Errorf("variable %s: query %q, want %q", name, got, def)
		}
	}

	titles := map[string]bool{}
	var walk func([]panel)
	walk = func(ps []panel) {
		for _, p := range ps {
			titles[p.Title] = true
			if p.Type != "row" && (p.Datasource == nil || p.Datasource.UID != "${datasource}") {
				t.Errorf("panel %q: datasource must be ${datasource}", p.Title)
			}
			for _, tg := range p.Targets {
				if tg.Datasource.UID != "${datasource}" {
					t.Errorf("panel %q/%s: target datasource %q, want ${datasource}", p.Title, tg.RefID, tg.Datasource.UID)
				}
			}
			walk(p.Panels)
		}
	}
	walk(d.Panels)
	for _, row := range []string{"Fleet overview", "Disk", "CPU and memory", "Patches", "Antivirus", "MFA", "Tickets", "Remediation", "KPIs"} {
		if !titles[row] {
			t.Errorf("row %q missing", row)
		}
	}
	for _, name := range mustHaveData {
		if !titles[name] {
			t.Errorf("must-have-data panel %q is not in the dashboard", name)
		}
	}

	// Every selector of an agent metric (l2agent_*, not the fleet-wide
	// l2agent:* recording rules) is filtered by $instance, and those of the
	// metrics with a check label also by $check.
	selector := regexp.MustCompile(`\b(l2agent_[a-z_]+|up)\{([^}]*)\}`)
	bare := regexp.MustCompile(`\bl2agent_[a-z_]+\b[^{_a-z]`)
	checkLabelled := regexp.MustCompile(`^l2agent_(check_|alert_state$|incidents_total$|incident_repeats_total$)`)
	kpis := 0
	for _, q := range qs {
		if q.expr == "" {
			t.Errorf("%s: empty expr", q)
			continue
		}
		if strings.Contains(q.expr, "l2agent:") {
			kpis++
		}
		if m := bare.FindString(q.expr + " "); m != "" {
			t.Errorf("%s: %q has no label matchers (want instance=~\"$instance\")", q, strings.TrimSpace(m))
		}
		for _, m := range selector.FindAllStringSubmatch(q.expr, -1) {
			if !strings.Contains(m[2], `instance=~"$instance"`) {
				t.Errorf("%s: %s lacks instance=~\"$instance\"", q, m[0])
			}
			if checkLabelled.MatchString(m[1]) && !strings.Contains(m[2], `check=~"$check"`) {
				t.Errorf("%s: %s lacks check=~\"$check\"", q, m[0])
			}
		}
	}
	for _, rule := range recordingRules(t) {
		found := false
		for _, q := range qs {
			if strings.Contains(q.expr, rule.Record) {
				found = true
			}
		}
		if !found {
			t.Errorf("recording rule %s is on no panel", rule.Record)
		}
	}
}

type rule struct {
	Record string `yaml:"record"`
	Alert  string `yaml:"alert"`
	Expr   string `yaml:"expr"`
}

func allRules(t *testing.T) []rule {
	t.Helper()
	b, err := os.ReadFile(rulesPath)
	if err != nil {
		t.Fatal(err)
	}
	var f struct {
		Groups []struct {
			Rules []rule `yaml:"rules"`
		} `yaml:"groups"`
	}
	if err := yaml.Unmarshal(b, &f); err != nil {
		t.Fatalf("%s: %v", rulesPath, err)
	}
	var rs []rule
	for _, g := range f.Groups {
		rs = append(rs, g.Rules...)
	}
	return rs
}

func recordingRules(t *testing.T) []rule {
	var rs []rule
	for _, r := range allRules(t) {
		if r.Record != "" {
			rs = append(rs, r)
		}
	}
	if len(rs) == 0 {
		t.Fatalf("%s has no recording rules", rulesPath)
	}
	return rs
}

// agentConfig runs the fast checks every second (cpu utilization needs two
// runs), the slow ones as configured by default, and the file ticket backend.
const agentConfig = `
defaults:
  jitter_max: 0s
checks:
  - {name: disk, kind: disk, schedule: "@every 1s", timeout: 5s}
  - {name: cpu, kind: cpu, schedule: "@every 1s", timeout: 5s}
  - {name: memory, kind: memory, schedule: "@every 1s", timeout: 5s}
  - {name: patches, kind: patches, schedule: "@every 1h", timeout: 30s}
  - {name: antivirus, kind: antivirus, schedule: "@every 5m", timeout: 10s}
  - {name: mfa, kind: mfa, schedule: "@every 10m", timeout: 10s}
ticketing:
  backends:
    - {name: file, kind: file}
`

func startAgent(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	bin := filepath.Join(dir, "l2agent")
	build := exec.Command("go", "build", "-o", bin, "../../cmd/l2agent")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	state := filepath.Join(dir, "state")
	cfg := filepath.Join(dir, "agent.yaml")
	if err := os.WriteFile(cfg, []byte("state_dir: "+state+"\n"+agentConfig), 0o600); err != nil {
		t.Fatal(err)
	}
	addr := fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t))
	logPath := filepath.Join(dir, "agent.log")
	logf, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "run", "--web.listen-address="+addr, "--config", cfg)
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); logf.Close(); close(done) }()
	t.Cleanup(func() {
		cmd.Process.Kill()
		<-done
		if t.Failed() {
			b, _ := os.ReadFile(logPath)
			t.Logf("agent log:\n%s", b)
		}
	})
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := http.Get("http://" + addr + "/-/ready")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return addr
			}
		}
		select {
		case <-done:
			t.Fatalf("agent exited before it was ready")
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("agent not ready at %s after 30s", addr)
		}
	}
}

// prom is a Prometheus started by the test: testenv.StartPrometheusJobs does
// not load rule files, and the KPI panels need the recording rules.
type prom struct {
	url  string
	done chan struct{}
}

func startPrometheus(t *testing.T, agentAddr string) *prom {
	t.Helper()
	bin := testenv.Need(t, "prometheus")
	rules, err := filepath.Abs(rulesPath)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	cfg := filepath.Join(dir, "prometheus.yml")
	conf := fmt.Sprintf(`global:
  scrape_interval: 1s
  scrape_timeout: 1s
  evaluation_interval: 1s
rule_files: [%q]
scrape_configs:
  - job_name: l2agent
    static_configs:
      - targets: [%q]
`, rules, agentAddr)
	if err := os.WriteFile(cfg, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	addr := fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t))
	logPath := filepath.Join(dir, "prometheus.log")
	logf, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "--config.file="+cfg, "--storage.tsdb.path="+filepath.Join(dir, "data"),
		"--web.listen-address="+addr)
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &prom{url: "http://" + addr, done: make(chan struct{})}
	go func() { cmd.Wait(); logf.Close(); close(p.done) }()
	t.Cleanup(func() {
		cmd.Process.Signal(os.Interrupt)
		select {
		case <-p.done:
		case <-time.After(10 * time.Second):
			cmd.Process.Kill()
			<-p.done
		}
		if t.Failed() {
			b, _ := os.ReadFile(logPath)
			t.Logf("prometheus log:\n%s", b)
		}
	})
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := http.Get(p.url + "/-/ready")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return p
			}
		}
		select {
		case <-p.done:
			b, _ := os.ReadFile(logPath)
			t.Fatalf("prometheus exited before it was ready:\n%s", b)
		case <-time.After(100 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("prometheus not ready at %s after 30s", addr)
		}
	}
}

// get calls the Prometheus HTTP API and decodes its data; an API error
// (bad_data, execution) is returned as an error.
func (p *prom) get(path string, params url.Values, data any) error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, "GET", p.url+path+"?"+params.Encode(), nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	var body struct {
		Status    string          `json:"status"`
		ErrorType string          `json:"errorType"`
		Error     string          `json:"error"`
		Warnings  []string        `json:"warnings"`
		Data      json.RawMessage `json:"data"`
	}
	if err := json.Unmarshal(b, &body); err != nil {
		return fmt.Errorf("HTTP %d: %s", resp.StatusCode, b)
	}
	if body.Status != "success" {
		return fmt.Errorf("%s: %s", body.ErrorType, body.Error)
	}
	return json.Unmarshal(body.Data, data)
}

// series runs an instant query and returns the number of series (or 1 for a
// scalar).
func (p *prom) series(expr string) (int, error) {
	var data struct {
		ResultType string            `json:"resultType"`
		Result     []json.RawMessage `json:"result"`
	}
	var raw struct {
		ResultType string          `json:"resultType"`
		Result     json.RawMessage `json:"result"`
	}
	if err := p.get("/api/v1/query", url.Values{"query": {expr}}, &raw); err != nil {
		return 0, err
	}
	switch raw.ResultType {
	case "vector", "matrix":
		if err := json.Unmarshal(raw.Result, &data.Result); err != nil {
			return 0, err
		}
		return len(data.Result), nil
	default:
		return 1, nil
	}
}

func (p *prom) waitFor(t *testing.T, expr string, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		n, err := p.series(expr)
		if err == nil && n > 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: no series after %s (err %v)", expr, timeout, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// TestDashboardQueries evaluates every panel expression and every recording
// rule against a real Prometheus scraping the agent built from this tree.
func TestDashboardQueries(t *testing.T) {
	if testing.Short() {
		t.Skip("starts the agent and Prometheus")
	}
	_, qs := loadDashboard(t)
	testenv.Need(t, "prometheus")
	agent := startAgent(t)
	p := startPrometheus(t, agent)

	p.waitFor(t, `up{job="l2agent"} == 1`, 30*time.Second)
	// cpu utilization needs two runs of the check; the rest needs a couple
	// of scrapes.
	p.waitFor(t, `l2agent_cpu_utilization_ratio`, 30*time.Second)
	p.waitFor(t, `count_over_time(up{job="l2agent"}[1m]) >= 3`, 30*time.Second)
	// The recording rules have been evaluated at least once.
	p.waitFor(t, `count_over_time(up{job="l2agent"}[1m]) >= 4`, 30*time.Second)

	must := map[string]bool{}
	for _, name := range mustHaveData {
		must[name] = true
	}
	for _, q := range qs {
		expr := substitute(q.expr)
		if strings.Contains(expr, "$") {
			t.Errorf("%s: unsubstituted variable in %q", q, expr)
			continue
		}
		n, err := p.series(expr)
		if err != nil {
			t.Errorf("%s: %s: %v", q, expr, err)
			continue
		}
		if must[q.panel] && n == 0 {
			// A scrape or a check run may have just been missed: retry once
			// after a couple of scrape intervals.
			time.Sleep(2 * time.Second)
			if n, err = p.series(expr); err != nil || n == 0 {
				t.Errorf("%s: %s returned no series (err %v), but the panel must have data", q, expr, err)
			}
		}
		t.Logf("%s: %d series", q, n)
	}

	for _, r := range allRules(t) {
		name := r.Record + r.Alert
		if _, err := p.series(r.Expr); err != nil {
			t.Errorf("rule %s: %s: %v", name, r.Expr, err)
		}
	}

	// Prometheus itself evaluated the loaded rules without error.
	var rules struct {
		Groups []struct {
			Name  string `json:"name"`
			Rules []struct {
				Name      string `json:"name"`
				Health    string `json:"health"`
				LastError string `json:"lastError"`
			} `json:"rules"`
		} `json:"groups"`
	}
	if err := p.get("/api/v1/rules", nil, &rules); err != nil {
		t.Fatal(err)
	}
	loaded := 0
	for _, g := range rules.Groups {
		for _, r := range g.Rules {
			loaded++
			if r.Health == "err" || r.LastError != "" {
				t.Errorf("rule %s/%s: health %s: %s", g.Name, r.Name, r.Health, r.LastError)
			}
		}
	}
	if want := len(allRules(t)); loaded != want {
		t.Errorf("prometheus loaded %d rules, %s has %d", loaded, rulesPath, want)
	}
}
