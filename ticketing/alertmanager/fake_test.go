package alertmanager

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/l2agent/l2agent/internal/ticketingtest"
)

// fakeAM enforces the contract of POST /api/v2/alerts of Alertmanager
// v0.25, on the kit (which checks auth when set, and that the body is JSON
// and says so): a JSON array of postableAlert; each needs a non-empty labels
// object with valid label names and non-empty values; startsAt/endsAt are
// RFC 3339 date-times and endsAt is not before startsAt. Anything else is a
// 400 with an error body, like the real server.
type fakeAM struct {
	*ticketingtest.Server

	mu    sync.Mutex // posts: the re-send loop posts while a test reads
	posts [][]postableAlert
}

func newFakeAM(t *testing.T) *fakeAM {
	f := &fakeAM{}
	f.Server = ticketingtest.New(t, ticketingtest.Options{}) // Alertmanager's errors are plain text
	f.Handle("POST /api/v2/alerts", f.post)
	return f
}

// failWith answers every request with status.
func (f *fakeAM) failWith(status int) { f.Inject(ticketingtest.Fail(status, "forced\n")) }

func (f *fakeAM) post(w http.ResponseWriter, r *http.Request) {
	var alerts []postableAlert
	if err := json.Unmarshal(ticketingtest.Received(r).Raw, &alerts); err != nil {
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
