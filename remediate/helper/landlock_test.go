package helper_test

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/l2agent/l2agent/remediate/helper"
)

// TestRestrictWrites confines a child process (the test binary again: the
// restriction cannot be undone) to one directory: it writes there, and
// writing, creating or deleting anywhere else is refused, also for a
// program it runs.
func TestRestrictWrites(t *testing.T) {
	if dirs := os.Getenv("L2AGENT_LANDLOCK_CHILD"); dirs != "" {
		landlockChild(strings.Split(dirs, ":"))
		return
	}
	allowed, other := t.TempDir(), t.TempDir()
	victim := filepath.Join(other, "victim")
	require.NoError(t, os.WriteFile(victim, []byte("x"), 0o644))
	cmd := exec.Command(os.Args[0], "-test.run=^TestRestrictWrites$")
	cmd.Env = append(os.Environ(), "L2AGENT_LANDLOCK_CHILD="+allowed+":"+other)
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "%s", out)
	if strings.Contains(string(out), "NO LANDLOCK") {
		t.Skipf("Landlock cannot be used here: %s", out)
	}
	for _, want := range []string{"write allowed: ok", "write other: permission denied", "remove other: permission denied",
		"child write other: exit status 2", "truncate other: permission denied"} {
		require.Contains(t, string(out), want)
	}
	b, err := os.ReadFile(victim)
	require.NoError(t, err)
	require.Equal(t, "x", string(b))
	require.FileExists(t, filepath.Join(allowed, "ok"))
}

func landlockChild(dirs []string) {
	allowed, other := dirs[0], dirs[1]
	abi, err := helper.RestrictWrites([]string{allowed, "/dev/null"})
	if errors.Is(err, helper.ErrNoLandlock) {
		fmt.Println("NO LANDLOCK:", err)
		return
	}
	if err != nil {
		fmt.Println("restrict:", err)
		os.Exit(2)
	}
	res := func(err error) string {
		if err == nil {
			return "ok"
		}
		return err.(*os.PathError).Err.Error()
	}
	fmt.Println("abi", abi)
	fmt.Println("write allowed:", res(os.WriteFile(filepath.Join(allowed, "ok"), []byte("y"), 0o644)))
	fmt.Println("write other:", res(os.WriteFile(filepath.Join(other, "new"), []byte("y"), 0o644)))
	fmt.Println("remove other:", res(os.Remove(filepath.Join(other, "victim"))))
	fmt.Println("truncate other:", res(os.Truncate(filepath.Join(other, "victim"), 0)))
	fmt.Println("child write other:", exec.Command("/bin/sh", "-c", "echo z > "+filepath.Join(other, "victim")).Run())
}
