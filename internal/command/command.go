// Package command runs programs for l2agent: argv without a shell, with an
// explicit environment (empty unless given), in a process group of its own
// that is killed when ctx ends, and with bounded capture of its output.
package command

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/l2agent/l2agent/internal/fsutil"
)

// WaitDelay bounds how long Run waits for the output pipes to close once the
// command has ended (a daemon it forked may hold them open).
const WaitDelay = 2 * time.Second

// Options says how to run a command.
type Options struct {
	Env    []string  // the whole environment; nil or empty: none at all
	Dir    string    // working directory; "": the agent's ("/" with Root)
	Stdout io.Writer // nil: discarded
	Stderr io.Writer // nil: discarded; the same writer as Stdout interleaves both
	// Grace is the time between SIGTERM and SIGKILL to the process group
	// when ctx ends; 0 sends SIGKILL at once.
	Grace time.Duration
	// Root, when neither "" nor "/", is the directory the command runs
	// chrooted into (it needs CAP_SYS_CHROOT): a host's root filesystem
	// mounted in a container, so that the program, its libraries and its
	// configuration are the host's. argv[0] without a slash is looked up in
	// the PATH of Env under Root.
	Root string
	// MaxData is the program's RLIMIT_DATA in bytes (see the constant
	// MaxData); 0: MaxData, negative: the agent's own limit.
	MaxData int64
}

func (o Options) maxData() uint64 {
	switch {
	case o.MaxData == 0:
		return MaxData
	case o.MaxData < 0:
		return 0
	}
	return uint64(o.MaxData)
}

// Result is how a command ended.
type Result struct {
	Exit   int  // exit code; -1 unless the command exited by itself
	Killed bool // ctx ended first and the process group was killed
}

// Run runs argv (never through a shell) and waits for it. A non-zero exit is
// not an error: an error means the command did not run to its end (it did
// not start, ctx ended, a signal ended it, its output stayed open).
func Run(ctx context.Context, argv []string, o Options) (Result, error) {
	res := Result{Exit: -1}
	if len(argv) == 0 {
		return res, errors.New("empty command")
	}
	if err := ctx.Err(); err != nil {
		res.Killed = true
		return res, fmt.Errorf("%s not started: %w", argv[0], context.Cause(ctx))
	}
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Env = append([]string{}, o.Env...) // never nil: nil would inherit the agent's
	cmd.Dir = o.Dir
	cmd.Stdout, cmd.Stderr = o.Stdout, o.Stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if o.Root != "" && o.Root != "/" {
		cmd.Path, cmd.Err = LookPathIn(o.Root, argv[0], o.Env)
		cmd.SysProcAttr.Chroot = o.Root
		if cmd.Dir == "" {
			cmd.Dir = "/" // else its working directory would be outside the root
		}
	}
	cmd.WaitDelay = WaitDelay
	if err := cmd.Start(); err != nil {
		return res, fmt.Errorf("start %s: %w", argv[0], err)
	}
	limitData(cmd.Process.Pid, o.maxData())
	done := make(chan error, 1)
	go func() {
		err := cmd.Wait()
		peakOf(ctx).record(cmd.ProcessState)
		done <- err
	}()
	var err error
	select {
	case err = <-done:
	case <-ctx.Done():
		killGroup(cmd.Process.Pid, o.Grace, done)
		res.Killed = true
		return res, fmt.Errorf("%s killed: %w", argv[0], context.Cause(ctx))
	}
	var ee *exec.ExitError
	switch {
	case err == nil:
		res.Exit = 0
	case errors.As(err, &ee) && ee.Exited():
		res.Exit = ee.ExitCode()
	default:
		return res, fmt.Errorf("%s: %w", argv[0], err)
	}
	return res, nil
}

// LookPathIn finds the program name as a process chrooted into root sees it:
// a name with a slash as it is, else the first PATH entry of env (by default
// the usual system directories) that holds an executable file of that name
// under root. Symbolic links are followed inside root.
func LookPathIn(root, name string, env []string) (string, error) {
	if strings.Contains(name, "/") {
		return name, nil
	}
	path := "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
	for _, kv := range env {
		if v, ok := strings.CutPrefix(kv, "PATH="); ok {
			path = v
		}
	}
	for _, dir := range filepath.SplitList(path) {
		if !filepath.IsAbs(dir) {
			continue // a relative entry would depend on the working directory
		}
		p := filepath.Join(dir, name)
		if fi, err := os.Stat(fsutil.InRoot(root, p)); err == nil && fi.Mode().IsRegular() && fi.Mode().Perm()&0o111 != 0 {
			return p, nil
		}
	}
	return "", fmt.Errorf("%s: %w in the PATH under %s", name, exec.ErrNotFound, root)
}

// killGroup ends the process group pgid: SIGTERM, then SIGKILL after grace
// if the leader has not ended (at once when grace is 0), then SIGKILL again
// for children that outlived the leader. It returns once Wait has.
func killGroup(pgid int, grace time.Duration, done <-chan error) {
	if grace > 0 {
		_ = syscall.Kill(-pgid, syscall.SIGTERM)
		select {
		case <-done:
			_ = syscall.Kill(-pgid, syscall.SIGKILL)
			return
		case <-time.After(grace):
		}
	}
	_ = syscall.Kill(-pgid, syscall.SIGKILL)
	<-done
	_ = syscall.Kill(-pgid, syscall.SIGKILL)
}

// LocaleC returns env without locale settings, plus LC_ALL=C, so that the
// output parsed is the untranslated one.
func LocaleC(env []string) []string {
	out := make([]string, 0, len(env)+1)
	for _, kv := range env {
		k, _, _ := strings.Cut(kv, "=")
		if k == "LANG" || k == "LANGUAGE" || strings.HasPrefix(k, "LC_") {
			continue
		}
		out = append(out, kv)
	}
	return append(out, "LC_ALL=C")
}
