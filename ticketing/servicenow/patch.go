package servicenow

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"

	"github.com/l2agent/l2agent/internal/rest"
	"github.com/l2agent/l2agent/internal/textfmt"
	"github.com/l2agent/l2agent/ticketing"
)

// maxRefusals is how many 5xx answers in a row to one PATCH, while the
// instance answers the read that follows each, make it final.
const maxRefusals = 3

// journal fields: a PATCH appends an entry to the journal, and the record
// reads back "" there.
var journal = map[string]bool{"work_notes": true, "comments": true}

// patch updates incident r with fields (PATCH /api/now/table/incident/ID)
// and checks that ServiceNow's answer holds every field sent but the
// journal ones: a field the user may not write (a field ACL), or that a
// business rule sets back, is left out of the update without an error.
// A refused change is final, with the reason; see refused for a 5xx.
func (b *Backend) patch(ctx context.Context, what string, r ticketing.Ref, fields map[string]any) error {
	if !sysIDRe.MatchString(r.ID) {
		return ticketing.Final("bad_ref", fmt.Errorf("servicenow %s: %q is not a sys_id", what, r.ID))
	}
	var got map[string]any
	if err := b.call(ctx, what, http.MethodPatch, tablePath+"/"+r.ID, nil, fields, &got); err != nil {
		return b.refused(ctx, what, r, fields, err)
	}
	b.refusal(r.ID, what, false)
	if bad := stuck(fields, got); len(bad) > 0 {
		return ticketing.Final("api", fmt.Errorf("servicenow %s: not done: %s (the instance left them out without an error: a field ACL, a business rule or a data policy)", what, strings.Join(bad, "; ")))
	}
	return nil
}

// refused handles a failed PATCH. A 4xx is final already (403: an ACL, a
// business rule or a data policy refused it; the error quotes
// ServiceNow's reason). A 5xx is the instance failing, or a business rule
// refusing the change (ServiceNow answers some refused state changes with
// 500), so the incident is read back: when the read fails too, the
// instance is failing and the PATCH is retried later; when the incident
// already holds what was sent, it was done; else it was refused, and
// maxRefusals such answers in a row are final rather than retried forever
// at the head of the outbox.
func (b *Backend) refused(ctx context.Context, what string, r ticketing.Ref, fields map[string]any, err error) error {
	var re *rest.Error
	if !errors.As(err, &re) || re.Reason != "http_5xx" {
		return err
	}
	var names []string
	for k := range fields {
		if !journal[k] {
			names = append(names, k)
		}
	}
	slices.Sort(names)
	var cur map[string]any
	q := url.Values{"sysparm_fields": {strings.Join(append(names, "sys_id"), ",")}}
	if b.call(ctx, what+": reading it back", http.MethodGet, tablePath+"/"+r.ID, q, nil, &cur) != nil {
		return err
	}
	bad := stuck(fields, cur)
	if len(names) > 0 && len(bad) == 0 {
		b.refusal(r.ID, what, false)
		return nil // done, although the answer said otherwise
	}
	n := b.refusal(r.ID, what, true)
	if n < maxRefusals {
		return err
	}
	b.refusal(r.ID, what, false)
	still := ""
	if len(bad) > 0 {
		still = "; the incident still has " + strings.Join(bad, "; ")
	}
	return ticketing.Final("refused", fmt.Errorf("%w; refused %d times in a row while the instance answered reads, so not tried again (a business rule or data policy: see the instance's system log)%s", err, n, still))
}

// refusal counts (add) or forgets the 5xx answers in a row to a PATCH,
// and returns the count.
func (b *Backend) refusal(id, what string, add bool) int {
	b.mu.Lock()
	defer b.mu.Unlock()
	k := id + "\x00" + what
	if !add {
		delete(b.refusals, k)
		return 0
	}
	b.refusals[k]++
	return b.refusals[k]
}

// stuck lists the fields of sent, but the journal ones, whose value got
// does not hold, as `field is "now", not "sent"`, sorted. A text field may
// come back cut to its column's length.
func stuck(sent, got map[string]any) []string {
	var bad []string
	for k, v := range sent {
		if journal[k] {
			continue
		}
		want, have := fmt.Sprint(v), value(got[k])
		if have == want || (k == "close_notes" || k == "description") && have != "" && strings.HasPrefix(want, have) {
			continue
		}
		bad = append(bad, fmt.Sprintf("%s is %q, not %q", k, textfmt.Truncate(have, 80), textfmt.Truncate(want, 80)))
	}
	slices.Sort(bad)
	return bad
}

// value is a field of a Table API record as a string: a reference's sys_id
// whether it comes as {"link", "value"} or bare.
func value(v any) string {
	switch x := v.(type) {
	case nil:
		return ""
	case string:
		return x
	case map[string]any:
		if s, ok := x["value"].(string); ok {
			return s
		}
	}
	return fmt.Sprint(v)
}
