package remediate

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
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

// TestReadAuditTail: the tail of the log starts at a whole line, a torn
// last write is skipped, a missing log has no records.
func TestReadAuditTail(t *testing.T) {
	p := filepath.Join(t.TempDir(), AuditFile)
	recs, err := ReadAudit(p, 0)
	require.NoError(t, err)
	require.Empty(t, recs)
	l := &auditLog{path: p}
	at := time.Date(2026, 8, 1, 12, 0, 0, 0, time.UTC)
	for i := range 3 {
		require.NoError(t, l.append(Record{Time: at, Action: fmt.Sprintf("a%d", i), Result: ResultSuccess}))
	}
	f, err := os.OpenFile(p, os.O_WRONLY|os.O_APPEND, 0)
	require.NoError(t, err)
	_, err = f.WriteString(`{"time":"2026-08-01T12:00:00Z","action":"torn"`)
	require.NoError(t, err)
	require.NoError(t, f.Close())

	actions := func(recs []Record) (out []string) {
		for _, r := range recs {
			out = append(out, r.Action)
		}
		return out
	}
	recs, err = ReadAudit(p, 0)
	require.NoError(t, err)
	require.Equal(t, []string{"a0", "a1", "a2"}, actions(recs))
	b, err := os.ReadFile(p)
	require.NoError(t, err)
	lines := strings.SplitAfter(string(b), "\n")
	// Cut one byte into the second line: the first whole line is the third.
	recs, err = l.tail(int64(len(b) - len(lines[0]) - 1))
	require.NoError(t, err)
	require.Equal(t, []string{"a2"}, actions(recs))
}
