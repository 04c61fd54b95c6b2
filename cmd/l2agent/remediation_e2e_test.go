package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// remediationConfig: a disk rule on one tmpfs whose breach runs disk_cleanup
// on allowDir (files *.log older than 7 days), with the file ticket backend.
func remediationConfig(t *testing.T, dir, mnt, allowDir string) string {
	t.Helper()
	cfg := filepath.Join(dir, "agent.yaml")
	require.NoError(t, os.WriteFile(cfg, []byte(fmt.Sprintf(`hostname: web-7
state_dir: %[1]s
defaults: {jitter_max: 0s}
checks:
  - name: disk
    kind: disk
    schedule: "@every 1s"
    disk: {include_mountpoints: ['^%[2]s$']}
    rules: [{metric: disk_used_ratio, warn: 0.5, crit: 0.9, clear: 0.05}]
ticketing: {resolve_after: 1h, interval: 500ms, backends: [{name: file, kind: file}]}
remediation:
  actions:
    disk_cleanup: {enabled: true, allow_paths: [%[3]s], cooldown: 1m}
  rules:
    - {check: disk, metric: disk_used_ratio, action: disk_cleanup, params: {paths: [%[3]s], globs: ["*.log"], older_than: 7d}}
`, dir, mnt, allowDir)), 0o600))
	return cfg
}

// oldLogs writes n files of kib KiB, 30 days old, in dir.
func oldLogs(t *testing.T, dir string, n, kib int) {
	t.Helper()
	require.NoError(t, os.MkdirAll(dir, 0o755))
	old := time.Now().Add(-30 * 24 * time.Hour)
	for i := range n {
		p := filepath.Join(dir, fmt.Sprintf("app-%d.log", i))
		require.NoError(t, os.WriteFile(p, make([]byte, kib*1024), 0o644))
		require.NoError(t, os.Chtimes(p, old, old))
	}
}

func readLines(t *testing.T, path string) []map[string]any {
	f, err := os.Open(path)
	if os.IsNotExist(err) {
		return nil
	}
	require.NoError(t, err)
	defer f.Close()
	var out []map[string]any
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var m map[string]any
		require.NoError(t, json.Unmarshal(sc.Bytes(), &m), "%s", sc.Text())
		out = append(out, m)
	}
	return out
}

// TestRemediationClearsWithoutTicket: old logs fill a real tmpfs past crit →
// disk_cleanup deletes them → the alert clears → no ticket; the audit says
// success.
func TestRemediationClearsWithoutTicket(t *testing.T) {
	needRoot(t)
	dir := t.TempDir()
	mnt := filepath.Join(dir, "mnt")
	mountTmpfs(t, mnt, "8m", "l2agent-remed")
	logs := filepath.Join(mnt, "logs")
	// The disk is full of old logs before the agent starts, so that its first
	// run sees them all (filling while it runs races the 1 s schedule).
	oldLogs(t, logs, 10, 750) // ~92 %: crit
	a := startRTAgent(t, remediationConfig(t, dir, mnt, logs))
	waitHTTP(t, a.url+"/-/ready")

	var audit []map[string]any
	require.Eventually(t, func() bool {
		audit = readLines(t, filepath.Join(dir, "remediation-audit.jsonl"))
		for _, l := range audit {
			if l["result"] == "success" {
				return true
			}
		}
		return false
	}, 30*time.Second, 100*time.Millisecond, "audit: %v", audit)
	entries, err := os.ReadDir(logs)
	require.NoError(t, err)
	require.Empty(t, entries, "the old logs are gone")
	// The alert cleared and stays clear; no ticket was ever queued or filed.
	require.Eventually(t, func() bool {
		return strings.Contains(metricsText(t, a.url), `l2agent_alert_state{check="disk",device="l2agent-remed",fstype="tmpfs",metric="disk_used_ratio",mountpoint="`+mnt+`"} 0`)
	}, 10*time.Second, 100*time.Millisecond)
	require.Empty(t, readLines(t, filepath.Join(dir, "tickets.jsonl")), "no ticket")
	require.Contains(t, metricsText(t, a.url), `l2agent_remediation_runs_total{action="disk_cleanup",result="success"} 1`)
	require.Contains(t, metricsText(t, a.url), `l2agent_incidents_total{check="disk",outcome="auto_remediated"} 1`)
}

// TestRemediationFailsThenTicket: the files that fill the disk are outside
// what the policy may delete → disk_cleanup frees nothing → the ticket is
// filed with the attempt in "What was tried".
func TestRemediationFailsThenTicket(t *testing.T) {
	needRoot(t)
	dir := t.TempDir()
	mnt := filepath.Join(dir, "mnt")
	mountTmpfs(t, mnt, "8m", "l2agent-remed2")
	a := startRTAgent(t, remediationConfig(t, dir, mnt, filepath.Join(mnt, "logs")))
	waitHTTP(t, a.url+"/-/ready")
	require.NoError(t, os.MkdirAll(filepath.Join(mnt, "logs"), 0o755))
	oldLogs(t, filepath.Join(mnt, "data"), 10, 750) // not allowlisted

	var tickets []map[string]any
	require.Eventually(t, func() bool {
		tickets = readLines(t, filepath.Join(dir, "tickets.jsonl"))
		return len(tickets) > 0
	}, 30*time.Second, 100*time.Millisecond)
	require.Equal(t, "open", tickets[0]["event"])
	body := tickets[0]["body"].(string)
	require.Contains(t, body, "What was tried:")
	require.Contains(t, body, "disk_cleanup")
	require.NotContains(t, body, "nothing: no remediation is configured")
	entries, err := os.ReadDir(filepath.Join(mnt, "data"))
	require.NoError(t, err)
	require.Len(t, entries, 10, "files outside the allowlist are untouched")
	require.Eventually(t, func() bool {
		return strings.Contains(metricsText(t, a.url), `l2agent_incidents_total{check="disk",outcome="ticketed"} 1`)
	}, 10*time.Second, 100*time.Millisecond)
	t.Logf("ticket body:\n%s", body)
}

// TestRemediateCLI: list, plan (changes nothing) and run (needs --yes) by hand.
func TestRemediateCLI(t *testing.T) {
	dir := t.TempDir()
	logs := filepath.Join(dir, "logs")
	oldLogs(t, logs, 3, 4)
	cfg := remediationConfig(t, dir, dir, logs)
	key := `web-7/disk/disk_used_ratio{mountpoint="` + dir + `"}`

	out, err := exec.Command(binary, "remediate", "list", "--config", cfg).CombinedOutput()
	require.NoError(t, err, "%s", out)
	require.Regexp(t, `disk_cleanup\s+true\s+false\s+0`, string(out))

	out, err = exec.Command(binary, "remediate", "plan", "--config", cfg, "--alert", key, "disk_cleanup").CombinedOutput()
	require.NoError(t, err, "%s", out)
	require.Contains(t, string(out), "app-0.log")
	entries, _ := os.ReadDir(logs)
	require.Len(t, entries, 3, "plan changes nothing")

	cmd := exec.Command(binary, "remediate", "run", "--config", cfg, "--alert", key, "disk_cleanup")
	out, _ = cmd.CombinedOutput()
	require.Equal(t, 2, cmd.ProcessState.ExitCode(), "%s", out)
	require.Contains(t, string(out), "--yes")

	out, err = exec.Command(binary, "remediate", "run", "--config", cfg, "--alert", key, "--yes", "disk_cleanup").CombinedOutput()
	require.NoError(t, err, "%s", out)
	entries, _ = os.ReadDir(logs)
	require.Empty(t, entries, "run deletes the planned files")
	require.NotEmpty(t, readLines(t, filepath.Join(dir, "remediation-audit.jsonl")), "audited")
}
