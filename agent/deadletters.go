package agent

import (
	"encoding/json"
	"net/http"
	"strconv"

	"github.com/l2agent/l2agent/ticketing"
)

// DeadLetters is the document served at /api/v1/tickets/deadletters and
// answered by POST /api/v1/tickets/replay (the letters moved back).
type DeadLetters struct {
	DeadLetters []ticketing.DeadLetter `json:"dead_letters"`
}

// deadLetterRoutes serves the ticket operations backends refused for good:
// GET /api/v1/tickets/deadletters[?backend=NAME] lists them; POST
// /api/v1/tickets/replay?backend=NAME&(all=1|seq=N…) moves them back
// into the outbox, through the running agent's store (the CLI cannot open
// it while the agent runs).
func (a *Agent) deadLetterRoutes(mux *http.ServeMux) {
	mux.HandleFunc("GET /api/v1/tickets/deadletters", func(w http.ResponseWriter, r *http.Request) {
		svc := a.tickets.Load()
		if svc == nil {
			http.Error(w, "ticketing is not configured or disabled (see the log)", http.StatusNotFound)
			return
		}
		dead, err := svc.Store.DeadLetters(r.URL.Query().Get("backend"))
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(DeadLetters{DeadLetters: dead})
	})
	a.stateChanging(mux, "POST /api/v1/tickets/replay", "Or stop the agent and run l2agent tickets replay, which then moves them in the store itself.", func(w http.ResponseWriter, r *http.Request) {
		svc := a.tickets.Load()
		if svc == nil {
			http.Error(w, "ticketing is not configured or disabled (see the log)", http.StatusNotFound)
			return
		}
		q := r.URL.Query()
		var seqs []uint64
		for _, s := range q["seq"] {
			n, err := strconv.ParseUint(s, 10, 64)
			if err != nil {
				http.Error(w, "seq "+strconv.Quote(s)+": want a dead letter's number", http.StatusBadRequest)
				return
			}
			seqs = append(seqs, n)
		}
		if q.Get("backend") == "" || len(seqs) == 0 && q.Get("all") != "1" {
			http.Error(w, "name a backend, and the dead letters (seq=N, repeated) or all=1", http.StatusBadRequest)
			return
		}
		moved, err := svc.Replay(q.Get("backend"), seqs)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(DeadLetters{DeadLetters: moved})
	})
}
