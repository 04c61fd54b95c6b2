package prometheus_test

import (
	"bufio"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"unicode"

	"gopkg.in/yaml.v3"
)

const (
	rulesFile     = "l2agent.rules.yml"
	rulesTestFile = "l2agent.rules.test.yml"
	configFile    = "prometheus.yml"
	readmeFile    = "../../README.md"
	runbookPrefix = "https://github.com/l2agent/l2agent/blob/main/README.md#"
)

// promtool returns the path of promtool, failing under CI=true when it is
// missing and skipping otherwise.
func promtool(t *testing.T) string {
	t.Helper()
	p, err := exec.LookPath("promtool")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("promtool not found (CI=true): %v; install it (Debian: apt-get install prometheus)", err)
		}
		t.Skipf("promtool not found: %v", err)
	}
	return p
}

func runPromtool(t *testing.T, args ...string) {
	t.Helper()
	cmd := exec.Command(promtool(t), args...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("promtool %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	t.Logf("promtool %s:\n%s", strings.Join(args, " "), out)
}

func TestPromtoolCheckRules(t *testing.T) {
	runPromtool(t, "check", "rules", rulesFile)
}

func TestPromtoolTestRules(t *testing.T) {
	runPromtool(t, "test", "rules", rulesTestFile)
}

func TestPromtoolCheckConfig(t *testing.T) {
	runPromtool(t, "check", "config", configFile)
}

type ruleFile struct {
	Groups []struct {
		Name  string `yaml:"name"`
		Rules []struct {
			Alert       string            `yaml:"alert"`
			Record      string            `yaml:"record"`
			Expr        string            `yaml:"expr"`
			For         string            `yaml:"for"`
			Labels      map[string]string `yaml:"labels"`
			Annotations map[string]string `yaml:"annotations"`
		} `yaml:"rules"`
	} `yaml:"groups"`
}

type testFile struct {
	RuleFiles []string `yaml:"rule_files"`
	Tests     []struct {
		AlertRuleTest []struct {
			EvalTime  string `yaml:"eval_time"`
			Alertname string `yaml:"alertname"`
			ExpAlerts []struct {
				ExpLabels map[string]string `yaml:"exp_labels"`
			} `yaml:"exp_alerts"`
		} `yaml:"alert_rule_test"`
	} `yaml:"tests"`
}

func decodeYAML(t *testing.T, path string, v any) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	// Not strict: the structs hold only what these tests look at;
	// promtool validates the whole schema.
	if err := yaml.NewDecoder(f).Decode(v); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
}

// TestEveryAlertTested asserts that every alert of the rules file has a test
// case where it fires and one where it does not, and that the tests name no
// alert the rules file lacks.
func TestEveryAlertTested(t *testing.T) {
	var rules ruleFile
	decodeYAML(t, rulesFile, &rules)
	var tests testFile
	decodeYAML(t, rulesTestFile, &tests)

	if len(tests.RuleFiles) != 1 || filepath.Clean(tests.RuleFiles[0]) != rulesFile {
		t.Errorf("%s: rule_files = %q, want [%q]", rulesTestFile, tests.RuleFiles, rulesFile)
	}

	alerts := map[string]bool{}
	for _, g := range rules.Groups {
		for _, r := range g.Rules {
			if r.Alert == "" {
				continue
			}
			if alerts[r.Alert] {
				t.Errorf("alert %s defined twice", r.Alert)
			}
			alerts[r.Alert] = true
		}
	}
	if len(alerts) == 0 {
		t.Fatalf("%s: no alert rules", rulesFile)
	}

	firing, notFiring := map[string]int{}, map[string]int{}
	for _, tc := range tests.Tests {
		for _, a := range tc.AlertRuleTest {
			if !alerts[a.Alertname] {
				t.Errorf("%s: test at %s names alert %q, not in %s", rulesTestFile, a.EvalTime, a.Alertname, rulesFile)
			}
			if len(a.ExpAlerts) > 0 {
				firing[a.Alertname]++
			} else {
				notFiring[a.Alertname]++
			}
		}
	}
	for name := range alerts {
		if firing[name] == 0 {
			t.Errorf("alert %s: no test case where it fires", name)
		}
		if notFiring[name] == 0 {
			t.Errorf("alert %s: no test case where it does not fire", name)
		}
	}
}

var (
	alertNameRE = regexp.MustCompile(`^L2agent[A-Z][A-Za-z0-9]*$`)
	// Metric names in expressions: l2agent_* and up.
	metricRE = regexp.MustCompile(`\b(l2agent_[a-z0-9_]+|up)\b`)
)

// documentedMetrics are the metric names the expressions may use: those the
// README documents, plus up.
func documentedMetrics(t *testing.T) map[string]bool {
	t.Helper()
	b, err := os.ReadFile(readmeFile)
	if err != nil {
		t.Fatal(err)
	}
	m := map[string]bool{"up": true}
	for _, name := range regexp.MustCompile("`(l2agent_[a-z0-9_]+)").FindAllStringSubmatch(string(b), -1) {
		m[name[1]] = true
	}
	return m
}

// TestAlertLabelsAndAnnotations asserts that every alert has a severity the
// Alertmanager example knows (warn or crit), a host label, the annotations summary,
// description and runbook_url, a runbook_url pointing at a heading of the
// README, and only metrics the README documents in its expression.
func TestAlertLabelsAndAnnotations(t *testing.T) {
	var rules ruleFile
	decodeYAML(t, rulesFile, &rules)
	anchors := readmeAnchors(t)
	metrics := documentedMetrics(t)
	for _, g := range rules.Groups {
		for _, r := range g.Rules {
			if r.Alert == "" {
				continue
			}
			if !alertNameRE.MatchString(r.Alert) {
				t.Errorf("alert %s: name does not match %s", r.Alert, alertNameRE)
			}
			if s := r.Labels["severity"]; s != "warn" && s != "crit" {
				t.Errorf("alert %s: severity %q, want warn or crit", r.Alert, s)
			}
			// host keeps alertmanager.yml's inhibit rule (equal: host, check,
			// metric) per host.
			if h := r.Labels["host"]; h != "{{ $labels.instance }}" {
				t.Errorf("alert %s: label host %q, want {{ $labels.instance }}", r.Alert, h)
			}
			for _, k := range []string{"summary", "description", "runbook_url"} {
				if strings.TrimSpace(r.Annotations[k]) == "" {
					t.Errorf("alert %s: annotation %s missing", r.Alert, k)
				}
			}
			if u := r.Annotations["runbook_url"]; u != "" {
				anchor, ok := strings.CutPrefix(u, runbookPrefix)
				if !ok {
					t.Errorf("alert %s: runbook_url %q does not start with %s", r.Alert, u, runbookPrefix)
				} else if !anchors[anchor] {
					t.Errorf("alert %s: runbook_url anchor #%s is no heading of README.md", r.Alert, anchor)
				}
			}
			for _, name := range metricRE.FindAllString(r.Expr, -1) {
				if !metrics[name] {
					t.Errorf("alert %s: expression uses %s, which README.md does not document", r.Alert, name)
				}
			}
		}
	}
}

// readmeAnchors returns the anchors GitHub makes of the README's headings.
func readmeAnchors(t *testing.T) map[string]bool {
	t.Helper()
	f, err := os.Open(readmeFile)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	anchors := map[string]bool{}
	seen := map[string]int{}
	inFence := false
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(strings.TrimSpace(line), "```") {
			inFence = !inFence
			continue
		}
		if inFence || !strings.HasPrefix(line, "#") {
			continue
		}
		rest := strings.TrimLeft(line, "#")
		if level := len(line) - len(rest); level > 6 || !strings.HasPrefix(rest, " ") {
			continue
		}
		text := strings.TrimSpace(rest)
		a := githubAnchor(text)
		if n := seen[a]; n > 0 {
			anchors[a+"-"+strconv.Itoa(n)] = true
		} else {
			anchors[a] = true
		}
		seen[a]++
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return anchors
}

// githubAnchor is GitHub's heading slug: lower case, punctuation other than
// '-' and '_' dropped, spaces made '-'.
func githubAnchor(heading string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(heading) {
		switch {
		case r == ' ':
			b.WriteRune('-')
		case r == '-' || r == '_' || unicode.IsLetter(r) || unicode.IsDigit(r):
			b.WriteRune(r)
		}
	}
	return b.String()
}

func TestGithubAnchor(t *testing.T) {
	for in, want := range map[string]string{
		"Metrics":                 "metrics",
		"Patch level (`patches`)": "patch-level-patches",
		"Antivirus (`antivirus`)": "antivirus-antivirus",
		"`mfa`: two-factor authentication compliance": "mfa-two-factor-authentication-compliance",
		"Nothing lost, nothing doubled":               "nothing-lost-nothing-doubled",
		"Request Tracker (`kind: rt`)":                "request-tracker-kind-rt",
	} {
		if got := githubAnchor(in); got != want {
			t.Errorf("githubAnchor(%q) = %q, want %q", in, got, want)
		}
	}
}
