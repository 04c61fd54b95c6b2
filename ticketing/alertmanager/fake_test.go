package alertmanager

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"
)

// fakeAM enforces the contract of POST /api/v2/alerts of Alertmanager
// v0.25: a JSON array of postableAlert; each needs a non-empty labels
// object with valid label names and non-empty values; startsAt/endsAt are
// RFC 3339 date-times and endsAt is not before startsAt. Anything else is a
// 400 with an error body, like the real server.
type fakeAM struct {
	t      *testing.T
	srv    *httptest.Server
	status int // forced answer, when not 0
	user   string
	pass   string

	mu    sync.Mutex
	posts [][]postableAlert
}

func newFakeAM(t *testing.T) *fakeAM {
	f := &fakeAM{t: t}
	f.srv = httptest.NewServer(http.HandlerFunc(f.serve))
	t.Cleanup(f.srv.Close)
	return f
}

func (f *fakeAM) serve(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost || r.URL.Path != "/api/v2/alerts" {
		http.Error(w, "not found", http.StatusNotFound)
		return
	}
	if f.user != "" {
		if u, p, ok := r.BasicAuth(); !ok || u != f.user || p != f.pass {
			http.Error(w, "Unauthorized", http.StatusUnauthorized)
			return
		}
	}
	if f.status != 0 {
		w.WriteHeader(f.status)
		fmt.Fprintln(w, "forced")
		return
	}
	if ct := r.Header.Get("Content-Type"); ct != "application/json" {
		http.Error(w, "unsupported content type "+ct, http.StatusUnsupportedMediaType)
		return
	}
	b, _ := io.ReadAll(r.Body)
	var alerts []postableAlert
	if err := json.Unmarshal(b, &alerts); err != nil {
		http.Error(w, `{"code":400,"message":"parsing alerts body: `+err.Error()+`"}`, http.StatusBadRequest)
		return
	}
	if err := validateAlerts(alerts); err != nil {
		http.Error(w, `"`+err.Error()+`"`, http.StatusBadRequest)
		return
	}
	f.mu.Lock()
	f.posts = append(f.posts, alerts)
	f.mu.Unlock()
	w.WriteHeader(http.StatusOK)
}

func validateAlerts(alerts []postableAlert) error {
	if len(alerts) == 0 {
		return errors.New("no alerts")
	}
	for i, a := range alerts {
		if len(a.Labels) == 0 {
			return fmt.Errorf("alert %d: labels is required", i)
		}
		for k, v := range a.Labels {
			if !validName(k) {
				return fmt.Errorf("alert %d: invalid label name %q", i, k)
			}
			if v == "" {
				return fmt.Errorf("alert %d: label %s: empty value", i, k)
			}
		}
		var s, e time.Time
		var err error
		if a.StartsAt != "" {
			if s, err = time.Parse(time.RFC3339, a.StartsAt); err != nil {
				return fmt.Errorf("alert %d: startsAt: %v", i, err)
			}
		}
		if a.EndsAt != "" {
			if e, err = time.Parse(time.RFC3339, a.EndsAt); err != nil {
				return fmt.Errorf("alert %d: endsAt: %v", i, err)
			}
		}
		if !s.IsZero() && !e.IsZero() && e.Before(s) {
			return fmt.Errorf("alert %d: start time must be before end time", i)
		}
	}
	return nil
}

func validName(s string) bool {
	if s == "" {
		return false
	}
	for i, c := range s {
		if c != '_' && (c < 'a' || c > 'z') && (c < 'A' || c > 'Z') && (i == 0 || c < '0' || c > '9') {
			return false
		}
	}
	return true
}

func (f *fakeAM) all() [][]postableAlert {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([][]postableAlert(nil), f.posts...)
}
