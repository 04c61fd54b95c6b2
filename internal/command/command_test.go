package command

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestCapture(t *testing.T) {
	t.Parallel()
	out, err := Capture(context.Background(), "sh", "-c", `echo "$LC_ALL $LANG"; echo oops >&2; exit 3`)
	require.NoError(t, err)
	require.Equal(t, "C \n", string(out.Stdout))
	require.Equal(t, 3, out.Exit)
	require.EqualError(t, out.ExitError([]string{"sh", "-c", "x"}), "sh -c x: exit status 3: oops")

	_, err = Capture(context.Background(), "/nonexistent/l2agent-cmd")
	require.ErrorContains(t, err, "no such file")

	// A command that outlives its deadline is killed with its children.
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err = Capture(ctx, "sh", "-c", "sleep 30 & sleep 30; wait")
	require.ErrorIs(t, err, context.DeadlineExceeded)
	require.Less(t, time.Since(start), 5*time.Second)
}

func TestLocaleC(t *testing.T) {
	t.Parallel()
	require.Equal(t, []string{"PATH=/bin", "HOME=/root", "LC_ALL=C"},
		LocaleC([]string{"PATH=/bin", "LANG=de_DE.UTF-8", "LC_MESSAGES=fr_FR", "HOME=/root", "LANGUAGE=de", "LC_ALL=de_DE"}))
}

func TestRunEnvEmptyUnlessGiven(t *testing.T) {
	t.Setenv("L2AGENT_SECRET", "x")
	var out Buffer
	out.Max = 1 << 10
	res, err := Run(context.Background(), []string{"/usr/bin/env"}, Options{Stdout: &out})
	require.NoError(t, err)
	require.Equal(t, 0, res.Exit)
	require.Empty(t, out.String())
	out = Buffer{Max: 1 << 10}
	_, err = Run(context.Background(), []string{"/usr/bin/env"}, Options{Env: []string{"A=1"}, Stdout: &out, Dir: "/"})
	require.NoError(t, err)
	require.Equal(t, "A=1\n", out.String())
}

// With a grace, the group gets SIGTERM first; one that ignores it gets SIGKILL.
func TestRunGrace(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	var out Buffer
	out.Max = 1 << 10
	start := time.Now()
	res, err := Run(ctx, []string{"/bin/sh", "-c", "trap 'echo term' TERM; sleep 30 & wait; sleep 30 & wait"},
		Options{Stdout: &out, Grace: 300 * time.Millisecond})
	require.ErrorIs(t, err, context.DeadlineExceeded)
	require.ErrorContains(t, err, "/bin/sh killed")
	require.True(t, res.Killed)
	require.Equal(t, -1, res.Exit)
	require.Contains(t, out.String(), "term")
	require.Less(t, time.Since(start), 3*time.Second)

	res, err = Run(ctx, []string{"/bin/true"}, Options{})
	require.ErrorContains(t, err, "not started")
	require.True(t, res.Killed)
}

func TestRunErrors(t *testing.T) {
	t.Parallel()
	_, err := Run(context.Background(), nil, Options{})
	require.EqualError(t, err, "empty command")
	_, err = Run(context.Background(), []string{"/nonexistent/x"}, Options{})
	require.ErrorContains(t, err, "start /nonexistent/x: ")
	res, err := Run(context.Background(), []string{"/bin/sh", "-c", "kill -9 $$"}, Options{})
	require.ErrorContains(t, err, "/bin/sh: signal: killed")
	require.Equal(t, -1, res.Exit)
}

func TestBuffer(t *testing.T) {
	t.Parallel()
	h := Buffer{Max: 5}
	for _, s := range []string{"abc", "def", "ghi"} {
		n, err := h.Write([]byte(s))
		require.NoError(t, err)
		require.Equal(t, 3, n)
	}
	require.Equal(t, "abcde", h.String())
	require.True(t, h.Cut())

	tl := Buffer{Max: 5, Tail: true}
	for range 10 {
		_, _ = tl.Write([]byte("abc"))
	}
	require.Equal(t, "bcabc", tl.String())
	require.True(t, tl.Cut())

	small := Buffer{Max: 5, Tail: true}
	_, _ = small.Write([]byte(strings.Repeat("x", 5)))
	require.Equal(t, "xxxxx", small.String())
	require.False(t, small.Cut())
}
