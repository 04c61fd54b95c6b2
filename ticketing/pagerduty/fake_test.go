package pagerduty

import (
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/l2agent/l2agent/internal/ticketingtest"
)

// fake is an Events API v2 endpoint (alert events and change events)
// built from PagerDuty's documentation (README.md, "The fake"), on the kit
// (which checks that every body is JSON and says so): it rejects what
// PagerDuty rejects (400 "invalid event" with errors), throttles each
// routing key to its budget of events in a sliding minute (429, the event
// not ingested), and keeps one alert per routing key and dedup_key. The
// kit serves one request at a time and tests read the state after their
// requests, so it needs no lock.
type fake struct {
	*ticketingtest.Server
	alerts    map[string]*alert        // routing_key + "|" + dedup_key
	generated int                      // dedup keys made for triggers without one
	changes   map[string][]ChangeEvent // routing_key → change events received

	budget int                    // events per routing key in a sliding minute (PagerDuty: about 120)
	now    time.Time              // the fake's clock, moved by tests
	sent   map[string][]time.Time // routing_key → when its accepted events came, within the last minute
}

// maxEventBytes is the documented size limit of an event.
const maxEventBytes = 512 * 1024

type alert struct {
	Status   string // triggered, resolved
	Opened   int    // alerts created for this dedup_key (a trigger after a resolve opens a new one)
	Triggers int    // trigger events merged into the current alert
	Severity string
	Summary  string
	Source   string
	Comments []string
	Links    []string
}

func newFake(t *testing.T) *fake {
	f := &fake{alerts: map[string]*alert{}, changes: map[string][]ChangeEvent{}, budget: 120,
		now: time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC), sent: map[string][]time.Time{}}
	f.Server = ticketingtest.New(t, ticketingtest.Options{Error: pdError})
	f.Handle("POST /v2/enqueue", f.enqueue)
	f.Handle("POST /v2/change/enqueue", f.changeEnqueue)
	return f
}

// throttled answers 429 when routing key rk has used its budget within the
// last minute, and otherwise counts this event against it.
func (f *fake) throttled(w http.ResponseWriter, rk string) bool {
	var recent []time.Time
	for _, at := range f.sent[rk] {
		if f.now.Sub(at) < time.Minute {
			recent = append(recent, at)
		}
	}
	f.sent[rk] = recent
	if len(recent) >= f.budget {
		ticketingtest.WriteJSON(w, http.StatusTooManyRequests, Response{Status: "throttle exceeded",
			Message: "Requests for this service are arriving too quickly. Please retry later."})
		return true
	}
	f.sent[rk] = append(recent, f.now)
	return false
}

// resolveByResponder is a responder resolving the alert in PagerDuty.
func (f *fake) resolveByResponder(rk, dk string) {
	f.alerts[rk+"|"+dk].Status = "resolved"
}

// pages counts the incidents opened (each pages the on-call).
func (f *fake) pages() int {
	n := 0
	for _, a := range f.alerts {
		n += a.Opened
	}
	return n
}

func (f *fake) changeEnqueue(w http.ResponseWriter, r *http.Request) {
	raw := ticketingtest.Received(r).Raw
	var e ChangeEvent
	if json.Unmarshal(raw, &e) != nil {
		pdError(w, http.StatusBadRequest, "Event object is invalid JSON")
		return
	}
	var errs []string
	if len(raw) > maxEventBytes {
		errs = append(errs, "Event object is larger than 512 KB")
	}
	if len(e.RoutingKey) != 32 {
		errs = append(errs, "Length of 'routing_key' is incorrect (should be 32 characters)")
	} else if strings.HasPrefix(e.RoutingKey, "R") {
		errs = append(errs, "Change events cannot be sent to a ruleset integration key")
	}
	if e.Payload.Summary == "" || len(e.Payload.Summary) > 1024 {
		errs = append(errs, "'payload.summary' is missing, blank or longer than 1024 characters")
	}
	errs = append(errs, badTimestamp(e.Payload.Timestamp)...)
	errs = append(errs, badLinks(e.Links)...)
	if len(errs) > 0 {
		ticketingtest.WriteJSON(w, http.StatusBadRequest, Response{Status: "invalid event", Message: "Event object is invalid", Errors: errs})
		return
	}
	if f.throttled(w, e.RoutingKey) {
		return
	}
	f.changes[e.RoutingKey] = append(f.changes[e.RoutingKey], e)
	ticketingtest.WriteJSON(w, http.StatusAccepted, Response{Status: "success", Message: "Change event processed"})
}

func badTimestamp(ts string) []string {
	if ts == "" {
		return nil
	}
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04:05.000-0700", "2006-01-02T15:04:05-0700"} {
		if _, err := time.Parse(layout, ts); err == nil {
			return nil
		}
	}
	return []string{"'payload.timestamp' is not a valid ISO 8601 timestamp"}
}

func badLinks(links []Link) []string {
	for _, l := range links {
		if l.Href == "" {
			return []string{"'links.href' is missing or blank"}
		}
	}
	return nil
}

// pdError is PagerDuty's error answer: 400 is an invalid event.
func pdError(w http.ResponseWriter, status int, msg string) {
	r := Response{Status: "error", Message: msg}
	if status == http.StatusBadRequest {
		r = Response{Status: "invalid event", Message: "Event object is invalid", Errors: []string{msg}}
	}
	ticketingtest.WriteJSON(w, status, r)
}

// failWith answers every request with status, as PagerDuty's error object.
func (f *fake) failWith(status int) {
	f.Inject(func(w http.ResponseWriter, _ *http.Request) { pdError(w, status, http.StatusText(status)) })
}

func (f *fake) alert(rk, dk string) *alert {
	if a := f.alerts[rk+"|"+dk]; a != nil {
		c := *a
		return &c
	}
	return nil
}

// lastEvent is the event of the latest request, as sent.
func (f *fake) lastEvent(t *testing.T) Event {
	t.Helper()
	var e Event
	if err := json.Unmarshal(f.Last().Raw, &e); err != nil {
		t.Fatalf("the last request is no event: %v", err)
	}
	return e
}

func (f *fake) enqueue(w http.ResponseWriter, r *http.Request) {
	raw := ticketingtest.Received(r).Raw
	var e Event
	if json.Unmarshal(raw, &e) != nil {
		pdError(w, http.StatusBadRequest, "Event object is invalid JSON")
		return
	}
	errs := invalid(e)
	if len(raw) > maxEventBytes {
		errs = append(errs, "Event object is larger than 512 KB")
	}
	if len(errs) > 0 {
		ticketingtest.WriteJSON(w, http.StatusBadRequest, Response{Status: "invalid event", Message: "Event object is invalid", Errors: errs})
		return
	}
	if f.throttled(w, e.RoutingKey) {
		return
	}
	if e.DedupKey == "" {
		f.generated++
		e.DedupKey = fmt.Sprintf("generated-%d", f.generated)
	}
	a := f.alerts[e.RoutingKey+"|"+e.DedupKey]
	switch e.EventAction {
	case "trigger":
		if a == nil {
			a = &alert{}
			f.alerts[e.RoutingKey+"|"+e.DedupKey] = a
		}
		if a.Status != "triggered" { // new alert (first, or after a resolve)
			a.Status, a.Opened, a.Triggers = "triggered", a.Opened+1, 0
		}
		a.Triggers++
		a.Severity, a.Summary, a.Source = e.Payload.Severity, e.Payload.Summary, e.Payload.Source
		if c, ok := e.Payload.CustomDetails["comment"].(string); ok {
			a.Comments = append(a.Comments, c)
		}
		for _, l := range e.Links {
			a.Links = append(a.Links, l.Href)
		}
	case "resolve":
		if a != nil { // resolving an unknown or resolved key is accepted and dropped
			a.Status = "resolved"
		}
	}
	ticketingtest.WriteJSON(w, http.StatusAccepted, Response{Status: "success", Message: "Event processed", DedupKey: e.DedupKey})
}

// invalid returns PagerDuty's errors for an event it refuses.
func invalid(e Event) []string {
	var errs []string
	if len(e.RoutingKey) != 32 {
		errs = append(errs, "Length of 'routing_key' is incorrect (should be 32 characters)")
	}
	if !slices.Contains([]string{"trigger", "acknowledge", "resolve"}, e.EventAction) {
		errs = append(errs, "'event_action' is invalid (must be one of the following: 'trigger', 'acknowledge' or 'resolve')")
	}
	if len(e.DedupKey) > 255 {
		errs = append(errs, "'dedup_key' is too long (maximum is 255 characters)")
	}
	if e.EventAction != "trigger" && e.DedupKey == "" {
		errs = append(errs, "'dedup_key' is missing or blank")
	}
	if e.EventAction != "trigger" {
		return errs
	}
	if p := e.Payload; p == nil {
		errs = append(errs, "'payload' is missing or blank")
	} else {
		if p.Summary == "" || len(p.Summary) > 1024 {
			errs = append(errs, "'payload.summary' is missing, blank or longer than 1024 characters")
		}
		if p.Source == "" {
			errs = append(errs, "'payload.source' is missing or blank")
		}
		if !slices.Contains([]string{"critical", "error", "warning", "info"}, p.Severity) {
			errs = append(errs, "'payload.severity' is invalid (must be one of the following: 'critical', 'warning', 'error' or 'info')")
		}
	}
	if e.Payload != nil {
		errs = append(errs, badTimestamp(e.Payload.Timestamp)...)
	}
	return append(errs, badLinks(e.Links)...)
}
