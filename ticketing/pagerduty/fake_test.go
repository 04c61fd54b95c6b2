package pagerduty

import (
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"testing"

	"github.com/l2agent/l2agent/internal/ticketingtest"
)

// fake is an Events API v2 endpoint built from PagerDuty's documentation,
// on the kit (which checks that every body is JSON and says so): it
// rejects what PagerDuty rejects (400 "invalid event" with errors) and
// keeps one alert per routing key and dedup_key. The kit serves one request
// at a time and tests read the state after their requests, so it needs no
// lock.
type fake struct {
	*ticketingtest.Server
	alerts    map[string]*alert // routing_key + "|" + dedup_key
	generated int               // dedup keys made for triggers without one
}

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
	f := &fake{alerts: map[string]*alert{}}
	f.Server = ticketingtest.New(t, ticketingtest.Options{Error: pdError})
	f.Handle("POST /v2/enqueue", f.enqueue)
	return f
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
	var e Event
	if json.Unmarshal(ticketingtest.Received(r).Raw, &e) != nil {
		pdError(w, http.StatusBadRequest, "Event object is invalid JSON")
		return
	}
	if errs := invalid(e); len(errs) > 0 {
		ticketingtest.WriteJSON(w, http.StatusBadRequest, Response{Status: "invalid event", Message: "Event object is invalid", Errors: errs})
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
	for _, l := range e.Links {
		if l.Href == "" {
			errs = append(errs, "'links.href' is missing or blank")
		}
	}
	return errs
}
