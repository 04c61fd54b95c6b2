package testenv

import (
	"context"
	"strings"
	"testing"
	"time"
)

func TestAlertmanagerConfig(t *testing.T) {
	c := AlertmanagerConfig("http://127.0.0.1:1/hook", "check, alertname")
	for _, want := range []string{`group_by: ["check", "alertname"]`, `url: "http://127.0.0.1:1/hook"`, "send_resolved: true", "group_wait: 1s"} {
		if !strings.Contains(c, want) {
			t.Errorf("config lacks %q:\n%s", want, c)
		}
	}
	if !strings.Contains(AlertmanagerConfig("http://x/", ""), `group_by: ["check"]`) {
		t.Error("default group_by is not check")
	}
}

func TestStartAlertmanagerCluster(t *testing.T) {
	c := StartAlertmanagerCluster(t, 2, "http://127.0.0.1:9/hook", "")
	if len(c.URLs()) != 2 {
		t.Fatalf("URLs %v", c.URLs())
	}
	for i := range c.Nodes {
		st, err := c.Status(context.Background(), i)
		if err != nil || len(st.Cluster.Peers) != 2 || st.Cluster.Status != "ready" {
			t.Errorf("node %d: %+v %v", i, st, err)
		}
	}
	c.Kill(0)
	deadline := time.Now().Add(20 * time.Second)
	for {
		st, err := c.Status(context.Background(), 1)
		if err != nil {
			t.Fatalf("node 1 after node 0 was killed: %v", err)
		}
		if len(st.Cluster.Peers) == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("node 1 still sees %d peers", len(st.Cluster.Peers))
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func TestAMConfigTimings(t *testing.T) {
	c := amConfig("http://x/", "check", 30*time.Second, 1500*time.Millisecond)
	for _, want := range []string{"group_wait: 30s", "group_interval: 1500ms"} {
		if !strings.Contains(c, want) {
			t.Errorf("config lacks %q:\n%s", want, c)
		}
	}
}

func TestStatCPU(t *testing.T) {
	// a real line of /proc/PID/stat, with a space in the command
	line := "4242 (prometheus-alert manager) S 1 4242 4242 0 -1 4194560 5327 0 0 0 123 45 0 0 20 0 9 0 123456 1234567 4321 18446744073709551615"
	d, err := statCPU(line)
	if err != nil || d != 1680*time.Millisecond {
		t.Fatalf("statCPU = %v, %v; want 1.68s", d, err)
	}
	if _, err := statCPU("garbage"); err == nil {
		t.Error("statCPU accepted garbage")
	}
}
