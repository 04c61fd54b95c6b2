package jira

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/l2agent/l2agent/internal/rest"
	"github.com/l2agent/l2agent/ticketing"
)

// Pages of an issue's comments that Applied reads: an issue with more
// comments than that is taken not to hold the operation (it is sent again).
const (
	appliedPageSize = 100 // Jira's largest page of comments
	appliedMaxPages = 10
)

var _ ticketing.Applier = (*Backend)(nil)

// Applied reports whether issue r holds op: whether one of its comments
// (GET /rest/api/N/issue/KEY/comment, newest first) carries op's marker.
// Every operation ends with its comment (a transition, when there is one,
// runs before it), so a marker found means the whole operation was
// applied.
func (b *Backend) Applied(ctx context.Context, r ticketing.Ref, op ticketing.Op) (bool, error) {
	what := "look for event " + strconv.FormatUint(op.Event, 10) + " in " + r.ID
	for page, start := 0, 0; page < appliedMaxPages; page++ {
		var res struct {
			Total    int `json:"total"`
			Comments []struct {
				Body json.RawMessage `json:"body"` // a string (v2) or an ADF document (v3)
			} `json:"comments"`
		}
		err := b.do(ctx, what, rest.Request{Method: http.MethodGet, Path: issuePath(r) + "/comment", Query: url.Values{
			"orderBy":    {"-created"},
			"startAt":    {strconv.Itoa(start)},
			"maxResults": {strconv.Itoa(appliedPageSize)},
		}}, &res)
		if err != nil {
			return false, err
		}
		for _, c := range res.Comments {
			if ticketing.HasMarker(commentText(c.Body), op) {
				return true, nil
			}
		}
		start += len(res.Comments)
		if len(res.Comments) == 0 || start >= res.Total {
			break
		}
	}
	return false, nil
}

// commentText is the text of a comment body: the string of REST v2, or the
// text nodes of a v3 ADF document, a line each.
func commentText(body json.RawMessage) string {
	var s string
	if json.Unmarshal(body, &s) == nil {
		return s
	}
	var doc any
	if json.Unmarshal(body, &doc) != nil {
		return ""
	}
	var sb strings.Builder
	var walk func(n any)
	walk = func(n any) {
		switch n := n.(type) {
		case map[string]any:
			if t, ok := n["text"].(string); ok {
				sb.WriteString(t)
				sb.WriteByte('\n')
			}
			walk(n["content"])
		case []any:
			for _, c := range n {
				walk(c)
			}
		}
	}
	walk(doc)
	return sb.String()
}
