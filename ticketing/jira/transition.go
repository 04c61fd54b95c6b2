package jira

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/l2agent/l2agent/internal/rest"
	"github.com/l2agent/l2agent/ticketing"
)

// propKey is the issue property (entity property) where the agent keeps
// what it needs to know of an issue: the create that made it and the
// status its escalate transition led to. People do not see it.
const propKey = "l2agent"

// ownProp is the value of the issue property propKey.
type ownProp struct {
	Open            string `json:"open,omitempty"`             // the create's id (create.go)
	EscalatedStatus string `json:"escalated_status,omitempty"` // status id that transition_escalate led to
}

// status is an issue status with its category: new, indeterminate or done.
type status struct {
	ID             string `json:"id"`
	Name           string `json:"name"`
	StatusCategory struct {
		Key string `json:"key"`
	} `json:"statusCategory"`
}

func (s status) done() bool { return s.StatusCategory.Key == "done" }

// issueState is an issue's status and the agent's property.
type issueState struct {
	Fields struct {
		Status status   `json:"status"`
		Labels []string `json:"labels"`
	} `json:"fields"`
	Properties struct {
		Own ownProp `json:"l2agent"`
	} `json:"properties"`
}

// state reads issue r's status, labels and property (GET
// /issue/KEY?fields=status,labels&properties=l2agent), a consistent read.
func (b *Backend) state(ctx context.Context, what string, r ticketing.Ref) (issueState, error) {
	var st issueState
	err := b.do(ctx, what, rest.Request{Method: http.MethodGet, Path: issuePath(r),
		Query: url.Values{"fields": {"status,labels"}, "properties": {propKey}}}, &st)
	return st, err
}

// transition is one transition offered from an issue's status, with the
// fields of its screen (expand=transitions.fields).
type transition struct {
	ID        string `json:"id"`
	Name      string `json:"name"`
	HasScreen bool   `json:"hasScreen"`
	To        status `json:"to"`
	Fields    map[string]struct {
		Required      bool `json:"required"`
		AllowedValues []struct {
			ID   string `json:"id"`
			Name string `json:"name"`
		} `json:"allowedValues"`
	} `json:"fields"`
}

// transitions lists the transitions offered from r's status with their
// screens' fields: GET /issue/KEY/transitions?expand=transitions.fields.
func (b *Backend) transitions(ctx context.Context, what string, r ticketing.Ref) ([]transition, error) {
	var av struct {
		Transitions []transition `json:"transitions"`
	}
	err := b.do(ctx, what, rest.Request{Method: http.MethodGet, Path: issuePath(r) + "/transitions",
		Query: url.Values{"expand": {"transitions.fields"}}}, &av)
	return av.Transitions, err
}

// named is the transition called name (case-insensitive), or nil.
func named(ts []transition, name string) *transition {
	for i := range ts {
		if strings.EqualFold(strings.TrimSpace(ts[i].Name), strings.TrimSpace(name)) {
			return &ts[i]
		}
	}
	return nil
}

// moveSpec is a status change an operation makes: the transition's name,
// when the issue is already where it would lead, the resolution to set,
// and what to record once it ran.
type moveSpec struct {
	name       string
	reached    func(cur status, p ownProp) bool
	resolution string
	after      func(ctx context.Context, what string, r ticketing.Ref, t transition, p ownProp) error
}

func (b *Backend) resolveMove() moveSpec {
	return moveSpec{name: b.o.TransitionResolve, resolution: b.o.Resolution,
		reached: func(cur status, _ ownProp) bool { return cur.done() }}
}

func (b *Backend) reopenMove() moveSpec {
	return moveSpec{name: b.o.TransitionReopen, reached: func(cur status, _ ownProp) bool { return !cur.done() }}
}

// escalateMove: the issue is already escalated when it is in the status
// that transition_escalate led it to before (kept in the issue property),
// e.g. L3 → L4 on a workflow that offers "Escalate" only once.
func (b *Backend) escalateMove() moveSpec {
	return moveSpec{name: b.o.TransitionEscalate,
		reached: func(cur status, p ownProp) bool { return p.EscalatedStatus != "" && p.EscalatedStatus == cur.ID },
		after: func(ctx context.Context, what string, r ticketing.Ref, t transition, p ownProp) error {
			p.EscalatedStatus = t.To.ID
			return b.call(ctx, what, http.MethodPut, issuePath(r)+"/properties/"+propKey, p, nil)
		}}
}

// move runs the transition of m on r, unless the issue is already where it
// leads: then it is a no-op, so that an operation sent again after a
// crash, or an escalation past a status reached earlier, does not fail.
// No comment goes with the transition: Jira drops update.comment in
// silence on a transition without a screen (answering 204), so each
// operation adds its text as a comment of its own afterwards. resolution
// is sent only when the transition's screen has the field (else Jira
// answers 400 "not on the appropriate screen").
func (b *Backend) move(ctx context.Context, what string, r ticketing.Ref, m moveSpec) error {
	st, err := b.state(ctx, what, r)
	if err != nil {
		return err
	}
	cur, p := st.Fields.Status, st.Properties.Own
	ts, err := b.transitions(ctx, what, r)
	if err != nil {
		return err
	}
	t := named(ts, m.name)
	if m.reached(cur, p) || t != nil && t.To.ID == cur.ID {
		b.log.Debug("jira issue already where the transition leads; not run", "issue", r.ID, "transition", m.name, "status", cur.Name)
		return nil
	}
	if t == nil {
		var names []string
		for _, t := range ts {
			names = append(names, strconv.Quote(t.Name))
		}
		return ticketing.Final("no_transition", fmt.Errorf("jira %s: no transition %q from the issue's status %q; available: %s", what, m.name, cur.Name, strings.Join(names, ", ")))
	}
	req := map[string]any{"transition": map[string]string{"id": t.ID}}
	fields, err := transitionFields(what, *t, m)
	if err != nil {
		return err
	}
	if fields != nil {
		req["fields"] = fields
	}
	if err := b.call(ctx, what, http.MethodPost, issuePath(r)+"/transitions", req, nil); err != nil {
		return err
	}
	if m.after != nil {
		return m.after(ctx, what, r, *t, p)
	}
	return nil
}

// transitionFields are the fields sent with transition t: the resolution,
// when configured and on t's screen. A resolution the screen does not
// offer is a final error naming those it offers.
func transitionFields(what string, t transition, m moveSpec) (map[string]any, error) {
	if m.resolution == "" {
		return nil, nil
	}
	f, ok := t.Fields["resolution"]
	if !ok {
		return nil, nil // not on the screen: Jira sets (or not) the resolution itself
	}
	var names []string
	for _, v := range f.AllowedValues {
		if strings.EqualFold(v.Name, m.resolution) {
			return map[string]any{"resolution": map[string]string{"name": v.Name}}, nil
		}
		names = append(names, strconv.Quote(v.Name))
	}
	if len(names) == 0 {
		return map[string]any{"resolution": map[string]string{"name": m.resolution}}, nil
	}
	return nil, ticketing.Final("bad_resolution", fmt.Errorf("jira %s: transition %q does not offer the resolution %q; it offers %s", what, t.Name, m.resolution, strings.Join(names, ", ")))
}
