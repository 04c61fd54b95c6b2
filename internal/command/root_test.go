package command

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
)

// helperSource is a static program for a root of its own: it prints its
// argv[0], working directory and the content of /marker as it sees them.
const helperSource = `package main

import (
	"fmt"
	"os"
)

func main() {
	wd, _ := os.Getwd()
	b, err := os.ReadFile("/marker")
	fmt.Printf("%s|%s|%s|%v", os.Args[0], wd, b, err)
}
`

func TestRunInRoot(t *testing.T) {
	if os.Geteuid() != 0 {
		if os.Getenv("CI") == "true" {
			t.Fatal("CI=true: chroot needs root")
		}
		t.Skip("chroot needs root")
	}
	src := filepath.Join(t.TempDir(), "helper.go")
	require.NoError(t, os.WriteFile(src, []byte(helperSource), 0o600))
	root := t.TempDir()
	require.NoError(t, os.MkdirAll(filepath.Join(root, "usr/sbin"), 0o755))
	require.NoError(t, os.Symlink("usr/sbin", filepath.Join(root, "sbin")))
	build := exec.Command("go", "build", "-o", filepath.Join(root, "usr/sbin/helper"), src)
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	out, err := build.CombinedOutput()
	require.NoError(t, err, "%s", out)
	require.NoError(t, os.WriteFile(filepath.Join(root, "marker"), []byte("inside"), 0o600))
	require.NoError(t, os.WriteFile("/tmp/l2agent-command-marker-outside", nil, 0o600)) // not seen inside
	t.Cleanup(func() { os.Remove("/tmp/l2agent-command-marker-outside") })

	// Found in the PATH under the root (through the sbin → usr/sbin link), not
	// in the agent's; run with / as its working directory, seeing the root's files.
	o, err := CaptureIn(root)(context.Background(), "helper")
	require.NoError(t, err)
	require.Equal(t, 0, o.Exit)
	require.Equal(t, "helper|/|inside|<nil>", string(o.Stdout))

	stdout := Buffer{Max: 1 << 10}
	res, err := Run(context.Background(), []string{"helper"}, Options{Root: root, Env: []string{"PATH=/sbin"}, Stdout: &stdout})
	require.NoError(t, err)
	require.Equal(t, 0, res.Exit)
	require.Equal(t, "helper|/|inside|<nil>", stdout.String())

	_, err = Run(context.Background(), []string{"helper"}, Options{Root: root, Env: []string{"PATH=/bin:relative"}})
	require.ErrorIs(t, err, exec.ErrNotFound, "not in that PATH under the root")
	_, err = CaptureIn(root)(context.Background(), "sh")
	require.ErrorIs(t, err, exec.ErrNotFound, "the agent's own sh is not the root's")
	_, err = CaptureIn(root)(context.Background(), "/usr/bin/env")
	require.ErrorContains(t, err, "no such file", "an absolute path is the root's")

	o, err = CaptureIn("/")(context.Background(), "sh", "-c", "test -e /tmp/l2agent-command-marker-outside")
	require.NoError(t, err)
	require.Equal(t, 0, o.Exit, "CaptureIn(\"/\") runs in the agent's own root")
}
