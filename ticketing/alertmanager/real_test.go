package alertmanager

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/l2agent/l2agent/configs"
	"github.com/l2agent/l2agent/deploy/testenv"
	"github.com/l2agent/l2agent/internal/alert"
	"github.com/l2agent/l2agent/internal/testkit"
	"github.com/l2agent/l2agent/ticketing"
)

// notification is the body Alertmanager's webhook receiver posts.
type notification struct {
	Status      string            `json:"status"`
	GroupLabels map[string]string `json:"groupLabels"`
	Alerts      []struct {
		Status      string            `json:"status"`
		Labels      map[string]string `json:"labels"`
		Fingerprint string            `json:"fingerprint"`
	} `json:"alerts"`
	at time.Time
}

// receiver is a webhook receiver for a real Alertmanager.
type receiver struct {
	srv *httptest.Server
	mu  sync.Mutex
	got []notification
}

func newReceiver(t *testing.T) *receiver {
	r := &receiver{}
	r.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		var n notification
		if err := json.NewDecoder(req.Body).Decode(&n); err != nil {
			t.Errorf("webhook: %v", err)
			http.Error(w, err.Error(), 400)
			return
		}
		n.at = time.Now()
		r.mu.Lock()
		r.got = append(r.got, n)
		r.mu.Unlock()
	}))
	t.Cleanup(r.srv.Close)
	return r
}

func (r *receiver) all() []notification {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.got)
}

// count returns the notifications carrying an alert of host with status
// ("firing", "resolved").
func (r *receiver) count(host, status string) int {
	n := 0
	for _, no := range r.all() {
		for _, a := range no.Alerts {
			if a.Labels["host"] == host && a.Status == status {
				n++
				break
			}
		}
	}
	return n
}

func (r *receiver) waitFor(t *testing.T, host, status string, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for r.count(host, status) == 0 {
		if time.Now().After(deadline) {
			t.Fatalf("no %s notification for %s after %s; got %d notifications", status, host, timeout, len(r.all()))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func TestRealClusterHA(t *testing.T) {
	rcv := newReceiver(t)
	c := testenv.StartAlertmanagerCluster(t, 2, rcv.srv.URL, "check")
	b := newBackend(t, Options{URLs: c.URLs(), ResendInterval: configs.Duration(time.Minute)})
	ctx := context.Background()

	ref, err := b.Open(ctx, ticket("host-a"))
	if err != nil {
		t.Fatal(err)
	}
	rcv.waitFor(t, "host-a", "firing", 20*time.Second)
	time.Sleep(3*testenv.AMPeerTimeout + 2*time.Second) // the second node would have sent by now
	if n := rcv.count("host-a", "firing"); n != 1 {
		t.Fatalf("%d firing notifications for host-a from a 2-node cluster, want exactly 1", n)
	}

	c.Kill(0)
	tk := ticket("host-b")
	tk.Key, tk.Check, tk.Metric = "host-b/load/load1", "load", "load1"
	if _, err := b.Open(ctx, tk); err != nil {
		t.Fatalf("open with one node dead: %v", err)
	}
	rcv.waitFor(t, "host-b", "firing", 30*time.Second)

	if err := b.Resolve(ctx, ref, "fixed"); err != nil {
		t.Fatal(err)
	}
	rcv.waitFor(t, "host-a", "resolved", 30*time.Second)
	time.Sleep(3 * time.Second)
	if n := rcv.count("host-a", "resolved"); n != 1 {
		t.Errorf("%d resolved notifications for host-a, want 1", n)
	}
	if n := rcv.count("host-a", "firing"); n != 1 {
		t.Errorf("%d firing notifications for host-a in all, want 1", n)
	}
}

func TestRealFleet(t *testing.T) {
	const hosts = 1000
	rcv := newReceiver(t)
	c := testenv.StartAlertmanagerCluster(t, 2, rcv.srv.URL, "check")
	b := newBackend(t, Options{URLs: c.URLs(), ResendInterval: configs.Duration(time.Minute),
		Labels: map[string]string{"env": "fleet-test"}})
	// The fleet goes through the real life cycle: 1,000 transitions to crit
	// decided by the ticket manager (one batch, one fsync), queued in the
	// outbox and delivered to the cluster by the outbox's deliverer.
	log := testkit.QuietLogger()
	store, err := ticketing.OpenStore(filepath.Join(t.TempDir(), "l2agent.db"), false, log)
	if err != nil {
		t.Fatal(err)
	}
	var cfg configs.Ticketing
	cfg.ApplyDefaults(t.TempDir())
	no := false
	cfg.EscalateOnCrit = &no // one firing alert per host, at L2
	svc := ticketing.NewService(cfg, store, []string{"am"}, map[string]ticketing.Ticketer{"am": b}, "test", log, nil)
	defer svc.Stop()

	fired := make([]time.Time, hosts)
	start := time.Now()
	batch := make([]alert.Transition, hosts)
	for i := range batch {
		host := fmt.Sprintf("host-%04d", i+1)
		batch[i] = alert.Transition{Alert: alert.Alert{Key: host + "/disk/used_percent", Host: host, Check: "disk", Metric: "used_percent",
			Labels: map[string]string{"mount": "/"}, State: alert.StateCrit, Value: 0.93, Threshold: 0.9, BreachAt: start,
			Details: "disk full", RunbookURL: "https://runbooks.example.com/disk"}, From: alert.StateOK, At: start}
		fired[i] = start
	}
	if err := svc.Manager.HandleBatch(batch); err != nil {
		t.Fatal(err)
	}
	svc.Start()
	for store.Pending("am") > 0 {
		if time.Since(start) > 60*time.Second {
			t.Fatalf("outbox not delivered: %d pending", store.Pending("am"))
		}
		time.Sleep(50 * time.Millisecond) // polling the outbox, not waiting for timing
	}
	sent := time.Since(start)

	// first notification time per host; fingerprints per host
	deadline := time.Now().Add(40 * time.Second)
	var first map[string]time.Time
	for {
		first = map[string]time.Time{}
		for _, n := range rcv.all() {
			for _, a := range n.Alerts {
				if a.Status != "firing" {
					continue
				}
				if _, ok := first[a.Labels["host"]]; !ok {
					first[a.Labels["host"]] = n.at
				}
			}
		}
		if len(first) >= hosts || time.Now().After(deadline) {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	wall := time.Since(start)
	time.Sleep(2 * time.Second) // let stragglers (a doubled notification) arrive

	fps := map[string]string{} // fingerprint → host
	hostFP := map[string]string{}
	notes := rcv.all()
	for ni, n := range notes {
		if n.GroupLabels["check"] != "disk" || len(n.GroupLabels) != 1 {
			t.Errorf("notification %d grouped by %v, want check=disk", ni, n.GroupLabels)
		}
		inNote := map[string]bool{}
		for _, a := range n.Alerts {
			h := a.Labels["host"]
			if inNote[a.Fingerprint] {
				t.Errorf("notification %d carries %s twice", ni, h)
			}
			inNote[a.Fingerprint] = true
			if a.Labels["env"] != "fleet-test" || a.Labels["alertname"] != "l2agent_used_percent" {
				t.Errorf("alert labels %v", a.Labels)
			}
			fps[a.Fingerprint] = h
			if old, ok := hostFP[h]; ok && old != a.Fingerprint {
				t.Errorf("host %s under two fingerprints %s, %s", h, old, a.Fingerprint)
			}
			hostFP[h] = a.Fingerprint
		}
	}
	if len(fps) != hosts || len(hostFP) != hosts {
		t.Errorf("distinct alerts in the notifications: %d fingerprints, %d hosts; want exactly %d", len(fps), len(hostFP), hosts)
	}
	for i := 1; i <= hosts; i++ {
		if _, ok := hostFP[fmt.Sprintf("host-%04d", i)]; !ok {
			t.Errorf("host-%04d lost", i)
		}
	}
	var lat []time.Duration
	for i, f := range fired {
		if at, ok := first[fmt.Sprintf("host-%04d", i+1)]; ok {
			lat = append(lat, at.Sub(f))
		}
	}
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	p := func(q float64) time.Duration {
		if len(lat) == 0 {
			return 0
		}
		return lat[min(len(lat)-1, int(q*float64(len(lat))))].Round(time.Millisecond)
	}
	msg := fmt.Sprintf("alertmanager fleet: %d hosts, 2 nodes, group_by check: sent in %s, all notified after %s, %d notifications, %d distinct alerts, fire→notification p50 %s p99 %s max %s",
		hosts, sent.Round(time.Millisecond), wall.Round(time.Millisecond), len(notes), len(fps), p(0.5), p(0.99), p(1))
	t.Log(msg)
	fmt.Println("BENCH", strings.ReplaceAll(msg, "alertmanager fleet: ", "alertmanager_fleet "))
}
