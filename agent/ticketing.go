package agent

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"time"

	"github.com/l2agent/l2agent/configs"
	"github.com/l2agent/l2agent/internal/alert"
	"github.com/l2agent/l2agent/internal/fsutil"
	"github.com/l2agent/l2agent/ticketing"
)

// StoreFile is the name of the ticket store in the state dir.
const StoreFile = "l2agent.db"

// StateDir returns the state dir to use: the configured one, or, when that
// is the default and cannot be created by a non-root user (a first
// `make run`), ~/.local/state/l2agent.
func StateDir(cfg *configs.Config) string {
	dir := cfg.StateDir
	if err := os.MkdirAll(dir, 0o750); err == nil || dir != configs.Default().StateDir || os.Geteuid() == 0 {
		return dir
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return dir
	}
	return filepath.Join(home, ".local", "state", "l2agent")
}

// backends builds the ticket backends of cfg, in config order.
func backends(cfg *configs.Config) ([]string, map[string]ticketing.Ticketer, error) {
	var names []string
	bs := map[string]ticketing.Ticketer{}
	var errs []error
	for _, b := range cfg.Ticketing.Backends {
		t, err := ticketing.NewBackend(b)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		names = append(names, b.Name)
		bs[b.Name] = t
	}
	return names, bs, errors.Join(errs...)
}

// startTicketing opens the store and starts delivery. A store or backend that
// cannot be set up leaves the agent running its checks and metrics, with
// /-/ready answering 503 and l2agent_ticketing_up 0 saying why.
func (a *Agent) startTicketing(cfg *configs.Config) {
	if len(cfg.Ticketing.Backends) == 0 {
		return
	}
	names, bs, err := backends(cfg)
	if err != nil {
		a.log.Error("ticketing backend disabled", "err", err)
	}
	svc, err := a.openService(cfg, names, bs)
	if err != nil {
		a.ticketingDown(cfg, err)
		return
	}
	svc.ReconcileChecks(checkNames(cfg), time.Now())
	svc.Start()
}

// openService opens the store of cfg and puts a service over it in force.
func (a *Agent) openService(cfg *configs.Config, names []string, bs map[string]ticketing.Ticketer) (*ticketing.Service, error) {
	if len(names) == 0 {
		return nil, errors.New("no ticket backend could be set up")
	}
	store, err := ticketing.OpenStore(filepath.Join(cfg.StateDir, StoreFile), false, a.log)
	if err != nil {
		return nil, err
	}
	svc := ticketing.NewService(cfg.Ticketing, store, names, bs, a.build.Version, a.log.With("component", "ticketing"), a.tmetrics)
	svc.Manager.KPI = a.kpi
	svc.Manager.Diagnostics = a.freshDiagnostics
	svc.Manager.SetProcedures(a.procedureText)
	a.tickets.Store(svc)
	a.ticketErr.Store(nil)
	return svc, nil
}

// ticketingDown records why ticketing cannot work: /-/ready says it, the
// gauge of every configured backend is 0, and the log has it.
func (a *Agent) ticketingDown(cfg *configs.Config, err error) {
	a.log.Error("ticketing cannot work; checks and metrics keep running", "err", err)
	msg := err.Error()
	a.ticketErr.Store(&msg)
	var names []string
	for _, b := range cfg.Ticketing.Backends {
		names = append(names, b.Name)
	}
	a.tmetrics.SetDown(names)
}

// reloadTicketing puts the ticketing of cfg in force: backends added,
// removed or changed, a new policy, a new state dir. The backends are built
// before anything changes: one that cannot be built rejects the reload.
func (a *Agent) reloadTicketing(old, cfg *configs.Config) error {
	if reflect.DeepEqual(old.Ticketing, cfg.Ticketing) && old.StateDir == cfg.StateDir && a.ticketErr.Load() == nil {
		return nil
	}
	names, bs, err := backends(cfg)
	if err != nil {
		return fmt.Errorf("ticketing: %w", err)
	}
	if old.StateDir != cfg.StateDir {
		if err := writable(cfg.StateDir); err != nil {
			return fmt.Errorf("state_dir: %w", err)
		}
	}
	svc := a.tickets.Load()
	if svc != nil && old.StateDir == cfg.StateDir && len(names) > 0 {
		if err := svc.Reconfigure(cfg.Ticketing, names, bs, time.Now()); err != nil {
			return fmt.Errorf("ticketing: %w", err)
		}
		a.log.Info("ticketing reloaded", "backends", names)
		return nil
	}
	if svc != nil {
		a.tickets.Store(nil)
		if err := svc.Stop(); err != nil {
			a.log.Error("ticket store not closed cleanly", "err", err)
		}
		if old.StateDir != cfg.StateDir {
			a.moveState(old.StateDir, cfg.StateDir)
		}
	}
	a.ticketErr.Store(nil)
	if len(names) == 0 {
		a.log.Info("ticketing off: no backend in the config")
		return nil
	}
	svc, err = a.openService(cfg, names, bs)
	if err != nil {
		a.ticketingDown(cfg, err)
		return fmt.Errorf("ticketing: %w", err)
	}
	svc.Start()
	a.log.Info("ticketing reloaded", "backends", names, "state_dir", cfg.StateDir)
	return nil
}

// moveState copies the ticket store and the alert state to a new state dir
// that has none, so that no incident or queued operation is left behind.
func (a *Agent) moveState(from, to string) {
	for _, name := range []string{StoreFile, AlertStateFile} {
		src, dst := filepath.Join(from, name), filepath.Join(to, name)
		if _, err := os.Stat(dst); err == nil {
			a.log.Warn("state_dir changed and the new one has its own state; the old one is left as it was", "file", dst, "old", src)
			continue
		}
		b, err := os.ReadFile(src)
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err == nil {
			err = os.MkdirAll(to, 0o750)
		}
		if err == nil {
			err = fsutil.WriteFileAtomic(dst, b, 0o600)
		}
		if err != nil {
			a.log.Error("state not moved to the new state_dir", "file", src, "err", err)
			continue
		}
		a.log.Info("state moved to the new state_dir", "from", src, "to", dst)
	}
}

// Tickets is the ticketing service in force, nil without one.
func (a *Agent) Tickets() *ticketing.Service { return a.tickets.Load() }

// ticketSink hands the pipeline's transitions to the ticketing in force.
type ticketSink struct{ a *Agent }

func (s ticketSink) Transition(_ context.Context, t alert.Transition) {
	if svc := s.a.tickets.Load(); svc != nil {
		svc.Handle(t)
	}
}

func (s ticketSink) Reconcile(_ context.Context, check string, alerts []alert.Alert, now time.Time) {
	if svc := s.a.tickets.Load(); svc != nil {
		svc.Reconcile(check, alerts, now)
	}
}

// checkNames are the checks cfg runs.
func checkNames(cfg *configs.Config) []string {
	var names []string
	for _, c := range cfg.Checks {
		if !c.Disabled {
			names = append(names, c.Name)
		}
	}
	return names
}

// OpenTicketing opens the store and backends of cfg without starting
// delivery, for `l2agent tickets flush` when no agent runs.
func (a *Agent) OpenTicketing(cfg *configs.Config) (*ticketing.Service, error) {
	if len(cfg.Ticketing.Backends) == 0 {
		return nil, errors.New("no ticketing backends in the config")
	}
	if dir := StateDir(cfg); dir != cfg.StateDir {
		cfg.MoveStateDir(dir)
	}
	names, bs, err := backends(cfg)
	if err != nil {
		a.log.Error("ticketing backend disabled", "err", err)
	}
	if len(names) == 0 {
		return nil, err
	}
	store, err := ticketing.OpenStore(filepath.Join(cfg.StateDir, StoreFile), false, a.log)
	if err != nil {
		return nil, err
	}
	svc := ticketing.NewService(cfg.Ticketing, store, names, bs, a.build.Version, a.log.With("component", "ticketing"), nil)
	svc.Manager.SetProcedures(a.procedureText)
	return svc, nil
}

// procedureText is the standard procedure a ticket of check's metric
// shows: the runbook_file's, else the built-in one ("" when none).
func (a *Agent) procedureText(check, metric string) string {
	cfg := a.procCfg.Load()
	if cfg == nil {
		return ""
	}
	p, doc, ok := cfg.ProcedureFor(check, metric)
	if !ok {
		return ""
	}
	return p.Text(doc)
}

// writable checks that dir can be created and written to.
func writable(dir string) error {
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return err
	}
	f, err := os.CreateTemp(dir, ".l2agent-probe-*")
	if err != nil {
		return err
	}
	f.Close()
	return os.Remove(f.Name())
}
