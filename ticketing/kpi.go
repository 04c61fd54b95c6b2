package ticketing

import "github.com/prometheus/client_golang/prometheus"

// KPI are the support figures of a fleet: how many incidents were fixed
// without a person, ticketed or escalated, how long they took, how often
// they came back.
type KPI struct {
	Incidents  *prometheus.CounterVec // {check, outcome}: auto_remediated, ticketed, escalated
	Resolution prometheus.Histogram   // breach → resolved, seconds
	Repeats    *prometheus.CounterVec // {check}: reopened, or a new ticket for a key with a past
	Starts     *prometheus.CounterVec // {check}: a ticket opened or reopened (the repeats' whole)
}

// KPI outcomes.
const (
	OutcomeAutoRemediated = "auto_remediated"
	OutcomeTicketed       = "ticketed"
	OutcomeEscalated      = "escalated"
)

// NewKPI registers the KPI metrics on reg (nil: not registered).
func NewKPI(reg prometheus.Registerer) *KPI {
	k := &KPI{
		Incidents: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "l2agent_incidents_total",
			Help: "Incidents by check and outcome: auto_remediated (fixed and verified, no ticket), ticketed (a ticket opened), escalated (a ticket escalated)."},
			[]string{"check", "outcome"}),
		Resolution: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "l2agent_incident_resolution_seconds",
			Help:    "Time from the breach to the ticket's resolution.",
			Buckets: []float64{60, 300, 900, 1800, 3600, 2 * 3600, 4 * 3600, 8 * 3600, 24 * 3600, 3 * 24 * 3600, 7 * 24 * 3600}}),
		Repeats: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "l2agent_incident_repeats_total",
			Help: "Incidents that came back: a ticket reopened, or a new ticket for a key that had one before (or an incident in the history)."},
			[]string{"check"}),
		Starts: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "l2agent_incident_starts_total",
			Help: "Incidents that started: a ticket opened or reopened. l2agent_incident_repeats_total / this is the share of repeats."},
			[]string{"check"}),
	}
	if reg != nil {
		reg.MustRegister(k.Incidents, k.Resolution, k.Repeats, k.Starts)
	}
	return k
}

// record counts one queued ticket operation (after its transaction committed).
func (k *KPI) record(kind OpKind, inc Incident, seconds float64) {
	switch kind {
	case OpOpen:
		k.Incidents.WithLabelValues(inc.Check, OutcomeTicketed).Inc()
		k.Starts.WithLabelValues(inc.Check).Inc()
		if len(inc.PrevRefs) > 0 || inc.past != nil && len(inc.past.SameKey) > 0 {
			k.Repeats.WithLabelValues(inc.Check).Inc()
		}
	case OpReopen:
		k.Starts.WithLabelValues(inc.Check).Inc()
		k.Repeats.WithLabelValues(inc.Check).Inc()
	case OpEscalate:
		k.Incidents.WithLabelValues(inc.Check, OutcomeEscalated).Inc()
	case OpResolve:
		if inc.Unreported.IsZero() { // closed as no longer reported: not a resolution
			k.Resolution.Observe(seconds)
		}
	}
}
