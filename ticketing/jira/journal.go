package jira

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"
)

// journalKeep is how long an entry of the journal of creates is kept.
const journalKeep = 7 * 24 * time.Hour

// journalEntry is the latest create of one label: the open op's id, when
// it was tried, and, once Jira answered, the id and key.
type journalEntry struct {
	Op  string    `json:"op"`
	At  time.Time `json:"at"`
	ID  string    `json:"id,omitempty"`
	Key string    `json:"key,omitempty"`
}

// journal is the journal of creates: a label's latest create, written
// before the request goes out and again with Jira's answer, kept in a file
// of the state dir (path; "" keeps it in memory) so that it outlives a
// crash. Each write reads the file again first and replaces it whole
// (temp file, fsync, rename), so that another process of the agent (a
// `tickets test`) loses none of its entries but for a race of two writes.
type journal struct {
	path string
	log  *slog.Logger
	now  func() time.Time

	mu     sync.Mutex
	loaded bool
	m      map[string]journalEntry
}

func newJournal(path string, log *slog.Logger, now func() time.Time) *journal {
	return &journal{path: path, log: log, now: now, m: map[string]journalEntry{}}
}

// get returns label's entry.
func (j *journal) get(label string) (journalEntry, bool) {
	j.mu.Lock()
	defer j.mu.Unlock()
	j.load()
	e, ok := j.m[label]
	return e, ok
}

// ids are the issue ids the journal knows for label, for reconcileIssues.
func (j *journal) ids(label string) []int64 {
	e, ok := j.get(label)
	if !ok || e.ID == "" {
		return nil
	}
	id, err := strconv.ParseInt(e.ID, 10, 64)
	if err != nil {
		return nil
	}
	return []int64{id}
}

// put records e as label's latest create.
func (j *journal) put(label string, e journalEntry) {
	j.update(func(m map[string]journalEntry) { m[label] = e })
}

// drop forgets label's create of op.
func (j *journal) drop(label, op string) {
	j.update(func(m map[string]journalEntry) {
		if m[label].Op == op {
			delete(m, label)
		}
	})
}

func (j *journal) update(change func(map[string]journalEntry)) {
	j.mu.Lock()
	defer j.mu.Unlock()
	j.loaded = false
	j.load() // what another process wrote meanwhile
	change(j.m)
	for l, e := range j.m {
		if j.now().Sub(e.At) > journalKeep {
			delete(j.m, l)
		}
	}
	if err := j.save(); err != nil {
		j.log.Warn("jira journal of creates not saved: a create whose answer is lost during a restart may be repeated", "err", err)
	}
}

// load reads the file once (or again after update cleared loaded); a
// missing file is an empty journal.
func (j *journal) load() {
	if j.loaded || j.path == "" {
		return
	}
	j.loaded = true
	raw, err := os.ReadFile(j.path)
	if errors.Is(err, fs.ErrNotExist) {
		return
	}
	m := map[string]journalEntry{}
	if err == nil {
		err = json.Unmarshal(raw, &m)
	}
	if err != nil {
		j.log.Warn("jira journal of creates unreadable; starting from what this process knows", "path", j.path, "err", err)
		return
	}
	j.m = m
}

func (j *journal) save() error {
	if j.path == "" {
		return nil
	}
	raw, err := json.Marshal(j.m)
	if err != nil {
		return fmt.Errorf("encode the journal of creates: %w", err)
	}
	tmp, err := os.CreateTemp(filepath.Dir(j.path), filepath.Base(j.path)+".*")
	if err != nil {
		return fmt.Errorf("write the journal of creates: %w", err)
	}
	defer os.Remove(tmp.Name()) // after the rename: nothing
	if _, err := tmp.Write(raw); err != nil {
		tmp.Close()
		return fmt.Errorf("write %s: %w", tmp.Name(), err)
	}
	if err := tmp.Chmod(0o644); err != nil { // readable by the agent after a `tickets test` as another user
		tmp.Close()
		return fmt.Errorf("chmod %s: %w", tmp.Name(), err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return fmt.Errorf("sync %s: %w", tmp.Name(), err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("close %s: %w", tmp.Name(), err)
	}
	if err := os.Rename(tmp.Name(), j.path); err != nil {
		return fmt.Errorf("replace %s: %w", j.path, err)
	}
	return nil
}

// fileSafe is name with anything but letters, digits, '-' and '_' made '_'.
func fileSafe(name string) string {
	return strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_' {
			return r
		}
		return '_'
	}, name)
}
