package agent

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/l2agent/l2agent/ticketing"
)

// GET /api/v1/tickets/history serves the store's history, oldest first:
// what `l2agent tickets history` shows while the agent holds the store.
func TestHistoryEndpoint(t *testing.T) {
	a := webAgent(t, Options{})
	svc := a.Tickets()
	require.NotNil(t, svc)
	at := time.Date(2026, 11, 2, 8, 0, 0, 0, time.UTC)
	for i, key := range []string{"web-7/disk/a", "web-7/disk/b"} {
		end := at.Add(time.Duration(i) * time.Hour)
		require.NoError(t, svc.Store.AddPast(ticketing.PastIncident{Key: key, Host: "web-7", Check: "disk", Began: at, Ended: end, Outcome: ticketing.EndCleared},
			a.Config().Ticketing.History, end))
	}
	rec := httptest.NewRecorder()
	a.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/api/v1/tickets/history", nil))
	require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
	require.Equal(t, "application/json", rec.Header().Get("Content-Type"))
	var got []ticketing.PastIncident
	require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &got))
	require.Len(t, got, 2)
	require.Equal(t, "web-7/disk/a", got[0].Key)
	require.Equal(t, "web-7/disk/b", got[1].Key)
}
