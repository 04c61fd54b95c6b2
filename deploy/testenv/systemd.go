package testenv

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// SystemdScript boots a Debian 12 container with systemd as PID 1 (systemd-nspawn), from a
// root built once and cached in /var/cache/l2agent-testenv.
const SystemdScript = "deploy/testenv/systemd.sh"

// systemdPrepareTimeout bounds `systemd.sh prepare`: a first build runs mmdebstrap (1.5 to
// 6 minutes here, depending on the mirror).
const systemdPrepareTimeout = 15 * time.Minute

// SystemdContainer is a Debian 12 container whose PID 1 is systemd 252, for the tests of the
// package and its unit under a real systemd. It has its own network (only lo): its
// 127.0.0.1 is not the host's. Made by NewSystemdContainer, booted by Boot, removed by Stop;
// a container whose test binary died is stopped by the next start of any.
type SystemdContainer struct {
	Name string
	// Root is the container's tree on the host. Before Boot a test may change it, e.g.
	// install a package with `chroot Root dpkg -i` as an image build does.
	Root   string
	script string
}

// SystemdNeeds says why this machine cannot run the container, or "" when it can: it needs
// root (to install the host tools, build the root and run systemd-nspawn).
func SystemdNeeds() string {
	if os.Geteuid() != 0 {
		return "needs root (systemd-nspawn, and apt-get and mmdebstrap for the first build)"
	}
	return ""
}

// NewSystemdContainer builds the cached root if needed (systemd.sh prepare, which `make
// test-env` runs ahead) and makes a fresh tree for container name, not booted yet.
func NewSystemdContainer(ctx context.Context, name string) (*SystemdContainer, error) {
	if why := SystemdNeeds(); why != "" {
		return nil, errors.New(why)
	}
	root, err := moduleRoot()
	if err != nil {
		return nil, fmt.Errorf("find %s: %w", SystemdScript, err)
	}
	c := &SystemdContainer{Name: name, script: filepath.Join(root, SystemdScript)}
	pctx, cancel := context.WithTimeout(ctx, systemdPrepareTimeout)
	defer cancel()
	if _, err := c.runScript(pctx, "prepare"); err != nil {
		return nil, err
	}
	out, err := c.runScript(ctx, "tree", name)
	if err != nil {
		return nil, err
	}
	c.Root = strings.TrimSpace(out)
	return c, nil
}

// Boot boots the container and waits until its manager is running (or degraded).
func (c *SystemdContainer) Boot(ctx context.Context) error {
	_, err := c.runScript(ctx, "start", c.Name)
	return err
}

// Stop halts the container (orderly, bounded) and removes its tree.
func (c *SystemdContainer) Stop(ctx context.Context) error {
	_, err := c.runScript(ctx, "stop", c.Name)
	return err
}

// Copy copies the host file src into the running container as dst (a file, or a directory
// ending in /).
func (c *SystemdContainer) Copy(ctx context.Context, src, dst string) error {
	_, err := c.runScript(ctx, "copy", c.Name, src, dst)
	return err
}

// ExecResult is what a command run in the container did.
type ExecResult struct {
	Stdout, Stderr string
	Code           int // its exit status
}

// Exec runs argv inside the running container (in its namespaces and root, with a clean
// environment: not in a unit; `systemd-run --wait --pipe` gives one). The error is about
// running it at all; the command's own failure is Code.
func (c *SystemdContainer) Exec(ctx context.Context, argv ...string) (ExecResult, error) {
	cmd := exec.CommandContext(ctx, "bash", append([]string{c.script, "exec", c.Name}, argv...)...)
	cmd.Env = c.env()
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	r := ExecResult{Stdout: stdout.String(), Stderr: stderr.String()}
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee) && ctx.Err() == nil:
		r.Code = ee.ExitCode()
	case err != nil:
		return r, fmt.Errorf("run %q in container %s: %w\n%s", argv, c.Name, err, r.Stderr)
	}
	return r, nil
}

// Run is Exec for a command that must succeed: it returns its stdout, or an error with its
// exit status and output.
func (c *SystemdContainer) Run(ctx context.Context, argv ...string) (string, error) {
	r, err := c.Exec(ctx, argv...)
	if err != nil {
		return "", err
	}
	if r.Code != 0 {
		return r.Stdout, fmt.Errorf("%q in container %s: exit status %d\n%s%s", argv, c.Name, r.Code, r.Stdout, r.Stderr)
	}
	return r.Stdout, nil
}

func (c *SystemdContainer) env() []string {
	return append(os.Environ(), "L2AGENT_CT_OWNER="+strconv.Itoa(os.Getpid()))
}

// runScript runs systemd.sh with args and returns its stdout.
func (c *SystemdContainer) runScript(ctx context.Context, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, "bash", append([]string{c.script}, args...)...)
	cmd.Env = c.env()
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return stdout.String(), fmt.Errorf("%s %s: %w\n%s", SystemdScript, strings.Join(args, " "), err, lastLines(stderr.String(), 30))
	}
	return stdout.String(), nil
}

// StopWhenDone stops the container when t ends (bounded, 2 minutes), first
// logging `systemctl status` and the last logLines of the journal of unit
// when t failed.
func (c *SystemdContainer) StopWhenDone(t testing.TB, unit string, logLines int) {
	t.Cleanup(func() {
		if t.Failed() {
			for _, argv := range [][]string{{"systemctl", "status", "--no-pager", "-l", unit}, {"journalctl", "--no-pager", "-u", unit, "-n", strconv.Itoa(logLines)}} {
				if r, err := c.Exec(context.Background(), argv...); err == nil {
					t.Logf("%s:\n%s%s", strings.Join(argv, " "), r.Stdout, r.Stderr)
				}
			}
		}
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		if err := c.Stop(ctx); err != nil {
			t.Errorf("stop the container: %v", err)
		}
	})
}
