package remediate

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

// cmdResult is one finished command.
type cmdResult struct {
	Argv     []string
	ExitCode int
	Output   string // stdout and stderr interleaved, the last maxCapture bytes
}

// runCommand runs argv (argv[0] an absolute path) without a shell, with a
// fixed environment, in its own process group that is killed when ctx ends.
func runCommand(ctx context.Context, argv ...string) (cmdResult, error) {
	res := cmdResult{Argv: argv, ExitCode: -1}
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

// excerpt bounds s to its last n bytes on a rune boundary, as valid UTF-8.
func excerpt(s string, n int) string {
	return textfmt.Tail(strings.TrimSpace(strings.ToValidUTF8(s, "\uFFFD")), n, "… ")
}

// argvString shows argv unambiguously, quoting what needs it.
func argvString(argv []string) string {
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

// commandOutcome turns a command result into an Outcome.
func commandOutcome(r cmdResult, err error, okText string) (Outcome, error) {
	o := Outcome{Output: excerpt(r.Output, MaxOutput)}
	if err != nil {
		o.Result = err.Error()
		return o, err
	}
	o.Success = true
	o.Result = okText
	return o, nil
}
