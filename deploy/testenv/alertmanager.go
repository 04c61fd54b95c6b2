package testenv

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// AlertmanagerBin is the Alertmanager of the Debian package
// prometheus-alertmanager; amtool ships with it.
const AlertmanagerBin = "prometheus-alertmanager"

// AMPeerTimeout is --cluster.peer-timeout of the nodes StartAlertmanagerCluster
// starts: node i waits i × this before notifying, for its peers' notification
// log to say the notification went out (Alertmanager's HA dedup).
var AMPeerTimeout = time.Second

// AMCluster is a cluster of real Alertmanagers peered on 127.0.0.1, started
// for one test by StartAlertmanagerCluster.
type AMCluster struct {
	Nodes []*AMNode
	Dir   string
}

// AMNode is one Alertmanager of an AMCluster.
type AMNode struct {
	URL         string // http://127.0.0.1:PORT
	ClusterAddr string // 127.0.0.1:PORT of the gossip
	LogPath     string

	cmd  *exec.Cmd
	done chan struct{}
	once sync.Once
}

// StartAlertmanagerCluster starts n prometheus-alertmanager nodes peered
// with each other on 127.0.0.1, with one webhook receiver (send_resolved)
// posting to webhookURL, group_wait and group_interval 1s and a 1h
// repeat_interval. groupBy is the route's group_by, comma-separated
// ("check" when empty; "..." groups by all labels). It waits until every
// node is ready and sees n peers, and stops the nodes when the test ends.
// A missing Alertmanager fails the test under CI and skips it otherwise.
func StartAlertmanagerCluster(t testing.TB, n int, webhookURL string, groupBy string) *AMCluster {
	t.Helper()
	return StartAMCluster(t, AMOptions{Nodes: n, WebhookURL: webhookURL, GroupBy: groupBy})
}

// AMOptions are the settings of StartAMCluster; the zero value of each
// field is StartAlertmanagerCluster's.
type AMOptions struct {
	Nodes         int           // at least 1
	WebhookURL    string        // the webhook receiver
	GroupBy       string        // the route's group_by, comma-separated ("check")
	GroupWait     time.Duration // 1s
	GroupInterval time.Duration // 1s
	LogLevel      string        // debug
}

// StartAMCluster is StartAlertmanagerCluster with more settings: the fleet
// benchmark runs the nodes as in production (the example's group_wait and
// group_interval, log level info), where a test wants notifications fast
// and every line of the log.
func StartAMCluster(t testing.TB, o AMOptions) *AMCluster {
	t.Helper()
	bin := Need(t, AlertmanagerBin)
	o.Nodes = max(o.Nodes, 1)
	if o.LogLevel == "" {
		o.LogLevel = "debug"
	}
	dir := t.TempDir()
	cfg := filepath.Join(dir, "alertmanager.yml")
	text := amConfig(o.WebhookURL, o.GroupBy, o.GroupWait, o.GroupInterval)
	if err := os.WriteFile(cfg, []byte(text), 0o644); err != nil {
		t.Fatalf("testenv: %v", err)
	}
	var lastErr error
	for attempt := 0; attempt < 3; attempt++ {
		c, err := startAMCluster(t, bin, dir, cfg, o, attempt)
		if err == nil {
			return c
		}
		lastErr = err
		if !errors.Is(err, errAddrInUse) {
			break
		}
	}
	t.Fatalf("testenv: starting an alertmanager cluster of %d: %v", o.Nodes, lastErr)
	return nil
}

// AlertmanagerConfig renders the config of StartAlertmanagerCluster.
func AlertmanagerConfig(webhookURL, groupBy string) string {
	return amConfig(webhookURL, groupBy, 0, 0)
}

func amConfig(webhookURL, groupBy string, wait, interval time.Duration) string {
	if strings.TrimSpace(groupBy) == "" {
		groupBy = "check"
	}
	if wait <= 0 {
		wait = time.Second
	}
	if interval <= 0 {
		interval = time.Second
	}
	var labels []string
	for _, l := range strings.Split(groupBy, ",") {
		if l = strings.TrimSpace(l); l != "" {
			labels = append(labels, strconv.Quote(l))
		}
	}
	return fmt.Sprintf(`route:
  receiver: webhook
  group_by: [%s]
  group_wait: %s
  group_interval: %s
  repeat_interval: 1h
receivers:
  - name: webhook
    webhook_configs:
      - url: %s
        send_resolved: true
`, strings.Join(labels, ", "), promDuration(wait), promDuration(interval), strconv.Quote(webhookURL))
}

// promDuration renders d as a Prometheus duration (whole milliseconds at least).
func promDuration(d time.Duration) string {
	if d%time.Second == 0 {
		return fmt.Sprintf("%ds", d/time.Second)
	}
	return fmt.Sprintf("%dms", d/time.Millisecond)
}

func startAMCluster(t testing.TB, bin, dir, cfg string, o AMOptions, attempt int) (*AMCluster, error) {
	t.Helper()
	n := o.Nodes
	c := &AMCluster{Dir: dir}
	for i := 0; i < n; i++ {
		c.Nodes = append(c.Nodes, &AMNode{
			URL:         fmt.Sprintf("http://127.0.0.1:%d", FreePort(t)),
			ClusterAddr: fmt.Sprintf("127.0.0.1:%d", FreePort(t)),
			done:        make(chan struct{}),
		})
	}
	for i, node := range c.Nodes {
		nd := filepath.Join(dir, fmt.Sprintf("try%d-node%d", attempt, i))
		if err := os.MkdirAll(nd, 0o755); err != nil {
			return nil, err
		}
		args := []string{
			"--config.file=" + cfg,
			"--storage.path=" + nd,
			"--web.listen-address=" + strings.TrimPrefix(node.URL, "http://"),
			"--cluster.listen-address=" + node.ClusterAddr,
			"--cluster.advertise-address=" + node.ClusterAddr,
			"--cluster.gossip-interval=50ms",
			"--cluster.pushpull-interval=500ms",
			"--cluster.probe-interval=200ms",
			"--cluster.probe-timeout=200ms",
			"--cluster.settle-timeout=5s",
			"--cluster.reconnect-interval=1s",
			"--cluster.peer-timeout=" + AMPeerTimeout.String(),
			"--log.level=" + o.LogLevel,
		}
		if n == 1 {
			args = append(args, "--cluster.listen-address=")
		}
		for j, peer := range c.Nodes {
			if j != i && n > 1 {
				args = append(args, "--cluster.peer="+peer.ClusterAddr)
			}
		}
		node.LogPath = filepath.Join(nd, "alertmanager.log")
		logFile, err := os.Create(node.LogPath)
		if err != nil {
			return nil, err
		}
		cmd := exec.Command(bin, args...)
		cmd.Dir = nd
		cmd.Stdout = logFile
		cmd.Stderr = logFile
		cmd.SysProcAttr = sysProcAttr()
		err = cmd.Start()
		logFile.Close()
		if err != nil {
			c.stop()
			return nil, err
		}
		node.cmd = cmd
		go func() {
			_ = cmd.Wait()
			close(node.done)
		}()
	}
	t.Cleanup(func() {
		c.stop()
		if t.Failed() {
			for i, node := range c.Nodes {
				t.Logf("testenv: alertmanager %d log (%s):\n%s", i, node.LogPath, amTail(node.Log(), 8000))
			}
		}
	})
	if err := c.waitPeered(30 * time.Second); err != nil {
		c.stop()
		return nil, err
	}
	return c, nil
}

func amTail(s string, n int) string {
	if len(s) > n {
		return "…" + s[len(s)-n:]
	}
	return s
}

// URLs returns the base URLs of the nodes, killed ones included.
func (c *AMCluster) URLs() []string {
	out := make([]string, len(c.Nodes))
	for i, node := range c.Nodes {
		out[i] = node.URL
	}
	return out
}

// Kill kills node i (SIGKILL) and waits until it has exited.
func (c *AMCluster) Kill(i int) {
	node := c.Nodes[i]
	if node.cmd == nil {
		return
	}
	_ = node.cmd.Process.Kill()
	<-node.done
}

func (c *AMCluster) stop() {
	for _, node := range c.Nodes {
		node.once.Do(func() {
			if node.cmd == nil {
				return
			}
			_ = node.cmd.Process.Kill()
			<-node.done
		})
	}
}

// Log returns what the node has logged so far.
func (n *AMNode) Log() string {
	b, err := os.ReadFile(n.LogPath)
	if err != nil {
		return fmt.Sprintf("(reading %s: %v)", n.LogPath, err)
	}
	return string(b)
}

// AMStatus is the part of GET /api/v2/status the tests use.
type AMStatus struct {
	Cluster struct {
		Name   string `json:"name"`
		Status string `json:"status"` // ready, settling, disabled
		Peers  []struct {
			Name    string `json:"name"`
			Address string `json:"address"`
		} `json:"peers"`
	} `json:"cluster"`
}

// Status returns GET /api/v2/status of node i.
func (c *AMCluster) Status(ctx context.Context, i int) (AMStatus, error) {
	var st AMStatus
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.Nodes[i].URL+"/api/v2/status", nil)
	if err != nil {
		return st, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return st, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return st, fmt.Errorf("GET %s/api/v2/status: HTTP %d", c.Nodes[i].URL, resp.StatusCode)
	}
	return st, json.NewDecoder(resp.Body).Decode(&st)
}

// waitPeered waits until every node is ready and sees all n peers.
func (c *AMCluster) waitPeered(timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	n := len(c.Nodes)
	for {
		var problem error
		for i, node := range c.Nodes {
			select {
			case <-node.done:
				log := node.Log()
				if strings.Contains(log, "address already in use") {
					return fmt.Errorf("%w: node %d", errAddrInUse, i)
				}
				return fmt.Errorf("alertmanager %d exited before it was ready (%s); log:\n%s", i, node.cmd.ProcessState, amTail(log, 4000))
			default:
			}
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			st, err := c.Status(ctx, i)
			cancel()
			switch {
			case err != nil:
				problem = err
			case n > 1 && len(st.Cluster.Peers) != n:
				problem = fmt.Errorf("alertmanager %d sees %d peers, want %d", i, len(st.Cluster.Peers), n)
			case n > 1 && st.Cluster.Status != "ready":
				problem = fmt.Errorf("alertmanager %d cluster status %q", i, st.Cluster.Status)
			}
			if problem != nil {
				break
			}
		}
		if problem == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("cluster not peered after %s: %v", timeout, problem)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// CPU returns the user+system CPU time the node has used so far, from
// /proc/PID/stat (clock ticks of 1/100 s, Linux's USER_HZ).
func (n *AMNode) CPU() (time.Duration, error) {
	if n.cmd == nil || n.cmd.Process == nil {
		return 0, errors.New("alertmanager node not started")
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", n.cmd.Process.Pid))
	if err != nil {
		return 0, fmt.Errorf("reading the CPU time of alertmanager: %w", err)
	}
	return statCPU(string(b))
}

// statCPU returns utime+stime of a /proc/PID/stat line.
func statCPU(stat string) (time.Duration, error) {
	i := strings.LastIndexByte(stat, ')') // the command may hold spaces
	f := strings.Fields(stat[i+1:])
	if i < 0 || len(f) < 13 {
		return 0, fmt.Errorf("/proc/PID/stat: unexpected %q", stat)
	}
	var ticks int64
	for _, s := range f[11:13] { // fields 14 and 15: utime, stime
		v, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return 0, fmt.Errorf("/proc/PID/stat: %w", err)
		}
		ticks += v
	}
	return time.Duration(ticks) * 10 * time.Millisecond, nil
}
