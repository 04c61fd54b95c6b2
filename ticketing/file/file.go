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
	// History: this problem's past on this host, on open, escalate and
	// reopen events when there is one ("This happened before").
	History *ticketing.Past `json:"history,omitempty"`
}

// Backend writes tickets to a JSON-lines file. Tickets are numbered 1, 2,
// 3… in the order they are opened: one more than the highest number in
// the file, so a file written when numbers were line numbers keeps its
// tickets and new ones never take a number already used.
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

// Open appends an open event with the next ticket number.
func (b *Backend) Open(_ context.Context, t ticketing.Ticket) (ticketing.Ref, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	ls, err := b.lines()
	if err != nil {
		return ticketing.Ref{}, err
	}
	id := strconv.Itoa(lastNumber(ls) + 1)
	err = b.append(Line{Time: time.Now().UTC(), Event: "open", Ticket: id, Key: t.Key, Tier: t.Tier.String(), Title: t.Title, Body: t.Body, Labels: t.Labels, History: t.Past})
	return b.ref(id), err
}

// lastNumber is the highest ticket number opened in ls; 0 for none.
func lastNumber(ls []Line) int {
	n := 0
	for _, l := range ls {
		if v, err := strconv.Atoi(l.Ticket); err == nil && l.Event == "open" {
			n = max(n, v)
		}
	}
	return n
}

// event appends an event of ticket r with the alert key of the ticket: the
// key of its open event, else the key of the event being delivered.
func (b *Backend) event(ctx context.Context, r ticketing.Ref, event string, l Line) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if l.Key == "" {
		ls, err := b.lines()
		if err != nil {
			return err
		}
		l.Key = keyOf(ls, r.ID)
		if ev, ok := ticketing.EventFrom(ctx); ok && l.Key == "" {
			l.Key = ev.Key
		}
	}
	l.Time, l.Event, l.Ticket = time.Now().UTC(), event, r.ID
	return b.append(l)
}

// keyOf is the key ticket id was opened for; "" when ls has no open of it.
func keyOf(ls []Line, id string) string {
	for i := len(ls) - 1; i >= 0; i-- {
		if ls[i].Event == "open" && ls[i].Ticket == id {
			return ls[i].Key
		}
	}
	return ""
}

// Comment appends a comment event.
func (b *Backend) Comment(ctx context.Context, r ticketing.Ref, text string) error {
	return b.event(ctx, r, "comment", Line{Text: text})
}

// Escalate appends an escalate event with the ticket as it is now.
func (b *Backend) Escalate(ctx context.Context, r ticketing.Ref, tier ticketing.Tier, t ticketing.Ticket) error {
	return b.event(ctx, r, "escalate", Line{Key: t.Key, Tier: tier.String(), Title: t.Title, Body: t.Body, History: t.Past})
}

// Resolve appends a resolve event.
func (b *Backend) Resolve(ctx context.Context, r ticketing.Ref, text string) error {
	return b.event(ctx, r, "resolve", Line{Text: text})
}

// Reopen appends a reopen event.
func (b *Backend) Reopen(ctx context.Context, r ticketing.Ref, text string) error {
	e, _ := ticketing.EventFrom(ctx)
	return b.event(ctx, r, "reopen", Line{Text: text, History: e.Past})
}
