package agent

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/l2agent/l2agent/configs"
	"github.com/l2agent/l2agent/internal/alert"
	"github.com/l2agent/l2agent/ticketing"
)

// Handler is what the agent serves over TCP: /metrics, /-/healthy,
// /-/ready, and the detailed API (/api/v1/, /-/reload) only to requests
// authenticated by the web config (see tcpGuard). The state-changing
// endpoints (POST) are guarded further: see stateChanging.
func (a *Agent) Handler() http.Handler {
	return a.tcpGuard(a.routes(), a.SocketPath())
}

// routes serves every endpoint, unguarded but for stateChanging: the API
// socket serves it to its allowed peers, Handler over TCP.
func (a *Agent) routes() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.InstrumentMetricHandler(a.reg, http.HandlerFunc(a.serveMetrics)))
	mux.HandleFunc("GET /-/healthy", func(w http.ResponseWriter, _ *http.Request) {
		w.Write([]byte("l2agent is Healthy.\n"))
	})
	mux.HandleFunc("GET /-/ready", func(w http.ResponseWriter, _ *http.Request) {
		if why := a.NotReady(); why != "" {
			http.Error(w, "l2agent is not ready: "+why, http.StatusServiceUnavailable)
			return
		}
		w.Write([]byte("l2agent is Ready.\n"))
	})
	a.stateChanging(mux, "POST /-/reload", "SIGHUP (systemctl reload l2agent) reloads the config whatever the flags.", func(w http.ResponseWriter, r *http.Request) {
		if err := a.RequestReload(r.Context()); err != nil {
			var cerrs configs.Errors
			if errors.As(err, &cerrs) {
				http.Error(w, "config rejected, the running one is kept:\n"+err.Error(), http.StatusBadRequest)
				return
			}
			http.Error(w, "reload failed, the running config is kept:\n"+err.Error(), http.StatusInternalServerError)
			return
		}
		w.Write([]byte("config reloaded\n"))
	})
	mux.HandleFunc("GET /api/v1/status", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		enc.Encode(a.Status())
	})
	mux.HandleFunc("GET /api/v1/tickets", func(w http.ResponseWriter, _ *http.Request) {
		svc := a.tickets.Load()
		if svc == nil {
			http.Error(w, "ticketing is not configured or disabled (see the log)", http.StatusNotFound)
			return
		}
		incs, err := svc.Store.Incidents()
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		pending, err := svc.Store.PendingAll()
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		for _, d := range svc.Deliverers() {
			pending[d.Name] += 0 // a backend in force is listed even with nothing pending
		}
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(TicketsStatus{Incidents: incs, Pending: pending})
	})
	a.stateChanging(mux, "POST /api/v1/tickets/flush", "The agent delivers its outbox by itself, retrying a failed operation with a backoff of up to 5 minutes.", func(w http.ResponseWriter, r *http.Request) {
		svc := a.tickets.Load()
		if svc == nil {
			http.Error(w, "ticketing is not configured or disabled (see the log)", http.StatusNotFound)
			return
		}
		ctx, cancel := context.WithTimeout(r.Context(), time.Minute)
		defer cancel()
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(map[string]any{"pending": svc.Flush(ctx)})
	})
	a.deadLetterRoutes(mux)
	a.historyRoutes(mux)
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Write([]byte(`<html><head><title>l2agent</title></head><body><h1>l2agent</h1><ul>
<li><a href="metrics">/metrics</a></li>
<li><a href="-/healthy">/-/healthy</a></li><li><a href="-/ready">/-/ready</a></li></ul></body></html>
`))
	})
	return mux
}

// TicketsStatus is the document served at /api/v1/tickets.
type TicketsStatus struct {
	Incidents []ticketing.Incident `json:"incidents"`
	Pending   map[string]int       `json:"pending"` // outbox, per backend
}

// Status is the document served at /api/v1/status.
type Status struct {
	Host       string        `json:"host"`
	Version    string        `json:"version"`
	Started    time.Time     `json:"started"`
	ConfigFile string        `json:"config_file"`
	Ready      bool          `json:"ready"`
	Checks     []CheckResult `json:"checks"`
	Alerts     []alert.Alert `json:"alerts"`
}

// Status returns every check and every alert key with its state.
func (a *Agent) Status() Status {
	cf := a.opts.ConfigFile
	if cf == "" {
		cf = "(embedded default)"
	}
	st := Status{Host: a.host, Version: a.build.Version, Started: a.start, ConfigFile: cf, Ready: a.Ready(), Checks: a.Results(), Alerts: a.eval.Alerts()}
	for i := range st.Checks {
		st.Checks[i].Alerts = nil // listed once, in Alerts
		st.Checks[i].Observations = nil
	}
	return st
}
