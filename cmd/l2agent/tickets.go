package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/l2agent/l2agent/agent"
	"github.com/l2agent/l2agent/configs"
	"github.com/l2agent/l2agent/internal/progress"
	"github.com/l2agent/l2agent/internal/textfmt"
	"github.com/l2agent/l2agent/internal/version"
	"github.com/l2agent/l2agent/ticketing"
)

const ticketsUsage = `Usage:
  l2agent tickets list [--config FILE] [--json]   incidents and their tickets (from the running agent, or the store)
  l2agent tickets flush [--config FILE]           deliver the outbox now; report what remains
  l2agent tickets test [--config FILE] [--yes] BACKEND
                                                  check every name the config uses, then open,
                                                  comment and resolve a test ticket
  l2agent tickets deadletters [--config FILE] [--json] [BACKEND]
                                                  operations a backend refused for good
  l2agent tickets replay [--config FILE] BACKEND (--all | SEQ...)
                                                  move dead letters back into the outbox, in order
  l2agent tickets history [--config FILE] [--json] [KEY-or-CHECK]   incidents that ended, newest first
`

func cmdTickets(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, ticketsUsage)
		return 2
	}
	sub := args[0]
	var synopsis string
	switch sub {
	case "-h", "--help", "help":
		fmt.Fprint(stdout, ticketsUsage)
		return 0
	case "deadletters", "replay":
		return cmdDeadLetters(sub, args[1:], stdout, stderr)
	case "history":
		return cmdTicketsHistory(args[1:], stdout, stderr)
	case "list":
		synopsis = "tickets list [--config FILE] [--json]"
	case "flush":
		synopsis = "tickets flush [--config FILE]"
	case "test":
		synopsis = "tickets test [--config FILE] [--yes] BACKEND"
	default:
		fmt.Fprintf(stderr, "l2agent tickets: unknown subcommand %q\n%s", sub, ticketsUsage)
		return 2
	}
	fs := newFlags("tickets "+sub, synopsis, stdout, stderr)
	cfgFile := fs.String("config", "", "config file (default: the embedded default)")
	var asJSON, yes *bool
	if sub == "list" {
		asJSON = fs.Bool("json", false, "print JSON instead of a table")
	}
	if sub == "test" {
		yes = fs.Bool("yes", false, "open the test ticket even where that pages someone (PagerDuty)")
	}
	if done, code := parse(fs, args[1:], stdout); done {
		return code
	}
	if want := map[string]int{"list": 0, "flush": 0, "test": 1}[sub]; fs.NArg() != want {
		if sub == "test" {
			fmt.Fprint(stderr, "l2agent tickets test: name one BACKEND from the config\n")
		} else {
			fmt.Fprintf(stderr, "l2agent tickets %s: unexpected arguments %q\n", sub, fs.Args())
		}
		return 2
	}
	cfg, err := configs.Load(*cfgFile)
	if err != nil {
		fmt.Fprintf(stderr, "l2agent tickets: config rejected:\n%v\n", err)
		return 1
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	switch sub {
	case "list":
		return ticketsList(ctx, cfg, *asJSON, stdout, stderr)
	case "flush":
		return ticketsFlush(ctx, cfg, cliLogger(stderr, slog.LevelInfo), stdout, stderr)
	}
	return ticketsTest(ctx, cfg, fs.Arg(0), *yes, cliLogger(stderr, slog.LevelWarn), stdout, stderr)
}

// defaultRuntimeSocket is where the systemd unit's agent listens
// (RuntimeDirectory=l2agent): the CLI, run from a shell without
// $RUNTIME_DIRECTORY, looks there too.
const defaultRuntimeSocket = "/run/l2agent/" + configs.APISocketName

// apiSockets are the paths where the running agent's API socket may be, in
// order: api.socket, else $RUNTIME_DIRECTORY's or the state dir's, then the
// systemd unit's.
func apiSockets(cfg *configs.Config) []string {
	out := []string{agent.APISocket(cfg)}
	if cfg.API.Socket == "" && out[0] != defaultRuntimeSocket {
		out = append(out, defaultRuntimeSocket)
	}
	return out
}

// dialAgent connects to the running agent's API socket; "" and no error
// when none listens. A socket this user may not use is an error that says
// who may.
func dialAgent(ctx context.Context, cfg *configs.Config) (net.Conn, string, error) {
	var d net.Dialer
	for _, path := range apiSockets(cfg) {
		c, err := d.DialContext(ctx, "unix", path)
		if err == nil {
			return c, path, nil
		}
		if errors.Is(err, os.ErrPermission) {
			return nil, path, fmt.Errorf("the running agent's API socket %s is for root and the members of the config's api.group (%q): %w", path, cfg.API.Group, err)
		}
	}
	return nil, "", nil // not running (no socket, or a stale one)
}

// fromDaemon asks the running agent through its API socket; ok is false
// when none answers.
func fromDaemon(ctx context.Context, cfg *configs.Config, method, path string, v any) (bool, error) {
	conn, sock, err := dialAgent(ctx, cfg)
	if err != nil || conn == nil {
		return false, err
	}
	used := false
	client := &http.Client{Timeout: time.Minute, Transport: &http.Transport{
		DialContext: func(context.Context, string, string) (net.Conn, error) {
			if used {
				return nil, errors.New("one request per connection")
			}
			used = true
			return conn, nil
		},
		DisableKeepAlives: true,
	}}
	req, err := http.NewRequestWithContext(ctx, method, "http://l2agent"+path, nil)
	if err != nil {
		conn.Close()
		return false, err
	}
	req.Header.Set("User-Agent", version.UserAgent())
	resp, err := client.Do(req)
	if err != nil {
		return true, fmt.Errorf("agent at %s: %s %s: %w", sock, method, path, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		return true, &daemonError{addr: sock, status: resp.StatusCode, text: resp.Status, body: strings.TrimSpace(string(body))}
	}
	return true, json.Unmarshal(body, v)
}

// daemonError is the running agent's refusal.
type daemonError struct {
	addr, text, body string
	status           int
}

func (e *daemonError) Error() string {
	return fmt.Sprintf("agent at %s: %s: %s", e.addr, e.text, e.body)
}

func ticketsList(ctx context.Context, cfg *configs.Config, asJSON bool, stdout, stderr io.Writer) int {
	var st agent.TicketsStatus
	ok, err := fromDaemon(ctx, cfg, http.MethodGet, "/api/v1/tickets", &st)
	if err != nil {
		fmt.Fprintf(stderr, "l2agent tickets list: %v\n", err)
		return 1
	}
	if !ok {
		store, err := ticketing.OpenStore(agent.StateDir(cfg)+"/"+agent.StoreFile, true, slog.Default())
		if err != nil {
			fmt.Fprintf(stderr, "l2agent tickets list: %v\n", err)
			return 1
		}
		defer store.Close()
		if st.Incidents, err = store.Incidents(); err != nil {
			fmt.Fprintf(stderr, "l2agent tickets list: %v\n", err)
			return 1
		}
		st.Pending = map[string]int{}
		for _, b := range cfg.Ticketing.Backends {
			st.Pending[b.Name] = store.Pending(b.Name)
		}
	}
	now := time.Now()
	if asJSON {
		return printTicketsJSON(stdout, stderr, st, now)
	}
	tw := tabwriter.NewWriter(stdout, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "KEY\tBACKEND\tTICKET\tTIER\tSTATE\tSEVERITY\tAGE")
	for _, inc := range st.Incidents {
		state := "resolved"
		if inc.Open {
			state = "open"
			if inc.Flapping {
				state = "open (flapping)"
			}
		}
		backends := make([]string, 0, len(inc.Refs))
		for b := range inc.Refs {
			backends = append(backends, b)
		}
		sort.Strings(backends)
		if len(backends) == 0 {
			backends = []string{"-"}
		}
		for _, b := range backends {
			ref := "(queued)"
			if r, ok := inc.Refs[b]; ok {
				ref = r.Label()
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", inc.Key, b, ref, inc.Tier, state, inc.Severity, textfmt.Duration(now.Sub(inc.Opened)))
		}
	}
	tw.Flush()
	for b, n := range st.Pending {
		if n > 0 {
			fmt.Fprintf(stdout, "outbox %s: %d operation(s) waiting\n", b, n)
		}
	}
	return 0
}

// listedIncident is an incident of `tickets list --json`: as the agent
// serves it, with its age in exact seconds (the table shows it rounded).
type listedIncident struct {
	ticketing.Incident
	AgeSeconds float64 `json:"age_seconds"`
}

func printTicketsJSON(stdout, stderr io.Writer, st agent.TicketsStatus, now time.Time) int {
	doc := struct {
		Incidents []listedIncident `json:"incidents"`
		Pending   map[string]int   `json:"pending"`
	}{Pending: st.Pending}
	for _, inc := range st.Incidents {
		doc.Incidents = append(doc.Incidents, listedIncident{Incident: inc, AgeSeconds: now.Sub(inc.Opened).Seconds()})
	}
	enc := json.NewEncoder(stdout)
	enc.SetIndent("", "  ")
	if err := enc.Encode(doc); err != nil {
		fmt.Fprintf(stderr, "l2agent tickets list: %v\n", err)
		return 1
	}
	return 0
}

func ticketsFlush(ctx context.Context, cfg *configs.Config, log *slog.Logger, stdout, stderr io.Writer) int {
	var res struct {
		Pending map[string]int `json:"pending"`
	}
	task := progress.Start(log, "outbox delivery", "agent", "running")
	ok, err := fromDaemon(ctx, cfg, http.MethodPost, "/api/v1/tickets/flush", &res)
	if ok {
		task.End()
	} else {
		task.Forget() // none runs: this command delivers the store itself
	}
	if err != nil {
		fmt.Fprintf(stderr, "l2agent tickets flush: %v\n", err)
		return 1
	}
	if !ok {
		a, err := agent.New(agent.Options{Logger: log})
		if err != nil {
			fmt.Fprintf(stderr, "l2agent tickets flush: %v\n", err)
			return 1
		}
		svc, err := a.OpenTicketing(cfg)
		if err != nil {
			fmt.Fprintf(stderr, "l2agent tickets flush: %v\n", err)
			return 1
		}
		defer svc.Stop()
		task := progress.Start(log, "outbox delivery")
		res.Pending = svc.Flush(ctx)
		task.End()
	}
	code := 0
	names := make([]string, 0, len(res.Pending))
	for n := range res.Pending {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(stdout, "%s: %d operation(s) remain\n", n, res.Pending[n])
		if res.Pending[n] > 0 {
			code = 1
		}
	}
	return code
}

// Optional abilities of a backend that `tickets test` uses.
type (
	// stepPreflighter checks the names the config uses, step by step
	// (Jira, RT, PagerDuty).
	stepPreflighter interface {
		Preflight(ctx context.Context, step func(what string, err error) bool) bool
	}
	// errPreflighter checks them in one call (ServiceNow).
	errPreflighter interface {
		Preflight(ctx context.Context) error
	}
	// ticketChecker checks what the config names on a ticket's state
	// (Jira: the transitions its status offers).
	ticketChecker interface {
		CheckTicket(ctx context.Context, r ticketing.Ref, step func(what string, err error) bool) bool
	}
	// pager: opening a ticket pages someone (PagerDuty).
	pager interface{ Pages() bool }
)

// noLookup are the kinds that cannot look a ticket up by key: their Find
// never finds, by design.
var noLookup = map[string]bool{"webhook": true, "pagerduty": true, "alertmanager": true}

func ticketsTest(ctx context.Context, cfg *configs.Config, name string, yes bool, log *slog.Logger, stdout, stderr io.Writer) int {
	var bc *configs.Backend
	for i := range cfg.Ticketing.Backends {
		if cfg.Ticketing.Backends[i].Name == name {
			bc = &cfg.Ticketing.Backends[i]
		}
	}
	if bc == nil {
		fmt.Fprintf(stderr, "l2agent tickets test: no ticketing backend named %q in the config\n", name)
		return 2
	}
	b, err := ticketing.NewBackend(*bc)
	if err != nil {
		fmt.Fprintf(stderr, "l2agent tickets test: %v\n", err)
		return 1
	}
	// report prints one check's outcome; step runs one operation, shown
	// while it takes a second or more.
	report := func(what string, err error) bool {
		if err != nil {
			fmt.Fprintf(stderr, "%s: FAILED: %v\n", what, err)
			return false
		}
		fmt.Fprintf(stdout, "%s: ok\n", what)
		return true
	}
	step := func(what string, op func() error) bool {
		task := progress.Start(log, "tickets test", "backend", name, "step", what)
		err := op()
		task.End()
		return report(what, err)
	}
	switch p := b.(type) {
	case stepPreflighter:
		task := progress.Start(log, "tickets test", "backend", name, "step", "checks")
		ok := p.Preflight(ctx, report)
		task.End()
		if !ok {
			return 1
		}
	case errPreflighter:
		if !step("names the config uses", func() error { return p.Preflight(ctx) }) {
			return 1
		}
	}
	if p, ok := b.(pager); ok && p.Pages() && !yes {
		fmt.Fprintf(stdout, "not opening a test ticket: in %s (%s) opening one pages the on-call.\n"+
			"Run 'l2agent tickets test --yes %s' to trigger, comment and resolve a test alert (it pages, and is resolved at once).\n", name, bc.Kind, name)
		return 0
	}
	return testTicket(ctx, b, name, noLookup[bc.Kind], report, step, stdout)
}

// testTicket opens, finds, comments and resolves a test ticket, checking
// on it what the config names (ticketChecker) while it is open and once it
// is resolved.
func testTicket(ctx context.Context, b ticketing.Ticketer, name string, cannotFind bool, report func(string, error) bool, step func(string, func() error) bool, stdout io.Writer) int {
	host, _ := os.Hostname()
	key := fmt.Sprintf("%s/l2agent-test/%d", host, time.Now().Unix())
	ctx = ticketing.WithEvent(ctx, ticketing.Event{Key: key, Seq: 1})
	var ref ticketing.Ref
	if !step("open", func() (err error) {
		ref, err = b.Open(ctx, ticketing.Ticket{Key: key, Title: "[l2agent] " + host + ": test ticket (l2agent tickets test)", Tier: ticketing.L2, Host: host, Check: "l2agent-test", Severity: "warn",
			Body: "A test ticket from `l2agent tickets test " + name + "`, to prove credentials and permissions. It is resolved right away."})
		return err
	}) {
		return 1
	}
	fmt.Fprintf(stdout, "ticket %s %s\n", ref.Label(), ref.URL)
	find := func() error {
		found, ok, err := b.Find(ctx, key)
		switch {
		case err != nil:
			return err
		case !ok:
			return fmt.Errorf("the ticket just opened (#%s) is not found by its key: after a lost answer or state, l2agent would open a second one", ref.ID)
		case found.ID != ref.ID:
			return fmt.Errorf("found #%s, want #%s", found.ID, ref.ID)
		}
		return nil
	}
	ok := true
	if cannotFind {
		fmt.Fprintf(stdout, "find: not checked (this kind cannot look a ticket up by key)\n")
	} else {
		ok = step("find", find)
	}
	checker, _ := b.(ticketChecker)
	ok = ok && (checker == nil || checker.CheckTicket(ctx, ref, report)) &&
		step("comment", func() error { return b.Comment(ctx, ref, "l2agent tickets test: comment") }) &&
		step("resolve", func() error { return b.Resolve(ctx, ref, "l2agent tickets test: resolved") }) &&
		(checker == nil || checker.CheckTicket(ctx, ref, report))
	if !ok {
		return 1
	}
	return 0
}
