package agent

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/l2agent/l2agent/configs"
	"github.com/l2agent/l2agent/internal/alert"
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

// startTicketing opens the store and starts delivery. A store or backend that
// cannot be set up disables ticketing with a logged error; checks and metrics
// keep running.
func (a *Agent) startTicketing(cfg *configs.Config, reg prometheus.Registerer) {
	if len(cfg.Ticketing.Backends) == 0 {
		return
	}
	svc, err := a.newTicketing(cfg, reg, false)
	if err != nil {
		a.log.Error("ticketing disabled", "err", err)
		return
	}
	a.tickets = svc
	svc.Manager.KPI = a.kpi
	a.opts.Sinks = append(a.opts.Sinks, ticketSink{svc})
	svc.ReconcileChecks(checkNames(cfg), time.Now())
	svc.Start(cfg.Ticketing.Interval.D())
	for _, d := range svc.Deliverers {
		d.Wake() // resume what a previous run left in the outbox
	}
}

func (a *Agent) newTicketing(cfg *configs.Config, reg prometheus.Registerer, readOnly bool) (*ticketing.Service, error) {
	store, err := ticketing.OpenStore(filepath.Join(cfg.StateDir, StoreFile), readOnly, a.log)
	if err != nil {
		return nil, err
	}
	var names []string
	backends := map[string]ticketing.Ticketer{}
	var errs []error
	for _, b := range cfg.Ticketing.Backends {
		t, err := ticketing.NewBackend(b)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		names = append(names, b.Name)
		backends[b.Name] = t
	}
	if len(names) == 0 {
		store.Close()
		return nil, errors.Join(errs...)
	}
	for _, err := range errs {
		a.log.Error("ticketing backend disabled", "err", err)
	}
	return ticketing.NewService(cfg.Ticketing, store, names, backends, a.build.Version, a.log.With("component", "ticketing"), reg), nil
}

// ticketSink hands the pipeline's transitions to the ticket manager.
type ticketSink struct{ svc *ticketing.Service }

func (s ticketSink) Transition(_ context.Context, t alert.Transition) { s.svc.Handle(t) }

func (s ticketSink) Reconcile(_ context.Context, check string, alerts []alert.Alert, now time.Time) {
	s.svc.Reconcile(check, alerts, now)
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
	return a.newTicketing(cfg, nil, false)
}
