package servicenow

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"github.com/l2agent/l2agent/ticketing"
)

// Preflighter is what Backend offers `l2agent tickets test` beyond a
// Ticketer: a check, without side effects, of every name the config uses.
type Preflighter interface {
	Preflight(ctx context.Context) error
}

var _ Preflighter = (*Backend)(nil)

// Preflight checks, without changing anything in the instance, what the
// config names and what the backend needs, and fails on the first thing
// the instance would refuse or store wrong:
//
//   - the credentials (with OAuth: a token from the token endpoint);
//   - the assignment groups and the caller: each sys_id or name is one
//     record of sys_user_group or sys_user (names are looked up once and
//     cached, as delivery does);
//   - close_code, resolve_state, reopen_state and category: values of
//     incident's choice lists (sys_choice), since ServiceNow stores a
//     value that is not in the list as it is, which the incident form
//     then shows blank;
//   - read access to sys_journal_field, which the lookups of operations
//     in doubt need (Applied).
func (b *Backend) Preflight(ctx context.Context) error {
	if _, err := b.auth.get(ctx); err != nil {
		return fmt.Errorf("servicenow credentials: %w", err)
	}
	for _, r := range []struct{ key, v string }{
		{"assignment_group_l2", b.o.AssignmentGroupL2},
		{"assignment_group_l3", b.o.AssignmentGroupL3},
		{"assignment_group_l4", b.o.AssignmentGroupL4},
	} {
		if r.v != "" {
			if _, err := b.recordExists(ctx, groups, r.key, r.v); err != nil {
				return err
			}
		}
	}
	if b.o.CallerID != "" {
		if _, err := b.recordExists(ctx, users, "caller_id", b.o.CallerID); err != nil {
			return err
		}
	}
	if err := b.checkChoices(ctx); err != nil {
		return err
	}
	var res []map[string]any
	return b.call(ctx, "read sys_journal_field (needed to look up operations in doubt)", http.MethodGet, journalPath, url.Values{
		"sysparm_query": {"element=work_notes"}, "sysparm_fields": {"sys_id"}, "sysparm_limit": {"1"},
	}, nil, &res)
}

// recordExists is sysID, and for a sys_id, a read of its record.
func (b *Backend) recordExists(ctx context.Context, t refTable, key, v string) (string, error) {
	if !sysIDRe.MatchString(v) {
		return b.sysID(ctx, t, key, v)
	}
	var res []map[string]any
	what := fmt.Sprintf("look up %s %s in %s", key, v, t.table)
	err := b.call(ctx, what, http.MethodGet, "/api/now/table/"+t.table, url.Values{
		"sysparm_query": {"sys_id=" + v}, "sysparm_fields": {"sys_id"}, "sysparm_limit": {"1"},
	}, nil, &res)
	if err == nil && len(res) == 0 {
		err = ticketing.Final("config", fmt.Errorf("servicenow %s: no such record (or the user may not read %s)", what, t.table))
	}
	return v, err
}

// checkChoices checks the choice values the config sets against
// sys_choice (the choice lists of incident and of task, which incident
// inherits).
func (b *Backend) checkChoices(ctx context.Context) error {
	var res []struct {
		Element string `json:"element"`
		Value   string `json:"value"`
		Label   string `json:"label"`
	}
	err := b.call(ctx, "read the choice lists of incident", http.MethodGet, "/api/now/table/sys_choice", url.Values{
		"sysparm_query":  {"nameINincident,task^elementINclose_code,state,category^inactive=false"},
		"sysparm_fields": {"element,value,label"},
		"sysparm_limit":  {"1000"},
	}, nil, &res)
	if err != nil {
		return err
	}
	values, labels := map[string][]string{}, map[string]map[string]string{}
	for _, c := range res {
		if !slices.Contains(values[c.Element], c.Value) {
			values[c.Element] = append(values[c.Element], c.Value)
		}
		if labels[c.Element] == nil {
			labels[c.Element] = map[string]string{}
		}
		labels[c.Element][c.Label] = c.Value
	}
	for _, c := range []struct{ key, element, v string }{
		{"close_code", "close_code", b.o.CloseCode},
		{"resolve_state", "state", strconv.Itoa(b.o.ResolveState)},
		{"reopen_state", "state", strconv.Itoa(b.o.ReopenState)},
		{"category", "category", b.o.Category},
	} {
		if c.v == "" || slices.Contains(values[c.element], c.v) {
			continue
		}
		if len(values[c.element]) == 0 {
			return ticketing.Final("config", fmt.Errorf("servicenow: no choices of incident.%s could be read from sys_choice (the user needs read access to sys_choice) to check %s %q", c.element, c.key, c.v))
		}
		hint := ""
		if v, ok := labels[c.element][c.v]; ok {
			hint = fmt.Sprintf(" (%q is the label of value %q: the config takes the value)", c.v, v)
		}
		slices.Sort(values[c.element])
		return ticketing.Final("config", fmt.Errorf("servicenow: %s %q is not a value of the instance's incident.%s choice list%s; the values are: %s", c.key, c.v, c.element, hint, strings.Join(quoted(values[c.element]), ", ")))
	}
	return nil
}

func quoted(s []string) []string {
	out := make([]string, len(s))
	for i, v := range s {
		out[i] = strconv.Quote(v)
	}
	return out
}
