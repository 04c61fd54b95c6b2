package agent

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/l2agent/l2agent/configs"
	"github.com/l2agent/l2agent/internal/alert"
	"github.com/l2agent/l2agent/internal/fsutil"
)

// AlertStateFile is the evaluator's state in the state dir: every alert
// key's state, severity, since when, and when its breach began, so that a
// restart neither waits `for` again nor forgets what was firing.
const AlertStateFile = "alerts.json"

// savedAlerts is the file's content.
type savedAlerts struct {
	Version int          `json:"version"`
	Saved   time.Time    `json:"saved"`
	Alerts  []savedAlert `json:"alerts"`
}

// savedAlert is one entry: the alert and the firing state held before an
// unknown, to resume it.
type savedAlert struct {
	alert.Alert
	PrevFiring alert.State `json:"prev_firing"`
}

const savedAlertsVersion = 1

// Save writes every alert to path atomically (a crash leaves the old file
// or the new one, never half of one). Diagnostics are not kept: they are
// taken again when an alert fires.
func (e *Evaluator) Save(path string, now time.Time) error {
	e.mu.RLock()
	s := savedAlerts{Version: savedAlertsVersion, Saved: now, Alerts: make([]savedAlert, 0, len(e.alerts))}
	for _, a := range e.alerts {
		c := a.Clone()
		c.Details = ""
		s.Alerts = append(s.Alerts, savedAlert{Alert: c, PrevFiring: a.prevFiring})
	}
	e.mu.RUnlock()
	slices.SortFunc(s.Alerts, func(a, b savedAlert) int { return strings.Compare(a.Key, b.Key) })
	b, err := json.Marshal(s)
	if err != nil {
		return fmt.Errorf("encode alert state: %w", err)
	}
	if err := fsutil.WriteFileAtomic(path, b, 0o600); err != nil {
		return fmt.Errorf("save alert state: %w", err)
	}
	return nil
}

// Restore loads the alerts saved at path for this host and the named
// checks; keys of other hosts or checks are left out (their incidents are
// reconciled by ticketing). A missing file is no error: a first start.
// It returns how many alerts it restored.
func (e *Evaluator) Restore(path string, checks []string) (int, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("read alert state: %w", err)
	}
	var s savedAlerts
	if err := json.Unmarshal(b, &s); err != nil {
		return 0, fmt.Errorf("read alert state %s: %w", path, err)
	}
	if s.Version != savedAlertsVersion {
		return 0, fmt.Errorf("read alert state %s: version %d, want %d", path, s.Version, savedAlertsVersion)
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	n := 0
	for _, sa := range s.Alerts {
		if sa.Host != e.host || !slices.Contains(checks, sa.Check) || sa.Key != alert.Key(sa.Host, sa.Check, sa.Metric, sa.Labels) {
			continue
		}
		if _, ok := e.alerts[sa.Key]; ok {
			continue // evaluated already: what this run saw wins
		}
		e.alerts[sa.Key] = &entry{Alert: sa.Alert, prevFiring: sa.PrevFiring}
		n++
	}
	return n, nil
}

// restoreAlerts loads the evaluator's state saved by the previous run and
// keeps it from now on (the daemon only; one-shot runs keep nothing).
func (a *Agent) restoreAlerts(cfg *configs.Config) {
	path := filepath.Join(cfg.StateDir, AlertStateFile)
	a.alertState.Store(&path)
	n, err := a.eval.Restore(path, checkNames(cfg))
	if err != nil {
		a.log.Error("alert state not restored; alerts start from ok and open tickets are reconciled by the checks' first runs", "err", err)
		return
	}
	if n > 0 {
		a.log.Info("alert state restored", "file", path, "alerts", n)
	}
}

// saveAlerts writes the evaluator's state, if it is kept.
func (a *Agent) saveAlerts() {
	path := a.alertState.Load()
	if path == nil {
		return
	}
	a.saveMu.Lock()
	defer a.saveMu.Unlock()
	if err := a.eval.Save(*path, time.Now()); err != nil {
		a.log.Error("alert state not saved; a restart would start from the state saved before", "err", err)
	}
}
