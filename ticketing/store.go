package ticketing

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync/atomic"
	"time"

	bolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"

	"github.com/l2agent/l2agent/internal/alert"
)

// Incident is the ticket state of one alert key, kept in the store.
type Incident struct {
	Key       string            `json:"key"`
	Host      string            `json:"host"`
	Check     string            `json:"check"`
	Metric    string            `json:"metric,omitempty"`
	Labels    map[string]string `json:"labels,omitempty"`
	Open      bool              `json:"open"`
	Severity  alert.State       `json:"severity"` // warn or crit: the latest firing severity
	Tier      Tier              `json:"tier"`
	Opened    time.Time         `json:"opened"`     // the ticket was opened or last reopened
	TierSince time.Time         `json:"tier_since"` // at this tier since
	OKSince   time.Time         `json:"ok_since,omitzero"`
	Resolved  time.Time         `json:"resolved,omitzero"`
	Flapping  bool              `json:"flapping,omitempty"`
	Changes   []time.Time       `json:"changes,omitempty"` // firing↔ok changes within the flapping window
	Reopens   []time.Time       `json:"reopens,omitempty"` // within the recurrence window
	Unknown   bool              `json:"unknown,omitempty"` // the check is failing; said once in a comment
	// Unreported: since when the alert is no longer evaluated (and why);
	// said once in a comment, closed by the unreported policy. On an
	// incident closed because its alert became report-only: since then,
	// and the check's reason.
	Unreported    time.Time       `json:"unreported,omitzero"`
	UnreportedWhy string          `json:"unreported_why,omitempty"`
	Value         float64         `json:"value"`
	Threshold     float64         `json:"threshold"`
	Direction     string          `json:"direction,omitempty"`
	Since         time.Time       `json:"since"` // the breach began
	Details       string          `json:"details,omitempty"`
	RunbookURL    string          `json:"runbook_url,omitempty"`
	History       []HistoryEntry  `json:"history,omitempty"`
	Attempts      []alert.Attempt `json:"attempts,omitempty"` // remediation tried
	Failures      int             `json:"remediation_failures,omitempty"`
	Events        uint64          `json:"events"`              // ticket operations queued so far
	Refs          map[string]Ref  `json:"refs,omitempty"`      // backend → ticket
	PrevRefs      map[string]Ref  `json:"prev_refs,omitempty"` // the previous ticket of this key
	// Procedure is the standard procedure the ticket shows, rendered when
	// the body is (Manager.SetProcedures); not stored.
	Procedure string `json:"-"`

	past *Past // "This happened before", for the ticket being opened or reopened (not stored)
}

// HistoryEntry is one state change, for the ticket body.
type HistoryEntry struct {
	At     time.Time   `json:"at"`
	From   alert.State `json:"from"`
	To     alert.State `json:"to"`
	Value  float64     `json:"value"`
	Reason string      `json:"reason,omitempty"`
}

// OpKind is a ticket operation.
type OpKind string

// Ticket operations, as queued in the outbox.
const (
	OpOpen     OpKind = "open"
	OpComment  OpKind = "comment"
	OpEscalate OpKind = "escalate"
	OpResolve  OpKind = "resolve"
	OpReopen   OpKind = "reopen"
)

// Op is one queued ticket operation for one backend.
type Op struct {
	Seq     uint64    `json:"seq"` // position in the backend's outbox
	Key     string    `json:"key"`
	Kind    OpKind    `json:"kind"`
	Event   uint64    `json:"event"` // the incident's event number: an idempotency key with Key
	Ticket  Ticket    `json:"ticket"`
	Text    string    `json:"text,omitempty"`
	Tier    Tier      `json:"tier,omitempty"`
	Created time.Time `json:"created"`
	// Dead and DeadAt are set on a dead letter only (bucket dead/BACKEND):
	// why the backend refused the op for good, and when.
	Dead   string    `json:"dead,omitempty"`
	DeadAt time.Time `json:"dead_at,omitzero"`
}

var bucketIncidents = []byte("incidents")

func outboxBucket(backend string) []byte { return []byte("outbox/" + backend) }
func deadBucket(backend string) []byte   { return []byte("dead/" + backend) }

// bucketSending holds, per backend that can say whether an op was applied
// (Applier), when its deliverer last began sending a group: an op of that
// group may still be in progress in the ticket system after a crash,
// reload or stop cut its answer off.
var bucketSending = []byte("sending")

// Store keeps incidents and the outbox in a bbolt file. Every write is one
// transaction, synced to disk before it returns.
type Store struct {
	db   *bolt.DB
	path string
	// writes counts the write transactions committed (or tried): a reader
	// that saw the same count twice knows nothing was written in between.
	writes  atomic.Uint64
	changed chan struct{} // Changed
}

// Writes returns the number of write transactions so far: equal counts
// mean that nothing was written between the two reads.
func (s *Store) Writes() uint64 { return s.writes.Load() }

// Changed receives a value after a write transaction (one for any number of
// writes since the last receive): the service's clock waits on it.
func (s *Store) Changed() <-chan struct{} { return s.changed }

// wrote counts a write transaction and tells Changed.
func (s *Store) wrote() {
	s.writes.Add(1)
	select {
	case s.changed <- struct{}{}:
	default: // one is pending already
	}
}

// write runs fn in a write transaction of the database and counts it.
func (s *Store) write(fn func(*bolt.Tx) error) error {
	defer s.wrote()
	return s.db.Update(fn)
}

// ErrStoreLocked means another process (a running agent) holds the store.
var ErrStoreLocked = errors.New("store is in use by another process (is the agent running?)")

// OpenStore opens (or creates) the store at path. A file that is not a valid
// store is moved aside to path.corrupt-TIMESTAMP, never emptied in place; the
// returned error then says so, and a new empty store is opened.
func OpenStore(path string, readOnly bool, log *slog.Logger) (*Store, error) {
	if !readOnly {
		if err := os.MkdirAll(filepath.Dir(path), 0o750); err != nil {
			return nil, fmt.Errorf("create state dir: %w", err)
		}
	}
	opts := &bolt.Options{Timeout: time.Second, ReadOnly: readOnly}
	db, err := bolt.Open(path, 0o600, opts)
	if errors.Is(err, berrors.ErrTimeout) {
		return nil, fmt.Errorf("open store %s: %w", path, ErrStoreLocked)
	}
	if err != nil {
		if readOnly || errors.Is(err, os.ErrPermission) || errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("open store %s: %w", path, err)
		}
		aside := fmt.Sprintf("%s.corrupt-%s", path, time.Now().UTC().Format("20060102T150405Z"))
		if rerr := os.Rename(path, aside); rerr != nil {
			return nil, fmt.Errorf("open store %s: %w (and moving it aside failed: %v)", path, err, rerr)
		}
		log.Error("ticket store unreadable: moved aside, starting a new one; tickets it tracked will be found again by key", "path", path, "moved_to", aside, "err", err)
		db, err = bolt.Open(path, 0o600, opts)
		if err != nil {
			return nil, fmt.Errorf("open new store %s: %w", path, err)
		}
	}
	s := &Store{db: db, path: path, changed: make(chan struct{}, 1)}
	if !readOnly {
		if err := db.Update(func(tx *bolt.Tx) error {
			_, err := tx.CreateBucketIfNotExists(bucketIncidents)
			return err
		}); err != nil {
			db.Close()
			return nil, fmt.Errorf("init store %s: %w", path, err)
		}
	}
	return s, nil
}

// Close closes the store.
func (s *Store) Close() error { return s.db.Close() }

// Path is the store's file.
func (s *Store) Path() string { return s.path }

// Incident returns the incident of key.
func (s *Store) Incident(key string) (*Incident, error) {
	var inc *Incident
	err := s.db.View(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketIncidents)
		if b == nil {
			return nil
		}
		v := b.Get([]byte(key))
		if v == nil {
			return nil
		}
		inc = &Incident{}
		return json.Unmarshal(v, inc)
	})
	if err != nil {
		return nil, fmt.Errorf("read incident %s: %w", key, err)
	}
	return inc, nil
}

// Incidents returns every incident, sorted by key.
func (s *Store) Incidents() ([]Incident, error) {
	var out []Incident
	err := s.db.View(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketIncidents)
		if b == nil {
			return nil
		}
		return b.ForEach(func(k, v []byte) error {
			var inc Incident
			if err := json.Unmarshal(v, &inc); err != nil {
				return fmt.Errorf("incident %s: %w", k, err)
			}
			out = append(out, inc)
			return nil
		})
	})
	sort.Slice(out, func(i, j int) bool { return out[i].Key < out[j].Key })
	return out, err
}

// Txn is one read-write transaction of the store: the manager applies a
// batch of decisions in one, so that one fsync covers them all.
//
// Incidents read in a transaction are decoded once and written back once,
// at its end, however many decisions of the batch change them.
type Txn struct {
	tx    *bolt.Tx
	cache map[string]*Incident
	dirty map[string]bool
}

// Update runs fn in one transaction, synced to disk before Update returns.
// A transaction that wrote nothing is rolled back instead of committed: the
// time-based rules run every ticketing.interval and usually change nothing,
// and a commit would write and fsync the file each time all the same.
func (s *Store) Update(fn func(*Txn) error) error {
	tx, err := s.db.Begin(true)
	if err != nil {
		return err
	}
	defer func() { _ = tx.Rollback() }() // after a Commit: ErrTxClosed, nothing done
	t := &Txn{tx: tx, cache: map[string]*Incident{}, dirty: map[string]bool{}}
	if err := fn(t); err != nil {
		return err
	}
	for key := range t.dirty {
		if err := putIncident(tx, t.cache[key]); err != nil {
			return err
		}
	}
	if st := tx.Stats(); st.GetNodeCount() == 0 { // bbolt materializes a node for every write (put, delete, bucket, sequence)
		return nil
	}
	defer s.wrote()
	return tx.Commit()
}

// Incident returns the incident of key, nil if there is none. Changes to it
// must be saved with Save.
func (t *Txn) Incident(key string) (*Incident, error) {
	if inc, ok := t.cache[key]; ok {
		return inc, nil
	}
	v := t.tx.Bucket(bucketIncidents).Get([]byte(key))
	if v == nil {
		return nil, nil
	}
	inc := &Incident{}
	if err := json.Unmarshal(v, inc); err != nil {
		return nil, fmt.Errorf("read incident %s: %w", key, err)
	}
	t.cache[key] = inc
	return inc, nil
}

// Delete removes the incident of key.
func (t *Txn) Delete(key string) error {
	t.cache[key] = nil
	delete(t.dirty, key)
	return t.tx.Bucket(bucketIncidents).Delete([]byte(key))
}

// Save writes inc and queues ops for every backend: when the transaction
// commits, both are on disk, or neither is.
func (s *Store) Save(inc *Incident, backends []string, ops []Op) error {
	return s.Update(func(t *Txn) error { return t.Save(inc, backends, ops) })
}

// Save writes inc and queues ops for every backend.
func (t *Txn) Save(inc *Incident, backends []string, ops []Op) error {
	tx := t.tx
	for _, name := range backends {
		b, err := tx.CreateBucketIfNotExists(outboxBucket(name))
		if err != nil {
			return err
		}
		for _, op := range ops {
			seq, err := b.NextSequence()
			if err != nil {
				return err
			}
			op.Seq = seq
			v, err := json.Marshal(op)
			if err != nil {
				return err
			}
			if err := b.Put(seqKey(seq), v); err != nil {
				return err
			}
		}
	}
	t.cache[inc.Key], t.dirty[inc.Key] = inc, true
	return nil
}

// Delete removes an incident (no ops).
func (s *Store) Delete(key string) error {
	return s.write(func(tx *bolt.Tx) error { return tx.Bucket(bucketIncidents).Delete([]byte(key)) })
}

func putIncident(tx *bolt.Tx, inc *Incident) error {
	v, err := json.Marshal(inc)
	if err != nil {
		return err
	}
	return tx.Bucket(bucketIncidents).Put([]byte(inc.Key), v)
}

func seqKey(seq uint64) []byte {
	k := make([]byte, 8)
	binary.BigEndian.PutUint64(k, seq)
	return k
}

// Next returns the first queued op of a backend after sequence number after.
func (s *Store) Next(backend string, after uint64) (Op, bool, error) {
	var op Op
	var ok bool
	err := s.db.View(func(tx *bolt.Tx) error {
		b := tx.Bucket(outboxBucket(backend))
		if b == nil {
			return nil
		}
		k, v := b.Cursor().Seek(seqKey(after + 1))
		if k == nil {
			return nil
		}
		ok = true
		return json.Unmarshal(v, &op)
	})
	return op, ok, err
}

// Pending counts the queued ops of a backend.
func (s *Store) Pending(backend string) int {
	n := 0
	s.db.View(func(tx *bolt.Tx) error {
		if b := tx.Bucket(outboxBucket(backend)); b != nil {
			n = b.Stats().KeyN
		}
		return nil
	})
	return n
}

// PendingAll counts the ops waiting in every outbox of the store, by
// backend, including those of backends no longer in the config.
func (s *Store) PendingAll() (map[string]int, error) {
	out, err := s.countBuckets("outbox/")
	if err != nil {
		return nil, fmt.Errorf("count pending ops: %w", err)
	}
	return out, nil
}

// countBuckets counts the keys of every bucket named prefix+BACKEND, by
// backend.
func (s *Store) countBuckets(prefix string) (map[string]int, error) {
	out := map[string]int{}
	err := s.db.View(func(tx *bolt.Tx) error {
		return tx.ForEach(func(name []byte, b *bolt.Bucket) error {
			if backend, ok := strings.CutPrefix(string(name), prefix); ok {
				out[backend] = b.Stats().KeyN
			}
			return nil
		})
	})
	return out, err
}

// Outcome is what became of one delivered op.
type Outcome struct {
	Op   Op
	Ref  Ref    // the ticket the backend named (an open's new ticket)
	Dead string // non-empty: the op could not be delivered, and why
}

// markSending records that backend's deliverer begins sending a group at
// at; commit clears the record once nothing of it can be in progress.
func (s *Store) markSending(backend string, at time.Time) error {
	v, err := at.MarshalBinary()
	if err != nil {
		return err
	}
	err = s.write(func(tx *bolt.Tx) error {
		b, err := tx.CreateBucketIfNotExists(bucketSending)
		if err != nil {
			return err
		}
		return b.Put([]byte(backend), v)
	})
	if err != nil {
		return fmt.Errorf("record the start of a delivery to %s: %w", backend, err)
	}
	return nil
}

// sendingSince is when backend's deliverer began the group whose answers
// may not all have come back; false when none may be in progress.
func (s *Store) sendingSince(backend string) (time.Time, bool) {
	var at time.Time
	var ok bool
	_ = s.db.View(func(tx *bolt.Tx) error {
		if b := tx.Bucket(bucketSending); b != nil {
			if v := b.Get([]byte(backend)); v != nil {
				ok = at.UnmarshalBinary(v) == nil
			}
		}
		return nil
	})
	return at, ok
}

// Commit removes delivered ops from the outbox and records the tickets the
// backend named, in one transaction. Undeliverable ops are kept aside in a
// dead-letter bucket (dead/BACKEND), with why, to be listed and replayed
// (deadletters.go).
func (s *Store) Commit(backend string, outs []Outcome) error {
	return s.commit(backend, outs, false)
}

// commit is Commit; settled also clears backend's sending record (every op
// of the group was answered).
func (s *Store) commit(backend string, outs []Outcome, settled bool) error {
	return s.write(func(tx *bolt.Tx) error {
		if b := tx.Bucket(bucketSending); settled && b != nil {
			if err := b.Delete([]byte(backend)); err != nil {
				return err
			}
		}
		box := tx.Bucket(outboxBucket(backend))
		for _, o := range outs {
			if box != nil {
				if err := box.Delete(seqKey(o.Op.Seq)); err != nil {
					return err
				}
			}
			if o.Dead != "" {
				d, err := tx.CreateBucketIfNotExists(deadBucket(backend))
				if err != nil {
					return err
				}
				op := o.Op
				op.Dead, op.DeadAt = o.Dead, time.Now().UTC()
				v, err := json.Marshal(op)
				if err != nil {
					return err
				}
				seq, _ := d.NextSequence()
				if err := d.Put(seqKey(seq), v); err != nil {
					return err
				}
				continue
			}
			if o.Ref.ID == "" {
				continue
			}
			if err := pastRef(tx, backend, o); err != nil {
				return err
			}
			v := tx.Bucket(bucketIncidents).Get([]byte(o.Op.Key))
			if v == nil {
				continue
			}
			var inc Incident
			if err := json.Unmarshal(v, &inc); err != nil {
				return err
			}
			if inc.Refs[backend] == o.Ref {
				continue
			}
			if inc.Refs == nil {
				inc.Refs = map[string]Ref{}
			}
			inc.Refs[backend] = o.Ref
			if err := putIncident(tx, &inc); err != nil {
				return err
			}
		}
		return nil
	})
}
