package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net/http"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/l2agent/l2agent/agent"
	"github.com/l2agent/l2agent/configs"
	"github.com/l2agent/l2agent/internal/textfmt"
	"github.com/l2agent/l2agent/ticketing"
)

const historySynopsis = "tickets history [--config FILE] [--json] [KEY-or-CHECK]"

// cmdTicketsHistory lists the incidents that ended (the store's history),
// newest first: all of them, those of one alert key, or of one check.
func cmdTicketsHistory(args []string, stdout, stderr io.Writer) int {
	fs := newFlags("tickets history", historySynopsis, stdout, stderr)
	cfgFile := fs.String("config", "", "config file (default: the embedded default)")
	asJSON := fs.Bool("json", false, "print JSON instead of a table")
	if done, code := parse(fs, args, stdout); done {
		return code
	}
	if fs.NArg() > 1 {
		fmt.Fprintf(stderr, "l2agent tickets history: unexpected arguments %q\n", fs.Args()[1:])
		return 2
	}
	cfg, err := configs.Load(*cfgFile)
	if err != nil {
		fmt.Fprintf(stderr, "l2agent tickets history: config rejected:\n%v\n", err)
		return 1
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	hist, err := readHistory(ctx, cfg, cliLogger(stderr, slog.LevelWarn))
	if err != nil {
		fmt.Fprintf(stderr, "l2agent tickets history: %v\n", err)
		return 1
	}
	hist = selectHistory(hist, fs.Arg(0))
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(hist); err != nil {
			fmt.Fprintf(stderr, "l2agent tickets history: %v\n", err)
			return 1
		}
		return 0
	}
	printHistory(stdout, hist)
	return 0
}

// readHistory reads the store's history: directly (read-only) when no agent
// holds the store, else from the running agent.
func readHistory(ctx context.Context, cfg *configs.Config, log *slog.Logger) ([]ticketing.PastIncident, error) {
	store, err := ticketing.OpenStore(agent.StateDir(cfg)+"/"+agent.StoreFile, true, log)
	if err == nil {
		defer store.Close()
		return store.History(log)
	}
	if !errors.Is(err, ticketing.ErrStoreLocked) {
		return nil, err
	}
	var hist []ticketing.PastIncident
	ok, derr := fromDaemon(ctx, cfg, http.MethodGet, "/api/v1/tickets/history", &hist)
	if derr != nil {
		return nil, derr
	}
	if !ok {
		return nil, err
	}
	return hist, nil
}

// selectHistory keeps the records of the alert key or check what (all when
// empty), newest first.
func selectHistory(hist []ticketing.PastIncident, what string) []ticketing.PastIncident {
	out := make([]ticketing.PastIncident, 0, len(hist))
	for i := len(hist) - 1; i >= 0; i-- {
		if what == "" || hist[i].Key == what || hist[i].Check == what {
			out = append(out, hist[i])
		}
	}
	return out
}

func printHistory(w io.Writer, hist []ticketing.PastIncident) {
	tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "BEGAN (UTC)\tDURATION\tOUTCOME\tSEVERITY\tTIER\tKEY\tTICKETS\tATTEMPTS")
	for _, p := range hist {
		var tickets []string
		for _, b := range slices.Sorted(maps.Keys(p.Refs)) {
			tickets = append(tickets, b+" "+p.Refs[b].Label())
		}
		var attempts []string
		for _, a := range p.Attempts {
			attempts = append(attempts, a.Action+": "+a.Result)
		}
		tier := "-"
		if p.Tier != 0 {
			tier = p.Tier.String()
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", p.Began.UTC().Format("2006-01-02 15:04"), textfmt.Duration(p.Duration()), p.Outcome, p.Severity, tier, p.Key,
			orDash(strings.Join(tickets, ", ")), orDash(textfmt.Head(strings.Join(attempts, "; "), 120)))
	}
	tw.Flush()
}
