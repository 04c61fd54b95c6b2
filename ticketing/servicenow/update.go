package servicenow

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strconv"

	"github.com/l2agent/l2agent/ticketing"
)

var _ ticketing.Updater = (*Backend)(nil)

// titled is what Update reads and changes of an incident.
type titled struct {
	ShortDescription string `json:"short_description"`
	Urgency          string `json:"urgency"`
	Impact           string `json:"impact"`
}

// Update implements ticketing.Updater: the incident's short_description
// becomes t's title, and its urgency and impact those of t's severity
// (urgency_warn/impact_warn or urgency_crit/impact_crit; ServiceNow derives
// the priority from them), unless a value is neither of the configured ones
// (someone chose it): that one is kept. The incident is read first (GET
// /api/now/table/incident/SYS_ID) and only what differs is sent (PATCH,
// checked as every PATCH is: see patch).
func (b *Backend) Update(ctx context.Context, r ticketing.Ref, t ticketing.Ticket) error {
	what := "update " + r.ID
	if !sysIDRe.MatchString(r.ID) {
		return ticketing.Final("bad_ref", fmt.Errorf("servicenow %s: %q is not a sys_id", what, r.ID))
	}
	path := tablePath + "/" + r.ID
	var cur titled
	if err := b.call(ctx, what, http.MethodGet, path, url.Values{"sysparm_fields": {"short_description,urgency,impact"}}, nil, &cur); err != nil {
		return err
	}
	u, i := b.o.UrgencyWarn, b.o.ImpactWarn
	if t.Severity == "crit" {
		u, i = b.o.UrgencyCrit, b.o.ImpactCrit
	}
	f := map[string]any{}
	if s := shortDesc(t.Title); cur.ShortDescription != s {
		f["short_description"] = s
	}
	if own := []int{b.o.UrgencyWarn, b.o.UrgencyCrit}; u > 0 && cur.Urgency != strconv.Itoa(u) && owned(cur.Urgency, own) {
		f["urgency"] = strconv.Itoa(u)
	}
	if own := []int{b.o.ImpactWarn, b.o.ImpactCrit}; i > 0 && cur.Impact != strconv.Itoa(i) && owned(cur.Impact, own) {
		f["impact"] = strconv.Itoa(i)
	}
	if len(f) == 0 {
		return nil
	}
	return b.patch(ctx, what, r, f)
}

// owned: v is empty or one of the values the backend sets.
func owned(v string, own []int) bool {
	if v == "" {
		return true
	}
	for _, o := range own {
		if v == strconv.Itoa(o) {
			return true
		}
	}
	return false
}
