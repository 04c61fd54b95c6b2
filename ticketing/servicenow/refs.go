package servicenow

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strings"

	"github.com/l2agent/l2agent/ticketing"
)

// refTable is a table a reference field of the incident points to, and
// the fields a record of it may be named by in the config, in order.
type refTable struct {
	table string
	by    []string
}

var (
	groups = refTable{table: "sys_user_group", by: []string{"name"}}
	users  = refTable{table: "sys_user", by: []string{"user_name", "name"}}
)

// sysID returns the sys_id of the record that v (the value of option key)
// names: v itself when it is a sys_id, else the one record of t whose
// first field in t.by equals v, looked up once
// (GET /api/now/table/TABLE?sysparm_query=name=V) and cached for the
// backend's life. ServiceNow would store a name sent as it is in a
// reference field, pointing nowhere. No such record, or several, is a
// final error that says which option to fix.
func (b *Backend) sysID(ctx context.Context, t refTable, key, v string) (string, error) {
	if sysIDRe.MatchString(v) {
		return v, nil
	}
	ck := t.table + "\x00" + v
	b.mu.Lock()
	id, ok := b.sysIDs[ck]
	b.mu.Unlock()
	if ok {
		return id, nil
	}
	what := fmt.Sprintf("look up %s %q in %s", key, v, t.table)
	if special.MatchString(v) {
		return "", ticketing.Final("config", fmt.Errorf("servicenow %s: a name with ^, = or a line break cannot be searched for: give its sys_id", what))
	}
	var terms []string
	for _, f := range t.by {
		terms = append(terms, f+"="+v)
	}
	var res []map[string]any
	err := b.call(ctx, what, http.MethodGet, "/api/now/table/"+t.table, url.Values{
		"sysparm_query":  {strings.Join(terms, "^OR")},
		"sysparm_fields": {"sys_id," + strings.Join(t.by, ",")},
		"sysparm_limit":  {"10"},
	}, nil, &res)
	if err != nil {
		return "", err
	}
	for _, f := range t.by {
		var ids []string
		for _, r := range res {
			if value(r[f]) == v && sysIDRe.MatchString(value(r["sys_id"])) {
				ids = append(ids, value(r["sys_id"]))
			}
		}
		switch {
		case len(ids) == 1:
			b.mu.Lock()
			b.sysIDs[ck] = ids[0]
			b.mu.Unlock()
			return ids[0], nil
		case len(ids) > 1:
			return "", ticketing.Final("config", fmt.Errorf("servicenow %s: %d records have %s %q (%s): set %s to the sys_id of the right one", what, len(ids), f, v, strings.Join(ids, ", "), key))
		}
	}
	return "", ticketing.Final("config", fmt.Errorf("servicenow %s: no record has %s %q (or the user may not read %s): fix %s or give a sys_id", what, strings.Join(t.by, " or "), v, t.table, key))
}
