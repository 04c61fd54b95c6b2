package agent

import (
	"encoding/json"
	"net/http"
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
