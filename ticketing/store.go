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
	"time"

	bolt "go.etcd.io/bbolt"
)

// Incident is the ticket state of one alert key, kept in the store.
type Incident struct {
	Key        string            `json:"key"`
	Host       string            `json:"host"`
	Check      string            `json:"check"`
	Metric     string            `json:"metric,omitempty"`
	Labels     map[string]string `json:"labels,omitempty"`
	Open       bool              `json:"open"`
	Severity   string            `json:"severity"` // warn or crit: the latest firing severity
	Tier       Tier              `json:"tier"`
	Opened     time.Time         `json:"opened"`     // the ticket was opened or last reopened
	TierSince  time.Time         `json:"tier_since"` // at this tier since
	OKSince    time.Time         `json:"ok_since,omitzero"`
	Resolved   time.Time         `json:"resolved,omitzero"`
	Flapping   bool              `json:"flapping,omitempty"`
	Changes    []time.Time       `json:"changes,omitempty"` // firing↔ok changes within the flapping window
	Reopens    []time.Time       `json:"reopens,omitempty"` // within the recurrence window
	Unknown    bool              `json:"unknown,omitempty"` // the check is failing; said once in a comment
	Value      float64           `json:"value"`
	Threshold  float64           `json:"threshold"`
	Direction  string            `json:"direction,omitempty"`
	Since      time.Time         `json:"since"` // the breach began
	Details    string            `json:"details,omitempty"`
	RunbookURL string            `json:"runbook_url,omitempty"`
	History    []HistoryEntry    `json:"history,omitempty"`
	Attempts   []Attempt         `json:"attempts,omitempty"` // remediation tried (remediation issue)
	Failures   int               `json:"remediation_failures,omitempty"`
	Events     uint64            `json:"events"`              // ticket operations queued so far
	Refs       map[string]Ref    `json:"refs,omitempty"`      // backend → ticket
	PrevRefs   map[string]Ref    `json:"prev_refs,omitempty"` // the previous ticket of this key
}

// HistoryEntry is one state change, for the ticket body.
type HistoryEntry struct {
	At     time.Time `json:"at"`
	From   string    `json:"from"`
	To     string    `json:"to"`
	Value  float64   `json:"value"`
	Reason string    `json:"reason,omitempty"`
}

// Attempt is one remediation tried before or while the ticket was open.
type Attempt struct {
	At      time.Time `json:"at"`
	Action  string    `json:"action"`
	Plan    string    `json:"plan,omitempty"`
	Output  string    `json:"output,omitempty"`
	Result  string    `json:"result"`
	Success bool      `json:"success"`
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
	PrevRef Ref       `json:"prev_ref,omitzero"` // for open: the previous ticket, which is not this one
	Created time.Time `json:"created"`
}

var bucketIncidents = []byte("incidents")

func outboxBucket(backend string) []byte { return []byte("outbox/" + backend) }
func deadBucket(backend string) []byte   { return []byte("dead/" + backend) }

// Store keeps incidents and the outbox in a bbolt file. Every write is one
// transaction, synced to disk before it returns.
type Store struct {
	db   *bolt.DB
	path string
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
	if errors.Is(err, bolt.ErrTimeout) {
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
	s := &Store{db: db, path: path}
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

// Save writes inc and queues ops for every backend in one transaction:
// when Save returns, both are on disk, or neither is.
func (s *Store) Save(inc *Incident, backends []string, ops []Op) error {
	return s.db.Update(func(tx *bolt.Tx) error {
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
		return putIncident(tx, inc)
	})
}

// Delete removes an incident (no ops).
func (s *Store) Delete(key string) error {
	return s.db.Update(func(tx *bolt.Tx) error { return tx.Bucket(bucketIncidents).Delete([]byte(key)) })
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

// Head returns the oldest queued op of a backend.
func (s *Store) Head(backend string) (Op, bool, error) {
	var op Op
	var ok bool
	err := s.db.View(func(tx *bolt.Tx) error {
		b := tx.Bucket(outboxBucket(backend))
		if b == nil {
			return nil
		}
		k, v := b.Cursor().First()
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

// Done removes a delivered op and records what the backend said (the ref of
// an opened ticket) in one transaction.
func (s *Store) Done(backend string, op Op, ref Ref) error {
	return s.db.Update(func(tx *bolt.Tx) error {
		if b := tx.Bucket(outboxBucket(backend)); b != nil {
			if err := b.Delete(seqKey(op.Seq)); err != nil {
				return err
			}
		}
		v := tx.Bucket(bucketIncidents).Get([]byte(op.Key))
		if v == nil || ref.ID == "" {
			return nil
		}
		var inc Incident
		if err := json.Unmarshal(v, &inc); err != nil {
			return err
		}
		if inc.Refs == nil {
			inc.Refs = map[string]Ref{}
		}
		inc.Refs[backend] = ref
		return putIncident(tx, &inc)
	})
}

// Dead moves an op that cannot be delivered out of the outbox, keeping it
// for inspection.
func (s *Store) Dead(backend string, op Op, reason string) error {
	return s.db.Update(func(tx *bolt.Tx) error {
		if b := tx.Bucket(outboxBucket(backend)); b != nil {
			if err := b.Delete(seqKey(op.Seq)); err != nil {
				return err
			}
		}
		d, err := tx.CreateBucketIfNotExists(deadBucket(backend))
		if err != nil {
			return err
		}
		op.Text = op.Text + "\n[undeliverable: " + reason + "]"
		v, err := json.Marshal(op)
		if err != nil {
			return err
		}
		seq, _ := d.NextSequence()
		return d.Put(seqKey(seq), v)
	})
}
