package ticketing

import (
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"github.com/l2agent/l2agent/internal/alert"
)

const notRequired = "antivirus is not required by the config"

// reportOnly is the harness key's transition marked report-only.
func (h *harness) reportOnly(at time.Duration, from, to string, v float64) alert.Transition {
	a := h.transition(at, from, to, v)
	a.ReportOnly = notRequired
	return a
}

// A report-only alert files nothing, whatever it does; ok/unknown of it
// leave no incident behind either.
func TestReportOnlyFilesNothing(t *testing.T) {
	h := newHarness(t, testConfig())
	require.Equal(t, "", h.send(h.reportOnly(0, "ok", "crit", 0)))
	require.Equal(t, "", h.send(h.reportOnly(time.Minute, "crit", "warn", 0)))
	require.Equal(t, "", h.tick(10*time.Hour), "no SLA escalation of what was never opened")
	require.Equal(t, "", h.send(h.reportOnly(11*time.Hour, "warn", "unknown", 0)))
	require.Equal(t, "", h.send(h.reportOnly(12*time.Hour, "unknown", "ok", 1)))
	incs, err := h.svc.Store.Incidents()
	require.NoError(t, err)
	require.Empty(t, incs)
}

// An open ticket whose alert becomes report-only while it fires (the policy
// is no longer required) is closed once, not as fixed, and not counted as a
// resolution; when the config requires it again, the same ticket reopens.
func TestReportOnlyClosesOpenTicket(t *testing.T) {
	h := newHarness(t, testConfig())
	reg := prometheus.NewRegistry()
	h.svc.Manager.KPI = NewKPI(reg)
	require.Equal(t, "open #1 L2, escalate L3 #1", h.step(0, "ok", "crit", 0))

	flip := h.reportOnly(time.Hour, "crit", "crit", 0) // the evaluator's TicketingChange
	require.True(t, flip.TicketingChange())
	require.Equal(t, "resolve #1", h.send(flip))
	inc, err := h.svc.Store.Incident(h.key)
	require.NoError(t, err)
	require.False(t, inc.Open)
	require.Equal(t, notRequired, inc.UnreportedWhy)
	require.Zero(t, resolutions(t, reg), "closed without a fix is no resolution")

	require.Equal(t, "", h.send(h.reportOnly(2*time.Hour, "crit", "warn", 0)), "closed once")
	require.Equal(t, "", h.tick(3*time.Hour))

	again := h.transition(4*time.Hour, "warn", "warn", 0) // required again
	require.Equal(t, "reopen #1", h.send(again), "the same ticket, within reopen_window")
	inc, err = h.svc.Store.Incident(h.key)
	require.NoError(t, err)
	require.True(t, inc.Open)
	require.Empty(t, inc.UnreportedWhy)
}

// A firing alert that was never ticketed and becomes ticketed (the config
// now requires it) opens a ticket.
func TestReportOnlyThenRequiredOpens(t *testing.T) {
	h := newHarness(t, testConfig())
	require.Equal(t, "", h.send(h.reportOnly(0, "ok", "warn", 0)))
	require.Equal(t, "open #1 L2", h.send(h.transition(time.Hour, "warn", "warn", 0)))
}

// Reconcile (the first run after a start or a reload) closes an open ticket
// of an alert that still fires but is report-only now: an upgrade or reload
// that made the policy optional leaves no ticket behind.
func TestReconcileClosesReportOnly(t *testing.T) {
	h := newHarness(t, testConfig())
	require.Equal(t, "open #1 L2", h.step(0, "ok", "warn", 0.85))
	a := h.transition(time.Hour, "warn", "warn", 0.85).Alert
	a.ReportOnly = notRequired
	require.NoError(t, h.svc.Manager.Reconcile("disk", []alert.Alert{a}, h.t0.Add(time.Hour)))
	require.Equal(t, "resolve #1", h.flush())
	// A ticketed alert still firing gets nothing new.
	require.Equal(t, "open #2 L2", h.step(48*time.Hour, "ok", "warn", 0.85))
	b := h.transition(49*time.Hour, "warn", "warn", 0.85).Alert
	require.NoError(t, h.svc.Manager.Reconcile("disk", []alert.Alert{b}, h.t0.Add(49*time.Hour)))
	require.Equal(t, "", h.flush())
}

// resolutions is how many resolutions the KPI histogram in reg observed.
func resolutions(t *testing.T, reg *prometheus.Registry) uint64 {
	t.Helper()
	mfs, err := reg.Gather()
	require.NoError(t, err)
	for _, mf := range mfs {
		if mf.GetName() == "l2agent_incident_resolution_seconds" {
			return mf.GetMetric()[0].GetHistogram().GetSampleCount()
		}
	}
	t.Fatal("no l2agent_incident_resolution_seconds")
	return 0
}
