package ticketing

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	bolt "go.etcd.io/bbolt"
)

// DeadLetter is an op a backend refused for good (a final error: 401, 403,
// 404, 409, 410, a refused value…), kept aside in the store until it is
// replayed once the cause is fixed.
type DeadLetter struct {
	Backend string `json:"backend"`
	// Seq is the letter's number among its backend's dead letters: what
	// `l2agent tickets replay BACKEND SEQ` names.
	Seq uint64 `json:"seq"`
	Op  Op     `json:"op"`
}

// legacyDeadMark ends the text of a dead letter written before Op.Dead
// existed: the reason was appended to the op's text.
const legacyDeadMark = "\n[undeliverable: "

func decodeDead(backend string, k, v []byte) (DeadLetter, error) {
	d := DeadLetter{Backend: backend, Seq: binary.BigEndian.Uint64(k)}
	if err := json.Unmarshal(v, &d.Op); err != nil {
		return d, fmt.Errorf("dead letter %s/%d: %w", backend, d.Seq, err)
	}
	if i := strings.LastIndex(d.Op.Text, legacyDeadMark); d.Op.Dead == "" && i >= 0 && strings.HasSuffix(d.Op.Text, "]") {
		d.Op.Dead = d.Op.Text[i+len(legacyDeadMark) : len(d.Op.Text)-1]
		d.Op.Text = d.Op.Text[:i]
	}
	return d, nil
}

// DeadLetters returns the dead letters of backend ("" : of every backend,
// those no longer configured included), by backend, oldest first.
func (s *Store) DeadLetters(backend string) ([]DeadLetter, error) {
	var out []DeadLetter
	err := s.db.View(func(tx *bolt.Tx) error {
		return tx.ForEach(func(name []byte, b *bolt.Bucket) error {
			be, ok := strings.CutPrefix(string(name), "dead/")
			if !ok || backend != "" && be != backend {
				return nil
			}
			return b.ForEach(func(k, v []byte) error {
				d, err := decodeDead(be, k, v)
				out = append(out, d)
				return err
			})
		})
	})
	if err != nil {
		return nil, fmt.Errorf("read dead letters: %w", err)
	}
	return out, nil
}

// DeadCounts counts the dead letters of every backend that has some.
func (s *Store) DeadCounts() (map[string]int, error) {
	out, err := s.countBuckets("dead/")
	if err != nil {
		return nil, fmt.Errorf("count dead letters: %w", err)
	}
	return out, nil
}

// Replay moves dead letters of backend back to the end of its outbox, in
// the order they died, in one transaction: those numbered seqs, or all of
// them when seqs is empty. A number that is not a dead letter of backend
// moves nothing. It returns the letters moved.
func (s *Store) Replay(backend string, seqs []uint64) ([]DeadLetter, error) {
	var moved []DeadLetter
	err := s.write(func(tx *bolt.Tx) error {
		dead := tx.Bucket(deadBucket(backend))
		if dead == nil {
			return fmt.Errorf("backend %q has no dead letters", backend)
		}
		var letters []DeadLetter
		err := dead.ForEach(func(k, v []byte) error {
			d, err := decodeDead(backend, k, v)
			if len(seqs) == 0 || slices.Contains(seqs, d.Seq) {
				letters = append(letters, d)
			}
			return err
		})
		if err != nil {
			return err
		}
		for _, seq := range seqs {
			if !slices.ContainsFunc(letters, func(d DeadLetter) bool { return d.Seq == seq }) {
				return fmt.Errorf("backend %q has no dead letter %d (see l2agent tickets deadletters %s)", backend, seq, backend)
			}
		}
		box, err := tx.CreateBucketIfNotExists(outboxBucket(backend))
		if err != nil {
			return err
		}
		for _, d := range letters {
			op := d.Op
			op.Dead, op.DeadAt = "", time.Time{}
			if op.Seq, err = box.NextSequence(); err != nil {
				return err
			}
			v, err := json.Marshal(op)
			if err != nil {
				return err
			}
			if err := box.Put(seqKey(op.Seq), v); err != nil {
				return err
			}
			if err := dead.Delete(seqKey(d.Seq)); err != nil {
				return err
			}
			moved = append(moved, d)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("replay dead letters of %s: %w", backend, err)
	}
	return moved, nil
}

// Replay moves dead letters of backend back into its outbox (Store.Replay)
// and wakes its deliverer, which sends them in order.
func (s *Service) Replay(backend string, seqs []uint64) ([]DeadLetter, error) {
	moved, err := s.Store.Replay(backend, seqs)
	if err != nil {
		return nil, err
	}
	for _, d := range s.Deliverers() {
		if d.Name == backend {
			d.Wake()
		}
	}
	s.log.Info("dead letters moved back into the outbox", "backend", backend, "ops", len(moved))
	return moved, nil
}

var descDead = prometheus.NewDesc("l2agent_ticket_dead_letters",
	"Ticket operations a backend refused for good, kept aside until replayed (l2agent tickets replay).", []string{"backend"}, nil)

// deadCollector exposes the dead letters of the service in force: every
// backend in force (0 when it has none) and any other that has some.
type deadCollector struct{ m *Metrics }

func (c deadCollector) Describe(ch chan<- *prometheus.Desc) { ch <- descDead }

func (c deadCollector) Collect(ch chan<- prometheus.Metric) {
	s := c.m.svc.Load()
	if s == nil {
		return
	}
	counts, err := s.Store.DeadCounts()
	if err != nil {
		ch <- prometheus.NewInvalidMetric(descDead, err)
		return
	}
	collectByBackend(ch, descDead, s, counts)
}
