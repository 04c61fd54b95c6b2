package agent

import (
	"encoding/json"
	"net/http"
	"time"

	"github.com/l2agent/l2agent/internal/alert"
	"github.com/l2agent/l2agent/ticketing"
)

// historyRoutes serves the incident history (`l2agent tickets history`
// while the agent holds the store): GET /api/v1/tickets/history, oldest
// first.
func (a *Agent) historyRoutes(mux *http.ServeMux) {
	mux.HandleFunc("GET /api/v1/tickets/history", func(w http.ResponseWriter, _ *http.Request) {
		svc := a.tickets.Load()
		if svc == nil {
			http.Error(w, "ticketing is not configured or disabled (see the log)", http.StatusNotFound)
			return
		}
		hist, err := svc.Store.History(a.log)
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(hist)
	})
}

// fixNotHolding keeps a verified fix of t in the incident history and
// reports whether the fix_not_holding rule (ticketing.history) says to
// ticket it anyway, at L3: the action fixed this key too often lately.
func (a *Agent) fixNotHolding(t *alert.Transition, at alert.Attempt) bool {
	svc := a.tickets.Load()
	if svc == nil {
		return false
	}
	began := t.BreachAt
	if began.IsZero() {
		began = t.At
	}
	notHolding, err := svc.Manager.RecordFixed(t.Alert, at, began, time.Now())
	if err != nil {
		a.log.Error("incident history: the fix was not recorded", "key", t.Key, "action", at.Action, "err", err)
		return false
	}
	return notHolding
}

// skipFailing reports whether action is not to run for t because its last
// runs on this host all failed (ticketing.history.skip_failing_action);
// then t says so in "What was tried".
func (a *Agent) skipFailing(t *alert.Transition, action string) bool {
	svc := a.tickets.Load()
	if svc == nil {
		return false
	}
	why, err := svc.Manager.FailingAction(action, time.Now())
	if err != nil {
		a.log.Error("incident history: cannot tell whether the action keeps failing; running it", "key", t.Key, "action", action, "err", err)
		return false
	}
	if why == "" {
		return false
	}
	a.log.Warn("remediation skipped: the action keeps failing on this host", "key", t.Key, "action", action, "why", why)
	t.Attempts = append(t.Attempts, alert.Attempt{At: time.Now(), Action: action, Result: ticketing.SkippedFailing + ": " + why})
	return true
}
