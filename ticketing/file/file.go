// Package file is a ticket backend that appends JSON lines to a file: what
// would be filed, without any ticket system. The embedded default uses it.
package file

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	"github.com/l2agent/l2agent/ticketing"
)

// Line is one line of the file.
type Line struct {
	Time   time.Time         `json:"time"`
	Event  string            `json:"event"` // open, comment, escalate, resolve, reopen
	Ticket string            `json:"ticket"`
	Key    string            `json:"key"`
	Tier   string            `json:"tier,omitempty"`
	Title  string            `json:"title,omitempty"`
	Body   string            `json:"body,omitempty"`
	Text   string            `json:"text,omitempty"`
	Labels map[string]string `json:"labels,omitempty"`
}

// Backend writes tickets to a JSON-lines file. Ticket numbers are the line
// numbers of their open events.
type Backend struct {
	path string
	mu   sync.Mutex
}

// New returns a backend appending to path (created with mode 0640).
func New(path string) (*Backend, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o750); err != nil {
		return nil, fmt.Errorf("file backend: %w", err)
	}
	return &Backend{path: path}, nil
}

func (b *Backend) lines() ([]Line, error) {
	f, err := os.Open(b.path)
	if os.IsNotExist(err) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", b.path, err)
	}
	defer f.Close()
	var out []Line
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64*1024), 1<<20)
	for sc.Scan() {
		var l Line
		if err := json.Unmarshal(sc.Bytes(), &l); err != nil {
			return nil, fmt.Errorf("read %s: line %d: %w", b.path, len(out)+1, err)
		}
		out = append(out, l)
	}
	return out, sc.Err()
}

func (b *Backend) append(l Line) error {
	f, err := os.OpenFile(b.path, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o640)
	if err != nil {
		return fmt.Errorf("write %s: %w", b.path, err)
	}
	v, err := json.Marshal(l)
	if err != nil {
		f.Close()
		return err
	}
	if _, err := f.Write(append(v, '\n')); err != nil {
		f.Close()
		return fmt.Errorf("write %s: %w", b.path, err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("sync %s: %w", b.path, err)
	}
	return f.Close()
}

func (b *Backend) ref(id string) ticketing.Ref {
	return ticketing.Ref{ID: id, URL: "file://" + b.path + "#" + id}
}

// Find returns the newest ticket opened for key.
func (b *Backend) Find(_ context.Context, key string) (ticketing.Ref, bool, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	ls, err := b.lines()
	if err != nil {
		return ticketing.Ref{}, false, err
	}
	for i := len(ls) - 1; i >= 0; i-- {
		if ls[i].Event == "open" && ls[i].Key == key {
			return b.ref(ls[i].Ticket), true, nil
		}
	}
	return ticketing.Ref{}, false, nil
}

// Open appends an open event.
func (b *Backend) Open(_ context.Context, t ticketing.Ticket) (ticketing.Ref, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	ls, err := b.lines()
	if err != nil {
		return ticketing.Ref{}, err
	}
	id := strconv.Itoa(len(ls) + 1)
	err = b.append(Line{Time: time.Now().UTC(), Event: "open", Ticket: id, Key: t.Key, Tier: t.Tier.String(), Title: t.Title, Body: t.Body, Labels: t.Labels})
	return b.ref(id), err
}

func (b *Backend) event(r ticketing.Ref, event string, l Line) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	l.Time, l.Event, l.Ticket = time.Now().UTC(), event, r.ID
	return b.append(l)
}

// Comment appends a comment event.
func (b *Backend) Comment(_ context.Context, r ticketing.Ref, text string) error {
	return b.event(r, "comment", Line{Text: text})
}

// Escalate appends an escalate event with the ticket as it is now.
func (b *Backend) Escalate(_ context.Context, r ticketing.Ref, tier ticketing.Tier, t ticketing.Ticket) error {
	return b.event(r, "escalate", Line{Key: t.Key, Tier: tier.String(), Title: t.Title, Body: t.Body})
}

// Resolve appends a resolve event.
func (b *Backend) Resolve(_ context.Context, r ticketing.Ref, text string) error {
	return b.event(r, "resolve", Line{Text: text})
}

// Reopen appends a reopen event.
func (b *Backend) Reopen(_ context.Context, r ticketing.Ref, text string) error {
	return b.event(r, "reopen", Line{Text: text})
}
