package remediate

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/l2agent/l2agent/internal/alert"
)

// TestAuditRecordJSON: an audit log line keeps its JSON, byte for byte,
// although the record now holds the alert model.
func TestAuditRecordJSON(t *testing.T) {
	at := time.Date(2026, 8, 1, 12, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		rec  Record
		line string
	}{{
		rec: Record{Time: at, Action: "disk_cleanup", Result: "success", Alert: auditAlert{Key: "k", Host: "h", Check: "c", Metric: "m",
			Labels: map[string]string{"a": "b"}, State: alert.StateCrit, Value: 0.95}},
		line: `{"time":"2026-08-01T12:00:00Z","action":"disk_cleanup","result":"success","rule":0,"alert":{"key":"k","host":"h","check":"c","metric":"m","labels":{"a":"b"},"state":"crit","value":0.95}}`,
	}, {
		rec:  Record{Time: at, Action: "x", Alert: auditAlert{Key: "k", Check: "c"}},
		line: `{"time":"2026-08-01T12:00:00Z","action":"x","result":"","rule":0,"alert":{"key":"k","check":"c","value":0}}`,
	}} {
		b, err := json.Marshal(tc.rec)
		require.NoError(t, err)
		require.Equal(t, tc.line, string(b))
		var back Record
		require.NoError(t, json.Unmarshal([]byte(tc.line), &back))
		require.Equal(t, tc.rec, back)
	}
}
