package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// A reload that reports: `systemctl reload l2agent` runs `l2agent reload --pid $MAINPID`
// (ExecReload), which sends SIGHUP to the daemon and waits for the daemon to say how that
// reload ended, so that systemctl fails when the new config is rejected and succeeds only once
// it is in force. SIGHUP itself is unchanged: it reloads, and a rejected config keeps the
// running one.
//
// The daemon tells through a status file, reload.json in $RUNTIME_DIRECTORY (the unit's
// RuntimeDirectory=l2agent, /run/l2agent): written when the daemon is ready for SIGHUP (seq 0),
// when a reload starts (seq n, done false) and when it ends (seq n, done true, ok, error).
// Without RUNTIME_DIRECTORY the daemon writes none, and SIGHUP works as ever.

// reloadStatusName is the status file's name in $RUNTIME_DIRECTORY.
const reloadStatusName = "reload.json"

// reloadStatus is the content of the status file.
type reloadStatus struct {
	PID   int       `json:"pid"`   // the daemon that wrote it
	Seq   uint64    `json:"seq"`   // reloads started by this daemon; 0: none yet
	Done  bool      `json:"done"`  // reload Seq has ended
	OK    bool      `json:"ok"`    // and its config is in force
	Error string    `json:"error"` // why it was rejected
	Time  time.Time `json:"time"`
}

// defaultStatusFile is reload.json in $RUNTIME_DIRECTORY (its first entry), or "".
func defaultStatusFile() string {
	dir, _, _ := strings.Cut(os.Getenv("RUNTIME_DIRECTORY"), ":")
	if dir == "" {
		return ""
	}
	return filepath.Join(dir, reloadStatusName)
}

// reloadReporter is the daemon's side: it runs each SIGHUP reload and writes the status file.
type reloadReporter struct {
	path string // "" writes nothing
	log  *slog.Logger
	seq  uint64
}

// newReloadReporter writes the first status (ready for SIGHUP); call it once the daemon
// handles SIGHUP.
func newReloadReporter(log *slog.Logger) *reloadReporter {
	r := &reloadReporter{path: defaultStatusFile(), log: log}
	r.write(reloadStatus{Done: true, OK: true})
	return r
}

// reload runs one reload and records how it ended.
func (r *reloadReporter) reload(reload func() error) {
	r.seq++
	r.write(reloadStatus{})
	err := reload() // logged by the agent; a rejected config keeps the running one
	st := reloadStatus{Done: true, OK: err == nil}
	if err != nil {
		st.Error = err.Error()
	}
	r.write(st)
}

func (r *reloadReporter) write(st reloadStatus) {
	if r.path == "" {
		return
	}
	st.PID, st.Seq, st.Time = os.Getpid(), r.seq, time.Now()
	if err := writeStatus(r.path, st); err != nil {
		r.log.Warn("reload status not written; `l2agent reload` cannot report this reload", "err", err)
	}
}

// writeStatus replaces path atomically (temp file + rename): a reader sees the old status or
// the new one.
func writeStatus(path string, st reloadStatus) error {
	b, err := json.Marshal(st)
	if err != nil {
		return fmt.Errorf("encode reload status: %w", err)
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), ".reload-*.json")
	if err != nil {
		return fmt.Errorf("write reload status: %w", err)
	}
	defer os.Remove(tmp.Name()) // gone after the rename; cleans up after a failure
	if _, err := tmp.Write(append(b, '\n')); err != nil {
		tmp.Close()
		return fmt.Errorf("write reload status %s: %w", tmp.Name(), err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("write reload status %s: %w", tmp.Name(), err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("write reload status: %w", err)
	}
	return nil
}

// readStatus reads the status file; a missing file is the zero status.
func readStatus(path string) (reloadStatus, error) {
	var st reloadStatus
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return st, nil
	}
	if err != nil {
		return st, fmt.Errorf("read reload status: %w", err)
	}
	if err := json.Unmarshal(b, &st); err != nil {
		return st, fmt.Errorf("read reload status %s: %w", path, err)
	}
	return st, nil
}

// pollInterval is how often `l2agent reload` reads the status file.
const pollInterval = 50 * time.Millisecond

// errTimeout: no answer in time; errRejected: the daemon kept its running config.
var (
	errTimeout  = errors.New("no answer")
	errRejected = errors.New("config rejected")
)

// awaitStatus polls path until ok accepts the daemon pid's status, the daemon is gone, or ctx
// ends.
func awaitStatus(ctx context.Context, path string, pid int, ok func(reloadStatus) bool) (reloadStatus, error) {
	tick := time.NewTicker(pollInterval)
	defer tick.Stop()
	for {
		st, err := readStatus(path)
		if err != nil {
			return st, err
		}
		if st.PID == pid && ok(st) {
			return st, nil
		}
		if err := syscall.Kill(pid, 0); errors.Is(err, syscall.ESRCH) {
			return st, fmt.Errorf("l2agent (pid %d) is gone", pid)
		}
		select {
		case <-ctx.Done():
			return st, errTimeout
		case <-tick.C:
		}
	}
}

// signalReload sends SIGHUP to pid once it handles SIGHUP, and waits for the end of a reload
// that started after the signal. The rule: every reload that starts after the status was read
// reads the config as it is when `l2agent reload` runs, so the first one to end with a higher
// sequence number answers (SIGHUPs that arrive during a reload make one more reload).
func signalReload(ctx context.Context, path string, pid int) error {
	before, err := awaitStatus(ctx, path, pid, func(reloadStatus) bool { return true })
	if errors.Is(err, errTimeout) {
		return fmt.Errorf("%w from l2agent (pid %d): %s does not name it; is it the daemon, run with RUNTIME_DIRECTORY set (RuntimeDirectory=l2agent in its unit)?", errTimeout, pid, path)
	}
	if err != nil {
		return err
	}
	if err := syscall.Kill(pid, syscall.SIGHUP); err != nil {
		return fmt.Errorf("send SIGHUP to pid %d: %w", pid, err)
	}
	st, err := awaitStatus(ctx, path, pid, func(s reloadStatus) bool { return s.Done && s.Seq > before.Seq })
	if errors.Is(err, errTimeout) {
		return fmt.Errorf("%w: l2agent (pid %d) has not finished reloading; it may still put the new config in force, see its log", errTimeout, pid)
	}
	if err != nil {
		return err
	}
	if !st.OK {
		return fmt.Errorf("%w, the running config is kept:\n%s", errRejected, st.Error)
	}
	return nil
}

const reloadUsage = "reload --pid PID [--status-file FILE] [--timeout DURATION]"

// cmdReload is `l2agent reload`: what the unit's ExecReload runs.
func cmdReload(args []string, stdout, stderr io.Writer) int {
	fs := newFlags("reload", reloadUsage, stdout, stderr)
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "Usage: l2agent %s\n\n"+
			"Send SIGHUP to the daemon PID and wait until it has reloaded its config: exit 0 once\n"+
			"the new config is in force, 1 with the errors when it is rejected (the running config\n"+
			"is kept). The unit's ExecReload runs it, so `systemctl reload l2agent` reports the\n"+
			"outcome. The daemon writes the outcome to reload.json in $RUNTIME_DIRECTORY.\n\nFlags:\n", reloadUsage)
		fs.PrintDefaults()
	}
	pid := fs.Int("pid", 0, "process ID of the l2agent daemon (the unit's $MAINPID)")
	status := fs.String("status-file", defaultStatusFile(), "the daemon's reload status (default: reload.json in $RUNTIME_DIRECTORY)")
	timeout := fs.Duration("timeout", time.Minute, "give up waiting after this long")
	if done, code := parse(fs, args, stdout); done {
		return code
	}
	errw := journalLines(stderr, priErr)
	switch {
	case fs.NArg() > 0:
		fmt.Fprintf(errw, "l2agent reload: unexpected arguments %q\n", fs.Args())
		return 2
	case *pid <= 0:
		fmt.Fprint(errw, "l2agent reload: --pid is required (the daemon's process ID; in the unit: $MAINPID)\n")
		return 2
	case *status == "":
		fmt.Fprint(errw, "l2agent reload: no --status-file and RUNTIME_DIRECTORY is not set\n")
		return 2
	case *timeout <= 0:
		fmt.Fprintf(errw, "l2agent reload: --timeout %s: want a positive duration\n", *timeout)
		return 2
	}
	ctx, cancel := context.WithTimeout(context.Background(), *timeout)
	defer cancel()
	if err := signalReload(ctx, *status, *pid); err != nil {
		fmt.Fprintf(errw, "l2agent reload: %v\n", err)
		return 1
	}
	return 0
}
