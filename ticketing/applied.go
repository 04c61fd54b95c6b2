package ticketing

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/fnv"
	"net"
	"strings"

	bolt "go.etcd.io/bbolt"
)

// Applier is a ticket system that can say whether an operation is already
// in a ticket. RT, Jira and ServiceNow show every comment to the engineer
// and cannot drop a resent one by key, so they implement it: the deliverer
// asks, before sending it again, about each operation that may have been
// applied without the store recording it (see Deliverer), and records the
// ones already there as delivered without sending them.
//
// The deliverer ends the text that each operation adds to a ticket of an
// Applier (the comment, or the note of an escalation, resolve or reopen)
// with the line Marker(op); Applied looks for that line among the ticket's
// comments. The text must be the last thing an operation changes, so that a
// marker found means the whole operation was applied (a queue or status
// set before it is idempotent anyway).
type Applier interface {
	// Applied reports whether ticket r already holds op. Each call is a
	// single attempt, classified as Ticketer's calls are.
	Applied(ctx context.Context, r Ref, op Op) (bool, error)
}

// Marker is the last line of the text op adds to a ticket of an Applier:
// "l2agent event 12 (5f3a9c01)", the incident's event number and a digest
// of the alert key, that number and the time the operation was decided.
// Event numbers start again when an incident is forgotten (or the store
// lost); the digest tells those operations apart.
func Marker(op Op) string {
	h := fnv.New32a()
	var b [16]byte
	binary.BigEndian.PutUint64(b[:8], op.Event)
	binary.BigEndian.PutUint64(b[8:], uint64(op.Created.UnixNano()))
	h.Write([]byte(op.Key))
	h.Write(b[:])
	return fmt.Sprintf("l2agent event %d (%08x)", op.Event, h.Sum32())
}

// HasMarker reports whether text carries op's marker.
func HasMarker(text string, op Op) bool { return strings.Contains(text, Marker(op)) }

// withMarker ends text with op's marker, on a line of its own after an
// empty one.
func withMarker(text string, op Op) string {
	text = strings.TrimRight(text, "\n")
	if text == "" {
		return Marker(op)
	}
	return text + "\n\n" + Marker(op)
}

// maybeApplied reports whether a failed attempt may nonetheless have been
// applied by the backend: a timeout, a connection lost after the request
// went out, a 5xx, a cancellation. Not when the connection could not be
// made, or the server answered 429 (it refused to do anything now).
func maybeApplied(err error) bool {
	var de *DeliveryError
	if errors.As(err, &de) && (de.Reason == "http_429" || de.Reason == "store") {
		return false
	}
	var oe *net.OpError
	if errors.As(err, &oe) && oe.Op == "dial" {
		return false
	}
	var dns *net.DNSError
	return !errors.As(err, &dns)
}

// mayBeInProgress reports whether the request of a failed attempt may
// still be going on in the ticket system: it may have been applied, and
// no answer came back (a timeout, a connection lost, a cancellation). A
// server that answered, even with a 5xx, is done with it.
func mayBeInProgress(err error) bool {
	var de *DeliveryError
	if errors.As(err, &de) && strings.HasPrefix(de.Reason, "http_") {
		return false
	}
	return maybeApplied(err)
}

// headSeq is the sequence number of the n-th op queued for backend, or of
// the last one when fewer are queued; 0 when none is.
func (s *Store) headSeq(backend string, n int) (uint64, error) {
	var seq uint64
	err := s.db.View(func(tx *bolt.Tx) error {
		b := tx.Bucket(outboxBucket(backend))
		if b == nil {
			return nil
		}
		c := b.Cursor()
		for k, _ := c.First(); k != nil && n > 0; k, _ = c.Next() {
			seq, n = binary.BigEndian.Uint64(k), n-1
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("read the head of the %s outbox: %w", backend, err)
	}
	return seq, nil
}

// findUnsure marks the first group of the outbox as maybe applied: the ops
// a previous run (or deliverer, before a reload) may have been sending when
// it stopped, delivered but never recorded. Ops queued later were never
// sent.
func (d *Deliverer) findUnsure() error {
	seq, err := d.store.headSeq(d.Name, groupMax)
	if err != nil {
		return err
	}
	d.unsure, d.unsureKnown = max(d.unsure, seq), true
	return nil
}

// alreadyApplied asks the backend whether op, which may have been applied
// without being recorded, is in ticket ref. When the backend cannot tell
// (a final error: e.g. no right to read the comments), op is sent again:
// a comment shown twice is better than one lost.
func (d *Deliverer) alreadyApplied(ctx context.Context, ref Ref, op Op) (bool, error) {
	done, err := d.applier.Applied(ctx, ref, op)
	if err == nil {
		return done, nil
	}
	if reason, retry, _ := Classify(err); !retry {
		d.log.Warn("cannot tell whether a ticket operation was already applied; sending it (it may show twice)", "key", op.Key, "op", op.Kind, "ticket", ref.ID, "reason", reason, "err", err)
		return false, nil
	}
	return false, fmt.Errorf("look for %s %s (event %d) in ticket %s: %w", op.Kind, op.Key, op.Event, ref.ID, err)
}
