package agent

import (
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/l2agent/l2agent/configs"
)

// unitDir is where a registered kind's unit lives: checks/<kind>,
// remediate/<action without underscores>, ticketing/<backend>.
type unitFamily struct {
	name   string
	family *configs.Family
	dir    func(kind string) string
}

var unitFamilies = []unitFamily{
	{"check", configs.CheckKinds, func(k string) string { return filepath.Join("..", "checks", k) }},
	{"action", configs.ActionKinds, func(k string) string { return filepath.Join("..", "remediate", strings.ReplaceAll(k, "_", "")) }},
	{"backend", configs.BackendKinds, func(k string) string { return filepath.Join("..", "ticketing", k) }},
}

var yamlBlock = regexp.MustCompile("(?ms)^```(yaml[^\\n]*)\\n(.*?)^```")

// TestEveryUnitIsDocumented: every registered check, action and backend has
// a README.md (with its options, its metrics for a check, and an example)
// and a sample.yaml that validates; the README's example is that file, and
// every full config in the README validates. Kinds registered by tests
// (test_*) are left out.
func TestEveryUnitIsDocumented(t *testing.T) {
	for _, fam := range unitFamilies {
		for _, kind := range fam.family.Names() {
			if strings.HasPrefix(kind, "test_") {
				continue
			}
			t.Run(fam.name+"/"+kind, func(t *testing.T) {
				dir := fam.dir(kind)
				readme, err := os.ReadFile(filepath.Join(dir, "README.md"))
				require.NoError(t, err, "the %s %q has no README.md in %s", fam.name, kind, dir)
				sample, err := os.ReadFile(filepath.Join(dir, "sample.yaml"))
				require.NoError(t, err, "the %s %q has no sample.yaml in %s", fam.name, kind, dir)
				text := string(readme)

				_, err = configs.Parse(filepath.Join(dir, "sample.yaml"), sample)
				require.NoError(t, err, "sample.yaml validates")
				require.Contains(t, string(sample), kind, "the sample uses its unit")
				for _, h := range []string{"## Options", "## Example"} {
					require.Contains(t, text, "\n"+h, "README.md has a section %q", h)
				}
				example := text[strings.Index(text, "\n## Example"):]
				require.Contains(t, example, strings.TrimSpace(string(sample)), "the README's example is sample.yaml")

				k, _ := fam.family.Lookup(kind)
				if fam.family == configs.CheckKinds {
					require.Contains(t, text, "\n## Metrics")
					for _, m := range k.Metrics {
						require.Contains(t, text, "l2agent_"+m, "README.md documents the metric")
					}
					require.Contains(t, text, "\n## Procedures", "README.md has the section built-in procedures link to")
					for _, m := range k.Metrics {
						p, doc, ok := configs.BuiltinProcedure(m)
						require.True(t, ok, "metric %s has a built-in procedure (procedures.yaml of its unit)", m)
						require.Equal(t, strings.TrimPrefix(filepath.ToSlash(filepath.Join(dir, "README.md")), "../")+"#procedures", doc, "its link")
						require.NotEmpty(t, p.Meaning, "%s: what it means", m)
						require.NotEmpty(t, p.FirstChecks, "%s: first checks", m)
						require.NotEmpty(t, p.SafeFixes, "%s: safe fixes", m)
						require.NotEmpty(t, p.Escalate, "%s: when to escalate", m)
					}
				}
				if k.Options != nil {
					for _, key := range yamlKeys(k.Options()) {
						require.Contains(t, text, "`"+key, "README.md documents the option %q", key)
					}
				}
				for i, m := range yamlBlock.FindAllStringSubmatch(text, -1) {
					if strings.Contains(m[1], "fragment") {
						continue
					}
					_, err := configs.Parse(filepath.Join(dir, "README.md")+"#yaml-"+string(rune('1'+i)), []byte(m[2]))
					require.NoError(t, err, "every yaml block of README.md that is not marked `yaml fragment` is a config that validates")
				}
			})
		}
	}
}

// yamlKeys are the top-level keys of an options struct.
func yamlKeys(o any) []string {
	t := reflect.TypeOf(o)
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t.Kind() != reflect.Struct {
		return nil
	}
	var keys []string
	for i := range t.NumField() {
		f := t.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		if name == "" || name == "-" || !f.IsExported() {
			continue
		}
		keys = append(keys, name)
	}
	return keys
}

// TestEveryProcedureHasAMetric: no built-in procedure is left for a metric
// that no check kind emits (renamed or removed).
func TestEveryProcedureHasAMetric(t *testing.T) {
	emitted := map[string]bool{}
	for _, k := range configs.CheckKinds.Names() {
		kind, _ := configs.CheckKinds.Lookup(k)
		for _, m := range kind.Metrics {
			emitted[m] = true
		}
	}
	require.NotEmpty(t, configs.ProcedureMetrics())
	for _, m := range configs.ProcedureMetrics() {
		require.True(t, emitted[m], "procedure for %s, which no check kind emits", m)
	}
}
