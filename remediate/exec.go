package remediate

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"time"
	"unicode/utf8"

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
	var out tailBuffer
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Env = commandEnv
	cmd.Dir = "/"
	cmd.Stdout = &out
	cmd.Stderr = &out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		return res, fmt.Errorf("start %s: %w", argv[0], err)
	}
	pgid := cmd.Process.Pid
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	var err error
	select {
	case err = <-done:
	case <-ctx.Done():
		_ = syscall.Kill(-pgid, syscall.SIGTERM)
		select {
		case <-done:
		case <-time.After(killGrace):
			_ = syscall.Kill(-pgid, syscall.SIGKILL)
			<-done
		}
		// Children that ignored SIGTERM and outlived the leader.
		_ = syscall.Kill(-pgid, syscall.SIGKILL)
		res.Output = out.String()
		return res, fmt.Errorf("%s killed: %w", argv[0], ctx.Err())
	}
	res.Output = out.String()
	var ee *exec.ExitError
	switch {
	case err == nil:
		res.ExitCode = 0
	case errors.As(err, &ee):
		res.ExitCode = ee.ExitCode()
		err = fmt.Errorf("%s exited with status %d", argv[0], res.ExitCode)
	default:
		err = fmt.Errorf("%s: %w", argv[0], err)
	}
	return res, err
}

// tailBuffer keeps the last maxCapture bytes written.
type tailBuffer struct {
	buf     bytes.Buffer
	dropped bool
}

func (t *tailBuffer) Write(p []byte) (int, error) {
	n := len(p)
	t.buf.Write(p)
	if over := t.buf.Len() - maxCapture; over > 0 {
		t.buf.Next(over)
		t.dropped = true
	}
	return n, nil
}

func (t *tailBuffer) String() string {
	s := t.buf.String()
	if t.dropped {
		return "… " + s
	}
	return s
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
