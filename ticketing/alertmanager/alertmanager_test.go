package alertmanager

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/l2agent/l2agent/configs"
	"github.com/l2agent/l2agent/deploy/testenv"
	"github.com/l2agent/l2agent/internal/ticketingtest"
	"github.com/l2agent/l2agent/ticketing"
)

func newBackend(t *testing.T, o Options) *Backend {
	t.Helper()
	b, err := New("am", o, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = b.Close() })
	return b
}

func ticket(host string) ticketing.Ticket {
	return ticketing.Ticket{Key: host + "/disk/used_percent", Title: "disk / 93% on " + host, Body: strings.Repeat("x", 10000),
		Host: host, Check: "disk", Metric: "used_percent", Labels: map[string]string{"mount": "/"}, Severity: "crit",
		Tier: ticketing.L2, RunbookURL: "https://runbooks.example.com/disk"}
}

func TestFakeRejectsWhatAlertmanagerRejects(t *testing.T) {
	f := newFakeAM(t)
	for _, body := range []string{`{}`, `[]`, `[{"labels":{}}]`, `[{"labels":{"a-b":"x"}}]`, `[{"labels":{"a":"x"},"startsAt":"yesterday"}]`,
		`[{"labels":{"a":"x"},"startsAt":"2024-01-02T00:00:00Z","endsAt":"2024-01-01T00:00:00Z"}]`} {
		resp, err := http.Post(f.URL+"/api/v2/alerts", "application/json", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 400 {
			t.Errorf("fake accepted %s: HTTP %d", body, resp.StatusCode)
		}
	}
	resp, err := http.Post(f.URL+"/api/v2/alerts", "application/json", strings.NewReader(`[{"labels":{"a":"x"}}]`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Errorf("fake refused a valid alert: HTTP %d", resp.StatusCode)
	}
}

func TestLifeCycleJSON(t *testing.T) {
	f := newFakeAM(t)
	f.SetAuth(ticketingtest.Basic("agent", "s3cret"))
	pw := filepath.Join(t.TempDir(), "pw")
	if err := os.WriteFile(pw, []byte("s3cret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	b := newBackend(t, Options{URLs: []string{f.URL + "/"}, ResendInterval: configs.Duration(time.Minute),
		Labels: map[string]string{"team": "infra"}, Username: "agent", PasswordFile: pw})
	ctx := context.Background()
	before := time.Now().Add(-time.Second)

	ref, err := b.Open(ctx, ticket("host-0001"))
	if err != nil {
		t.Fatal(err)
	}
	if ref.ID != "host-0001/disk/used_percent" {
		t.Errorf("Ref.ID = %q", ref.ID)
	}
	posts := f.all()
	if len(posts) != 1 || len(posts[0]) != 1 {
		t.Fatalf("posts after Open: %+v", posts)
	}
	a := posts[0][0]
	want := map[string]string{"alertname": "l2agent_used_percent", "host": "host-0001", "check": "disk", "metric": "used_percent",
		"mount": "/", "severity": "crit", "tier": "L2", "team": "infra"}
	if len(a.Labels) != len(want) {
		t.Errorf("labels %v, want %v", a.Labels, want)
	}
	for k, v := range want {
		if a.Labels[k] != v {
			t.Errorf("label %s = %q, want %q", k, a.Labels[k], v)
		}
	}
	if a.Annotations["summary"] != "disk / 93% on host-0001" || a.Annotations["runbook_url"] != "https://runbooks.example.com/disk" ||
		len(a.Annotations["description"]) > MaxDescription || a.Annotations["description"] == "" {
		t.Errorf("annotations %v", a.Annotations)
	}
	s, _ := time.Parse(time.RFC3339, a.StartsAt)
	e, _ := time.Parse(time.RFC3339, a.EndsAt)
	if s.Before(before) || e.Sub(s) < 3*time.Minute {
		t.Errorf("firing alert startsAt %s endsAt %s: want now and now + 4 × resend_interval", a.StartsAt, a.EndsAt)
	}

	if err := b.Comment(ctx, ref, "still full"); err != nil {
		t.Fatal(err)
	}
	if p := f.all(); len(p) != 2 || p[1][0].Annotations["comment"] != "still full" || p[1][0].Labels["tier"] != "L2" {
		t.Errorf("comment post: %+v", p[len(p)-1])
	}

	// Escalate: one POST resolving the L2 label set and firing the L3 one.
	if err := b.Escalate(ctx, ref, ticketing.L3, ticket("host-0001")); err != nil {
		t.Fatal(err)
	}
	p := f.all()
	esc := p[len(p)-1]
	if len(esc) != 2 {
		t.Fatalf("escalate posted %d alerts, want the resolve + fire pair", len(esc))
	}
	now := time.Now().Add(time.Second)
	if end, _ := time.Parse(time.RFC3339, esc[0].EndsAt); esc[0].Labels["tier"] != "L2" || end.After(now) {
		t.Errorf("escalate[0] = %+v, want tier L2 resolved", esc[0])
	}
	if end, _ := time.Parse(time.RFC3339, esc[1].EndsAt); esc[1].Labels["tier"] != "L3" || !end.After(now) {
		t.Errorf("escalate[1] = %+v, want tier L3 firing", esc[1])
	}

	if err := b.Resolve(ctx, ref, "fixed"); err != nil {
		t.Fatal(err)
	}
	p = f.all()
	res := p[len(p)-1]
	if end, _ := time.Parse(time.RFC3339, res[0].EndsAt); len(res) != 1 || res[0].Labels["tier"] != "L3" || end.After(now) {
		t.Errorf("resolve = %+v", res)
	}
	if b.Active() != 0 {
		t.Errorf("Active after resolve = %d", b.Active())
	}
	if err := b.Reopen(ctx, ref, "back"); err != nil {
		t.Fatal(err)
	}
	p = f.all()
	if r := p[len(p)-1][0]; r.Labels["tier"] != "L3" || b.Active() != 1 {
		t.Errorf("reopen = %+v, active %d", r, b.Active())
	}
	if _, found, err := b.Find(ctx, ref.ID); found || err != nil {
		t.Errorf("Find = %v, %v", found, err)
	}
}

func TestCheckRunAlertname(t *testing.T) {
	f := newFakeAM(t)
	b := newBackend(t, Options{URLs: []string{f.URL}})
	if _, err := b.Open(context.Background(), ticketing.Ticket{Key: "h/antivirus", Host: "h", Check: "antivirus", Severity: "warn"}); err != nil {
		t.Fatal(err)
	}
	if l := f.all()[0][0].Labels; l["alertname"] != "l2agent_check" || l["metric"] != "" {
		t.Errorf("labels %v", l)
	}
}

func TestErrors(t *testing.T) {
	for _, c := range []struct {
		status int
		retry  bool
	}{{400, false}, {503, true}, {500, true}} {
		f := newFakeAM(t)
		f.failWith(c.status)
		b := newBackend(t, Options{URLs: []string{f.URL}})
		_, err := b.Open(context.Background(), ticket("h"))
		var de *ticketing.DeliveryError
		if !errors.As(err, &de) || de.Retryable != c.retry {
			t.Errorf("HTTP %d: err %v, want retryable=%v", c.status, err, c.retry)
		}
	}
	// Unauthorized is final.
	f := newFakeAM(t)
	f.SetAuth(ticketingtest.Basic("u", "p"))
	b := newBackend(t, Options{URLs: []string{f.URL}})
	if _, err := b.Open(context.Background(), ticket("h")); err == nil {
		t.Error("no basic auth accepted")
	} else if _, retry, _ := ticketing.Classify(err); retry {
		t.Errorf("401 retryable: %v", err)
	}
}

// An Alertmanager that does not answer within the backend's timeout is a
// retryable timeout, and the POST is given up.
func TestTimeoutIsRetryable(t *testing.T) {
	release := make(chan struct{})
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done(): // the client gave up
		case <-release:
		}
	}))
	defer slow.Close()
	defer close(release)
	b, err := New("am", Options{URLs: []string{slow.URL}}, 50*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	_, err = b.Open(context.Background(), ticket("h"))
	reason, retry, _ := ticketing.Classify(err)
	if err == nil || !retry || reason != "timeout" {
		t.Fatalf("Open against an Alertmanager that does not answer: %v (reason %q, retryable %v); want a retryable timeout", err, reason, retry)
	}
	if b.Active() != 0 {
		t.Error("an alert no Alertmanager accepted is kept firing")
	}
}

func TestOneOfManyAccepts(t *testing.T) {
	ok, down := newFakeAM(t), newFakeAM(t)
	down.failWith(503)
	dead := httpDead(t)
	b := newBackend(t, Options{URLs: []string{down.URL, dead, ok.URL}})
	if _, err := b.Open(context.Background(), ticket("h")); err != nil {
		t.Fatalf("one Alertmanager accepted, yet: %v", err)
	}
	if len(ok.all()) != 1 || b.Partial() != 1 {
		t.Errorf("posts %d, partial %d", len(ok.all()), b.Partial())
	}
	b2 := newBackend(t, Options{URLs: []string{down.URL, dead}})
	_, err := b2.Open(context.Background(), ticket("h"))
	if _, retry, _ := ticketing.Classify(err); err == nil || !retry {
		t.Errorf("all down: %v, want retryable", err)
	}
}

func httpDead(t *testing.T) string {
	f := newFakeAM(t)
	u := f.URL
	f.Close()
	return u
}

func TestResendLoop(t *testing.T) {
	f := newFakeAM(t)
	b, err := New("am", Options{URLs: []string{f.URL}, ResendInterval: configs.Duration(50 * time.Millisecond)}, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	ref, err := b.Open(context.Background(), ticket("h1"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.Open(context.Background(), ticket("h2")); err != nil {
		t.Fatal(err)
	}
	if err := b.Resolve(context.Background(), ref, ""); err != nil {
		t.Fatal(err)
	}
	time.Sleep(300 * time.Millisecond)
	_ = b.Close()
	n := len(f.all())
	if n < 5 {
		t.Errorf("%d posts in 300ms with resend_interval 50ms", n)
	}
	for _, p := range f.all()[3:] {
		if len(p) != 1 || p[0].Labels["host"] != "h2" {
			t.Errorf("re-sent %+v, want only the firing h2", p)
		}
	}
	time.Sleep(150 * time.Millisecond)
	if len(f.all()) != n {
		t.Error("re-sent after Close")
	}
}

func TestExampleConfigChecks(t *testing.T) {
	amtool := testenv.Need(t, "amtool")
	cmd := exec.Command(amtool, "check-config", "../../deploy/prometheus/alertmanager.yml")
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		t.Fatalf("amtool check-config: %v\n%s", err, out.String())
	}
	if !strings.Contains(out.String(), "SUCCESS") {
		t.Errorf("amtool: %s", out.String())
	}
	for tier, want := range map[string]string{"L2": "l2-team", "L3": "l3-team", "L4": "l3-team"} {
		out, err := exec.Command(amtool, "config", "routes", "test", "--config.file=../../deploy/prometheus/alertmanager.yml",
			"tier="+tier, "check=disk", "alertname=l2agent_used_percent").Output()
		if err != nil || strings.TrimSpace(string(out)) != want {
			t.Errorf("tier %s routed to %q (%v), want %s", tier, out, err, want)
		}
	}
}

// TestErrorsHidePassword: a proxy in front of Alertmanager that echoes the
// request's Authorization header and password in its error page never gets
// them into the error.
func TestErrorsHidePassword(t *testing.T) {
	const password = "am-pass-7d1c"
	pw := filepath.Join(t.TempDir(), "pw")
	if err := os.WriteFile(pw, []byte(password+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, pass, _ := r.BasicAuth()
		http.Error(w, "denied: Authorization: "+r.Header.Get("Authorization")+" password="+pass, http.StatusForbidden)
	}))
	defer srv.Close()
	b := newBackend(t, Options{URLs: []string{srv.URL}, Username: "agent", PasswordFile: pw})
	_, err := b.Open(context.Background(), ticket("h"))
	if err == nil {
		t.Fatal("a 403 accepted")
	}
	basic := base64.StdEncoding.EncodeToString([]byte("agent:" + password))
	if msg := err.Error(); strings.Contains(msg, password) || strings.Contains(msg, basic) || !strings.Contains(msg, "Authorization: Basic <secret> password=<secret>") {
		t.Errorf("error quotes the credentials: %s", msg)
	}
}
