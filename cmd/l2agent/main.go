// Command l2agent is the host agent: it checks disk, CPU, memory, patch
// level, antivirus and 2FA on a schedule, exposes the results as Prometheus
// metrics, runs guarded remediations and files tickets. See README.md.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"sort"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/l2agent/l2agent/agent"
	"github.com/l2agent/l2agent/configs"
	"github.com/l2agent/l2agent/internal/alert"
	"github.com/l2agent/l2agent/internal/textfmt"
)

const usage = `l2agent — the proactive Level 2 host agent.

Usage:
  l2agent run [flags]                 run the daemon (embedded default config unless --config)
  l2agent check [--json] [NAME...]    run checks once, print results; exit 0 ok, 1 warn, 2 crit, 3 unknown
  l2agent config validate FILE...     report every error as FILE:LINE:COL: message; exit 1 if any
  l2agent config default              print the embedded default config
  l2agent tickets list|flush|test     incidents and tickets; deliver the outbox; test a backend
  l2agent remediate list|plan|run     remediation actions, their policy and last runs; dry-run; run by hand
  l2agent reload --pid PID            SIGHUP the daemon and wait: exit 1 if it rejects the config
  l2agent remediate-helper            serve one remediation request on stdin (l2agent-remediate.socket)
  l2agent version                     print the version

Run 'l2agent COMMAND --help' for the flags of a command.
`

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	switch args[0] {
	case "run":
		return cmdRun(args[1:], stdout, stderr)
	case "check":
		return cmdCheck(args[1:], stdout, stderr)
	case "config":
		return cmdConfig(args[1:], stdout, stderr)
	case "tickets":
		return cmdTickets(args[1:], stdout, stderr)
	case "remediate":
		return cmdRemediate(args[1:], stdout, stderr)
	case "reload":
		return cmdReload(args[1:], stdout, stderr)
	case "remediate-helper":
		return cmdRemediateHelper(args[1:], stdout, stderr)
	case "version", "--version":
		if done, code := noArgs("version", "Prints the version, the VCS revision and the Go version.", args[1:], stdout, stderr); done {
			return code
		}
		fmt.Fprintln(stdout, agent.BuildVersion())
		return 0
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return 0
	}
	fmt.Fprintf(stderr, "l2agent: unknown command %q\n\n%s", args[0], usage)
	return 2
}

// newFlags makes a flag set whose usage names synopsis; parse prints it
// once: to stdout on --help, to stderr after a flag error.
func newFlags(name, synopsis string, stdout, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "Usage: l2agent %s\n", synopsis)
		n := 0
		fs.VisitAll(func(*flag.Flag) { n++ })
		if n > 0 {
			fmt.Fprint(fs.Output(), "\nFlags:\n")
			fs.PrintDefaults()
		}
	}
	return fs
}

// parse parses args, flags also after the arguments ("tickets test rt
// --config F"); "--" ends the flags. Afterwards fs.Args() holds the
// arguments. done is true when the command is to end with code: after
// --help (usage on stdout, 0) or a bad flag (error and usage on stderr, 2).
func parse(fs *flag.FlagSet, args []string, stdout io.Writer) (done bool, code int) {
	usage := fs.Usage
	fs.Usage = func() {} // the flag package would print it on stderr before we know why
	pos, err := parseInterspersed(fs, args)
	fs.Usage = usage
	switch {
	case errors.Is(err, flag.ErrHelp):
		fs.SetOutput(stdout)
		fs.Usage()
		return true, 0
	case err != nil:
		fs.Usage() // after the error the flag package printed
		return true, 2
	}
	// Leave the arguments in fs.Args(): everything after "--" is one.
	if err := fs.Parse(append([]string{"--"}, pos...)); err != nil {
		return true, 2
	}
	return false, 0
}

// parseInterspersed parses flags wherever they stand among args and returns
// the arguments in order.
func parseInterspersed(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		rest := fs.Args()
		if len(rest) == 0 {
			return pos, nil
		}
		if used := len(args) - len(rest); used > 0 && args[used-1] == "--" {
			return append(pos, rest...), nil
		}
		pos, args = append(pos, rest[0]), rest[1:]
	}
}

// noArgs parses a command that takes no arguments, only --help, which says
// what it does.
func noArgs(name, what string, args []string, stdout, stderr io.Writer) (done bool, code int) {
	fs := newFlags(name, name+"\n\n"+what, stdout, stderr)
	if done, code := parse(fs, args, stdout); done {
		return done, code
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "l2agent %s: unexpected arguments %q\n", name, fs.Args())
		return true, 2
	}
	return false, 0
}

func newLogger(w io.Writer, level, format string) (*slog.Logger, *slog.LevelVar, error) {
	lv := new(slog.LevelVar)
	if err := lv.UnmarshalText([]byte(level)); err != nil {
		return nil, nil, fmt.Errorf("log level %q: want debug, info, warn or error", level)
	}
	opts := &slog.HandlerOptions{Level: lv}
	switch format {
	case "logfmt":
		return slog.New(logHandler(w, opts, textHandler)), lv, nil
	case "json":
		return slog.New(logHandler(w, opts, jsonHandler)), lv, nil
	}
	return nil, nil, fmt.Errorf("log format %q: want logfmt or json", format)
}

func cmdRun(args []string, stdout, stderr io.Writer) int {
	fs := newFlags("run", "run [--config FILE] [--web.listen-address HOST:PORT] [--log.level LEVEL] [--log.format FORMAT] [--path.procfs DIR] [--path.sysfs DIR] [--path.rootfs DIR] [--web.config.file FILE] [--web.enable-lifecycle] [--web.idle-timeout DURATION]", stdout, stderr)
	cfgFile := fs.String("config", "", "config file (default: the embedded default, see 'l2agent config default')")
	listen := fs.String("web.listen-address", "", "address for /metrics and the API (default: listen_address from the config, "+configs.DefaultListenAddress+")")
	level := fs.String("log.level", "", "log level: debug, info, warn, error (default: log.level from the config)")
	format := fs.String("log.format", "", "log format: logfmt or json (default: log.format from the config)")
	paths := pathFlags(fs)
	webConfig := fs.String("web.config.file", "", "exporter-toolkit web config file: TLS and basic auth for the HTTP server (as node_exporter's)")
	lifecycle := fs.Bool("web.enable-lifecycle", false, "allow POST /-/reload over TCP from any client (as Prometheus'); without it only requests authenticated by the basic_auth_users of --web.config.file may; SIGHUP and the API socket reload either way")
	idle := fs.Duration("web.idle-timeout", agent.DefaultIdleTimeout, "close keep-alive HTTP connections idle this long")
	if done, code := parse(fs, args, stdout); done {
		return code
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "l2agent run: unexpected arguments %q\n", fs.Args())
		return 2
	}
	if *idle <= 0 {
		fmt.Fprintf(stderr, "l2agent run: --web.idle-timeout %s: want a positive duration such as 2m\n", *idle)
		return 2
	}
	cfg, err := configs.Load(*cfgFile)
	if err != nil {
		fmt.Fprintf(stderr, "l2agent: config rejected:\n%v\n", err)
		return 1
	}
	if *level == "" {
		*level = cfg.Log.Level
	}
	if *format == "" {
		*format = cfg.Log.Format
	}
	logger, lv, err := newLogger(stderr, *level, *format)
	if err != nil {
		fmt.Fprintf(stderr, "l2agent: %v\n", err)
		return 2
	}
	if fs.Lookup("log.level").Value.String() != "" {
		lv = nil // the flag wins over the config, also on reload
	}
	a, err := agent.New(agent.Options{ConfigFile: *cfgFile, ListenAddress: *listen, Logger: logger, LogLevel: lv, Paths: *paths, WebConfigFile: *webConfig,
		EnableLifecycle: *lifecycle, IdleTimeout: *idle})
	if err != nil {
		logger.Error("cannot start", "err", err)
		return 1
	}
	// Signals are caught before the agent serves: a SIGHUP sent as soon as
	// it answers (its API socket, /-/healthy) is a reload, never the
	// default action (exit).
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGHUP, syscall.SIGTERM, syscall.SIGINT)
	if err := a.Start(true); err != nil {
		logger.Error("cannot start", "err", err)
		return 1
	}
	logger.Info("l2agent started", "version", agent.BuildVersion(), "host", a.Host(), "config", describeConfig(*cfgFile))

	reloads := newReloadReporter(logger) // for `l2agent reload` (ExecReload)
	for sig := range sigs {
		if sig == syscall.SIGHUP {
			logger.Info("SIGHUP: reloading config")
			// Coalesced and rate-limited with POST /-/reload; logged by
			// Reload; a rejected config keeps the old one running.
			reloads.reload(func() error { return a.RequestReload(context.Background()) })
			continue
		}
		logger.Info("stopping", "signal", sig.String())
		ctx, cancel := context.WithTimeout(context.Background(), 4*time.Second)
		err := a.Stop(ctx)
		cancel()
		if err != nil {
			logger.Warn("stopped with work abandoned", "err", err)
		}
		logger.Info("stopped")
		return 0
	}
	return 0
}

// pathFlags adds --path.procfs, --path.sysfs and --path.rootfs, which
// override the config's paths (as node_exporter's flags of the same name).
func pathFlags(fs *flag.FlagSet) *configs.Paths {
	p := &configs.Paths{}
	fs.StringVar(&p.Procfs, "path.procfs", "", "procfs mountpoint (default: paths.procfs from the config, /proc)")
	fs.StringVar(&p.Sysfs, "path.sysfs", "", "sysfs mountpoint (default: paths.sysfs from the config, /sys)")
	fs.StringVar(&p.Rootfs, "path.rootfs", "", "root of the host's filesystems (default: paths.rootfs from the config, /)")
	return p
}

func describeConfig(f string) string {
	if f == "" {
		return "(embedded default)"
	}
	return f
}

func cmdCheck(args []string, stdout, stderr io.Writer) int {
	fs := newFlags("check", "check [--config FILE] [--json] [--ignore-for] [--path.procfs DIR] [--path.sysfs DIR] [--path.rootfs DIR] [NAME...]", stdout, stderr)
	cfgFile := fs.String("config", "", "config file (default: the embedded default)")
	asJSON := fs.Bool("json", false, "print JSON instead of the plugin output and table")
	ignoreFor := fs.Bool("ignore-for", false, "fire a rule's breach at once, without waiting for its `for` (a rule with `for` is otherwise pending: exit 0)")
	paths := pathFlags(fs)
	if done, code := parse(fs, args, stdout); done {
		if code != 0 {
			return 3
		}
		return 0
	}
	logger := cliLogger(stderr, slog.LevelError) // and on a terminal, what takes a second or more
	a, err := agent.New(agent.Options{ConfigFile: *cfgFile, Logger: logger, Paths: *paths})
	if err != nil {
		fmt.Fprintf(stderr, "l2agent check: %v\n", err)
		return 3
	}
	a.Evaluator().IgnoreFor = *ignoreFor // else a breach of a rule with `for` is pending, honestly
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	results, err := a.RunAll(ctx, fs.Args()...)
	if err != nil {
		fmt.Fprintf(stderr, "l2agent check: %v\n", err)
		return 3
	}
	worst := alert.StateOK
	for _, r := range results {
		worst = alert.Worst(worst, r.State)
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(map[string]any{"host": a.Host(), "state": worst, "checks": jsonResults(results)}); err != nil {
			fmt.Fprintf(stderr, "l2agent check: %v\n", err)
			return 3
		}
	} else {
		writePlugin(stdout, results, a.Config(), worst)
	}
	return exitCode(worst)
}

func exitCode(s alert.State) int {
	switch s {
	case alert.StateWarn:
		return 1
	case alert.StateCrit:
		return 2
	case alert.StateUnknown:
		return 3
	}
	return 0
}

func printTable(w io.Writer, results []agent.CheckResult) {
	tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "CHECK\tMETRIC\tLABELS\tVALUE\tSTATE\tTHRESHOLD")
	for _, r := range results {
		if r.Error != "" {
			fmt.Fprintf(tw, "%s\t-\t-\t-\tunknown\t%s\n", textfmt.TerminalCell(r.Name), textfmt.TerminalCell(r.Error))
			continue
		}
		states := map[string]alert.Alert{}
		for _, al := range r.Alerts {
			states[al.Metric+"{"+labelText(al.Labels)+"}"] = al
		}
		obs := r.Observations
		sort.SliceStable(obs, func(i, j int) bool { return obs[i].Metric < obs[j].Metric })
		for _, o := range obs {
			state, th := "-", ""
			if al, ok := states[o.Metric+"{"+labelText(o.Labels)+"}"]; ok {
				state = al.State.String()
				if al.State.Firing() {
					op := "≥"
					if al.Direction == "below" {
						op = "≤"
					}
					th = fmt.Sprintf("%s %s %g", al.State, op, al.Threshold)
				}
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", textfmt.TerminalCell(r.Name), textfmt.TerminalCell(o.Metric),
				textfmt.TerminalCell(labelText(o.Labels)), textfmt.FormatValue(o.Metric, o.Value), state, th)
		}
	}
	tw.Flush()
	for _, r := range results {
		for _, al := range r.Alerts {
			if al.State.Firing() && al.Details != "" {
				fmt.Fprintf(w, "\n%s — diagnostics:\n%s\n", textfmt.TerminalCell(al.Key), textfmt.TerminalText(al.Details))
			}
		}
	}
}

func labelText(m map[string]string) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = k + "=" + m[k]
	}
	return strings.Join(parts, ",")
}

func cmdConfig(args []string, stdout, stderr io.Writer) int {
	const sub = "Usage:\n  l2agent config validate FILE...   check config files; exit 1 on any error\n  l2agent config default            print the embedded default config\n"
	if len(args) == 0 {
		fmt.Fprint(stderr, sub)
		return 2
	}
	switch args[0] {
	case "default":
		if done, code := noArgs("config default", "Prints the embedded default config: start your own file from it.", args[1:], stdout, stderr); done {
			return code
		}
		stdout.Write(configs.DefaultYAML)
		return 0
	case "validate":
		fs := newFlags("config validate", "config validate FILE...", stdout, stderr)
		if done, code := parse(fs, args[1:], stdout); done {
			return code
		}
		if fs.NArg() == 0 {
			fmt.Fprint(stderr, "l2agent config validate: name at least one FILE\n")
			return 2
		}
		code := 0
		for _, f := range fs.Args() {
			if _, err := configs.Load(f); err != nil {
				fmt.Fprintln(stderr, err)
				code = 1
				continue
			}
			fmt.Fprintf(stdout, "%s: ok\n", f)
		}
		return code
	case "-h", "--help", "help":
		fmt.Fprint(stdout, sub)
		return 0
	}
	fmt.Fprintf(stderr, "l2agent config: unknown subcommand %q\n%s", args[0], sub)
	return 2
}
