package ansible_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// player runs the documented command in the checkout co against the container.
type player struct {
	co  string
	env []string
}

// result is one run of the playbook.
type result struct {
	out              string
	err              error
	changed, failed  int
	took             time.Duration
	started, stopped time.Time
}

// newPlayer writes the inventory into the checkout (the user's file: the README says what it
// holds) and the controller's ssh key and known host, and an ansible.cfg of its own so that
// this machine's /etc/ansible/ansible.cfg plays no part.
func newPlayer(t *testing.T, c *target, co string, tools map[string]string) *player {
	ctl := t.TempDir()
	key := filepath.Join(ctl, "id_ed25519")
	out, err := exec.Command(tools["ssh-keygen"], "-q", "-t", "ed25519", "-N", "", "-C", "controller", "-f", key).CombinedOutput()
	require.NoError(t, err, "ssh-keygen: %s", out)
	pub, err := os.ReadFile(key + ".pub")
	require.NoError(t, err)
	c.run(t, "install", "-d", "-m", "0700", "-o", pbUser, "-g", pbUser, "/home/"+pbUser+"/.ssh")
	auth := writeFileIn(t, ctl, "authorized_keys", string(pub))
	require.NoError(t, c.Copy(t.Context(), auth, "/home/"+pbUser+"/.ssh/authorized_keys"))
	c.run(t, "chown", pbUser+":"+pbUser, "/home/"+pbUser+"/.ssh/authorized_keys")
	known := writeFileIn(t, ctl, "known_hosts", "127.0.0.1 "+c.hostKey+"\n")
	proxy := fmt.Sprintf("%s --target %d --net -- %s STDIO TCP:127.0.0.1:22", tools["nsenter"], c.leaderPID(t), tools["socat"])
	writeFileIn(t, co, "inventory", fmt.Sprintf(`[l2agent]
%s ansible_host=127.0.0.1 ansible_user=%s ansible_ssh_private_key_file=%s ansible_ssh_common_args='-F /dev/null -o ProxyCommand="%s" -o UserKnownHostsFile=%s -o GlobalKnownHostsFile=/dev/null -o StrictHostKeyChecking=yes -o IdentitiesOnly=yes'
`, pbHost, pbUser, key, proxy, known))
	cfg := writeFileIn(t, ctl, "ansible.cfg", "[defaults]\n")
	env := append(os.Environ(),
		"HOME="+filepath.Join(ctl, "home"),
		"ANSIBLE_CONFIG="+cfg,
		"ANSIBLE_HOME="+filepath.Join(ctl, "ansible"),
		"ANSIBLE_LOCAL_TEMP="+filepath.Join(ctl, "tmp"),
		"ANSIBLE_NOCOLOR=1",
		"ANSIBLE_FORCE_COLOR=0",
		"ANSIBLE_RETRY_FILES_ENABLED=0",
		"ANSIBLE_STDOUT_CALLBACK=default",
		"ANSIBLE_LOAD_CALLBACK_PLUGINS=0",
	)
	return &player{co: co, env: env}
}

var pbRecap = regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(pbHost) + `\s+:\s+ok=\d+\s+changed=(\d+)\s+unreachable=(\d+)\s+failed=(\d+)`)

// play runs the README's command line from the root of the checkout.
func (p *player) play(t *testing.T) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Minute)
	defer cancel()
	argv := strings.Fields(pbCommand)
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.Dir = p.co
	cmd.Env = p.env
	r := result{started: time.Now()}
	b, err := cmd.CombinedOutput()
	r.stopped = time.Now()
	r.took, r.out, r.err = r.stopped.Sub(r.started), string(b), err
	m := pbRecap.FindStringSubmatch(r.out)
	require.NotNil(t, m, "no PLAY RECAP line for %s:\n%s", pbHost, r.out)
	require.Equal(t, "0", m[2], "host unreachable:\n%s", r.out)
	r.changed, _ = strconv.Atoi(m[1])
	r.failed, _ = strconv.Atoi(m[3])
	t.Logf("%s: %s, changed=%d failed=%d", pbCommand, r.took.Round(time.Millisecond), r.changed, r.failed)
	return r
}

// edit replaces old (which must be there once) with new in the checkout's playbook, as an
// admin changes the variables before the next run.
func (p *player) edit(t *testing.T, old, new string) {
	t.Helper()
	path := filepath.Join(p.co, "deploy/ansible/playbook.yml")
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	require.Equal(t, 1, strings.Count(string(b), old), "%q in the playbook", old)
	require.NoError(t, os.WriteFile(path, []byte(strings.Replace(string(b), old, new, 1)), 0o644))
}

// firstRun: the package installed, the unit enabled and active, the config as templated and in
// force (the listen address and log format, which only a restart applies), metrics served.
func firstRun(t *testing.T, c *target, p *player) {
	r := p.play(t)
	require.NoError(t, r.err, r.out)
	require.Positive(t, r.changed, r.out)
	require.Equal(t, "install ok installed "+pbVersion+"-1", c.run(t, "dpkg-query", "-W", "-f=${Status} ${Version}", "l2agent"))
	require.Equal(t, "enabled\n", c.run(t, "systemctl", "is-enabled", ctUnit))
	require.Equal(t, "active\n", c.run(t, "systemctl", "is-active", ctUnit))

	conf := c.run(t, "cat", ctConf)
	for _, want := range []string{"listen_address: 0.0.0.0:10061", "url: https://rt.example.com",
		"token_file: " + ctRTToken, "queue_l3: L3-Support", "dry_run: true", "format: json"} {
		require.Contains(t, conf, want, ctConf)
	}
	require.Equal(t, "640 root root\n", c.run(t, "stat", "-c", "%a %U %G", ctConf))
	c.run(t, "l2agent", "config", "validate", ctConf)

	// In force: it listens on the address of the file (a restart did it, not a reload; Go
	// listens on 0.0.0.0 as on [::], dual stack, which ss shows as *), and logs JSON since it
	// started.
	listening := c.run(t, "ss", "-Hltn", "sport = :10061")
	require.Contains(t, listening, "*:10061")
	require.NotContains(t, listening, "127.0.0.1:10061")
	logs := c.run(t, "journalctl", "--no-pager", "-o", "cat", "_PID="+strconv.Itoa(c.mainPID(t)))
	require.NotEmpty(t, logs)
	for _, line := range strings.Split(strings.TrimSpace(logs), "\n") {
		require.True(t, strings.HasPrefix(line, "{"), "not JSON: %s", line)
	}
	metrics := c.run(t, "curl", "-sf", ctMetrics)
	require.Regexp(t, `l2agent_build_info\{[^}]*version="`+regexp.QuoteMeta(pbVersion)+`"`, metrics)
	require.Contains(t, metrics, "l2agent_config_last_reload_successful 1")
}

// ticketingChange: a new backend in l2agent_ticketing is written, the handler reloads (the
// same process), and the agent has the new config in force when the run ends.
func ticketingChange(t *testing.T, c *target, p *player) {
	pid := c.mainPID(t)
	before := c.metric(t, reloadedTS)
	p.edit(t, "                custom_field: HostCheckKey\n",
		"                custom_field: HostCheckKey\n            - name: archive\n              kind: file\n")
	r := p.play(t)
	require.NoError(t, r.err, r.out)
	require.Equal(t, 2, r.changed, "the config and the handler change, nothing else:\n%s", r.out)
	require.Regexp(t, `(?m)^RUNNING HANDLER \[l2agent : Reload l2agent\]`, r.out)
	require.Contains(t, c.run(t, "cat", ctConf), "kind: file")
	require.Equal(t, pid, c.mainPID(t), "reloaded, not restarted")
	at := c.metric(t, reloadedTS)
	require.Greater(t, at, before)
	require.GreaterOrEqual(t, at, float64(r.started.Unix()))
	require.LessOrEqual(t, at, float64(r.stopped.Unix()+1))
	require.Equal(t, 1.0, c.metric(t, "l2agent_config_last_reload_successful"))
	require.NotEqual(t, -1.0, c.metric(t, `l2agent_ticket_outbox_pending{backend="archive"}`), "the new backend is not in force")
}

// rejected: a backend kind the agent does not know fails the validate step: the run fails,
// the file stays as it was, the agent runs on, not reloaded.
func rejected(t *testing.T, c *target, p *player) {
	pid := c.mainPID(t)
	before := c.metric(t, reloadedTS)
	conf, err := os.ReadFile(filepath.Join(c.Root, ctConf))
	require.NoError(t, err)
	p.edit(t, "              kind: file\n", "              kind: nope\n")
	r := p.play(t)
	require.Error(t, r.err)
	require.Equal(t, 1, r.failed, r.out)
	require.Contains(t, r.out, "failed to validate", r.out)
	require.Contains(t, r.out, "nope", r.out)
	require.NotContains(t, r.out, "RUNNING HANDLER", r.out)
	c.sameBytes(t, ctConf, conf)
	require.Equal(t, pid, c.mainPID(t))
	require.Equal(t, "active\n", c.run(t, "systemctl", "is-active", ctUnit))
	require.Equal(t, before, c.metric(t, reloadedTS))
	p.edit(t, "              kind: nope\n", "              kind: file\n")
}

// refusedReload: a config that validates but that the agent cannot put in force (the RT token
// file is missing: validate checks the file, not the host) is written, and the handler's
// reload fails: the run fails and the agent keeps running its previous config. Putting the
// variables back and running again reloads it.
func refusedReload(t *testing.T, c *target, p *player) {
	pid := c.mainPID(t)
	before := c.metric(t, reloadedTS)
	p.edit(t, "token_file: "+ctRTToken, "token_file: /etc/l2agent/missing.token")
	r := p.play(t)
	require.Error(t, r.err)
	require.Equal(t, 1, r.failed, r.out)
	require.Regexp(t, `(?m)^RUNNING HANDLER \[l2agent : Reload l2agent\]`, r.out)
	require.Contains(t, r.out, "Unable to reload service l2agent.service", r.out)
	// Why is in the unit's journal (`systemctl status l2agent`, as Ansible's message says).
	require.Contains(t, c.run(t, "journalctl", "--no-pager", "-u", ctUnit), "/etc/l2agent/missing.token")
	require.Equal(t, pid, c.mainPID(t))
	require.Equal(t, "active\n", c.run(t, "systemctl", "is-active", ctUnit))
	require.Equal(t, before, c.metric(t, reloadedTS))
	require.Equal(t, 0.0, c.metric(t, "l2agent_config_last_reload_successful"))

	p.edit(t, "token_file: /etc/l2agent/missing.token", "token_file: "+ctRTToken)
	r = p.play(t)
	require.NoError(t, r.err, r.out)
	require.Equal(t, 2, r.changed, r.out)
	require.Equal(t, pid, c.mainPID(t))
	require.Equal(t, 1.0, c.metric(t, "l2agent_config_last_reload_successful"))
	require.Greater(t, c.metric(t, reloadedTS), before)
}
