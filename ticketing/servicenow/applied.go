package servicenow

import (
	"context"
	"fmt"
	"net/http"
	"net/url"

	"github.com/l2agent/l2agent/ticketing"
)

// journalPath is the table of journal entries: one row per work note, with
// the incident's sys_id in element_id.
const journalPath = "/api/now/table/sys_journal_field"

var _ ticketing.Applier = (*Backend)(nil)

// Applied reports whether incident r holds op: whether one of its work
// notes carries op's marker, searched in sys_journal_field (element_id =
// the incident, element = work_notes, value containing the marker; the
// values found are compared again here). Every operation writes its work
// note in the same request as its other fields, so a marker found means
// the whole operation was applied. The user needs read access to
// sys_journal_field.
func (b *Backend) Applied(ctx context.Context, r ticketing.Ref, op ticketing.Op) (bool, error) {
	what := fmt.Sprintf("look for event %d in %s", op.Event, r.ID)
	if !sysIDRe.MatchString(r.ID) {
		return false, ticketing.Final("bad_ref", fmt.Errorf("servicenow %s: %q is not a sys_id", what, r.ID))
	}
	var res []struct {
		Value string `json:"value"`
	}
	err := b.call(ctx, what, http.MethodGet, journalPath, url.Values{
		"sysparm_query":  {"element_id=" + r.ID + "^element=work_notes^valueLIKE" + ticketing.Marker(op)},
		"sysparm_fields": {"sys_id,value"},
		"sysparm_limit":  {"10"},
	}, nil, &res)
	if err != nil {
		return false, err
	}
	for _, e := range res {
		if ticketing.HasMarker(e.Value, op) {
			return true, nil
		}
	}
	return false, nil
}
