package remediate

// What the actions that run a program share: the runner and how a command
// shows in a plan and an outcome.

import (
	"context"
	"fmt"
	"os"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/l2agent/l2agent/internal/command"
	"github.com/l2agent/l2agent/internal/textfmt"
)

// commandEnv is the whole environment of a command: nothing is inherited.
var commandEnv = []string{"LC_ALL=C", "LANG=C", "PATH=/usr/sbin:/usr/bin:/sbin:/bin", "DEBIAN_FRONTEND=noninteractive"}

// killGrace is how long a command gets between SIGTERM and SIGKILL.
const killGrace = 2 * time.Second

// maxCapture bounds the output kept of one command (its tail).
const maxCapture = 64 << 10

// CommandResult is one finished command.
type CommandResult struct {
	Argv     []string
	ExitCode int
	Output   string // stdout and stderr interleaved, the last maxCapture bytes
}

// RunCommand runs argv (argv[0] an absolute path) without a shell, with a
// fixed environment, in its own process group that is killed when ctx ends
// (SIGTERM, then SIGKILL after a grace period). An exit status other than 0
// is an error.
func RunCommand(ctx context.Context, argv ...string) (CommandResult, error) {
	res := CommandResult{Argv: argv, ExitCode: -1}
	if len(argv) == 0 || !strings.HasPrefix(argv[0], "/") {
		return res, fmt.Errorf("command %q: not an absolute path", argv)
	}
	if fi, err := os.Stat(argv[0]); err != nil {
		return res, fmt.Errorf("command %s: %w", argv[0], err)
	} else if fi.IsDir() || fi.Mode()&0o111 == 0 {
		return res, fmt.Errorf("command %s: not an executable file", argv[0])
	}
	if err := ctx.Err(); err != nil {
		return res, err
	}
	out := &command.Buffer{Max: maxCapture, Tail: true}
	r, err := command.Run(ctx, argv, command.Options{Env: commandEnv, Dir: "/", Stdout: out, Stderr: out, Grace: killGrace})
	res.Output = out.String()
	if out.Cut() {
		res.Output = "… " + res.Output
	}
	switch {
	case r.Killed:
		return res, fmt.Errorf("%s killed: %w", argv[0], ctx.Err())
	case err != nil:
		return res, err
	}
	res.ExitCode = r.Exit
	if r.Exit != 0 {
		return res, fmt.Errorf("%s exited with status %d", argv[0], r.Exit)
	}
	return res, nil
}

// Excerpt bounds s to its last n bytes on a rune boundary, as valid UTF-8.
func Excerpt(s string, n int) string {
	return textfmt.Tail(strings.TrimSpace(strings.ToValidUTF8(s, "\uFFFD")), n, "… ")
}

// ArgvString shows argv unambiguously, quoting what needs it, for a plan.
func ArgvString(argv []string) string {
	parts := make([]string, len(argv))
	for i, a := range argv {
		if a == "" || strings.ContainsAny(a, " \t\n\"'\\$`;&|<>(){}*?[]#~") || !utf8.ValidString(a) {
			parts[i] = fmt.Sprintf("%q", a)
		} else {
			parts[i] = a
		}
	}
	return strings.Join(parts, " ")
}

// Exited0 says that argv ran and exited 0: the result of a run whose
// expected effect did not show.
func Exited0(argv []string) string { return ArgvString(argv) + " exited 0" }

// CommandOutcome turns what RunCommand returned into an Outcome: success
// with okText as its result, or the error; the output excerpt either way.
func CommandOutcome(r CommandResult, err error, okText string) (Outcome, error) {
	o := Outcome{Output: Excerpt(r.Output, MaxOutput)}
	if err != nil {
		o.Result = err.Error()
		return o, err
	}
	o.Success = true
	o.Result = okText
	return o, nil
}
