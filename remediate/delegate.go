package remediate

// Delegation to the privileged remediation helper (remediate/helper): the
// agent runs unprivileged and sends each action to a helper that runs as
// root, loads the policy itself and re-checks every request against it.
// This file holds both ends of the exchange that are policy: the request
// and response, the agent's side (remoteAction, a stand-in for each
// action) and the helper's side (Engine.Serve). The transport, the peer's
// credentials and the helper's own sandbox are in remediate/helper.

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/l2agent/l2agent/configs"
	"github.com/l2agent/l2agent/internal/alert"
	"github.com/l2agent/l2agent/internal/textfmt"
)

// Modes of a request.
const (
	ModePlan  = "plan"  // say what the action would do; changes nothing
	ModeApply = "apply" // plan again and apply, under the helper's policy
)

// MaxRequest bounds one request (a JSON line); MaxResponse one answer.
const (
	MaxRequest  = 64 << 10
	MaxResponse = 1 << 20
)

// Request is one action the agent asks the helper to plan or apply.
type Request struct {
	Mode   string      `json:"mode"`
	Action string      `json:"action"`
	Alert  alert.Alert `json:"alert"`
	// Params are the action's params as the agent's policy made them
	// (YAML); the helper decodes and validates them against its own
	// allowlists. Empty: the helper takes them from its own policy (the
	// first rule of the action matching the alert, else the action's).
	Params string `json:"params,omitempty"`
}

// Response is the helper's answer.
type Response struct {
	// Result is set when the helper's policy held the request back (one of
	// Results: not_allowed, skipped_rate_limit, skipped_window, dry_run),
	// with the reason.
	Result string `json:"result,omitempty"`
	Reason string `json:"reason,omitempty"`
	Plan   string `json:"plan,omitempty"`
	Expect string `json:"expect,omitempty"`
	// Outcome of an apply; nil for a plan or a refusal.
	Outcome *Outcome `json:"outcome,omitempty"`
	// Error is the plan's or the apply's error.
	Error string `json:"error,omitempty"`
}

// Confine is called by Serve once the plan is made and before it is
// applied, with the action and its params: the helper sandboxes itself
// there (writes only under the action's paths). An error stops the run.
type Confine func(action string, settings configs.Options, params configs.Params) error

// remoteAction stands in for an action in the agent: Plan and Apply are
// requests to the helper at socket.
type remoteAction struct {
	name   string
	params string // YAML, "" when the action takes none
	socket string
}

func newRemoteAction(name string, params configs.Params, socket string) (*remoteAction, error) {
	ra := &remoteAction{name: name, socket: socket}
	if params != nil {
		b, err := yaml.Marshal(params)
		if err != nil {
			return nil, fmt.Errorf("encode the params of %s for the helper: %w", name, err)
		}
		ra.params = string(b)
	}
	return ra, nil
}

func (r *remoteAction) Name() string { return r.name }

func (r *remoteAction) Plan(ctx context.Context, a Alert) (Plan, error) {
	resp, err := Call(ctx, r.socket, Request{Mode: ModePlan, Action: r.name, Alert: a, Params: r.params})
	switch {
	case err != nil:
		return Plan{}, err
	case resp.Result != "":
		return Plan{}, fmt.Errorf("the remediation helper refused: %s: %s", resp.Result, resp.Reason)
	case resp.Error != "":
		return Plan{Action: r.name, Text: resp.Plan}, errors.New(resp.Error)
	}
	return Plan{Action: r.name, Text: resp.Plan, Expect: resp.Expect, Data: a}, nil
}

// Apply asks the helper to apply the action for the plan's alert: the
// helper plans again (the host may have changed since) and applies.
func (r *remoteAction) Apply(ctx context.Context, p Plan) (Outcome, error) {
	a, _ := p.Data.(Alert)
	resp, err := Call(ctx, r.socket, Request{Mode: ModeApply, Action: r.name, Alert: a, Params: r.params})
	switch {
	case err != nil:
		return Outcome{Result: err.Error()}, err
	case resp.Result != "":
		err := fmt.Errorf("the remediation helper refused: %s: %s", resp.Result, resp.Reason)
		return Outcome{Result: err.Error()}, err
	}
	var o Outcome
	if resp.Outcome != nil {
		o = *resp.Outcome
	}
	if resp.Error != "" {
		if o.Result == "" {
			o.Result = resp.Error
		}
		return o, errors.New(resp.Error)
	}
	return o, nil
}

// Call sends req to the helper listening on socket and reads its answer;
// ctx bounds the whole exchange.
func Call(ctx context.Context, socket string, req Request) (Response, error) {
	var d net.Dialer
	conn, err := d.DialContext(ctx, "unix", socket)
	if err != nil {
		return Response{}, fmt.Errorf("remediation helper: %w", err)
	}
	defer conn.Close()
	stop := context.AfterFunc(ctx, func() { conn.SetDeadline(time.Now()) })
	defer stop()
	if dl, ok := ctx.Deadline(); ok {
		conn.SetDeadline(dl)
	}
	b, err := json.Marshal(req)
	if err != nil {
		return Response{}, fmt.Errorf("remediation helper: encode the request: %w", err)
	}
	// A helper that refuses the peer answers before reading: its answer
	// is read even when sending failed.
	_, werr := conn.Write(append(b, '\n'))
	var resp Response
	if err := json.NewDecoder(io.LimitReader(conn, MaxResponse)).Decode(&resp); err != nil {
		if werr != nil {
			return Response{}, fmt.Errorf("remediation helper %s: send the request: %w", socket, werr)
		}
		if ctx.Err() != nil {
			err = ctx.Err()
		}
		return Response{}, fmt.Errorf("remediation helper %s: read the answer to %s %s: %w", socket, req.Mode, req.Action, err)
	}
	return resp, nil
}

// ReadRequest reads one request, a JSON line of at most MaxRequest bytes.
func ReadRequest(r io.Reader) (Request, error) {
	br := bufio.NewReaderSize(io.LimitReader(r, MaxRequest+1), 4096)
	line, err := br.ReadSlice('\n')
	for errors.Is(err, bufio.ErrBufferFull) {
		var more []byte
		more, err = br.ReadSlice('\n')
		line = append(line, more...)
	}
	if len(line) > MaxRequest {
		return Request{}, fmt.Errorf("request larger than %d bytes", MaxRequest)
	}
	if err != nil && !errors.Is(err, io.EOF) {
		return Request{}, fmt.Errorf("read the request: %w", err)
	}
	var req Request
	dec := json.NewDecoder(strings.NewReader(string(line)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		return Request{}, fmt.Errorf("decode the request: %w", err)
	}
	return req, nil
}

// Serve runs one delegated request under the engine's policy: the helper's
// side. The action must be registered and, to apply, enabled, inside its
// maintenance window and within its rate limits and the overall one; the
// params, when the request has any, must pass the action's own validation
// against its allowlists; a dry-run policy applies nothing. Cooldowns are
// the agent's: they are per alert key, which the agent names. Every apply
// request, run or refused, is audited; peer says who asked.
func (e *Engine) Serve(ctx context.Context, req Request, peer string, confine Confine) Response {
	name := req.Action
	p, known := e.cfg.Actions[name]
	if _, ok := e.actions[name]; !known || !ok {
		return e.refuse(req, peer, ResultNotAllowed, fmt.Sprintf("unknown action %q", name))
	}
	if req.Mode != ModePlan && req.Mode != ModeApply {
		return e.refuse(req, peer, ResultNotAllowed, fmt.Sprintf("unknown mode %q (want plan or apply)", req.Mode))
	}
	params, err := e.requestParams(req, p)
	if err != nil {
		return e.refuse(req, peer, ResultNotAllowed, err.Error())
	}
	act, err := newAction(name, p, params, e.env)
	if err != nil {
		return e.refuse(req, peer, ResultNotAllowed, err.Error())
	}
	if req.Mode == ModeApply {
		e.mu.Lock()
		result, reason, _ := e.decide(name, req.Alert, true, false)
		e.mu.Unlock()
		if result != "" {
			return e.refuse(req, peer, result, reason)
		}
	}
	actx, cancel := context.WithTimeout(ctx, p.Timeout.D())
	defer cancel()
	plan, err := act.Plan(actx, req.Alert)
	resp := Response{Plan: textfmt.Truncate(plan.Text, MaxPlanText), Expect: plan.Expect}
	if err != nil {
		resp.Error = "plan: " + err.Error()
	}
	if req.Mode == ModePlan {
		return resp
	}
	return e.serveApply(actx, req, peer, act, plan, resp, p, params, confine)
}

// serveApply confines the helper, applies the plan and audits the run.
func (e *Engine) serveApply(ctx context.Context, req Request, peer string, act Action, plan Plan, resp Response,
	p configs.ActionPolicy, params configs.Params, confine Confine) Response {
	start := e.now()
	rec := Record{Time: start, Action: req.Action, Alert: auditAlert(req.Alert), Rule: -1, Peer: peer, Plan: resp.Plan, Expect: plan.Expect}
	if resp.Error == "" && confine != nil {
		if err := confine(req.Action, p.Settings, params); err != nil {
			resp.Error = "sandbox: " + err.Error()
		}
	}
	if resp.Error != "" {
		rec.Result, rec.Reason = ResultFailed, resp.Error
		rec.DurationSeconds = e.now().Sub(start).Seconds()
		e.finish(rec)
		return resp
	}
	out, err := act.Apply(ctx, plan)
	out.Output = Excerpt(out.Output, MaxOutput)
	resp.Outcome = &out
	rec.Output, rec.Outcome, rec.FreedBytes, rec.RebootRequired, rec.Effect = out.Output, out.Result, out.FreedBytes, out.RebootRequired, out.Effect
	rec.Result, rec.Reason, _ = applyFailure(plan, out, err, errors.Is(ctx.Err(), context.DeadlineExceeded), p.Timeout.D())
	if rec.Result == "" {
		rec.Result, rec.Reason = ResultSuccess, "applied; the agent verifies"
	}
	if err != nil {
		resp.Error = err.Error()
	}
	rec.DurationSeconds = e.now().Sub(start).Seconds()
	e.finish(rec)
	return resp
}

// requestParams decodes and validates the request's params against the
// action's settings (its allowlists), or takes the engine's own.
func (e *Engine) requestParams(req Request, p configs.ActionPolicy) (configs.Params, error) {
	if req.Params == "" {
		return e.paramsFor(req.Action, req.Alert), nil
	}
	params, err := configs.DecodeParams(req.Action, []byte(req.Params))
	if err != nil {
		return nil, err
	}
	if params == nil {
		return nil, nil
	}
	var errs []string
	errf := func(path, format string, args ...any) { errs = append(errs, fmt.Sprintf(format, args...)) }
	params.Validate("params", errf, p.Settings)
	if len(errs) == 0 {
		params.Complete("params", errf, p.Settings)
	}
	if len(errs) > 0 {
		return nil, fmt.Errorf("params refused by the policy: %s", strings.Join(errs, "; "))
	}
	return params, nil
}

// paramsFor is the params the engine itself would run action with for a:
// those of the first rule of the action matching a, else the action's own.
func (e *Engine) paramsFor(action string, a alert.Alert) configs.Params {
	if m, ok := e.match(a); ok && m.rule.Action == action {
		return m.params
	}
	return e.cfg.Actions[action].Params
}

// refuse answers a request the policy holds back, audited when it asked
// to apply.
func (e *Engine) refuse(req Request, peer, result, reason string) Response {
	if req.Mode == ModeApply {
		e.finish(Record{Time: e.now(), Action: req.Action, Result: result, Reason: reason, Rule: -1, Peer: peer,
			Alert: auditAlert(req.Alert), DryRun: result == ResultDryRun})
	}
	return Response{Result: result, Reason: reason}
}

// delegate replaces every action of the engine with a stand-in that sends
// it to the helper at socket.
func (e *Engine) delegate(socket string) error {
	for name := range e.actions {
		ra, err := newRemoteAction(name, e.cfg.Actions[name].Params, socket)
		if err != nil {
			return err
		}
		e.actions[name] = ra
	}
	for i, br := range e.rules {
		ra, err := newRemoteAction(br.rule.Action, br.params, socket)
		if err != nil {
			return err
		}
		e.rules[i].action = ra
	}
	e.helper = socket
	return nil
}

// Helper is the socket of the helper the actions are sent to, or "" when
// they run in this process.
func (e *Engine) Helper() string { return e.helper }

func exists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}
