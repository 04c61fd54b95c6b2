package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/l2agent/l2agent/agent"
	"github.com/l2agent/l2agent/configs"
	"github.com/l2agent/l2agent/internal/textfmt"
	"github.com/l2agent/l2agent/ticketing"
)

// cmdDeadLetters runs `tickets deadletters [BACKEND]` and `tickets replay
// BACKEND (--all | SEQ…)`: through the running agent when one answers,
// else on the store itself.
func cmdDeadLetters(sub string, args []string, stdout, stderr io.Writer) int {
	synopsis := "tickets deadletters [--config FILE] [--json] [BACKEND]"
	if sub == "replay" {
		synopsis = "tickets replay [--config FILE] BACKEND (--all | SEQ...)"
	}
	fs := newFlags("tickets "+sub, synopsis, stdout, stderr)
	cfgFile := fs.String("config", "", "config file (default: the embedded default)")
	asJSON := fs.Bool("json", false, "print JSON instead of a table (deadletters)")
	all := fs.Bool("all", false, "replay every dead letter of BACKEND (replay)")
	if done, code := parse(fs, args, stdout); done {
		return code
	}
	cfg, err := configs.Load(*cfgFile)
	if err != nil {
		fmt.Fprintf(stderr, "l2agent tickets %s: config rejected:\n%v\n", sub, err)
		return 1
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if sub == "deadletters" {
		if fs.NArg() > 1 {
			fmt.Fprintf(stderr, "l2agent tickets deadletters: name at most one BACKEND, not %q\n", fs.Args())
			return 2
		}
		return deadLettersList(ctx, cfg, fs.Arg(0), *asJSON, stdout, stderr)
	}
	if fs.NArg() == 0 || *all == (fs.NArg() > 1) {
		fmt.Fprint(stderr, "l2agent tickets replay: name a BACKEND, then --all or the numbers (SEQ) of its dead letters (l2agent tickets deadletters BACKEND)\n")
		return 2
	}
	var seqs []uint64
	for _, a := range fs.Args()[1:] {
		n, err := strconv.ParseUint(a, 10, 64)
		if err != nil {
			fmt.Fprintf(stderr, "l2agent tickets replay: %q is not the number of a dead letter\n", a)
			return 2
		}
		seqs = append(seqs, n)
	}
	return deadLettersReplay(ctx, cfg, fs.Arg(0), seqs, stdout, stderr)
}

func storePath(cfg *configs.Config) string { return agent.StateDir(cfg) + "/" + agent.StoreFile }

func deadLettersList(ctx context.Context, cfg *configs.Config, backend string, asJSON bool, stdout, stderr io.Writer) int {
	var doc agent.DeadLetters
	ok, err := fromDaemon(ctx, cfg, http.MethodGet, "/api/v1/tickets/deadletters?"+url.Values{"backend": {backend}}.Encode(), &doc)
	if err == nil && !ok {
		doc.DeadLetters, err = withStore(cfg, true, func(s *ticketing.Store) ([]ticketing.DeadLetter, error) { return s.DeadLetters(backend) })
	}
	if err != nil {
		fmt.Fprintf(stderr, "l2agent tickets deadletters: %v\n", err)
		return 1
	}
	if asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if doc.DeadLetters == nil {
			doc.DeadLetters = []ticketing.DeadLetter{}
		}
		if err := enc.Encode(doc); err != nil {
			fmt.Fprintf(stderr, "l2agent tickets deadletters: %v\n", err)
			return 1
		}
		return 0
	}
	if len(doc.DeadLetters) == 0 {
		fmt.Fprintln(stdout, "no dead letters")
		return 0
	}
	now := time.Now()
	tw := tabwriter.NewWriter(stdout, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "BACKEND\tSEQ\tOP\tKEY\tAGE\tREASON")
	for _, d := range doc.DeadLetters {
		age := "-"
		if !d.Op.DeadAt.IsZero() {
			age = textfmt.Duration(now.Sub(d.Op.DeadAt))
		}
		reason := strings.ReplaceAll(d.Op.Dead, "\n", " ")
		fmt.Fprintf(tw, "%s\t%d\t%s\t%s\t%s\t%s\n", d.Backend, d.Seq, d.Op.Kind, d.Op.Key, age, textfmt.Head(reason, 200))
	}
	tw.Flush()
	fmt.Fprintln(stdout, "once the cause is fixed: l2agent tickets replay BACKEND --all (or the SEQ numbers)")
	return 0
}

func deadLettersReplay(ctx context.Context, cfg *configs.Config, backend string, seqs []uint64, stdout, stderr io.Writer) int {
	q := url.Values{"backend": {backend}}
	for _, s := range seqs {
		q.Add("seq", strconv.FormatUint(s, 10))
	}
	if len(seqs) == 0 {
		q.Set("all", "1")
	}
	var doc agent.DeadLetters
	ok, err := fromDaemon(ctx, cfg, http.MethodPost, "/api/v1/tickets/replay?"+q.Encode(), &doc)
	var refused *daemonError
	if errors.As(err, &refused) && (refused.status == http.StatusForbidden || refused.status == http.StatusUnauthorized) {
		fmt.Fprintf(stderr, "l2agent tickets replay: the agent running at %s refuses POST /api/v1/tickets/replay (%s): %s\n"+
			"Run this command as root or a member of the config's api.group (it then asks over the API socket), or use basic auth\n"+
			"(curl -u USER -X POST 'http://%s/api/v1/tickets/replay?%s'),\n"+
			"or stop the agent, run this command again (it then moves them in the store), and start the agent.\n",
			refused.addr, refused.text, refused.body, refused.addr, q.Encode())
		return 1
	}
	if err == nil && !ok {
		doc.DeadLetters, err = withStore(cfg, false, func(s *ticketing.Store) ([]ticketing.DeadLetter, error) { return s.Replay(backend, seqs) })
	}
	if err != nil {
		fmt.Fprintf(stderr, "l2agent tickets replay: %v\n", err)
		return 1
	}
	for _, d := range doc.DeadLetters {
		fmt.Fprintf(stdout, "%s %d: %s %s back in the outbox\n", d.Backend, d.Seq, d.Op.Kind, d.Op.Key)
	}
	if ok {
		fmt.Fprintf(stdout, "%d operation(s) replayed; the running agent delivers them now, in order\n", len(doc.DeadLetters))
	} else {
		fmt.Fprintf(stdout, "%d operation(s) replayed; delivered when the agent starts, or now with: l2agent tickets flush\n", len(doc.DeadLetters))
	}
	return 0
}

// withStore runs f on the store, opened by this command because no agent
// runs (read-only unless write).
func withStore(cfg *configs.Config, readOnly bool, f func(*ticketing.Store) ([]ticketing.DeadLetter, error)) ([]ticketing.DeadLetter, error) {
	s, err := ticketing.OpenStore(storePath(cfg), readOnly, slog.Default())
	if err != nil {
		return nil, err
	}
	defer s.Close()
	return f(s)
}
