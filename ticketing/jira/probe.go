package jira

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"github.com/l2agent/l2agent/internal/rest"
	"github.com/l2agent/l2agent/ticketing"
)

// Tester is what `l2agent tickets test` can ask of the Jira backend beyond
// a Ticketer's calls: checks that change nothing in Jira. Each check is
// reported through step (its name, and nil or why Jira would refuse it);
// both stop at the first failure and return false.
type Tester interface {
	// Preflight checks, before any issue is filed, the flavor and API
	// version, the project, the issue type, the priorities, the components
	// and the resolution the config names.
	Preflight(ctx context.Context, step func(what string, err error) bool) bool
	// CheckTicket checks the transitions the config names that issue r's
	// status offers now (without running one): resolve and escalate
	// (and whether resolve's screen takes the resolution) on an open issue,
	// reopen on a done one.
	CheckTicket(ctx context.Context, r ticketing.Ref, step func(what string, err error) bool) bool
}

var _ Tester = (*Backend)(nil)

// namedItem is an id and a name, as Jira lists projects' issue types,
// priorities, components and resolutions.
type namedItem struct {
	ID   string `json:"id"`
	Name string `json:"name"`
}

// probe is one check of Preflight.
type probe struct {
	what string
	run  func(context.Context) error
}

// Preflight implements Tester.
func (b *Backend) Preflight(ctx context.Context, step func(what string, err error) bool) bool {
	checks := []probe{
		{"flavor", b.checkFlavor},
		{"project " + b.o.Project, func(ctx context.Context) error {
			return b.call(ctx, "read project "+b.o.Project, http.MethodGet, "/project/"+url.PathEscape(b.o.Project), nil, &namedItem{})
		}},
		{"issue type " + b.o.IssueType, b.checkIssueType},
	}
	var prios []string
	for _, p := range []string{b.o.PriorityL2, b.o.PriorityL3, b.o.PriorityL4} {
		if p != "" && !slices.Contains(prios, p) {
			prios = append(prios, p)
		}
	}
	if len(prios) > 0 {
		checks = append(checks, probe{"priorities " + strings.Join(prios, ", "), func(ctx context.Context) error { return b.checkNames(ctx, "priority", prios) }})
	}
	var comps []string
	for _, c := range slices.Concat(b.o.ComponentsL2, b.o.ComponentsL3, b.o.ComponentsL4) {
		if !slices.Contains(comps, c) {
			comps = append(comps, c)
		}
	}
	if len(comps) > 0 {
		checks = append(checks, probe{"components " + strings.Join(comps, ", "), func(ctx context.Context) error { return b.checkNames(ctx, "component", comps) }})
	}
	if b.o.Resolution != "" {
		checks = append(checks, probe{"resolution " + b.o.Resolution, func(ctx context.Context) error { return b.checkNames(ctx, "resolution", []string{b.o.Resolution}) }})
	}
	for _, c := range checks {
		if !step(c.what, c.run(ctx)) {
			return false
		}
	}
	return true
}

// checkFlavor asks Jira what it is (serverInfo), and checks the configured
// flavor and api_version against it.
func (b *Backend) checkFlavor(ctx context.Context) error {
	info, err := b.serverInfo(ctx)
	if err != nil {
		return err
	}
	cloud := strings.EqualFold(info.DeploymentType, "Cloud")
	if b.o.Flavor != "" && (b.o.Flavor == FlavorCloud) != cloud {
		return fmt.Errorf("flavor is %s but %s says it is %s (serverInfo deploymentType %q)", b.o.Flavor, b.base, flavorName(cloud), info.DeploymentType)
	}
	if msg := flavorMismatch(cloud, b.o.APIVersion); msg != "" {
		return fmt.Errorf("%s is %s: api_version %d: %s", b.base, flavorName(cloud), b.o.APIVersion, msg)
	}
	_, err = b.apiPath(ctx)
	return err
}

// checkIssueType: the project offers issue_type on its create screen (GET
// /issue/createmeta/PROJECT/issuetypes; Cloud answers issueTypes, Data
// Center values).
func (b *Backend) checkIssueType(ctx context.Context) error {
	var res struct {
		IssueTypes []namedItem `json:"issueTypes"`
		Values     []namedItem `json:"values"`
	}
	what := "list the issue types of " + b.o.Project
	err := b.do(ctx, what, rest.Request{Method: http.MethodGet, Path: "/issue/createmeta/" + url.PathEscape(b.o.Project) + "/issuetypes",
		Query: url.Values{"maxResults": {"200"}}}, &res)
	if err != nil {
		return err
	}
	return missing("issue type", []string{b.o.IssueType}, append(res.IssueTypes, res.Values...))
}

// checkNames: Jira has the priorities, components (of the project) or
// resolutions called want. Cloud lists priorities and resolutions with
// /priority/search and /resolution/search (pages of values), Data Center
// with /priority and /resolution (arrays).
func (b *Backend) checkNames(ctx context.Context, kind string, want []string) error {
	path := map[string]string{"priority": "/priority", "resolution": "/resolution", "component": "/project/" + url.PathEscape(b.o.Project) + "/components"}[kind]
	if err := b.ready(ctx); err != nil {
		return err
	}
	var have []namedItem
	if b.isCloud() && kind != "component" {
		var page struct {
			Values []namedItem `json:"values"`
		}
		err := b.do(ctx, "list "+kind+"s", rest.Request{Method: http.MethodGet, Path: path + "/search", Query: url.Values{"maxResults": {"200"}}}, &page)
		if err != nil {
			return err
		}
		have = page.Values
	} else if err := b.call(ctx, "list "+kind+"s", http.MethodGet, path, nil, &have); err != nil {
		return err
	}
	return missing(kind, want, have)
}

// missing names the first of want that have lacks (case-insensitive), with
// what there is.
func missing(kind string, want []string, have []namedItem) error {
	var names []string
	for _, h := range have {
		names = append(names, strconv.Quote(h.Name))
	}
	for _, w := range want {
		if !slices.ContainsFunc(have, func(h namedItem) bool { return strings.EqualFold(h.Name, w) }) {
			return fmt.Errorf("no %s %q in Jira; there are %s", kind, w, strings.Join(names, ", "))
		}
	}
	return nil
}

// CheckTicket implements Tester.
func (b *Backend) CheckTicket(ctx context.Context, r ticketing.Ref, step func(what string, err error) bool) bool {
	what := "check the transitions of " + r.ID
	st, err := b.state(ctx, what, r)
	if err == nil {
		var ts []transition
		if ts, err = b.transitions(ctx, what, r); err == nil {
			return b.checkTransitions(r, st.Fields.Status, ts, step)
		}
	}
	return step("transitions of "+r.ID, err)
}

func (b *Backend) checkTransitions(r ticketing.Ref, cur status, ts []transition, step func(string, error) bool) bool {
	offered := func(name string) (*transition, error) {
		if t := named(ts, name); t != nil {
			return t, nil
		}
		var names []string
		for _, t := range ts {
			names = append(names, strconv.Quote(t.Name))
		}
		return nil, fmt.Errorf("%s in status %q offers no transition %q; it offers %s", r.ID, cur.Name, name, strings.Join(names, ", "))
	}
	if cur.done() {
		_, err := offered(b.o.TransitionReopen)
		return step("transition_reopen "+strconv.Quote(b.o.TransitionReopen)+" from "+strconv.Quote(cur.Name), err)
	}
	t, err := offered(b.o.TransitionResolve)
	if err == nil && b.o.Resolution != "" {
		if _, ok := t.Fields["resolution"]; !ok {
			err = fmt.Errorf("its screen has no Resolution field: Jira would not take resolution %q (l2agent then does not send it); add the field to the transition's screen or remove resolution", b.o.Resolution)
		} else {
			_, err = transitionFields("check", *t, b.resolveMove())
		}
	}
	if !step("transition_resolve "+strconv.Quote(b.o.TransitionResolve)+" from "+strconv.Quote(cur.Name), err) {
		return false
	}
	if b.o.TransitionEscalate != "" {
		_, err := offered(b.o.TransitionEscalate)
		return step("transition_escalate "+strconv.Quote(b.o.TransitionEscalate)+" from "+strconv.Quote(cur.Name), err)
	}
	return true
}
