package configs_test

import (
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	_ "github.com/l2agent/l2agent/checks/all" // registers the check kinds
	"github.com/l2agent/l2agent/checks/cpu"
	"github.com/l2agent/l2agent/checks/disk"
	"github.com/l2agent/l2agent/configs"
	_ "github.com/l2agent/l2agent/remediate/all" // registers the actions
	_ "github.com/l2agent/l2agent/ticketing/all" // registers the backends
)

func TestDefaultIsValid(t *testing.T) {
	cfg, err := configs.Load("")
	require.NoError(t, err)
	require.Equal(t, configs.DefaultListenAddress, cfg.ListenAddress)
	names := []string{}
	for _, c := range cfg.Checks {
		names = append(names, c.Name)
	}
	require.Equal(t, []string{"disk", "cpu", "memory", "patches", "antivirus", "mfa"}, names)
	require.NotEmpty(t, cfg.Checks[0].Options.(*disk.Options).ExcludeFSTypes)
}

func TestGoodFile(t *testing.T) {
	cfg, err := configs.Load("testdata/good.yml")
	require.NoError(t, err)
	require.Equal(t, "127.0.0.1:19061", cfg.ListenAddress)
	require.Len(t, cfg.Checks, 2, "a checks list replaces the default's")
	require.Equal(t, "info", cfg.Log.Level, "keys left out keep the default")
	require.Equal(t, 10*time.Second, cfg.Checks[1].Timeout.D(), "check defaults applied")
	require.Equal(t, "@every 30s", cfg.Checks[1].Schedule)
	require.Equal(t, []string{"^/$"}, cfg.Checks[0].Options.(*disk.Options).IncludeMountpoints)
	require.Contains(t, cfg.Checks[0].Options.(*disk.Options).ExcludeFSTypes, "proc", "pseudo filesystems excluded by default")
	require.Equal(t, 5, cfg.Checks[1].Options.(*cpu.Options).TopProcesses)
}

// TestBadFile: every class of error, each at its line and column, in one run.
func TestBadFile(t *testing.T) {
	_, err := configs.Load("testdata/bad.yml")
	require.Error(t, err)
	var errs configs.Errors
	require.ErrorAs(t, err, &errs)
	got := strings.Split(err.Error(), "\n")
	want := []string{
		`testdata/bad.yml:1:1: unknown key "listen_adress" in the top level`,
		`testdata/bad.yml:3:10: log.level "loud": want debug, info, warn or error`,
		`testdata/bad.yml:8:14: checks[0].timeout: invalid duration "soon"`,
		`testdata/bad.yml:10:7: unknown key "max_depth" in checks[0].disk`,
		`testdata/bad.yml:13:15: check "disk": warn (0.95) must not be above crit (0.9) for direction above`,
		`testdata/bad.yml:15:11: duplicate check name "disk" (first defined at line 5)`,
		`testdata/bad.yml:17:15: check "disk": bad schedule "61 * * * *"`,
		`testdata/bad.yml:19:11: check "av": unknown check kind "antivirus-9000"`,
		`testdata/bad.yml:22:15: checks[3].disabled: expected true or false, got "maybe"`,
		`testdata/bad.yml:27:15: checks[3].rules[0].crit: expected a number, got "lots"`,
	}
	require.Len(t, got, len(want), "errors:\n%s", err)
	for i := range want {
		require.True(t, strings.HasPrefix(got[i], want[i]), "error %d:\n got %s\nwant %s…", i, got[i], want[i])
	}
}

func TestWarnCritOrderBelow(t *testing.T) {
	_, err := configs.Parse("x.yml", []byte(`checks:
  - name: m
    kind: memory
    rules:
      - metric: memory_available_ratio
        direction: below
        warn: 0.05
        crit: 0.10
`))
	require.EqualError(t, err, `x.yml:7:15: check "m": warn (0.05) must not be below crit (0.1) for direction below`)
}

func TestUnknownMetricAndWrongBlock(t *testing.T) {
	_, err := configs.Parse("x.yml", []byte(`checks:
  - name: c
    kind: cpu
    memory: {top_processes: 3}
    rules:
      - metric: cpu_temperature
        warn: 1
`))
	require.Error(t, err)
	msg := err.Error()
	require.Contains(t, msg, `x.yml:4:13: check "c": a memory: block does not apply to a check of kind "cpu"`)
	require.Contains(t, msg, `x.yml:6:17: check "c": kind cpu has no metric "cpu_temperature"`)
}

func TestSyntaxError(t *testing.T) {
	_, err := configs.Parse("x.yml", []byte("checks:\n  - name: a\n   kind: cpu\n"))
	require.Error(t, err)
	// yaml.v3 reports the line of the block that could not be parsed.
	require.Regexp(t, `^x\.yml:[1-3]:1: YAML syntax: did not find expected '-' indicator$`, err.Error())
	_, err = configs.Parse("y.yml", []byte("listen_address: 127.0.0.1:1\nlog: [info,\nchecks: []\n"))
	require.Regexp(t, `^y\.yml:[1-3]:1: YAML syntax: did not find expected ',' or ']'$`, err.Error())
}

func TestEmptyFileIsDefault(t *testing.T) {
	cfg, err := configs.Parse("empty.yml", nil)
	require.NoError(t, err)
	require.Len(t, cfg.Checks, 6)
}

func TestSecretOnlyFromEnv(t *testing.T) {
	type holder struct {
		Token configs.Secret `yaml:"token"`
	}
	var s configs.Secret
	t.Setenv("L2AGENT_TEST_TOKEN", "hunter2")
	var h holder
	require.NoError(t, yamlDecode("token: ${L2AGENT_TEST_TOKEN}", &h))
	require.Equal(t, "hunter2", h.Token.Reveal())
	require.NotContains(t, h.Token.String(), "hunter2")
	err := yamlDecode("token: hunter2", &h)
	require.ErrorContains(t, err, "secrets are never written inline")
	_ = s
}

func TestSecretFile(t *testing.T) {
	p := t.TempDir() + "/tok"
	require.NoError(t, os.WriteFile(p, []byte("s3cret\n"), 0o600))
	v, err := configs.ReadSecretFile(p)
	require.NoError(t, err)
	require.Equal(t, "s3cret", v)
	_, err = configs.ReadSecretFile(p + ".missing")
	require.ErrorContains(t, err, "read secret file")
}

func TestParseDuration(t *testing.T) {
	d, err := configs.ParseDuration("2d")
	require.NoError(t, err)
	require.Equal(t, 48*time.Hour, d)
	_, err = configs.ParseDuration("-1s")
	require.Error(t, err)
	_, err = configs.ParseDuration("xd")
	require.Error(t, err)
}

func FuzzParse(f *testing.F) {
	for _, p := range []string{"testdata/good.yml", "testdata/bad.yml"} {
		b, err := os.ReadFile(p)
		require.NoError(f, err)
		f.Add(b)
	}
	f.Add(configs.DefaultYAML)
	f.Fuzz(func(t *testing.T, data []byte) {
		cfg, err := configs.Parse("fuzz.yml", data)
		if err == nil && cfg == nil {
			t.Fatal("nil config without error")
		}
		if err != nil {
			for _, line := range strings.Split(err.Error(), "\n") {
				if !strings.HasPrefix(line, "fuzz.yml:") {
					t.Fatalf("error line without position: %q", line)
				}
			}
		}
	})
}

// TestValidationGaps: values that used to validate and then break tickets
// or schedules are rejected at their line (issue 13).
func TestValidationGaps(t *testing.T) {
	_, err := configs.Parse("gaps.yml", []byte(`checks:
  - {name: a, kind: cpu, schedule: "@every 500ms"}
  - {name: b, kind: cpu, schedule: "*/61 * * * *"}
ticketing:
  flapping: {count: 1}
  backends:
    - {name: w, kind: webhook, webhook: {url: "https://bob:hunter2@hooks.example/x", secret: "${HOOK_SECRET}"}}
`))
	require.Error(t, err)
	msg := err.Error()
	require.Contains(t, msg, "gaps.yml:2:36: check \"a\": bad schedule \"@every 500ms\": @every 500ms: the shortest interval is 1s")
	require.Contains(t, msg, "gaps.yml:3:36: check \"b\": bad schedule \"*/61 * * * *\": step /61 of the minute field is outside 1..60")
	require.Contains(t, msg, "gaps.yml:5:21: ticketing.flapping.count 1: want at least 2")
	require.Contains(t, msg, "no user:password@")
	require.NotContains(t, msg, "hunter2", "a password in a URL is never echoed")
}

// A duration that must be positive and is written as 0 is rejected at its
// line, not replaced by its default in silence; `for: 0s` and
// `jitter_max: 0s` keep meaning "at once" and "no jitter".
func TestZeroDurations(t *testing.T) {
	_, err := configs.Parse("zero.yml", []byte(`defaults: {timeout: 0s, jitter_max: 0s}
checks:
  - {name: d, kind: disk, timeout: 0s, rules: [{metric: disk_used_ratio, warn: 0.5, for: 0s}]}
ticketing:
  interval: 0s
  sla: {warn: 0s, crit: 1h}
  unreported: {close_after: 0s}
  backends: [{name: f, kind: file, timeout: 0s}]
remediation:
  actions:
    disk_cleanup: {timeout: 0s}
`))
	require.Error(t, err)
	var errs configs.Errors
	require.ErrorAs(t, err, &errs)
	var got []string
	for _, e := range errs {
		got = append(got, fmt.Sprintf("%d:%d %s", e.Line, e.Column, e.Message))
	}
	want := []string{
		"1:21 defaults.timeout 0s: want a positive duration (leave the key out for the default)",
		"3:36 checks[0].timeout 0s: want a positive duration (leave the key out for the default)",
		"5:13 ticketing.interval 0s: want a positive duration (leave the key out for the default)",
		"6:15 ticketing.sla.warn 0s: want a positive duration (leave the key out for the default)",
		"7:29 ticketing.unreported.close_after 0s: want a positive duration (leave the key out for the default)",
		"8:45 ticketing.backends[0].timeout 0s: want a positive duration (leave the key out for the default)",
		"11:29 remediation.actions.disk_cleanup.timeout 0s: want a positive duration (leave the key out for the default)",
	}
	require.ElementsMatch(t, want, got)
}
