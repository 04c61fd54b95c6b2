package prometheus_test

import (
	"bufio"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path"
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
	repoRoot      = "../.."
	// runbookPrefix is where a runbook_url points: a Markdown file of this
	// repository, by its path from the root, and a heading anchor.
	runbookPrefix = "https://github.com/l2agent/l2agent/blob/main/"
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

// documentedMetrics are the metric names the expressions may use: those
// some README.md of the repository documents (in backticks), plus up.
func documentedMetrics(t *testing.T) map[string]bool {
	t.Helper()
	m := map[string]bool{"up": true}
	re := regexp.MustCompile("`(l2agent_[a-z0-9_]+)")
	err := filepath.WalkDir(repoRoot, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && p != repoRoot && strings.HasPrefix(d.Name(), ".") {
			return filepath.SkipDir // .git, .ci
		}
		if d.IsDir() || d.Name() != "README.md" {
			return nil
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		for _, name := range re.FindAllStringSubmatch(string(b), -1) {
			m[name[1]] = true
		}
		return nil
	})
	if err != nil {
		t.Fatalf("read the READMEs under %s: %v", repoRoot, err)
	}
	return m
}

// runbookTarget splits a runbook_url into the Markdown file it points at,
// relative to the repository root, and the heading anchor.
func runbookTarget(u string) (file, anchor string, err error) {
	rest, ok := strings.CutPrefix(u, runbookPrefix)
	if !ok {
		return "", "", fmt.Errorf("does not start with %s", runbookPrefix)
	}
	file, anchor, ok = strings.Cut(rest, "#")
	switch {
	case !ok || anchor == "":
		return "", "", errors.New("has no #anchor")
	case path.Clean(file) != file || file == "." || strings.HasPrefix(file, "../") || strings.HasPrefix(file, "/"):
		return "", "", fmt.Errorf("path %q is not a clean path inside the repository", file)
	case !strings.HasSuffix(file, ".md"):
		return "", "", fmt.Errorf("path %q is not a Markdown file", file)
	}
	return file, anchor, nil
}

// TestAlertLabelsAndAnnotations asserts that every alert has a severity the
// Alertmanager example knows (warn or crit), a host label, the annotations summary,
// description and runbook_url, a runbook_url pointing at a heading of a
// Markdown file of the repository, and only metrics some README documents in
// its expression.
func TestAlertLabelsAndAnnotations(t *testing.T) {
	var rules ruleFile
	decodeYAML(t, rulesFile, &rules)
	anchors := map[string]map[string]bool{} // by file
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
				file, anchor, err := runbookTarget(u)
				if err != nil {
					t.Errorf("alert %s: runbook_url %q %v", r.Alert, u, err)
					continue
				}
				if anchors[file] == nil {
					a, err := markdownAnchors(filepath.Join(repoRoot, filepath.FromSlash(file)))
					if err != nil {
						t.Errorf("alert %s: runbook_url %q: %v", r.Alert, u, err)
						continue
					}
					anchors[file] = a
				}
				if !anchors[file][anchor] {
					t.Errorf("alert %s: runbook_url anchor #%s is no heading of %s", r.Alert, anchor, file)
				}
			}
			for _, name := range metricRE.FindAllString(r.Expr, -1) {
				if !metrics[name] {
					t.Errorf("alert %s: expression uses %s, which no README.md documents", r.Alert, name)
				}
			}
		}
	}
}

// markdownAnchors returns the anchors GitHub makes of the headings of the
// Markdown file at path.
func markdownAnchors(path string) (map[string]bool, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
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
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	return anchors, nil
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
		`What "compliant" means, control by control`:  "what-compliant-means-control-by-control",
	} {
		if got := githubAnchor(in); got != want {
			t.Errorf("githubAnchor(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestRunbookTarget(t *testing.T) {
	file, anchor, err := runbookTarget(runbookPrefix + "checks/disk/README.md#when-it-fires")
	if err != nil || file != "checks/disk/README.md" || anchor != "when-it-fires" {
		t.Errorf("runbookTarget = %q, %q, %v; want checks/disk/README.md, when-it-fires", file, anchor, err)
	}
	for _, bad := range []string{
		"https://example.com/runbooks/disk#full", // not this repository
		runbookPrefix + "checks/disk/README.md",  // no anchor
		runbookPrefix + "checks/disk/README.md#", // empty anchor
		runbookPrefix + "../other/README.md#x",   // outside the repository
		runbookPrefix + "checks/../README.md#x",  // not clean
		runbookPrefix + "/README.md#x",           // absolute
		runbookPrefix + "checks/disk/sample.yaml#x",
	} {
		if _, _, err := runbookTarget(bad); err == nil {
			t.Errorf("runbookTarget(%q): no error", bad)
		}
	}
}

// TestMarkdownAnchors reads headings as GitHub does: not inside code fences,
// numbered when repeated.
func TestMarkdownAnchors(t *testing.T) {
	p := filepath.Join(t.TempDir(), "x.md")
	md := "# Title\n\n## Options\n\n```sh\n# not a heading\n```\n\n### Options\n#nospace\n"
	if err := os.WriteFile(p, []byte(md), 0o644); err != nil {
		t.Fatal(err)
	}
	got, err := markdownAnchors(p)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]bool{"title": true, "options": true, "options-1": true}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("markdownAnchors = %v, want %v", got, want)
	}
	if _, err := markdownAnchors(filepath.Join(t.TempDir(), "missing.md")); err == nil {
		t.Error("markdownAnchors of a missing file: no error")
	}
}
