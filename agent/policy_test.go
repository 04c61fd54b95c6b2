package agent

// Policies an admin opts into, end to end through the real antivirus and mfa
// checks, the evaluator and ticketing with the file backend: with the
// default rules, a host without antivirus and with Debian's stock sshd and
// PAM files no ticket unless the config requires those policies; an
// antivirus engine that is installed and broken always does.

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"gopkg.in/yaml.v3"

	"github.com/l2agent/l2agent/configs"
	"github.com/l2agent/l2agent/internal/alert"
	"github.com/l2agent/l2agent/internal/testkit"
	"github.com/l2agent/l2agent/ticketing/file"
)

// policyHost is a host root for paths.rootfs: Debian's stock PAM stack for
// sshd, an admin in group sudo without a second factor, no sudo, no
// antivirus unless clamd is "installed" (its clamd.conf, and no clamd
// answering its socket); and a stand-in sshd that prints Debian's stock
// `sshd -T`.
type policyHost struct {
	root, sshd, sshdConfig string
}

func newPolicyHost(t *testing.T, clamd bool) policyHost {
	t.Helper()
	root := t.TempDir()
	mfaData := filepath.Join("..", "checks", "mfa", "testdata")
	files := map[string]string{
		"etc/passwd": "root:x:0:0:root:/root:/bin/bash\nadmin:x:1000:100:Admin:/home/admin:/bin/bash\n",
		"etc/group":  "root:x:0:\nsudo:x:27:admin\nusers:x:100:\n",
	}
	for _, name := range []string{"sshd", "common-auth", "other"} {
		b, err := os.ReadFile(filepath.Join(mfaData, "pam.d", name))
		require.NoError(t, err)
		files["etc/pam.d/"+name] = string(b)
	}
	if clamd {
		b, err := os.ReadFile(filepath.Join("..", "checks", "antivirus", "testdata", "clamd.conf.debian"))
		require.NoError(t, err)
		files["etc/clamav/clamd.conf"] = string(b) // LocalSocket /var/run/clamav/clamd.ctl: nobody answers
	}
	for name, body := range files {
		p := filepath.Join(root, name)
		require.NoError(t, os.MkdirAll(filepath.Dir(p), 0o755))
		require.NoError(t, os.WriteFile(p, []byte(body), 0o644))
	}
	require.NoError(t, os.MkdirAll(filepath.Join(root, "home", "admin"), 0o755))
	sshdT, err := filepath.Abs(filepath.Join(mfaData, "sshd-T-debian12.txt"))
	require.NoError(t, err)
	sshdConfig, err := filepath.Abs(filepath.Join(mfaData, "sshd_config-debian12"))
	require.NoError(t, err)
	sshd, _ := testkit.StandIn(t, "sshd", "cat '"+sshdT+"'", 0)
	return policyHost{root: root, sshd: sshd, sshdConfig: sshdConfig}
}

// defaultRules is the embedded default's rules of check name, as YAML
// indented for a check of a `checks:` list.
func defaultRules(t *testing.T, name string) string {
	t.Helper()
	cfg := configs.Default()
	i := slices.IndexFunc(cfg.Checks, func(c configs.Check) bool { return c.Name == name })
	require.GreaterOrEqual(t, i, 0, "the default has check %s", name)
	b, err := yaml.Marshal(cfg.Checks[i].Rules)
	require.NoError(t, err)
	return "    rules:\n      " + strings.ReplaceAll(strings.TrimSpace(string(b)), "\n", "\n      ") + "\n"
}

// config is the default's antivirus and mfa checks with their default rules
// on h, each check's `required:` as given ("" leaves the key out).
func (h policyHost) config(t *testing.T, avRequired, mfaRequired string) string {
	t.Helper()
	req := func(v string) string {
		if v == "" {
			return ""
		}
		return "required: " + v + ", "
	}
	return fmt.Sprintf(`hostname: web-7
paths: {rootfs: %s}
defaults: {jitter_max: 0s}
checks:
  - name: antivirus
    kind: antivirus
    schedule: "@every 1h"
    antivirus: {%smdatp: {path: %s}}
%s  - name: mfa
    kind: mfa
    schedule: "@every 1h"
    mfa: {%ssshd: {binary: %s, config: %s}}
%sticketing:
  backends: [{name: file, kind: file}]
`, h.root, req(avRequired), filepath.Join(h.root, "usr/bin/mdatp"), defaultRules(t, "antivirus"),
		req(mfaRequired), h.sshd, h.sshdConfig, defaultRules(t, "mfa"))
}

// policyAgent runs an agent on cfg with ticketing, rules firing without
// waiting for their `for` (as `l2agent check` does).
type policyAgent struct {
	*Agent
	cfgPath string
}

func newPolicyAgent(t *testing.T, cfg string) policyAgent {
	t.Helper()
	cfgPath := writeConfig(t, cfg)
	a, err := New(Options{ConfigFile: cfgPath, Logger: testkit.QuietLogger()})
	require.NoError(t, err)
	a.Evaluator().IgnoreFor = true
	a.startTicketing(a.Config())
	t.Cleanup(func() { stopAgent(t, a) })
	return policyAgent{a, cfgPath}
}

// run runs both checks once and delivers what ticketing queued; it returns
// the file backend's lines so far.
func (p policyAgent) run(t *testing.T) []file.Line {
	t.Helper()
	res, err := p.RunAll(context.Background(), "antivirus", "mfa")
	require.NoError(t, err)
	for _, r := range res {
		require.Empty(t, r.Error, "check %s ran", r.Name)
	}
	left := p.Tickets().Flush(context.Background())
	require.Zero(t, left["file"], "every ticket operation delivered")
	f, err := os.Open(filepath.Join(filepath.Dir(p.cfgPath), "tickets.jsonl"))
	if os.IsNotExist(err) {
		return nil
	}
	require.NoError(t, err)
	defer f.Close()
	var ls []file.Line
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var l file.Line
		require.NoError(t, json.Unmarshal(sc.Bytes(), &l))
		ls = append(ls, l)
	}
	return ls
}

// alertOf is the alert of check/metric{labels}.
func (p policyAgent) alertOf(t *testing.T, check, metric string, labels map[string]string) alert.Alert {
	t.Helper()
	al, ok := p.Evaluator().Alert(alert.Key("web-7", check, metric, labels))
	require.True(t, ok, "alert %s/%s%v is evaluated", check, metric, labels)
	return al
}

// keysOf lists the alert keys of the tickets the lines of event are about,
// sorted (later lines name the ticket only: its key is that of its open).
func keysOf(ls []file.Line, event string) []string {
	keys := map[string]string{} // ticket → key
	var out []string
	for _, l := range ls {
		if l.Event == "open" {
			keys[l.Ticket] = l.Key
		}
		if l.Event == event {
			out = append(out, keys[l.Ticket])
		}
	}
	slices.Sort(out)
	return out
}

func TestPolicyDefaultFilesNoTicket(t *testing.T) {
	h := newPolicyHost(t, false)
	for _, c := range []struct{ name, av, mfa string }{
		{"required left out", "", ""},
		{"required: false", "false", "false"},
	} {
		t.Run(c.name, func(t *testing.T) {
			a := newPolicyAgent(t, h.config(t, c.av, c.mfa))
			require.Empty(t, a.run(t), "no ticket")
			require.Empty(t, a.run(t), "no ticket on the next run either")

			// The findings are there, for dashboards: alert states and metrics.
			none := a.alertOf(t, "antivirus", "antivirus_up", map[string]string{"engine": "none"})
			require.Equal(t, alert.StateCrit, none.State)
			require.Contains(t, none.ReportOnly, "antivirus is not required")
			for _, ctl := range []string{"sshd", "pam", "enrolment"} {
				al := a.alertOf(t, "mfa", "mfa_compliant", map[string]string{"control": ctl})
				require.Equal(t, alert.StateWarn, al.State, "stock Debian: control %s is not compliant", ctl)
				require.Contains(t, al.ReportOnly, "two-factor authentication is not required")
			}
			require.Equal(t, alert.StateWarn, a.alertOf(t, "mfa", "mfa_users_unenrolled", map[string]string{"group": "sudo"}).State)
			empty := a.alertOf(t, "mfa", "mfa_sshd_permit_empty_passwords", nil)
			require.Equal(t, alert.StateOK, empty.State)
			require.Empty(t, empty.ReportOnly, "empty passwords are a finding whatever the policy")

			// /api/v1/status and `l2agent check --json` say why, and only where set.
			status, err := json.Marshal(a.Results())
			require.NoError(t, err)
			require.Contains(t, string(status), `"report_only":"antivirus is not required`)
			require.Contains(t, string(status), `"report_only":"two-factor authentication is not required`)
			require.NotContains(t, string(status), `"report_only":""`)
			for _, r := range a.Results() {
				if r.Name == "antivirus" || r.Name == "mfa" {
					require.Equal(t, alert.StateOK, r.State, "%s: report-only findings are no failure of the check (the exit code of l2agent check)", r.Name)
				}
			}

			incs, err := a.Tickets().Store.Incidents()
			require.NoError(t, err)
			require.Empty(t, incs)

			m := metricsText(t, a.Agent)
			require.Contains(t, m, `l2agent_alert_state{check="antivirus",engine="none",metric="antivirus_up"} 3`)
			require.Contains(t, m, `l2agent_alert_report_only{check="antivirus",engine="none",metric="antivirus_up"} 1`)
			require.Contains(t, m, `l2agent_alert_report_only{check="mfa",control="sshd",metric="mfa_compliant"} 1`)
			require.NotContains(t, m, `l2agent_alert_report_only{check="mfa",metric="mfa_sshd_permit_empty_passwords"}`)
		})
	}
}

func TestPolicyInstalledAndBrokenEngineFilesTicket(t *testing.T) {
	h := newPolicyHost(t, true)
	a := newPolicyAgent(t, h.config(t, "", ""))
	ls := a.run(t)
	key := `web-7/antivirus/antivirus_up{engine="clamav"}`
	require.Equal(t, []string{key}, keysOf(ls, "open"), "clamd installed but not answering: a ticket, and only that one")
	require.Equal(t, []string{key}, keysOf(ls, "escalate"), "crit: escalated to L3")
	require.Contains(t, ls[0].Body, "clamd at unix:"+filepath.Join(h.root, "var/run/clamav/clamd.ctl")+" is down")
	require.Empty(t, a.alertOf(t, "antivirus", "antivirus_up", map[string]string{"engine": "clamav"}).ReportOnly)
}

func TestPolicyRequiredFilesTickets(t *testing.T) {
	h := newPolicyHost(t, false)
	a := newPolicyAgent(t, h.config(t, "true", "true"))
	want := []string{
		`web-7/antivirus/antivirus_up{engine="none"}`,
		`web-7/mfa/mfa_compliant{control="enrolment"}`,
		`web-7/mfa/mfa_compliant{control="pam"}`,
		`web-7/mfa/mfa_compliant{control="sshd"}`,
		`web-7/mfa/mfa_users_unenrolled{group="sudo"}`,
	}
	require.Equal(t, want, keysOf(a.run(t), "open"))

	// Required no more (a reload): the tickets close, not as fixed, while
	// the alerts keep firing for the dashboards.
	require.NoError(t, os.WriteFile(a.cfgPath, []byte("state_dir: "+filepath.Dir(a.cfgPath)+"\n"+h.config(t, "false", "false")), 0o600))
	require.NoError(t, a.Reload())
	ls := a.run(t)
	require.Equal(t, want, keysOf(ls, "resolve"))
	for _, l := range ls {
		if l.Event == "resolve" {
			require.Contains(t, l.Text, "Closed without a fix")
			require.Contains(t, l.Text, "reported for dashboards only")
		}
	}
	require.Equal(t, alert.StateCrit, a.alertOf(t, "antivirus", "antivirus_up", map[string]string{"engine": "none"}).State)

	// Required again: the same tickets reopen.
	require.NoError(t, os.WriteFile(a.cfgPath, []byte("state_dir: "+filepath.Dir(a.cfgPath)+"\n"+h.config(t, "true", "true")), 0o600))
	require.NoError(t, a.Reload())
	require.Equal(t, want, keysOf(a.run(t), "reopen"))
}

// metricsText is the agent's /metrics text.
func metricsText(t *testing.T, a *Agent) string {
	t.Helper()
	snap, err := a.snap.get()
	require.NoError(t, err)
	return string(snap)
}

// TestProcedureInRealTicket: the ticket of a real finding carries the
// built-in standard procedure of its metric, or the runbook_file's.
func TestProcedureInRealTicket(t *testing.T) {
	h := newPolicyHost(t, true)
	a := newPolicyAgent(t, h.config(t, "", ""))
	ls := a.run(t)
	require.NotEmpty(t, ls)
	body := ls[0].Body
	require.Contains(t, body, "\nStandard procedure (no runbook_url for this rule):\n  What it means: The antivirus engine does not answer")
	require.Contains(t, body, "systemctl status clamav-daemon")
	require.Contains(t, body, "Reference: https://github.com/l2agent/l2agent/blob/main/checks/antivirus/README.md#procedures")

	runbooks := filepath.Join(t.TempDir(), "runbooks.yaml")
	require.NoError(t, os.WriteFile(runbooks, []byte("procedures:\n  - metric: antivirus_up\n    check: antivirus\n    meaning: Call the security desk first (ext. 4242).\n"), 0o600))
	b := newPolicyAgent(t, "runbook_file: "+runbooks+"\n"+h.config(t, "", ""))
	ls = b.run(t)
	require.NotEmpty(t, ls)
	require.Contains(t, ls[0].Body, "Standard procedure (no runbook_url for this rule):\n  What it means: Call the security desk first (ext. 4242).\n")
	require.NotContains(t, ls[0].Body, "systemctl status clamav-daemon", "the runbook_file's entry replaces the built-in one")
}
