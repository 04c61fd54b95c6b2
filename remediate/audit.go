package remediate

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	"github.com/l2agent/l2agent/internal/alert"
	"github.com/l2agent/l2agent/internal/fsutil"
)

// Record is one line of the audit log: every decision, whether the action
// ran or not.
type Record struct {
	Time            time.Time  `json:"time"`
	Action          string     `json:"action"`
	Result          string     `json:"result"`           // one of Results
	Reason          string     `json:"reason,omitempty"` // why: skipped, failed, verified
	Manual          bool       `json:"manual,omitempty"` // run by hand (CLI), not by a rule
	Peer            string     `json:"peer,omitempty"`   // the helper's audit: who asked (uid, pid)
	DryRun          bool       `json:"dry_run,omitempty"`
	Rule            int        `json:"rule"` // index of the rule, -1 for a manual run
	Alert           auditAlert `json:"alert"`
	Plan            string     `json:"plan,omitempty"`
	Outcome         string     `json:"outcome,omitempty"` // the action's own summary
	Expect          string     `json:"expect,omitempty"`  // the effect the plan expected
	Effect          string     `json:"effect,omitempty"`  // the effect measured; empty: none
	Output          string     `json:"output,omitempty"`  // excerpt, bounded by MaxOutput
	FreedBytes      int64      `json:"freed_bytes,omitempty"`
	RebootRequired  bool       `json:"reboot_required,omitempty"`
	DurationSeconds float64    `json:"duration_seconds,omitempty"`
}

// auditAlert is the alert model as the audit log writes it: only what
// identifies it and its value, the fields the log always had.
type auditAlert alert.Alert

type auditAlertJSON struct {
	Key    string            `json:"key"`
	Host   string            `json:"host,omitempty"`
	Check  string            `json:"check"`
	Metric string            `json:"metric,omitempty"`
	Labels map[string]string `json:"labels,omitempty"`
	State  string            `json:"state,omitempty"` // "warn" or "crit"
	Value  float64           `json:"value"`
}

// MarshalJSON writes the audit log's fields of the alert.
func (a auditAlert) MarshalJSON() ([]byte, error) {
	j := auditAlertJSON{Key: a.Key, Host: a.Host, Check: a.Check, Metric: a.Metric, Labels: a.Labels, Value: a.Value}
	if a.State != alert.StateOK {
		j.State = a.State.String()
	}
	return json.Marshal(j)
}

// UnmarshalJSON reads what MarshalJSON wrote.
func (a *auditAlert) UnmarshalJSON(b []byte) error {
	var j auditAlertJSON
	if err := json.Unmarshal(b, &j); err != nil {
		return err
	}
	*a = auditAlert{Key: j.Key, Host: j.Host, Check: j.Check, Metric: j.Metric, Labels: j.Labels, Value: j.Value}
	if j.State != "" {
		return a.State.UnmarshalText([]byte(j.State))
	}
	return nil
}

// Attempt is the record as a ticket shows it.
func (r Record) Attempt() alert.Attempt {
	text := r.Reason
	switch {
	case r.Outcome != "" && text != "" && r.Outcome != text:
		text = r.Outcome + "; " + text
	case r.Outcome != "" && text == "":
		text = r.Outcome
	}
	res := r.Result
	if text != "" {
		res += ": " + text
	}
	return alert.Attempt{At: r.Time, Action: r.Action, Plan: r.Plan, Output: r.Output, Result: res, Success: r.Result == ResultSuccess}
}

// auditLog appends records as JSON lines, each synced to disk.
type auditLog struct {
	mu   sync.Mutex
	path string
}

func (l *auditLog) append(r Record) error {
	b, err := json.Marshal(r)
	if err != nil {
		return err
	}
	b = append(b, '\n')
	l.mu.Lock()
	defer l.mu.Unlock()
	f, err := os.OpenFile(l.path, os.O_WRONLY|os.O_APPEND|syscall.O_NOFOLLOW, 0)
	if errors.Is(err, fs.ErrNotExist) {
		f, err = createOwned(l.path)
	}
	if err != nil {
		return err
	}
	if _, err := f.Write(b); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// createOwned creates the audit log, owned by the owner of its directory:
// root running the CLI must not leave a file the agent's user cannot
// append to.
func createOwned(path string) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE|syscall.O_NOFOLLOW, 0o600)
	if err != nil || os.Geteuid() != 0 {
		return f, err
	}
	var st syscall.Stat_t
	if syscall.Stat(filepath.Dir(path), &st) == nil && st.Uid != 0 {
		if err := f.Chown(int(st.Uid), int(st.Gid)); err != nil {
			f.Close()
			return nil, fmt.Errorf("give the audit log to the owner of its directory: %w", err)
		}
	}
	return f, nil
}

// tail reads the records in the last max bytes of the log.
func (l *auditLog) tail(max int64) ([]Record, error) {
	return ReadAudit(l.path, max)
}

// ReadAudit reads the records in the last max bytes of an audit log (all
// when max <= 0); a missing file has none. Lines that do not parse (a torn
// last write, or the line cut at max bytes) are skipped.
func ReadAudit(path string, max int64) ([]Record, error) {
	var b []byte
	var err error
	if max > 0 {
		b, err = fsutil.ReadTail(path, max) // from a line boundary
	} else {
		b, err = os.ReadFile(path)
	}
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read audit log: %w", err)
	}
	var out []Record
	for line := range bytes.Lines(b) {
		line = bytes.TrimSpace(line)
		if len(line) == 0 {
			continue
		}
		var r Record
		if json.Unmarshal(line, &r) == nil && r.Action != "" {
			out = append(out, r)
		}
	}
	return out, nil
}
