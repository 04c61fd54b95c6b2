package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/l2agent/l2agent/agent"
	"github.com/l2agent/l2agent/configs"
	"github.com/l2agent/l2agent/deploy/testenv"
	"github.com/l2agent/l2agent/internal/alert"
	"github.com/l2agent/l2agent/internal/testkit"
	"github.com/l2agent/l2agent/ticketing"
)

// runCLI runs the command in-process and returns its exit code and output.
func runCLI(args ...string) (code int, stdout, stderr string) {
	var out, errb bytes.Buffer
	code = run(args, &out, &errb)
	return code, out.String(), errb.String()
}

// TestHelpOnce: every command's --help (and -h) prints its usage once, on
// stdout, and does nothing else: `config default --help` does not print the
// config, `version --help` not the version.
func TestHelpOnce(t *testing.T) {
	for _, args := range [][]string{
		{"--help"}, {"help"}, {"run", "--help"}, {"check", "--help"},
		{"config", "--help"}, {"config", "validate", "--help"}, {"config", "default", "--help"},
		{"version", "--help"},
		{"tickets", "--help"}, {"tickets", "list", "--help"}, {"tickets", "flush", "--help"}, {"tickets", "test", "--help"}, {"tickets", "deadletters", "--help"}, {"tickets", "replay", "--help"},
		{"remediate", "--help"}, {"remediate", "list", "--help"}, {"remediate", "plan", "--help"}, {"remediate", "run", "--help"},
	} {
		for _, h := range []string{"--help", "-h"} {
			args := slices.Clone(args)
			if args[len(args)-1] == "--help" {
				args[len(args)-1] = h
			}
			code, out, errs := runCLI(args...)
			require.Equal(t, 0, code, "%v: %s", args, errs)
			require.Empty(t, errs, "%v: help goes to stdout only", args)
			require.Equal(t, 1, strings.Count(out, "Usage"), "%v prints its usage once:\n%s", args, out)
			require.NotContains(t, out, "checks:", "%v: not the config", args)
			require.NotContains(t, out, "(revision ", "%v: not the version", args)
		}
	}
	_, out, _ := runCLI("config", "default")
	require.Equal(t, string(configs.DefaultYAML), out)
	_, out, _ = runCLI("version")
	require.True(t, strings.HasPrefix(out, "l2agent "), out)
}

// TestHelpFlagError: a bad flag is reported once with the usage, on stderr,
// and exits 2 (3 for check: unknown, as a Nagios plugin).
func TestHelpFlagError(t *testing.T) {
	for _, tc := range []struct {
		args []string
		code int
	}{
		{[]string{"check", "--nope"}, 3},
		{[]string{"run", "--nope"}, 2},
		{[]string{"tickets", "list", "--nope"}, 2},
		{[]string{"version", "--nope"}, 2},
		{[]string{"config", "default", "--nope"}, 2},
		{[]string{"version", "extra"}, 2},
	} {
		code, out, errs := runCLI(tc.args...)
		require.Equal(t, tc.code, code, "%v: %s", tc.args, errs)
		require.Empty(t, out, "%v", tc.args)
		if strings.HasPrefix(tc.args[len(tc.args)-1], "-") {
			require.Equal(t, 1, strings.Count(errs, "flag provided but not defined"), "%v:\n%s", tc.args, errs)
			require.Equal(t, 1, strings.Count(errs, "Usage"), "%v:\n%s", tc.args, errs)
		}
	}
}

// TestRemediateCLIHelp: only `remediate run` takes --yes, so only its help
// says so, and plan refuses it.
func TestRemediateCLIHelp(t *testing.T) {
	for sub, wantYes := range map[string]bool{"list": false, "plan": false, "run": true} {
		code, out, _ := runCLI("remediate", sub, "--help")
		require.Equal(t, 0, code)
		require.Equal(t, wantYes, strings.Contains(out, "-yes"), "remediate %s --help:\n%s", sub, out)
		require.Equal(t, sub != "list", strings.Contains(out, "-alert"), "remediate %s --help:\n%s", sub, out)
	}
	code, _, errs := runCLI("remediate", "plan", "--yes", "disk_cleanup")
	require.Equal(t, 2, code)
	require.Contains(t, errs, "flag provided but not defined: -yes")
}

// TestTicketsCLIFlagsAfterBackend: `tickets test BACKEND --config F` uses F,
// as `tickets test --config F BACKEND` does.
func TestTicketsCLIFlagsAfterBackend(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "agent.yaml")
	require.NoError(t, os.WriteFile(cfg, []byte(fmt.Sprintf("state_dir: %s\nlisten_address: 127.0.0.1:%d\n", dir, testenv.FreePort(t))), 0o600))
	code, out, errs := runCLI("tickets", "test", "file", "--config", cfg)
	require.Equal(t, 0, code, "%s%s", out, errs)
	require.Contains(t, out, "resolve: ok")
	lines, err := os.ReadFile(filepath.Join(dir, "tickets.jsonl"))
	require.NoError(t, err, "the ticket went to the file of --config")
	require.Equal(t, 3, strings.Count(string(lines), "\n"))

	code, _, errs = runCLI("tickets", "list", "--config", cfg, "extra")
	require.Equal(t, 2, code)
	require.Contains(t, errs, `unexpected arguments ["extra"]`)
	code, _, errs = runCLI("tickets", "test", "file", "--", "--config")
	require.Equal(t, 2, code, "after --, --config is an argument: two backends named")
	require.Contains(t, errs, "name one BACKEND")
}

// TestTicketsCLIListAge: `tickets list` shows an incident's age for people
// ("198d 15h", not "4766h36m56s"); --json has it in exact seconds.
func TestTicketsCLIListAge(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "agent.yaml")
	require.NoError(t, os.WriteFile(cfg, []byte(fmt.Sprintf("state_dir: %s\nlisten_address: 127.0.0.1:%d\n", dir, testenv.FreePort(t))), 0o600))
	store, err := ticketing.OpenStore(filepath.Join(dir, agent.StoreFile), false, testkit.QuietLogger())
	require.NoError(t, err)
	age := 4766*time.Hour + 36*time.Minute + 56*time.Second
	key := "web-7/antivirus/antivirus_signature_age_seconds{engine=\"clamav\"}"
	require.NoError(t, store.Save(&ticketing.Incident{Key: key, Open: true, Severity: alert.StateCrit, Tier: ticketing.L3,
		Opened: time.Now().Add(-age), Refs: map[string]ticketing.Ref{"file": {ID: "7"}}}, nil, nil))
	require.NoError(t, store.Close())

	code, out, errs := runCLI("tickets", "list", "--config", cfg)
	require.Equal(t, 0, code, errs)
	require.Regexp(t, `#7\s+L3\s+open\s+crit\s+198d 15h\n`, out)

	code, out, errs = runCLI("tickets", "list", "--json", "--config", cfg)
	require.Equal(t, 0, code, errs)
	var doc struct {
		Incidents []struct {
			Key        string  `json:"key"`
			AgeSeconds float64 `json:"age_seconds"`
		} `json:"incidents"`
	}
	require.NoError(t, json.Unmarshal([]byte(out), &doc), out)
	require.Len(t, doc.Incidents, 1)
	require.Equal(t, key, doc.Incidents[0].Key)
	require.InDelta(t, age.Seconds(), doc.Incidents[0].AgeSeconds, 60)
}

// TestUserAgentIsTheVersion: the binary built with a version names it in the
// User-Agent of its ticket backends' requests (l2agent/<version>), as
// `l2agent version` prints it.
func TestUserAgentIsTheVersion(t *testing.T) {
	dir := t.TempDir()
	bin := filepath.Join(dir, "l2agent")
	out, err := exec.Command("go", "build", "-ldflags", "-X github.com/l2agent/l2agent/agent.Version=9.8.7-test", "-o", bin, ".").CombinedOutput()
	require.NoError(t, err, "%s", out)
	var (
		mu     sync.Mutex
		agents []string
	)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		agents = append(agents, r.Header.Get("User-Agent"))
		fmt.Fprint(w, `{"id":"T-1"}`)
	}))
	defer srv.Close()
	cfg := filepath.Join(dir, "agent.yaml")
	require.NoError(t, os.WriteFile(cfg, []byte(fmt.Sprintf("state_dir: %s\nlisten_address: 127.0.0.1:%d\nticketing:\n  backends:\n    - {name: hook, kind: webhook, webhook: {url: %q, secret_file: %s}}\n",
		dir, testenv.FreePort(t), srv.URL, filepath.Join(dir, "secret"))), 0o600))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "secret"), []byte("s3cret"), 0o600))
	out, err = exec.Command(bin, "tickets", "test", "--config", cfg, "hook").CombinedOutput()
	require.NoError(t, err, "%s", out)
	out, err = exec.Command(bin, "version").Output()
	require.NoError(t, err)
	require.True(t, strings.HasPrefix(string(out), "l2agent 9.8.7-test "), "%s", out)
	mu.Lock()
	defer mu.Unlock()
	require.NotEmpty(t, agents)
	for _, ua := range agents {
		require.Equal(t, "l2agent/9.8.7-test", ua)
	}
}
