package ticketing

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"strings"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/l2agent/l2agent/configs"
	"github.com/l2agent/l2agent/internal/alert"
)

// The history of incidents that ended: one compact record per incident
// (per ticket episode: a reopen starts another), kept in the store's
// "history" bucket in the order they ended, bounded by ticketing.history
// (keep, max_per_key, max_total; the oldest dropped first). It only feeds
// tickets ("This happened before") and `l2agent tickets history`.

var bucketHistory = []byte("history")

// How an incident ended.
const (
	// EndFixed: a remediation fixed it, verified by running the check
	// again; no ticket was opened.
	EndFixed = "fixed"
	// EndCleared: back within its threshold for resolve_after, by itself
	// or by someone's hand.
	EndCleared = "cleared"
	// EndUnreported: closed without a fix, as no longer reported
	// (unmounted, rule or check removed).
	EndUnreported = "unreported"
	// EndReportOnly: closed without a fix, its check reporting it for
	// dashboards only from then on.
	EndReportOnly = "report_only"
	// EndClosedByPerson: closed by a person in the ticket system. No
	// backend reports this yet; the value is reserved.
	EndClosedByPerson = "closed_by_person"
)

// PastIncident is the record of one incident that ended.
type PastIncident struct {
	Key    string            `json:"key"`
	Host   string            `json:"host"`
	Check  string            `json:"check"`
	Metric string            `json:"metric,omitempty"`
	Labels map[string]string `json:"labels,omitempty"`
	// Began: the breach began (or the ticket was opened); Cleared: the
	// alert was back within its threshold (zero when it was not: closed
	// without a fix); Ended: the ticket was resolved or closed.
	Began    time.Time      `json:"began"`
	Cleared  time.Time      `json:"cleared,omitzero"`
	Ended    time.Time      `json:"ended"`
	Severity alert.State    `json:"severity"` // the highest
	Tier     Tier           `json:"tier,omitempty"`
	Value    float64        `json:"value"` // the last firing value
	Attempts []PastAttempt  `json:"attempts,omitempty"`
	Outcome  string         `json:"outcome"`
	FixedBy  string         `json:"fixed_by,omitempty"` // the action, when Outcome is fixed
	Refs     map[string]Ref `json:"refs,omitempty"`     // backend → ticket
}

// PastAttempt is one remediation attempt of a past incident.
type PastAttempt struct {
	At      time.Time `json:"at"`
	Action  string    `json:"action"`
	Result  string    `json:"result"`
	Success bool      `json:"success,omitempty"`
}

// Duration is how long the problem lasted: from the breach until it
// cleared, or until the ticket was closed.
func (p *PastIncident) Duration() time.Duration {
	end := p.Cleared
	if end.IsZero() {
		end = p.Ended
	}
	return max(end.Sub(p.Began), 0)
}

// pastOf is the record of inc, which ends now with outcome.
func pastOf(inc *Incident, now time.Time, outcome string) PastIncident {
	began := inc.Since
	if began.IsZero() || (!inc.Opened.IsZero() && inc.Opened.Before(began)) {
		began = inc.Opened
	}
	sev := inc.Severity
	for _, h := range inc.History {
		if h.To.Firing() && !h.At.Before(began) && h.To > sev {
			sev = h.To
		}
	}
	p := PastIncident{Key: inc.Key, Host: inc.Host, Check: inc.Check, Metric: inc.Metric, Labels: maps.Clone(inc.Labels),
		Began: began, Ended: now, Severity: sev, Tier: inc.Tier, Value: firingValue(inc), Outcome: outcome, Refs: maps.Clone(inc.Refs)}
	if outcome == EndCleared {
		p.Cleared = inc.OKSince
	}
	for _, a := range inc.Attempts {
		if !a.At.Before(began.Add(-time.Minute)) {
			p.Attempts = append(p.Attempts, PastAttempt{At: a.At, Action: a.Action, Result: a.Result, Success: a.Success})
			if a.Success && outcome == EndCleared { // the action cleared it (fix_not_holding sent it on)
				p.Outcome, p.FixedBy = EndFixed, a.Action
			}
		}
	}
	return p
}

// addPast appends rec to the history and drops what the bounds no longer
// allow: records older than keep, then the oldest of rec's key past
// max_per_key, then the oldest of all past max_total.
func (t *Txn) addPast(rec PastIncident, cfg configs.History, now time.Time) error {
	b, err := t.tx.CreateBucketIfNotExists(bucketHistory)
	if err != nil {
		return fmt.Errorf("create the history bucket: %w", err)
	}
	v, err := json.Marshal(rec)
	if err != nil {
		return fmt.Errorf("encode the history record of %s: %w", rec.Key, err)
	}
	seq, err := b.NextSequence()
	if err != nil {
		return fmt.Errorf("number the history record of %s: %w", rec.Key, err)
	}
	if err := b.Put(seqKey(seq), v); err != nil {
		return fmt.Errorf("write the history record of %s: %w", rec.Key, err)
	}
	return pruneHistory(b, rec.Key, cfg, now)
}

// pruneHistory applies the bounds of cfg to the history bucket b, key
// being the alert key whose record was just added. A record that cannot
// be decoded counts towards max_total only, and goes as it becomes the
// oldest.
func pruneHistory(b *bolt.Bucket, key string, cfg configs.History, now time.Time) error {
	var all, ofKey [][]byte
	var expired [][]byte
	c := b.Cursor()
	for k, v := c.First(); k != nil; k, v = c.Next() {
		var r struct {
			Key   string    `json:"key"`
			Ended time.Time `json:"ended"`
		}
		if json.Unmarshal(v, &r) == nil {
			if cfg.Keep > 0 && now.Sub(r.Ended) > cfg.Keep.D() {
				expired = append(expired, k)
				continue
			}
			if r.Key == key {
				ofKey = append(ofKey, k)
			}
		}
		all = append(all, k)
	}
	drop := expired
	dropped := map[string]bool{}
	if n := len(ofKey) - cfg.MaxPerKey; cfg.MaxPerKey > 0 && n > 0 {
		for _, k := range ofKey[:n] {
			drop, dropped[string(k)] = append(drop, k), true
		}
	}
	left := len(all) - len(dropped)
	for _, k := range all {
		if cfg.MaxTotal <= 0 || left <= cfg.MaxTotal {
			break
		}
		if !dropped[string(k)] {
			drop, dropped[string(k)] = append(drop, k), true
			left--
		}
	}
	for _, k := range drop {
		if err := b.Delete(k); err != nil {
			return fmt.Errorf("drop an old history record: %w", err)
		}
	}
	return nil
}

// readHistory decodes every record of the history bucket b, oldest first;
// a record that cannot be decoded is skipped with a log line.
func readHistory(b *bolt.Bucket, log *slog.Logger) []PastIncident {
	if b == nil {
		return nil
	}
	var out []PastIncident
	c := b.Cursor()
	for k, v := c.First(); k != nil; k, v = c.Next() {
		var p PastIncident
		if err := json.Unmarshal(v, &p); err != nil || p.Key == "" {
			if log != nil {
				log.Warn("incident history: skipping a record that cannot be read", "record", fmt.Sprintf("%x", k), "err", err)
			}
			continue
		}
		out = append(out, p)
	}
	return out
}

// History returns the incidents that ended, oldest first; records that
// cannot be read are skipped and logged.
func (s *Store) History(log *slog.Logger) ([]PastIncident, error) {
	var out []PastIncident
	err := s.db.View(func(tx *bolt.Tx) error {
		out = readHistory(tx.Bucket(bucketHistory), log)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("read the incident history: %w", err)
	}
	return out, nil
}

// history is History inside the transaction.
func (t *Txn) history(log *slog.Logger) []PastIncident {
	return readHistory(t.tx.Bucket(bucketHistory), log)
}

// AddPast appends a record to the history, within its bounds.
func (s *Store) AddPast(rec PastIncident, cfg configs.History, now time.Time) error {
	return s.Update(func(t *Txn) error { return t.addPast(rec, cfg, now) })
}

// recall sets what the history holds of d's incident (inc.past) for the
// ticket being opened or reopened.
func (m *Manager) recall(d *decision) {
	if d.tx == nil {
		return
	}
	d.inc.past = pastFor(d.tx.history(m.log), d.inc, m.cfg.History.Shown, d.now)
}

// remember records the incident of d in the history if d ended it.
func (m *Manager) remember(tx *Txn, d *decision) error {
	if d.ended == "" {
		return nil
	}
	if err := tx.addPast(pastOf(d.inc, d.now, d.ended), m.cfg.History, d.now); err != nil {
		return fmt.Errorf("keep the history of %s: %w", d.inc.Key, err)
	}
	return nil
}

// RecordFixed keeps, in the history, an alert that a remediation fixed and
// verified (it opened no ticket), and reports whether the fix_not_holding
// rule applies now: the action fixed this key fix_not_holding.count times
// within the window, this one included. The caller then sends the alert on
// for a ticket, which firing escalates at once to L3.
func (m *Manager) RecordFixed(a alert.Alert, at alert.Attempt, began, now time.Time) (bool, error) {
	p := PastIncident{Key: a.Key, Host: a.Host, Check: a.Check, Metric: a.Metric, Labels: maps.Clone(a.Labels),
		Began: began, Cleared: now, Ended: now, Severity: a.State, Value: a.Value, Outcome: EndFixed, FixedBy: at.Action,
		Attempts: []PastAttempt{{At: at.At, Action: at.Action, Result: at.Result, Success: at.Success}}}
	holding := true
	err := m.update(func(tx *Txn, _ *int) error {
		if err := tx.addPast(p, m.cfg.History, now); err != nil {
			return fmt.Errorf("keep the fix of %s in the history: %w", a.Key, err)
		}
		holding = m.fixNotHolding(tx.history(m.log), a.Key, now) == ""
		return nil
	})
	return !holding, err
}

// fixNotHolding says why the fix of key is not holding: an action fixed it
// (verified) fix_not_holding.count times within the window before now; ""
// when the rule is off or the count not reached.
func (m *Manager) fixNotHolding(hist []PastIncident, key string, now time.Time) string {
	rule := m.cfg.History.FixNotHolding
	if rule.Count <= 0 {
		return ""
	}
	n, action := 0, ""
	for i := range hist {
		if h := &hist[i]; h.Key == key && h.Outcome == EndFixed && now.Sub(h.Ended) <= rule.Window.D() {
			n, action = n+1, h.FixedBy
		}
	}
	if n < rule.Count {
		return ""
	}
	return fmt.Sprintf("the fix is not holding: %s fixed this alert %d times within %s, and it is back (ticketing.history.fix_not_holding)", action, n, rule.Window.D())
}

// escalateIfFixNotHolding escalates at once to L3 the alert that starts
// firing again although its action succeeded (a is sent on by the agent
// only when fix_not_holding applies: see RecordFixed).
func (m *Manager) escalateIfFixNotHolding(d *decision, a *alert.Transition) {
	if d.tx == nil || len(a.Attempts) == 0 || !a.Attempts[len(a.Attempts)-1].Success {
		return
	}
	if why := m.fixNotHolding(d.tx.history(m.log), a.Key, d.now); why != "" {
		d.escalate(L3, why)
	}
}

// FailingAction says why action is not to run at now: its last
// skip_failing_action runs on this host (in the history and the open
// incidents) all failed, the last of them within skip_failing_for; "" when
// the rule is off or they did not (then the action is tried again).
func (m *Manager) FailingAction(action string, now time.Time) (string, error) {
	n := m.cfg.History.SkipFailingAction
	if n <= 0 {
		return "", nil
	}
	hist, err := m.store.History(m.log)
	if err != nil {
		return "", err
	}
	incs, err := m.store.Incidents()
	if err != nil {
		return "", err
	}
	var runs []PastAttempt
	for _, h := range hist {
		runs = append(runs, h.Attempts...)
	}
	for _, inc := range incs {
		for _, a := range inc.Attempts {
			runs = append(runs, PastAttempt{At: a.At, Action: a.Action, Result: a.Result, Success: a.Success})
		}
	}
	var last []PastAttempt
	for _, r := range runs {
		if r.Action == action && ranResult(r.Result) && !slices.ContainsFunc(last, func(x PastAttempt) bool { return x == r }) {
			last = append(last, r)
		}
	}
	slices.SortFunc(last, func(x, y PastAttempt) int { return x.At.Compare(y.At) })
	if len(last) < n {
		return "", nil
	}
	for _, r := range last[len(last)-n:] {
		if r.Success {
			return "", nil
		}
	}
	lastRun := last[len(last)-1]
	until := lastRun.At.Add(time.Duration(m.cfg.History.SkipFailingFor))
	if !now.Before(until) {
		return "", nil
	}
	return fmt.Sprintf("%s failed the last %d times it ran on this host (the last at %s: %s); not run again before %s (ticketing.history.skip_failing_action, skip_failing_for)",
		action, n, lastRun.At.UTC().Format(time.RFC3339), lastRun.Result, until.UTC().Format(time.RFC3339)), nil
}

// ranResult reports whether an attempt's result says the action ran (it
// was not held back by the policy): success, failed, not_verified, timeout.
func ranResult(result string) bool {
	label, _, _ := strings.Cut(result, ":")
	switch label {
	case "success", "failed", "not_verified", "timeout":
		return true
	}
	return false
}

// SkippedFailing starts the result of an attempt the agent did not make
// because the action keeps failing (skip_failing_action).
const SkippedFailing = "skipped_failing"

// noteSkipped says in the ticket that the action of a was not run because
// it keeps failing, when the decision files no new ticket (whose "What was
// tried" says so already): a comment.
func (m *Manager) noteSkipped(d *decision, a *alert.Transition) {
	if slices.ContainsFunc(d.ops, func(op Op) bool { return op.Kind == OpOpen }) {
		return
	}
	for _, at := range a.Attempts {
		if strings.HasPrefix(at.Result, SkippedFailing+":") {
			d.add(OpComment, "Remediation not run: "+strings.TrimSpace(strings.TrimPrefix(at.Result, SkippedFailing+":")), 0)
		}
	}
}

// pastRefScan bounds how many of the newest history records pastRef reads.
const pastRefScan = 50

// pastRef gives the ticket of a delivered open to the history record of
// its incident when the incident ended before the open was delivered (the
// backend was down all along): the record then lacked it.
func pastRef(tx *bolt.Tx, backend string, o Outcome) error {
	b := tx.Bucket(bucketHistory)
	if o.Op.Kind != OpOpen || b == nil {
		return nil
	}
	c := b.Cursor()
	n := 0
	for k, v := c.Last(); k != nil && n < pastRefScan; k, v = c.Prev() {
		n++
		var p PastIncident
		if json.Unmarshal(v, &p) != nil || p.Key != o.Op.Key || p.Ended.Before(o.Op.Created) || p.Began.After(o.Op.Created) {
			continue
		}
		if _, ok := p.Refs[backend]; ok {
			return nil
		}
		if p.Refs == nil {
			p.Refs = map[string]Ref{}
		}
		p.Refs[backend] = o.Ref
		v, err := json.Marshal(p)
		if err != nil {
			return fmt.Errorf("encode the history record of %s: %w", p.Key, err)
		}
		return b.Put(append([]byte(nil), k...), v)
	}
	return nil
}
