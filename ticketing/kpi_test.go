package ticketing

import (
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"

	"github.com/l2agent/l2agent/configs"
	"github.com/l2agent/l2agent/internal/alert"
)

func TestKPI(t *testing.T) {
	h := newHarness(t, testConfig())
	reg := prometheus.NewRegistry()
	k := NewKPI(reg)
	h.svc.Manager.KPI = k
	h.step(0, "ok", "warn", 0.85)
	h.step(time.Minute, "warn", "crit", 0.95)
	h.step(2*time.Minute, "crit", "ok", 0.5)
	h.tick(20 * time.Minute) // resolved 20m after the breach began (t0)
	h.step(time.Hour, "ok", "warn", 0.85)

	require.Equal(t, 1.0, testutil.ToFloat64(k.Incidents.WithLabelValues("disk", OutcomeTicketed)))
	require.Equal(t, 1.0, testutil.ToFloat64(k.Incidents.WithLabelValues("disk", OutcomeEscalated)))
	require.Equal(t, 1.0, testutil.ToFloat64(k.Repeats.WithLabelValues("disk")), "the reopen")
	require.NoError(t, testutil.GatherAndCompare(reg, stringsReader(`
# HELP l2agent_incident_resolution_seconds Time from the breach to the ticket's resolution.
# TYPE l2agent_incident_resolution_seconds histogram
l2agent_incident_resolution_seconds_bucket{le="60"} 0
l2agent_incident_resolution_seconds_bucket{le="300"} 0
l2agent_incident_resolution_seconds_bucket{le="900"} 0
l2agent_incident_resolution_seconds_bucket{le="1800"} 1
l2agent_incident_resolution_seconds_bucket{le="3600"} 1
l2agent_incident_resolution_seconds_bucket{le="7200"} 1
l2agent_incident_resolution_seconds_bucket{le="14400"} 1
l2agent_incident_resolution_seconds_bucket{le="28800"} 1
l2agent_incident_resolution_seconds_bucket{le="86400"} 1
l2agent_incident_resolution_seconds_bucket{le="259200"} 1
l2agent_incident_resolution_seconds_bucket{le="604800"} 1
l2agent_incident_resolution_seconds_bucket{le="+Inf"} 1
l2agent_incident_resolution_seconds_sum 1200
l2agent_incident_resolution_seconds_count 1
`), "l2agent_incident_resolution_seconds"))
}

func stringsReader(s string) *strings.Reader { return strings.NewReader(s) }

// A new ticket for a key whose incident left the store long ago (past the
// reopen and recurrence windows) is still a repeat: the history has it.
// Every open and reopen is a start: repeats / starts is the repeat share.
func TestKPIRepeatFromHistory(t *testing.T) {
	cfg := testConfig()
	cfg.ReopenWindow = configs.Duration(time.Hour)
	h, _ := newBodiesHarness(t, cfg)
	k := NewKPI(prometheus.NewRegistry())
	h.svc.Manager.KPI = k
	h.episode("/var", 0)
	h.tick(30 * time.Hour) // past both windows: the incident leaves the store
	require.Nil(t, h.incident2(alert.Key("web-7", "disk", "disk_used_ratio", map[string]string{"mountpoint": "/var"})))
	h.episode("/srv", 40*time.Hour)
	require.Equal(t, 0.0, testutil.ToFloat64(k.Repeats.WithLabelValues("disk")), "another mount is not a repeat")
	h.episode("/var", 60*time.Hour)
	require.Equal(t, 1.0, testutil.ToFloat64(k.Repeats.WithLabelValues("disk")))
	require.Equal(t, 3.0, testutil.ToFloat64(k.Starts.WithLabelValues("disk")))
}
