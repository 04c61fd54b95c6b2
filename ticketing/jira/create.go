package jira

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/l2agent/l2agent/internal/rest"
	"github.com/l2agent/l2agent/ticketing"
)

// createSettle is how long a create whose answer was lost (a timeout, a
// connection cut, a 5xx, a crash) keeps Open from creating the issue again
// while the search does not show it: Jira Cloud's search is eventually
// consistent ("from a few seconds to minutes"; Data Center clusters copy
// their indexes between nodes within seconds), and the id of an issue
// whose answer was lost is not known, so it cannot be named in
// reconcileIssues. Past it, an issue still not found was taken not to
// exist.
const createSettle = 2 * time.Minute

// recheckEvery bounds the wait asked of the deliverer (Retry-After) before
// the search is tried again during createSettle.
const recheckEvery = 15 * time.Second

// Open creates an issue in the project with the dedup label, at most once
// per open operation. The create carries the operation's id in the issue
// property "l2agent" and is written first to the journal of creates; if
// the operation comes again (its answer was lost, or the agent died before
// recording it), the journal names the issue it made, or the issue is
// looked for by label and property, and, while the search may not show it
// yet (createSettle), the create is not repeated but retried later.
func (b *Backend) Open(ctx context.Context, t ticketing.Ticket) (ticketing.Ref, error) {
	what := "open " + t.Key
	if err := b.ready(ctx); err != nil {
		return ticketing.Ref{}, err
	}
	label, op := Label(t.Key), openID(ctx, t)
	if ref, ok, err := b.openedBefore(ctx, what, label, op); err != nil || ok {
		return ref, err
	}
	f := b.tierFields(max(t.Tier, ticketing.L2))
	f["project"] = map[string]string{"key": b.o.Project}
	f["issuetype"] = map[string]string{"name": b.o.IssueType}
	f["summary"] = summary(t.Title)
	f["description"] = b.text(t.Body)
	f["labels"] = []string{label, "l2agent"}
	body := map[string]any{"fields": f, "properties": []any{map[string]any{"key": propKey, "value": ownProp{Open: op}}}}
	b.journal.put(label, journalEntry{Op: op, At: b.now()})
	var created struct {
		ID  string `json:"id"`
		Key string `json:"key"`
	}
	if err := b.call(ctx, what, http.MethodPost, "/issue", body, &created); err != nil {
		if refused(err) {
			b.journal.drop(label, op) // Jira said no: nothing was created
		}
		return ticketing.Ref{}, err
	}
	if created.Key == "" {
		return ticketing.Ref{}, ticketing.Final("api", fmt.Errorf("jira %s: Jira answered without an issue key", what))
	}
	b.journal.put(label, journalEntry{Op: op, At: b.now(), ID: created.ID, Key: created.Key})
	return b.ref(created.Key), nil
}

// openID identifies an open operation: the alert key, the incident's
// event number and the ticket's text, which the outbox keeps as it was
// decided (the body quotes the incident's times), so that a resend has the
// same id and the next incident of the key another.
func openID(ctx context.Context, t ticketing.Ticket) string {
	var seq uint64
	if e, ok := ticketing.EventFrom(ctx); ok {
		seq = e.Seq
	}
	h := sha256.New()
	for _, s := range []string{t.Key, strconv.FormatUint(seq, 10), t.Title, t.Body} {
		h.Write([]byte(s))
		h.Write([]byte{0})
	}
	return hex.EncodeToString(h.Sum(nil)[:8])
}

// refused: Jira answered and did nothing (a 4xx, a 429).
func refused(err error) bool {
	var de *ticketing.DeliveryError
	return errors.As(err, &de) && (de.Reason == "http_4xx" || de.Reason == "http_429")
}

// openedBefore returns the issue that an earlier attempt of the open op
// made, if any; an error when it may exist but cannot be seen yet.
func (b *Backend) openedBefore(ctx context.Context, what, label, op string) (ticketing.Ref, bool, error) {
	e, ok := b.journal.get(label)
	if !ok || e.Op != op {
		return ticketing.Ref{}, false, nil
	}
	if e.Key != "" {
		b.log.Info("jira issue already created by this operation; not creating another", "issue", e.Key)
		return b.ref(e.Key), true, nil
	}
	ref, ok, err := b.findCreated(ctx, what, label, op)
	if err != nil || ok {
		return ref, ok, err
	}
	wait := e.At.Add(b.settle).Sub(b.now())
	if wait <= 0 {
		b.log.Warn("jira create in doubt not found after the search settled; creating the issue", "label", label, "attempted", e.At)
		return ticketing.Ref{}, false, nil
	}
	return ticketing.Ref{}, false, &rest.Error{Reason: "create_in_doubt", Retryable: true, RetryAfter: min(wait, recheckEvery),
		Err: fmt.Errorf("jira %s: an earlier create of this issue (at %s) may have succeeded although its answer was lost; Jira's search is eventually consistent, so it is looked for again for %s before the issue is created", what, e.At.UTC().Format(time.RFC3339), wait.Round(time.Second))}
}

// findCreated looks for the issue carrying label whose property says it
// was made by op, in any status: the search, then a consistent read of
// each candidate's property.
func (b *Backend) findCreated(ctx context.Context, what, label, op string) (ticketing.Ref, bool, error) {
	res, err := b.search(ctx, what, b.jqlAny(label), nil)
	if err != nil {
		return ticketing.Ref{}, false, err
	}
	for _, is := range res {
		if !is.hasLabel(label) {
			continue
		}
		st, err := b.state(ctx, what, b.ref(is.Key))
		if err != nil {
			return ticketing.Ref{}, false, err
		}
		if st.Properties.Own.Open == op {
			b.journal.put(label, journalEntry{Op: op, At: b.now(), ID: is.ID, Key: is.Key})
			b.log.Info("jira issue of a create in doubt found; not creating another", "issue", is.Key)
			return b.ref(is.Key), true, nil
		}
	}
	return ticketing.Ref{}, false, nil
}
