package pagerduty

import (
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"sync"
)

// fake is an Events API v2 endpoint built from PagerDuty's documentation: it
// rejects what PagerDuty rejects (400 "invalid event" with errors) and keeps
// one alert per routing key and dedup_key.
type fake struct {
	mu        sync.Mutex
	alerts    map[string]*alert // routing_key + "|" + dedup_key
	requests  int
	failWith  int // answer every request with this status when set
	lastEvent Event
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

func newFake() *fake { return &fake{alerts: map[string]*alert{}} }

func (f *fake) alert(rk, dk string) *alert {
	f.mu.Lock()
	defer f.mu.Unlock()
	if a := f.alerts[rk+"|"+dk]; a != nil {
		c := *a
		return &c
	}
	return nil
}

func reply(w http.ResponseWriter, status int, r Response) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(r)
}

func (f *fake) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.requests++
	if f.failWith != 0 {
		reply(w, f.failWith, Response{Status: "error", Message: http.StatusText(f.failWith)})
		return
	}
	if req.Method != http.MethodPost || req.URL.Path != "/v2/enqueue" {
		http.NotFound(w, req)
		return
	}
	var e Event
	if req.Header.Get("Content-Type") != "application/json" || json.NewDecoder(req.Body).Decode(&e) != nil {
		reply(w, 400, Response{Status: "invalid event", Message: "Event object is invalid", Errors: []string{"Event object is invalid JSON"}})
		return
	}
	f.lastEvent = e
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
	if e.EventAction == "trigger" {
		p := e.Payload
		switch {
		case p == nil:
			errs = append(errs, "'payload' is missing or blank")
		default:
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
	}
	if len(errs) > 0 {
		reply(w, 400, Response{Status: "invalid event", Message: "Event object is invalid", Errors: errs})
		return
	}
	if e.DedupKey == "" {
		e.DedupKey = fmt.Sprintf("generated-%d", f.requests)
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
	reply(w, 202, Response{Status: "success", Message: "Event processed", DedupKey: e.DedupKey})
}
