package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/l2agent/l2agent/configs"
	"github.com/l2agent/l2agent/deploy/testenv"
	"github.com/l2agent/l2agent/ticketing"
)

// probeOptions configure the test_probe kind: a backend that checks names
// step by step and on its ticket (as Jira does), registered by this test
// file only.
type probeOptions struct {
	FailAt  string `yaml:"fail_at"` // the check that the service refuses
	NoFind  bool   `yaml:"no_find"` // Find never finds (a broken lookup)
	ErrOnly bool   `yaml:"err_only"`
}

func (*probeOptions) ApplyDefaults(string)            {}
func (*probeOptions) Validate(string, configs.Errorf) {}
func (o *probeOptions) check(what string) error {
	if o.FailAt == what {
		return errors.New("the service refuses " + what)
	}
	return nil
}

type probe struct {
	o     probeOptions
	mu    sync.Mutex
	state map[string]string
}

func (p *probe) Preflight(_ context.Context, step func(string, error) bool) bool {
	for _, what := range []string{"project OPS", "priorities High, Highest", "components Linux"} {
		if !step(what, p.o.check(what)) {
			return false
		}
	}
	return true
}

func (p *probe) CheckTicket(_ context.Context, r ticketing.Ref, step func(string, error) bool) bool {
	p.mu.Lock()
	st := p.state[r.ID]
	p.mu.Unlock()
	if st == "resolved" {
		return step("transition_reopen from "+st, p.o.check("reopen"))
	}
	return step("transition_resolve from "+st, p.o.check("resolve")) && step("transition_escalate from "+st, p.o.check("escalate"))
}

func (p *probe) set(id, st string) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.state[id] = st
	return nil
}

func (p *probe) Find(_ context.Context, key string) (ticketing.Ref, bool, error) {
	if p.o.NoFind {
		return ticketing.Ref{}, false, nil
	}
	return ticketing.Ref{ID: "1"}, true, nil
}
func (p *probe) Open(context.Context, ticketing.Ticket) (ticketing.Ref, error) {
	return ticketing.Ref{ID: "1"}, p.set("1", "open")
}
func (p *probe) Comment(context.Context, ticketing.Ref, string) error { return nil }
func (p *probe) Escalate(context.Context, ticketing.Ref, ticketing.Tier, ticketing.Ticket) error {
	return nil
}
func (p *probe) Resolve(_ context.Context, r ticketing.Ref, _ string) error {
	return p.set(r.ID, "resolved")
}
func (p *probe) Reopen(_ context.Context, r ticketing.Ref, _ string) error {
	return p.set(r.ID, "open")
}

// errProbe checks its names in one call, as ServiceNow's Preflight.
type errProbe struct{ *probe }

func (p errProbe) Preflight(context.Context) error { return p.o.check("names") }

func init() {
	ticketing.Register("test_probe", func(b configs.Backend) (ticketing.Ticketer, error) {
		p := &probe{o: *b.Options.(*probeOptions), state: map[string]string{}}
		if p.o.ErrOnly {
			return errProbe{p}, nil
		}
		return p, nil
	}, func() configs.Options { return &probeOptions{} })
}

func probeConfig(t *testing.T, block string) string {
	t.Helper()
	dir := t.TempDir()
	cfg := filepath.Join(dir, "agent.yaml")
	require.NoError(t, os.WriteFile(cfg, []byte(fmt.Sprintf("state_dir: %s\nlisten_address: 127.0.0.1:%d\nticketing:\n  backends:\n    - {name: p, kind: test_probe, test_probe: {%s}}\n",
		dir, testenv.FreePort(t), block)), 0o600))
	return cfg
}

// tickets test checks every name before it opens anything, stops at the
// first the service refuses, checks the transitions on the open ticket and
// on the resolved one, and fails when the ticket just opened is not found.
func TestTicketsTestChecksNames(t *testing.T) {
	code, out, errs := runCLI("tickets", "test", "--config", probeConfig(t, ""), "p")
	require.Equal(t, 0, code, errs)
	require.Equal(t, `project OPS: ok
priorities High, Highest: ok
components Linux: ok
open: ok
ticket #1 
find: ok
transition_resolve from open: ok
transition_escalate from open: ok
comment: ok
resolve: ok
transition_reopen from resolved: ok
`, out)

	code, out, errs = runCLI("tickets", "test", "--config", probeConfig(t, `fail_at: "priorities High, Highest"`), "p")
	require.Equal(t, 1, code)
	require.Equal(t, "project OPS: ok\n", out, "nothing opened")
	require.Contains(t, errs, "priorities High, Highest: FAILED: the service refuses priorities High, Highest")

	code, out, errs = runCLI("tickets", "test", "--config", probeConfig(t, "fail_at: escalate"), "p")
	require.Equal(t, 1, code, out)
	require.Contains(t, errs, "transition_escalate from open: FAILED")

	code, _, errs = runCLI("tickets", "test", "--config", probeConfig(t, "no_find: true"), "p")
	require.Equal(t, 1, code)
	require.Contains(t, errs, "find: FAILED: the ticket just opened (#1) is not found by its key")

	code, out, errs = runCLI("tickets", "test", "--config", probeConfig(t, "err_only: true, fail_at: names"), "p")
	require.Equal(t, 1, code, out)
	require.Contains(t, errs, "names the config uses: FAILED: the service refuses names")
	require.NotContains(t, out, "open")
}

// PagerDuty: the routing keys are checked with change events, which page
// no one; the test alert (which pages) is sent only with --yes.
func TestTicketsTestPagerDutyDoesNotPage(t *testing.T) {
	var mu sync.Mutex
	var got []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var e struct {
			RoutingKey  string `json:"routing_key"`
			EventAction string `json:"event_action"`
		}
		body, _ := io.ReadAll(r.Body)
		_ = json.Unmarshal(body, &e)
		mu.Lock()
		got = append(got, strings.Join(strings.Fields(r.URL.Path+" "+e.EventAction+" "+e.RoutingKey[:2]), " "))
		mu.Unlock()
		w.WriteHeader(http.StatusAccepted)
		w.Write([]byte(`{"status":"success","message":"Event processed"}`))
	}))
	defer srv.Close()
	t.Setenv("PD_L2", "a2345678901234567890123456789012")
	t.Setenv("PD_L3", "b2345678901234567890123456789012")
	dir := t.TempDir()
	cfg := filepath.Join(dir, "agent.yaml")
	require.NoError(t, os.WriteFile(cfg, []byte(fmt.Sprintf("state_dir: %s\nlisten_address: 127.0.0.1:%d\nticketing:\n  backends:\n    - name: pd\n      kind: pagerduty\n      pagerduty:\n        url: %s/v2/enqueue\n        routing_key: ${PD_L2}\n        routing_key_l3: ${PD_L3}\n",
		dir, testenv.FreePort(t), srv.URL)), 0o600))

	code, out, errs := runCLI("tickets", "test", "--config", cfg, "pd")
	require.Equal(t, 0, code, errs)
	require.Contains(t, out, "routing key L2 (a change event on its service; nothing is paged): ok")
	require.Contains(t, out, "not opening a test ticket: in pd (pagerduty) opening one pages the on-call")
	require.Equal(t, []string{"/v2/change/enqueue a2", "/v2/change/enqueue b2"}, got)

	got = nil
	code, out, errs = runCLI("tickets", "test", "--yes", "--config", cfg, "pd")
	require.Equal(t, 0, code, errs)
	require.Contains(t, out, "find: not checked")
	require.Equal(t, []string{"/v2/change/enqueue a2", "/v2/change/enqueue b2", "/v2/enqueue trigger a2", "/v2/change/enqueue a2",
		"/v2/enqueue resolve a2", "/v2/enqueue resolve b2"}, got)
}
