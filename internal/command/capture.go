package command

import (
	"context"
	"fmt"
	"os"
	"strings"

	"github.com/l2agent/l2agent/internal/textfmt"
)

// Output is what a command that ran to its end printed, and its exit code.
type Output struct {
	Stdout []byte
	Stderr string // the last MaxStderr bytes
	Exit   int
}

// Runner runs argv without a shell; an error means it did not run to its end
// (not found, killed at the deadline), not a non-zero exit. Checks hold one
// as a field so that tests can give canned outputs.
type Runner func(ctx context.Context, argv ...string) (Output, error)

// Bounds of what Capture keeps.
const (
	MaxStdout = 32 << 20
	MaxStderr = 2048
)

// Capture runs argv with the agent's environment minus its locale settings
// plus LC_ALL=C, killing its process group when ctx ends, and captures stdout
// (bounded: more is an error) and the tail of stderr. It is a Runner.
func Capture(ctx context.Context, argv ...string) (Output, error) {
	return capture(ctx, "", argv)
}

// CaptureIn returns a Runner that runs argv as Capture does, chrooted into
// root (Options.Root); with root "" or "/" it is Capture.
func CaptureIn(root string) Runner {
	if root == "" || root == "/" {
		return Capture
	}
	return func(ctx context.Context, argv ...string) (Output, error) { return capture(ctx, root, argv) }
}

func capture(ctx context.Context, root string, argv []string) (Output, error) {
	stdout := &Buffer{Max: MaxStdout}
	stderr := &Buffer{Max: MaxStderr, Tail: true}
	res, err := Run(ctx, argv, Options{Env: LocaleC(os.Environ()), Root: root, Stdout: stdout, Stderr: stderr})
	out := Output{Stdout: stdout.Bytes(), Stderr: stderr.String()}
	switch {
	case len(argv) == 0:
		return out, err
	case ctx.Err() != nil:
		return out, fmt.Errorf("%s: %w", argv[0], context.Cause(ctx))
	case err != nil:
		if s := strings.TrimSpace(out.Stderr); s != "" {
			return out, fmt.Errorf("%w: %s", err, textfmt.Sanitize(s))
		}
		return out, err
	}
	out.Exit = res.Exit
	if stdout.Cut() {
		return out, fmt.Errorf("%s: more than %d bytes of output", argv[0], MaxStdout)
	}
	return out, nil
}

// ExitError describes a command that exited with an unexpected code.
func (o Output) ExitError(argv []string) error {
	msg := strings.TrimSpace(o.Stderr)
	if msg == "" {
		msg = strings.TrimSpace(string(o.Stdout[max(0, len(o.Stdout)-MaxStderr):]))
	}
	return fmt.Errorf("%s: exit status %d: %s", strings.Join(argv, " "), o.Exit, textfmt.Sanitize(msg))
}
