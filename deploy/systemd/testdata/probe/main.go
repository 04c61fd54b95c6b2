// Command probe tries, from inside the l2agent daemon's own unit context, what the sandbox
// must refuse, and a few things it must allow (so that a refusal is not a probe that cannot
// do anything). deploy/systemd's TestUnderSystemd builds it (static), runs it as the
// ExecStart of a copy of the installed l2agent.service and reads one line per probe:
//
//	NAME: ok
//	NAME: refused: WHY
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/l2agent/l2agent/configs"
	"github.com/l2agent/l2agent/internal/alert"
	"github.com/l2agent/l2agent/remediate"
	"github.com/l2agent/l2agent/remediate/helper"
)

func report(name string, err error) {
	if err == nil {
		fmt.Printf("%s: ok\n", name)
		return
	}
	fmt.Printf("%s: refused: %s\n", name, strings.ReplaceAll(err.Error(), "\n", " "))
}

func run(argv ...string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, argv[0], argv[1:]...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("%v: %s", err, strings.TrimSpace(string(out)))
	}
	return nil
}

// ask sends the helper a request and turns a refusal into an error.
func ask(req remediate.Request) error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	resp, err := remediate.Call(ctx, configs.DefaultHelperSocket, req)
	switch {
	case err != nil:
		return err
	case resp.Result != "":
		return fmt.Errorf("%s: %s", resp.Result, resp.Reason)
	case resp.Error != "":
		return errors.New(resp.Error)
	}
	return nil
}

func main() {
	fmt.Printf("whoami: uid %d euid %d\n", os.Getuid(), os.Geteuid())
	// Allowed: the state dir, reading any file (CAP_DAC_READ_SEARCH).
	report("write state dir", os.WriteFile("/var/lib/l2agent/probe", []byte("x"), 0o600))
	_, err := os.ReadFile("/etc/shadow")
	report("read /etc/shadow", err)
	// Refused.
	report("write /etc", os.WriteFile("/etc/l2agent-probe", []byte("x"), 0o644))
	report("write /run", os.WriteFile("/run/l2agent-probe-file", []byte("x"), 0o644))
	report("write /run/systemd/system", os.WriteFile("/run/systemd/system/l2agent-probe-evil.service", []byte("[Service]\nExecStart=/bin/true\n"), 0o644))
	report("write /run/lock", os.WriteFile("/run/lock/l2agent-probe", []byte("x"), 0o644))
	report("systemd-run", run("/usr/bin/systemd-run", "--wait", "--quiet", "/usr/bin/touch", "/etc/l2agent-probe-systemd-run"))
	report("systemctl start", run("/usr/bin/systemctl", "start", "l2agent-probe-target.service"))
	report("dbus StartUnit", run("/usr/bin/busctl", "call", "org.freedesktop.systemd1", "/org/freedesktop/systemd1",
		"org.freedesktop.systemd1.Manager", "StartUnit", "ss", "l2agent-probe-target.service", "replace"))
	report("ptrace", ptrace())
	report("load module", unix.InitModule([]byte("\x7fELF"), ""))
	report("finit module", finit())
	report("setuid 0", unix.Setuid(0))
	report("chown /var/lib/l2agent", unix.Chown("/var/lib/l2agent", 0, 0))
	// The helper: what the policy does not allow.
	a := alert.Alert{Key: "probe/disk/disk_used_ratio", Check: "disk", Metric: "disk_used_ratio", State: alert.StateCrit}
	report("helper: path outside allow_paths", ask(remediate.Request{Mode: remediate.ModeApply, Action: "disk_cleanup", Alert: a,
		Params: "paths: [/etc]\nglobs: ['*']\nolder_than: 1d\n"}))
	report("helper: action not enabled", ask(remediate.Request{Mode: remediate.ModeApply, Action: "security_updates", Alert: a}))
	report("helper: unknown action", ask(remediate.Request{Mode: remediate.ModeApply, Action: "shell", Alert: a}))
	report("helper: unit outside allow_units", ask(remediate.Request{Mode: remediate.ModeApply, Action: "service_restart", Alert: a,
		Params: "unit: ssh.service\n"}))
	abi, err := helper.LandlockABI()
	report(fmt.Sprintf("landlock abi %d", abi), err)
}

// ptrace attaches to PID 1 of the container (another process, root's).
func ptrace() error {
	err := unix.PtraceAttach(1)
	if err == nil {
		unix.PtraceDetach(1)
	}
	return err
}

func finit() error {
	f, err := os.Open("/dev/null")
	if err != nil {
		return err
	}
	defer f.Close()
	return unix.FinitModule(int(f.Fd()), "", 0)
}
