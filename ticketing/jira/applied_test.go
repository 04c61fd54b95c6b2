package jira

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/l2agent/l2agent/internal/ticketingtest"
	"github.com/l2agent/l2agent/ticketing"
)

// newFakeWithComments is the fake Jira that also lists an issue's comments
// (GET .../issue/{key}/comment: orderBy created or -created, startAt,
// maxResults capped at 100, total), as they were added by a comment or a
// transition.
func newFakeWithComments(t *testing.T, v3 bool) (*fakeJira, *Backend) {
	f, b := newFake(t, v3, false)
	api := "/rest/api/2"
	if v3 {
		api = "/rest/api/3"
	}
	f.Handle("GET "+api+"/issue/{key}/comment", func(w http.ResponseWriter, r *http.Request) {
		is := f.issues[r.PathValue("key")]
		if is == nil {
			jerr(w, 404, "Issue does not exist or you do not have permission to see it.")
			return
		}
		q := r.URL.Query()
		start, _ := strconv.Atoi(q.Get("startAt"))
		n, err := strconv.Atoi(q.Get("maxResults"))
		if err != nil || n > 100 {
			n = 100
		}
		idx := make([]int, len(is.Comments))
		for i := range idx {
			idx[i] = i
			if q.Get("orderBy") == "-created" {
				idx[i] = len(is.Comments) - 1 - i
			}
		}
		cs := []any{}
		for _, i := range idx[min(start, len(idx)):min(start+n, len(idx))] {
			cs = append(cs, map[string]any{"id": strconv.Itoa(10000 + i), "body": is.Comments[i], "created": "2026-11-25T10:00:00.000+0000"})
		}
		json.NewEncoder(w).Encode(map[string]any{"startAt": start, "maxResults": n, "total": len(is.Comments), "comments": cs})
	})
	return f, b
}

// Tickets counts the issues carrying the key's label.
func (f *fakeJira) Tickets(key string) int {
	n := 0
	for _, is := range f.issues {
		for _, l := range is.Fields["labels"].([]any) {
			if l == Label(key) {
				n++
			}
		}
	}
	return n
}

// Texts are the comments of issue r as the fake keeps them: the string of
// v2, the JSON of the ADF document of v3.
func (f *fakeJira) Texts(r ticketing.Ref) []string {
	var out []string
	for _, c := range f.issues[r.ID].Comments {
		if s, ok := c.(string); ok {
			out = append(out, s)
			continue
		}
		j, _ := json.Marshal(c)
		out = append(out, string(j))
	}
	return out
}

// TestExactlyOnce: a crash or a lost answer after Jira applied any
// operation of an incident's life leaves every operation in the issue once.
func TestExactlyOnce(t *testing.T) {
	for _, v3 := range []bool{true, false} {
		t.Run(fmt.Sprint("v3=", v3), func(t *testing.T) {
			f, b := newFakeWithComments(t, v3)
			ticketingtest.ExactlyOnce(t, b, f)
		})
	}
}

// TestApplied: the lookup reads the comments newest first, page by page,
// and finds only the operation's own marker.
func TestApplied(t *testing.T) {
	for _, v3 := range []bool{true, false} {
		t.Run(fmt.Sprint("v3=", v3), func(t *testing.T) {
			f, b := newFakeWithComments(t, v3)
			ctx := context.Background()
			ref, err := b.Open(ctx, ticketing.Ticket{Key: testKey, Title: "disk full", Body: "details"})
			require.NoError(t, err)
			t0 := time.Now()
			op := func(ev uint64) ticketing.Op { return ticketing.Op{Key: testKey, Event: ev, Created: t0} }
			require.NoError(t, b.Resolve(ctx, ref, "Resolved: ok for 15m\n\n"+ticketing.Marker(op(4))))
			for i := 0; i < appliedPageSize+1; i++ { // the marker is on the second page
				require.NoError(t, b.Comment(ctx, ref, fmt.Sprint("a person's comment ", i)))
			}
			f.Take()
			found, err := b.Applied(ctx, ref, op(4))
			require.NoError(t, err)
			require.True(t, found)
			reqs := f.Requests()
			require.Len(t, reqs, 2, "two pages")
			require.Equal(t, []string{"-created"}, reqs[1].Query["orderBy"])
			require.Equal(t, []string{strconv.Itoa(appliedPageSize)}, reqs[1].Query["startAt"])

			for name, o := range map[string]ticketing.Op{
				"another event": op(44),
				"same event, another life of the incident": {Key: testKey, Event: 4, Created: t0.Add(time.Second)},
			} {
				found, err := b.Applied(ctx, ref, o)
				require.NoError(t, err, name)
				require.False(t, found, name)
			}
			_, err = b.Applied(ctx, ticketing.Ref{ID: "OPS-99"}, op(4))
			var de *ticketing.DeliveryError
			require.ErrorAs(t, err, &de)
			require.False(t, de.Retryable, "an issue that is gone: the op is sent (and fails) as before")
		})
	}
}

func TestCommentText(t *testing.T) {
	require.Equal(t, "plain\ntext", commentText(json.RawMessage(`"plain\ntext"`)))
	doc, err := json.Marshal(ADF("line 1\nline 2\n\nl2agent event 3 (0a0b0c0d)"))
	require.NoError(t, err)
	require.Equal(t, "line 1\nline 2\nl2agent event 3 (0a0b0c0d)\n", commentText(doc))
	require.Equal(t, "", commentText(json.RawMessage(`{`)))
}
