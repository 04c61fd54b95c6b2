package rt

import (
	"context"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/l2agent/l2agent/internal/rest"
	"github.com/l2agent/l2agent/ticketing"
)

// Pages of a ticket's attachments that Applied reads: a ticket with more
// messages than that is taken not to hold the operation (it is sent again).
const (
	appliedPageSize = 50
	appliedMaxPages = 20
)

var _ ticketing.Applier = (*Backend)(nil)

// Applied reports whether ticket r holds op: whether one of its messages
// (GET /ticket/N/attachments, the text of every comment, newest first)
// carries op's marker. Every operation ends with its comment, so a marker
// found means the whole operation was applied.
func (b *Backend) Applied(ctx context.Context, r ticketing.Ref, op ticketing.Op) (bool, error) {
	id, err := ticketID(r)
	if err != nil {
		return false, err
	}
	what := "look for event " + strconv.FormatUint(op.Event, 10) + " in ticket " + id
	for page := 1; page <= appliedMaxPages; page++ {
		var res struct {
			Items []struct {
				ContentType string `json:"ContentType"`
				Content     string `json:"Content"`
			} `json:"items"`
		}
		err := b.client.Do(ctx, what, rest.Request{Method: http.MethodGet, Path: "/ticket/" + id + "/attachments", Query: url.Values{
			"fields":   {"ContentType,Content"},
			"orderby":  {"id"},
			"order":    {"DESC"},
			"per_page": {strconv.Itoa(appliedPageSize)},
			"page":     {strconv.Itoa(page)},
		}}, &res)
		if err != nil {
			return false, err
		}
		for _, a := range res.Items {
			if strings.HasPrefix(a.ContentType, "text/") && ticketing.HasMarker(a.Content, op) {
				return true, nil
			}
		}
		if len(res.Items) < appliedPageSize {
			break
		}
	}
	return false, nil
}
