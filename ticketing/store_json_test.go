package ticketing

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/l2agent/l2agent/internal/alert"
)

// TestIncidentJSON: the stored incident (bbolt, /api/v1/tickets) keeps its
// JSON, byte for byte, so users' state files keep working.
func TestIncidentJSON(t *testing.T) {
	const stored = `{"key":"k","host":"h","check":"c","open":false,"severity":"crit","tier":0,"opened":"0001-01-01T00:00:00Z","tier_since":"0001-01-01T00:00:00Z","value":0,"threshold":0,"since":"0001-01-01T00:00:00Z","history":[{"at":"2026-08-01T12:00:00Z","from":"ok","to":"warn","value":1,"reason":"r"}],"attempts":[{"at":"2026-08-01T12:00:00Z","action":"disk_cleanup","plan":"p","output":"o","result":"failed: x","success":false}],"events":0}`
	at := time.Date(2026, 8, 1, 12, 0, 0, 0, time.UTC)
	inc := Incident{Key: "k", Host: "h", Check: "c", Severity: alert.StateCrit,
		History:  []HistoryEntry{{At: at, From: alert.StateOK, To: alert.StateWarn, Value: 1, Reason: "r"}},
		Attempts: []alert.Attempt{{At: at, Action: "disk_cleanup", Plan: "p", Output: "o", Result: "failed: x"}}}
	b, err := json.Marshal(inc)
	require.NoError(t, err)
	require.Equal(t, stored, string(b))
	var back Incident
	require.NoError(t, json.Unmarshal([]byte(stored), &back))
	require.Equal(t, inc, back)
}
