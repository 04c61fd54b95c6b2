package jira

import (
	"context"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/l2agent/l2agent/internal/alert"
	"github.com/l2agent/l2agent/ticketing"
)

func openCtx(seq uint64) context.Context {
	return ticketing.WithEvent(context.Background(), ticketing.Event{Key: testKey, Seq: seq})
}

// TestCreateLostAnswer: Jira made the issue but its answer was lost, and
// Cloud's search does not show the issue yet: the create is not repeated;
// the issue is found once the search shows it.
func TestCreateLostAnswer(t *testing.T) {
	f, b := newFakeWith(t, fakeConfig{cloud: true, lag: time.Minute})
	ctx, tk := openCtx(1), ticketing.Ticket{Key: testKey, Title: "disk full", Body: "details"}
	f.dropCreate = 1
	_, err := b.Open(ctx, tk)
	_, retry, _ := ticketing.Classify(err)
	require.True(t, retry, "a lost answer: %v", err)
	require.Equal(t, 1, f.Tickets(testKey))

	_, found, err := b.Find(ctx, testKey)
	require.NoError(t, err)
	require.False(t, found, "the search does not show it yet")
	_, err = b.Open(ctx, tk)
	reason, retry, after := ticketing.Classify(err)
	require.True(t, retry)
	require.Equal(t, "create_in_doubt", reason)
	require.Equal(t, recheckEvery, after)
	require.Equal(t, 1, f.Tickets(testKey), "not created again")

	f.Advance(time.Minute)
	ref, err := b.Open(ctx, tk)
	require.NoError(t, err)
	require.Equal(t, "OPS-1", ref.ID, "found by its label and property")
	require.Equal(t, 1, f.Tickets(testKey))
	got, found, err := b.Find(ctx, testKey)
	require.NoError(t, err)
	require.True(t, found)
	require.Equal(t, ref, got)
}

// TestCreateLostAnswerDelivered: the same through the deliverer, which
// looks the key up (Find) before it opens again.
func TestCreateLostAnswerDelivered(t *testing.T) {
	f, b := newFakeWith(t, fakeConfig{cloud: true, lag: time.Minute})
	svc, m := newService(t, b)
	ctx := context.Background()
	require.NoError(t, m.HandleBatch([]alert.Transition{fire(testKey, f.Now())}))
	f.dropCreate = 1
	require.Equal(t, 1, svc.Flush(ctx)["jira"], "answer lost")
	require.Equal(t, 1, svc.Flush(ctx)["jira"], "in doubt: waits for the search")
	require.Equal(t, 1, f.Tickets(testKey))
	f.Advance(time.Minute)
	require.Equal(t, 0, svc.Flush(ctx)["jira"])
	require.Equal(t, 1, f.Tickets(testKey), "one issue")
	inc, err := svc.Store.Incident(testKey)
	require.NoError(t, err)
	require.Equal(t, "OPS-1", inc.Refs["jira"].ID)
}

// TestCreateNeverMade: a create cut off before Jira made the issue is made
// once the search has had time to show it (createSettle).
func TestCreateNeverMade(t *testing.T) {
	f, b := newFakeWith(t, fakeConfig{cloud: true, lag: time.Minute})
	ctx, tk := openCtx(1), ticketing.Ticket{Key: testKey, Title: "disk full", Body: "details"}
	_, _, err := b.Find(ctx, testKey) // the flavor asked
	require.NoError(t, err)
	f.Inject(func(http.ResponseWriter, *http.Request) {
		f.Inject(nil)
		panic(http.ErrAbortHandler)
	})
	_, err = b.Open(ctx, tk)
	require.Error(t, err)
	require.Equal(t, 0, f.Tickets(testKey))
	f.Advance(createSettle - time.Second)
	_, err = b.Open(ctx, tk)
	reason, _, after := ticketing.Classify(err)
	require.Equal(t, "create_in_doubt", reason)
	require.Equal(t, time.Second, after)
	f.Advance(time.Second)
	ref, err := b.Open(ctx, tk)
	require.NoError(t, err)
	require.Equal(t, "OPS-1", ref.ID)
	require.Equal(t, 1, f.Tickets(testKey))
}

// TestJournalSurvivesRestart: the journal of creates is kept in the state
// dir, so that after a restart the issue an open made is found at once
// (reconcileIssues), even when it is done already (the agent died before
// it recorded a group that opened and resolved it); the next incident of
// the key gets an issue of its own.
func TestJournalSurvivesRestart(t *testing.T) {
	dir := t.TempDir()
	f, b := newFakeWith(t, fakeConfig{cloud: true, lag: time.Hour, stateDir: dir})
	tk := ticketing.Ticket{Key: testKey, Title: "disk full", Body: "details"}
	ref, err := b.Open(openCtx(1), tk)
	require.NoError(t, err)

	b = f.backend(t) // restarted
	got, found, err := b.Find(openCtx(1), testKey)
	require.NoError(t, err)
	require.True(t, found)
	require.Equal(t, ref, got)
	require.Equal(t, []any{float64(10042)}, f.Last().Body["reconcileIssues"])

	require.NoError(t, b.Resolve(context.Background(), ref, "fixed"))
	b = f.backend(t)
	_, found, err = b.Find(openCtx(1), testKey)
	require.NoError(t, err)
	require.False(t, found, "done")
	again, err := b.Open(openCtx(1), tk)
	require.NoError(t, err)
	require.Equal(t, ref, again, "the same open: its issue")
	require.Equal(t, 1, f.Tickets(testKey))

	next, err := b.Open(openCtx(1), ticketing.Ticket{Key: testKey, Title: "disk full", Body: "details, a week later"})
	require.NoError(t, err)
	require.Equal(t, "OPS-2", next.ID, "another incident: another issue")

	raw, err := os.ReadFile(filepath.Join(dir, "jira-jira.creates.json"))
	require.NoError(t, err)
	var m map[string]journalEntry
	require.NoError(t, json.Unmarshal(raw, &m))
	require.Equal(t, "OPS-2", m[Label(testKey)].Key)
	f.Advance(journalKeep + time.Minute)
	_, err = b.Open(openCtx(1), ticketing.Ticket{Key: testKey + "2", Title: "t", Body: "b"})
	require.NoError(t, err)
	raw, err = os.ReadFile(filepath.Join(dir, "jira-jira.creates.json"))
	require.NoError(t, err)
	m = nil
	require.NoError(t, json.Unmarshal(raw, &m))
	require.Len(t, m, 1, "old entries pruned")
}

func TestFileSafe(t *testing.T) {
	require.Equal(t, "jira-prod_eu", fileSafe("jira-prod_eu"))
	require.Equal(t, "a_b__c", fileSafe("a/b..c"))
}
