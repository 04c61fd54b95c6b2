package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/l2agent/l2agent/agent"
	"github.com/l2agent/l2agent/internal/alert"
	"github.com/l2agent/l2agent/remediate"
)

const remediateUsage = `Usage:
  l2agent remediate list [--config FILE]                       actions, their policy, the rules that run them, last runs
  l2agent remediate plan [--config FILE] [--alert KEY] ACTION  what ACTION would do now (changes nothing)
  l2agent remediate run [--config FILE] [--alert KEY] --yes ACTION
                                                               run ACTION now, under the same policy and audit
`

// remediateArgs are the flags and the action of a remediate subcommand.
type remediateArgs struct {
	sub, config, alertKey, action string
	yes                           bool
}

// parseRemediate parses a remediate subcommand's flags: list takes
// --config, plan also --alert and an ACTION, run also --yes. done is true
// when the command is to end with code.
func parseRemediate(args []string, stdout, stderr io.Writer) (ra remediateArgs, done bool, code int) {
	if len(args) == 0 {
		fmt.Fprint(stderr, remediateUsage)
		return ra, true, 2
	}
	ra.sub = args[0]
	var synopsis string
	switch ra.sub {
	case "-h", "--help", "help":
		fmt.Fprint(stdout, remediateUsage)
		return ra, true, 0
	case "list":
		synopsis = "remediate list [--config FILE]"
	case "plan":
		synopsis = "remediate plan [--config FILE] [--alert KEY] ACTION"
	case "run":
		synopsis = "remediate run [--config FILE] [--alert KEY] --yes ACTION"
	default:
		fmt.Fprintf(stderr, "l2agent remediate: unknown subcommand %q\n%s", ra.sub, remediateUsage)
		return ra, true, 2
	}
	fs := newFlags("remediate "+ra.sub, synopsis, stdout, stderr)
	fs.StringVar(&ra.config, "config", "", "config file (default: the embedded default)")
	if ra.sub != "list" {
		fs.StringVar(&ra.alertKey, "alert", "", `the alert to act for, as an alert key: host/check/metric{label="value",...}`)
	}
	if ra.sub == "run" {
		fs.BoolVar(&ra.yes, "yes", false, "really run it (without it, nothing runs: see 'remediate plan')")
	}
	if done, code := parse(fs, args[1:], stdout); done {
		return ra, true, code
	}
	switch {
	case ra.sub == "list" && fs.NArg() > 0:
		fmt.Fprintf(stderr, "l2agent remediate list: unexpected arguments %q\n", fs.Args())
		return ra, true, 2
	case ra.sub != "list" && fs.NArg() != 1:
		fmt.Fprintf(stderr, "l2agent remediate %s: name one ACTION\n%s", ra.sub, remediateUsage)
		return ra, true, 2
	}
	ra.action = fs.Arg(0)
	return ra, false, 0
}

func cmdRemediate(args []string, stdout, stderr io.Writer) int {
	ra, done, code := parseRemediate(args, stdout, stderr)
	if done {
		return code
	}
	a, err := agent.New(agent.Options{ConfigFile: ra.config, Logger: slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))})
	if err != nil {
		fmt.Fprintf(stderr, "l2agent remediate: %v\n", err)
		return 1
	}
	e := a.Remediation()
	if e == nil {
		fmt.Fprint(stderr, "l2agent remediate: the remediation engine could not be set up (see the log above)\n")
		return 1
	}
	if ra.sub == "list" {
		printActions(stdout, e)
		return 0
	}
	al, err := manualAlert(ra.alertKey)
	if err != nil {
		fmt.Fprintf(stderr, "l2agent remediate: %v\n", err)
		return 2
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Minute)
	defer cancel()
	if ra.sub == "plan" {
		p, err := e.Plan(ctx, ra.action, al)
		if err != nil {
			fmt.Fprintf(stderr, "l2agent remediate plan: %v\n", err)
			return 1
		}
		fmt.Fprintln(stdout, p.Text)
		return 0
	}
	if !ra.yes {
		fmt.Fprint(stderr, "l2agent remediate run: add --yes to really run it (see `remediate plan` for what it would do)\n")
		return 2
	}
	at, attempted := e.Run(ctx, ra.action, al, nil)
	fmt.Fprintf(stdout, "%s: %s\n", at.Action, at.Result)
	if at.Plan != "" {
		fmt.Fprintf(stdout, "plan: %s\n", at.Plan)
	}
	if at.Output != "" {
		fmt.Fprintf(stdout, "output:\n%s\n", at.Output)
	}
	if !attempted || !strings.HasPrefix(at.Result, remediate.ResultSuccess) && !strings.HasPrefix(at.Result, remediate.ResultNotVerified) {
		return 1
	}
	return 0
}

// printActions lists the remediation actions, their policy and last run.
func printActions(stdout io.Writer, e *remediate.Engine) {
	tw := tabwriter.NewWriter(stdout, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ACTION\tENABLED\tDRY-RUN\tRULES\tLAST RUN")
	for _, ai := range e.Actions() {
		last := "-"
		if len(ai.LastRuns) > 0 {
			r := ai.LastRuns[0]
			last = fmt.Sprintf("%s %s %s", r.Time.Local().Format(time.DateTime), r.Result, r.Alert.Key)
		}
		rules := make([]string, len(ai.Rules))
		for i, r := range ai.Rules {
			rules[i] = fmt.Sprint(r)
		}
		fmt.Fprintf(tw, "%s\t%v\t%v\t%s\t%s\n", ai.Name, ai.Policy.Enabled, ai.DryRun, orDash(strings.Join(rules, ",")), last)
	}
	tw.Flush()
}

// manualAlert is the alert a run by hand acts for: crit, and the alert of
// key when one is given.
func manualAlert(key string) (alert.Alert, error) {
	if key == "" {
		return alert.Alert{State: alert.StateCrit}, nil
	}
	host, check, metric, labels, err := alert.ParseKey(key)
	if err != nil {
		return alert.Alert{}, err
	}
	return alert.Alert{Key: key, Host: host, Check: check, Metric: metric, Labels: labels, State: alert.StateCrit}, nil
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
