package remediate

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/l2agent/l2agent/configs"
	"github.com/l2agent/l2agent/internal/alert"
	"github.com/l2agent/l2agent/internal/textfmt"
)

// VerifyFunc re-runs the check that fired; cleared reports whether the
// alert is no longer firing.
type VerifyFunc func(ctx context.Context) (cleared bool, err error)

// AuditFile is the name of the audit log in the state dir.
const AuditFile = "remediation-audit.jsonl"

// Engine applies the remediation policy. It is safe for concurrent use.
type Engine struct {
	cfg     configs.Remediation
	log     *slog.Logger
	now     func() time.Time
	audit   *auditLog
	m       *metrics
	actions map[string]Action // per action name, with the action's own params
	rules   []boundRule
	env     Env
	helper  string // the helper's socket the actions are sent to; "" in-process

	mu      sync.Mutex
	keyRuns map[string]time.Time   // action + "\x00" + alert key → last run (cooldown)
	runs    map[string][]time.Time // action → recent runs (rate limit)
	allRuns []time.Time            // every action (overall rate limit)
	last    map[string][]Record    // action → the last runs, newest last
}

type boundRule struct {
	index  int
	rule   configs.RemediationRule
	params configs.Params // the action's merged with the rule's
	action Action
}

// keepLast is how many runs per action Actions reports.
const keepLast = 5

// New builds the engine from the config. The audit log goes to
// <stateDir>/remediation-audit.jsonl; its tail restores cooldowns and rate
// limits across restarts and between the daemon and the CLI. reg may be
// nil; registering again on the same registry (a reload) reuses the metrics.
func New(cfg configs.Remediation, stateDir string, log *slog.Logger, reg prometheus.Registerer, now func() time.Time) (*Engine, error) {
	return NewWithEnv(cfg, stateDir, log, reg, now, DefaultEnv)
}

// NewWithEnv is New with the actions reading the host through ev (tests
// point it at a fake root).
func NewWithEnv(cfg configs.Remediation, stateDir string, log *slog.Logger, reg prometheus.Registerer, now func() time.Time, ev Env) (*Engine, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if now == nil {
		now = time.Now
	}
	if stateDir == "" {
		return nil, errors.New("remediation: no state dir for the audit log")
	}
	if err := os.MkdirAll(stateDir, 0o750); err != nil {
		return nil, fmt.Errorf("remediation: %w", err)
	}
	m, err := newMetrics(reg)
	if err != nil {
		return nil, err
	}
	e := &Engine{
		cfg: cfg, log: log.With("component", "remediate"), now: now,
		audit: &auditLog{path: stateDir + "/" + AuditFile}, m: m,
		actions: map[string]Action{}, env: ev,
		keyRuns: map[string]time.Time{}, runs: map[string][]time.Time{}, last: map[string][]Record{},
	}
	for _, name := range Names() {
		p := cfg.Actions[name]
		a, err := newAction(name, p, p.Params, ev)
		if err != nil {
			return nil, fmt.Errorf("remediation action %s: %w", name, err)
		}
		e.actions[name] = a
	}
	for i, r := range cfg.Rules {
		p, ok := cfg.Actions[r.Action]
		if !ok {
			return nil, fmt.Errorf("remediation rule %d: unknown action %q", i, r.Action)
		}
		params := configs.MergeParams(p.Params, r.Params)
		a, err := newAction(r.Action, p, params, ev)
		if err != nil {
			return nil, fmt.Errorf("remediation rule %d: %w", i, err)
		}
		e.rules = append(e.rules, boundRule{index: i, rule: r, params: params, action: a})
	}
	if sock := cfg.HelperSocket(exists); sock != "" {
		if err := e.delegate(sock); err != nil {
			return nil, err
		}
	}
	recs, err := e.audit.tail(1 << 20)
	if err != nil {
		e.log.Warn("cannot read the audit log: cooldowns and rate limits start afresh", "err", err)
	}
	for _, r := range recs {
		e.remember(r)
	}
	return e, nil
}

// match finds the first rule for a firing alert.
func (e *Engine) match(a alert.Alert) (boundRule, bool) {
	for _, br := range e.rules {
		r := br.rule
		if r.Check != a.Check || (r.Metric != "" && r.Metric != a.Metric) {
			continue
		}
		if r.State == "crit" && a.State != alert.StateCrit {
			continue
		}
		if !a.State.Firing() {
			continue
		}
		ok := true
		for k, v := range r.Labels {
			if a.Labels[k] != v {
				ok = false
				break
			}
		}
		if ok {
			return br, true
		}
	}
	return boundRule{}, false
}

// Rule reports the action of the first rule matching a firing alert.
func (e *Engine) Rule(a alert.Alert) (action string, ok bool) {
	br, ok := e.match(a)
	return br.rule.Action, ok
}

// Remediate runs the action of the first rule matching a firing alert,
// under the policy, then verify (when the policy verifies). attempted is
// false when no rule matches (the Attempt is then empty) and when the
// policy held the action back (dry run, cooldown, rate limit, window, not
// allowed: the Attempt says why). Only an attempted Attempt with
// Success=false is a failed remediation; Success means the alert cleared.
func (e *Engine) Remediate(ctx context.Context, a alert.Alert, verify VerifyFunc) (alert.Attempt, bool) {
	br, ok := e.match(a)
	if !ok {
		return alert.Attempt{}, false
	}
	return e.run(ctx, br.rule.Action, br.action, br.index, a, verify)
}

// Run runs an action by hand (CLI) under the same policy and audit. The
// params are those of the first rule of this action matching a, else the
// action's own.
func (e *Engine) Run(ctx context.Context, action string, a alert.Alert, verify VerifyFunc) (alert.Attempt, bool) {
	act, idx := e.actionFor(action, a)
	return e.run(ctx, action, act, idx, a, verify)
}

// Plan says what an action would do now for a, without any policy check
// and without changing anything (the CLI's dry run). Admit says whether the
// policy would let it run.
func (e *Engine) Plan(ctx context.Context, action string, a alert.Alert) (Plan, error) {
	act, _ := e.actionFor(action, a)
	if act == nil {
		return Plan{}, fmt.Errorf("unknown remediation action %q (known: %s)", action, strings.Join(Names(), ", "))
	}
	p := e.cfg.Actions[action]
	ctx, cancel := context.WithTimeout(ctx, p.Timeout.D())
	defer cancel()
	return act.Plan(ctx, a)
}

// Admit reports what the policy would decide now for action and a: an
// empty result when it would run, else the result label and why.
func (e *Engine) Admit(action string, a alert.Alert) (result, reason string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	result, reason, _ = e.decide(action, a, false, true)
	return result, reason
}

func (e *Engine) actionFor(action string, a alert.Alert) (Action, int) {
	if a.State.Firing() {
		for _, br := range e.rules {
			if br.rule.Action != action {
				continue
			}
			if m, ok := e.match(a); ok && m.index == br.index {
				return br.action, br.index
			}
		}
	}
	return e.actions[action], -1
}

// decide applies the policy; reserve books the run (cooldown, rate limits);
// cooldown applies the per-alert-key cooldown. e.mu is held.
func (e *Engine) decide(name string, a alert.Alert, reserve, cooldown bool) (result, reason string, dryRun bool) {
	now := e.now()
	p, known := e.cfg.Actions[name]
	if _, ok := e.actions[name]; !known || !ok {
		return ResultNotAllowed, fmt.Sprintf("unknown action %q", name), false
	}
	if !p.Enabled {
		return ResultNotAllowed, fmt.Sprintf("action %s is not enabled (remediation.actions.%s.enabled)", name, name), false
	}
	dryRun = e.cfg.DryRun || p.DryRun
	if last, ok := e.keyRuns[name+"\x00"+a.Key]; ok && cooldown && now.Sub(last) < p.Cooldown.D() {
		return ResultSkippedCooldown, fmt.Sprintf("ran for this alert at %s; cooldown %s until %s",
			last.UTC().Format(time.RFC3339), p.Cooldown.D(), last.Add(p.Cooldown.D()).UTC().Format(time.RFC3339)), dryRun
	}
	if !p.InMaintenanceWindow(now) {
		next := ""
		if s, err := configs.ParseSchedule(p.MaintenanceWindow); err == nil {
			next = "; next opening " + s.Next(now).UTC().Format(time.RFC3339)
		}
		return ResultSkippedWindow, fmt.Sprintf("outside the maintenance window %q (%s)%s", p.MaintenanceWindow, p.MaintenanceDuration.D(), next), dryRun
	}
	if !dryRun {
		e.runs[name] = prune(e.runs[name], now, p.MaxRuns.Window.D())
		e.allRuns = prune(e.allRuns, now, e.cfg.MaxRuns.Window.D())
		if n := len(e.runs[name]); n >= p.MaxRuns.Count {
			return ResultSkippedRateLimit, fmt.Sprintf("action %s ran %d times within %s (max_runs %d)", name, n, p.MaxRuns.Window.D(), p.MaxRuns.Count), false
		}
		if n := len(e.allRuns); n >= e.cfg.MaxRuns.Count {
			return ResultSkippedRateLimit, fmt.Sprintf("remediations ran %d times within %s (overall max_runs %d)", n, e.cfg.MaxRuns.Window.D(), e.cfg.MaxRuns.Count), false
		}
	}
	if reserve {
		e.keyRuns[name+"\x00"+a.Key] = now
		if !dryRun {
			e.runs[name] = append(e.runs[name], now)
			e.allRuns = append(e.allRuns, now)
		}
	}
	if dryRun {
		return ResultDryRun, "dry run", true
	}
	return "", "", false
}

func prune(ts []time.Time, now time.Time, window time.Duration) []time.Time {
	return slices.DeleteFunc(ts, func(t time.Time) bool { return now.Sub(t) >= window })
}

// remember applies a record read back from the audit log to the cooldown,
// rate-limit and last-runs state. The engine is not yet shared.
func (e *Engine) remember(r Record) {
	if ran(r.Result) || r.Result == ResultDryRun {
		k := r.Action + "\x00" + r.Alert.Key
		if r.Time.After(e.keyRuns[k]) {
			e.keyRuns[k] = r.Time
		}
	}
	if ran(r.Result) {
		e.runs[r.Action] = append(e.runs[r.Action], r.Time)
		e.allRuns = append(e.allRuns, r.Time)
	}
	e.rememberLast(r)
}

// rememberLast keeps r among the last runs of its action. e.mu is held.
func (e *Engine) rememberLast(r Record) {
	l := append(e.last[r.Action], r)
	if len(l) > keepLast {
		l = l[len(l)-keepLast:]
	}
	e.last[r.Action] = l
}

func (e *Engine) run(ctx context.Context, name string, act Action, rule int, a alert.Alert, verify VerifyFunc) (alert.Attempt, bool) {
	start := e.now()
	rec := Record{Time: start, Action: name, Alert: auditAlert(a), Rule: rule, Manual: rule < 0}
	e.mu.Lock()
	result, reason, dryRun := e.decide(name, a, true, true)
	e.mu.Unlock()
	rec.DryRun = dryRun
	if result != "" && result != ResultDryRun {
		rec.Result, rec.Reason = result, reason
		return e.finish(rec), false
	}
	p := e.cfg.Actions[name]
	actx, cancel := context.WithTimeout(ctx, p.Timeout.D())
	defer cancel()
	timedOut := func() bool { return errors.Is(actx.Err(), context.DeadlineExceeded) && ctx.Err() == nil }

	plan, err := act.Plan(actx, a)
	rec.Plan = textfmt.Truncate(plan.Text, MaxPlanText)
	if err != nil {
		rec.Result, rec.Reason = ResultFailed, "plan: "+err.Error()
		if timedOut() {
			rec.Result, rec.Reason = ResultTimeout, fmt.Sprintf("plan killed at its timeout of %s", p.Timeout.D())
		}
		rec.DurationSeconds = e.now().Sub(start).Seconds()
		return e.finish(rec), !dryRun
	}
	if dryRun {
		rec.Result, rec.Reason = ResultDryRun, "dry run: nothing was changed"
		return e.finish(rec), false
	}
	out, err := act.Apply(actx, plan)
	rec.Output, rec.Outcome, rec.FreedBytes, rec.RebootRequired = out.Output, out.Result, out.FreedBytes, out.RebootRequired
	rec.Expect, rec.Effect = plan.Expect, out.Effect
	result, reason, failed := applyFailure(plan, out, err, timedOut(), p.Timeout.D())
	switch {
	case failed:
		rec.Result, rec.Reason = result, reason
	case verify == nil || !p.VerifyEnabled():
		rec.Result, rec.Reason = ResultSuccess, "not verified: no check to re-run"
		if verify != nil {
			rec.Reason = "not verified: verify is off for this action"
		}
	default:
		vctx, vcancel := context.WithTimeout(ctx, p.Timeout.D())
		cleared, verr := verify(vctx)
		vcancel()
		switch {
		case verr != nil:
			rec.Result, rec.Reason = ResultNotVerified, "verify: "+verr.Error()
		case cleared:
			rec.Result, rec.Reason = ResultSuccess, "alert cleared"
		default:
			rec.Result, rec.Reason = ResultNotVerified, "alert still firing after the action"
		}
	}
	rec.DurationSeconds = e.now().Sub(start).Seconds()
	return e.finish(rec), true
}

// finish audits, logs and counts a record and returns its Attempt.
func (e *Engine) finish(rec Record) alert.Attempt {
	rec.Output = Excerpt(rec.Output, MaxOutput)
	if err := e.audit.append(rec); err != nil {
		e.log.Error("cannot write the remediation audit log", "err", err)
	}
	e.mu.Lock()
	e.rememberLast(rec) // cooldown and rate limits were booked by decide
	e.mu.Unlock()
	lvl := slog.LevelInfo
	switch rec.Result {
	case ResultFailed, ResultTimeout, ResultNotVerified:
		lvl = slog.LevelWarn
	}
	e.log.Log(context.Background(), lvl, "remediation", "action", rec.Action, "result", rec.Result, "reason", rec.Reason,
		"key", rec.Alert.Key, "outcome", rec.Outcome, "freed_bytes", rec.FreedBytes, "dry_run", rec.DryRun, "manual", rec.Manual)
	e.m.runs.WithLabelValues(rec.Action, rec.Result).Inc()
	if rec.FreedBytes > 0 {
		e.m.freed.WithLabelValues(rec.Action).Add(float64(rec.FreedBytes))
	}
	if ran(rec.Result) {
		e.m.last.WithLabelValues(rec.Action).Set(float64(rec.Time.UnixNano()) / 1e9)
	}
	return rec.Attempt()
}

// ActionInfo describes one action for `remediate list`.
type ActionInfo struct {
	Name     string
	Policy   configs.ActionPolicy
	DryRun   bool     // effective: the global or the action's dry_run
	Rules    []int    // indexes of the rules that run it
	LastRuns []Record // newest first
}

// Actions lists every action with its policy and last runs.
func (e *Engine) Actions() []ActionInfo {
	e.mu.Lock()
	defer e.mu.Unlock()
	var out []ActionInfo
	for _, name := range Names() {
		p := e.cfg.Actions[name]
		info := ActionInfo{Name: name, Policy: p, DryRun: e.cfg.DryRun || p.DryRun}
		for _, br := range e.rules {
			if br.rule.Action == name {
				info.Rules = append(info.Rules, br.index)
			}
		}
		l := slices.Clone(e.last[name])
		slices.Reverse(l)
		info.LastRuns = l
		out = append(out, info)
	}
	return out
}

type metrics struct {
	runs  *prometheus.CounterVec
	freed *prometheus.CounterVec
	last  *prometheus.GaugeVec
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		runs: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "l2agent_remediation_runs_total",
			Help: "Remediation attempts by action and result (success, failed, not_verified, dry_run, skipped_cooldown, skipped_rate_limit, not_allowed, timeout, skipped_window).",
		}, []string{"action", "result"}),
		freed: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "l2agent_remediation_freed_bytes_total",
			Help: "Bytes freed by remediation actions.",
		}, []string{"action"}),
		last: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "l2agent_remediation_last_run_timestamp_seconds",
			Help: "When a remediation action last ran (dry runs and skips excluded), as a Unix time.",
		}, []string{"action"}),
	}
	if reg == nil {
		return m, nil
	}
	var err error
	if m.runs, err = register(reg, m.runs); err != nil {
		return nil, err
	}
	if m.freed, err = register(reg, m.freed); err != nil {
		return nil, err
	}
	if m.last, err = register(reg, m.last); err != nil {
		return nil, err
	}
	return m, nil
}

// register registers c, or returns the collector already registered (a
// reload builds a new engine on the same registry).
func register[C prometheus.Collector](reg prometheus.Registerer, c C) (C, error) {
	if err := reg.Register(c); err != nil {
		var are prometheus.AlreadyRegisteredError
		if errors.As(err, &are) {
			if ex, ok := are.ExistingCollector.(C); ok {
				return ex, nil
			}
		}
		return c, fmt.Errorf("remediation metrics: %w", err)
	}
	return c, nil
}
