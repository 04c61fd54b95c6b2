package main

import (
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/l2agent/l2agent/deploy/testenv"
)

// apiUser is a throwaway account; nil credential: root (this process).
type apiUser struct {
	name string
	cred *syscall.Credential
}

// apiTestUsers creates a group and two users, one in the group
// (supplementary) and one not, and removes them when the test ends.
func apiTestUsers(t *testing.T) (group string, member, outsider apiUser) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root: creates throwaway users (useradd) and runs curl as them")
	}
	for _, bin := range []string{"useradd", "groupadd", "userdel", "groupdel", "curl"} {
		if _, err := exec.LookPath(bin); err != nil {
			t.Skipf("%s is not installed (deploy/testenv/install.sh installs passwd and curl)", bin)
		}
	}
	tag := fmt.Sprintf("%05d%02d", os.Getpid()%100000, time.Now().UnixNano()%100)
	group = "l2api" + tag
	run := func(argv ...string) {
		t.Helper()
		out, err := exec.Command(argv[0], argv[1:]...).CombinedOutput()
		require.NoError(t, err, "%s: %s", strings.Join(argv, " "), out)
	}
	run("groupadd", group)
	t.Cleanup(func() { exec.Command("groupdel", group).Run() })
	g, err := user.LookupGroup(group)
	require.NoError(t, err)
	gid, _ := strconv.Atoi(g.Gid)
	mk := func(name string, groups ...string) apiUser {
		args := []string{"useradd", "-M", "-N", "-g", "users", "-d", "/nonexistent", "-s", "/usr/sbin/nologin"}
		if len(groups) > 0 {
			args = append(args, "-G", strings.Join(groups, ","))
		}
		run(append(args, name)...)
		t.Cleanup(func() { exec.Command("userdel", name).Run() })
		u, err := user.Lookup(name)
		require.NoError(t, err)
		uid, _ := strconv.Atoi(u.Uid)
		pgid, _ := strconv.Atoi(u.Gid)
		c := &syscall.Credential{Uid: uint32(uid), Gid: uint32(pgid), Groups: []uint32{}}
		if len(groups) > 0 {
			c.Groups = []uint32{uint32(gid)}
		}
		return apiUser{name: name, cred: c}
	}
	return group, mk("l2am"+tag, group), mk("l2ao" + tag)
}

// curlAs runs curl as u: method on url, through sock when not "". It
// returns curl's exit code, the HTTP status and the body.
func curlAs(t *testing.T, u apiUser, method, url, sock string) (exit, status int, body string) {
	t.Helper()
	args := []string{"-q", "-sS", "-m", "10", "-X", method, "-w", "\n%{http_code}"}
	if sock != "" {
		args = append(args, "--unix-socket", sock)
	}
	cmd := exec.Command("curl", append(args, url)...)
	cmd.Env = []string{"PATH=/usr/bin:/bin"}
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: u.cred}
	out, err := cmd.Output()
	if err != nil {
		var ee *exec.ExitError
		require.ErrorAs(t, err, &ee)
		return ee.ExitCode(), 0, string(out)
	}
	s := string(out)
	i := strings.LastIndexByte(s, '\n')
	status, err = strconv.Atoi(s[i+1:])
	require.NoError(t, err, "%q", s)
	return 0, status, s[:i]
}

// TestAPIAccessByUser: the built binary, run as the unit runs it, with a
// throwaway unprivileged user, a member of api.group and root. Over TCP
// only /metrics and the health endpoints answer anyone (the API: 403 naming
// the socket); on the socket root and the member get everything, the
// other user cannot even connect, and with the socket's mode opened up the
// peer credential check still refuses them. The CLI asks the running agent
// through the socket as root and as the member, and tells the other user
// who may.
func TestAPIAccessByUser(t *testing.T) {
	group, member, outsider := apiTestUsers(t)
	root := apiUser{name: "root"}
	// A world-readable place for the config and the binary, as /etc and
	// /usr/bin are: the CLI runs as the two users too.
	pub, err := os.MkdirTemp("", "l2agent-api-")
	require.NoError(t, err)
	t.Cleanup(func() { os.RemoveAll(pub) })
	require.NoError(t, os.Chmod(pub, 0o755))
	bin := filepath.Join(pub, "l2agent")
	b, err := os.ReadFile(binary)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(bin, b, 0o755))
	run := filepath.Join(pub, "run") // the unit's RuntimeDirectory
	require.NoError(t, os.Mkdir(run, 0o755))
	sock := filepath.Join(run, "api.sock")
	addr := fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t))
	cfg := filepath.Join(pub, "agent.yaml")
	require.NoError(t, os.WriteFile(cfg, []byte(fmt.Sprintf(`state_dir: %s
listen_address: %s
api: {socket: %s, group: %s}
checks:
  - {name: cpu, kind: cpu, schedule: "@every 1h"}
ticketing:
  backends: [{name: file, kind: file}]
`, t.TempDir(), addr, sock, group)), 0o644))
	d := &daemon{addr: addr, cfg: cfg, dir: filepath.Dir(cfg)}
	d.run(t, nil)
	waitHTTP(t, "http://"+addr+"/-/ready")
	fi, err := os.Stat(sock)
	require.NoError(t, err)
	require.Equal(t, os.FileMode(0o660), fi.Mode().Perm())
	require.Equal(t, fmt.Sprint(member.cred.Groups[0]), fmt.Sprint(fi.Sys().(*syscall.Stat_t).Gid), "the socket's group is api.group")

	open := []struct{ method, path, says string }{
		{"GET", "/metrics", "l2agent_check_up"}, {"GET", "/-/healthy", "Healthy"}, {"GET", "/-/ready", "Ready"},
	}
	api := []struct{ method, path, says string }{
		{"GET", "/api/v1/status", `"name": "cpu"`}, {"GET", "/api/v1/tickets", `"pending"`},
		{"POST", "/api/v1/tickets/flush", `"pending"`}, {"POST", "/-/reload", "config reloaded"},
	}
	for _, u := range []apiUser{root, member, outsider} {
		for _, e := range open {
			exit, code, body := curlAs(t, u, e.method, "http://"+addr+e.path, "")
			require.Equal(t, 0, exit, "%s %s", u.name, e.path)
			require.Equal(t, http.StatusOK, code, "%s TCP %s: %s", u.name, e.path, body)
			require.Contains(t, body, e.says)
		}
		for _, e := range api {
			exit, code, body := curlAs(t, u, e.method, "http://"+addr+e.path, "")
			require.Equal(t, 0, exit, "%s %s", u.name, e.path)
			require.Equal(t, http.StatusForbidden, code, "%s TCP %s %s: %s", u.name, e.method, e.path, body)
			require.Contains(t, body, "nix socket "+sock, "%s TCP %s", u.name, e.path)
			require.NotContains(t, body, `"name"`)
		}
	}
	for _, u := range []apiUser{root, member} {
		for _, e := range append(open, api...) {
			exit, code, body := curlAs(t, u, e.method, "http://l2agent"+e.path, sock)
			require.Equal(t, 0, exit, "%s %s", u.name, e.path)
			require.Equal(t, http.StatusOK, code, "%s socket %s %s: %s", u.name, e.method, e.path, body)
			require.Contains(t, body, e.says, "%s socket %s", u.name, e.path)
		}
	}
	for _, e := range append(open, api...) {
		exit, _, body := curlAs(t, outsider, e.method, "http://l2agent"+e.path, sock)
		require.Equal(t, 7, exit, "the other user cannot connect (curl: couldn't connect): %s %s", e.path, body)
	}
	// The second lock: with the socket's mode opened up, the peer
	// credentials still keep the other user out of every endpoint.
	require.NoError(t, os.Chmod(sock, 0o666))
	for _, e := range append(open, api...) {
		exit, code, body := curlAs(t, outsider, e.method, "http://l2agent"+e.path, sock)
		require.Equal(t, 0, exit, e.path)
		require.Equal(t, http.StatusForbidden, code, "%s: %s", e.path, body)
		require.Contains(t, body, "for root and the members of the config's api.group")
	}
	require.NoError(t, os.Chmod(sock, 0o660))

	// The CLI asks the running agent through the socket.
	cli := func(u apiUser, args ...string) (int, string) {
		cmd := exec.Command(bin, args...)
		cmd.Env = []string{"PATH=/usr/bin:/bin", "HOME=/nonexistent"}
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: u.cred}
		out, err := cmd.CombinedOutput()
		if err != nil {
			var ee *exec.ExitError
			require.ErrorAs(t, err, &ee, "%s", out)
		}
		return cmd.ProcessState.ExitCode(), string(out)
	}
	for _, u := range []apiUser{root, member} {
		code, out := cli(u, "tickets", "flush", "--config", cfg)
		require.Equal(t, 0, code, "%s: %s", u.name, out)
		require.Contains(t, out, "file: 0 operation(s) remain")
		code, out = cli(u, "tickets", "list", "--config", cfg, "--json")
		require.Equal(t, 0, code, "%s: %s", u.name, out)
		require.Contains(t, out, `"pending"`)
	}
	code, out := cli(outsider, "tickets", "list", "--config", cfg)
	require.Equal(t, 1, code, out)
	require.Contains(t, out, "API socket "+sock+" is for root and the members of the config's api.group")
	require.Contains(t, d.log(t), "refused an API request on the socket")
}

// TestReloadStorm: 200 reload requests at once (POST /-/reload on the
// socket) against the built binary: every one is answered, a check whose
// config did not change ran once (at start, l2agent_check_runs_total 1),
// and the check whose config changed runs again after the next reload.
func TestReloadStorm(t *testing.T) {
	const cfg = "checks:\n  - {name: cpu, kind: cpu, schedule: \"@every 1h\"}\n  - {name: mem, kind: memory, schedule: \"@every 1h\"}\n"
	d := startDaemon(t, cfg)
	waitHTTP(t, d.url+"/-/ready")
	var wg sync.WaitGroup
	codes := make(chan int, 200)
	for range 200 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			code, _ := socketRequest(t, d.sock(), http.MethodPost, "/-/reload")
			codes <- code
		}()
	}
	wg.Wait()
	close(codes)
	for code := range codes {
		require.Equal(t, http.StatusOK, code)
	}
	metrics := string(httpGet(t, d.url+"/metrics"))
	require.Contains(t, metrics, `l2agent_check_runs_total{check="cpu"} 1`+"\n")
	require.Contains(t, metrics, `l2agent_check_runs_total{check="mem"} 1`+"\n")
	reloads := strings.Count(d.log(t), `msg="config reloaded"`)
	require.LessOrEqual(t, reloads, 3, "200 requests coalesced into a few reloads")

	d.writeConfig(t, strings.Replace(cfg, `{name: mem, kind: memory, schedule: "@every 1h"}`, `{name: mem, kind: memory, schedule: "@every 1h", timeout: 7s}`, 1))
	code, body := socketRequest(t, d.sock(), http.MethodPost, "/-/reload")
	require.Equal(t, http.StatusOK, code, body)
	require.Eventually(t, func() bool {
		return strings.Count(d.log(t), `msg="check scheduled" check=mem`) == 2
	}, 10*time.Second, 50*time.Millisecond, "the changed check is scheduled and run again")
	require.Equal(t, 1, strings.Count(d.log(t), `msg="check scheduled" check=cpu`), "the unchanged one is not")
	require.Eventually(t, func() bool {
		return strings.Contains(string(httpGet(t, d.url+"/metrics")), `l2agent_check_runs_total{check="mem"} 1`+"\n")
	}, 10*time.Second, 50*time.Millisecond)
	require.Contains(t, string(httpGet(t, d.url+"/metrics")), `l2agent_check_runs_total{check="cpu"} 1`+"\n")
}
