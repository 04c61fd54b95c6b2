package patches

import (
	"strings"
	"time"
)

// A package manager's query costs hundreds of milliseconds to seconds of
// CPU and tens of MiB of memory (apt-get -s, dnf check-update and
// updateinfo, zypper list-updates and list-patches), and its answer depends
// only on files: the package database, the repository metadata the tool
// cached, and the tool's configuration. Each backend fingerprints those
// files (name, size, modification time, mode and inode of each) and reuses
// its last answer while none changed, so an hourly check on a host whose
// metadata is refreshed once or twice a day runs the tool once or twice a
// day. reuseMax bounds the reuse all the same (a change the fingerprint
// cannot see, such as a file rewritten within the same nanosecond with the
// same size).
const reuseMax = 24 * time.Hour

// memo is a backend's last answer and the fingerprint of what it read.
type memo[T any] struct {
	key uint64
	at  time.Time
	val T
}

// reuseAnswer returns the answer remembered in *slot while its key is key
// and it is younger than reuseMax, else run's answer, remembered under key
// when ok (the fingerprint could be taken). clone copies an answer, so
// that a caller may change what it gets.
func reuseAnswer[T any](c *patchesCheck, slot **memo[T], key uint64, ok bool, clone func(T) T, run func() (T, error)) (T, error) {
	now := c.now()
	c.mu.Lock()
	m := *slot
	c.mu.Unlock()
	if ok && m != nil && m.key == key && now.Sub(m.at) >= 0 && now.Sub(m.at) < reuseMax {
		c.env.Log().Debug("patches: inputs unchanged, answer reused", "check", c.name, "since", m.at)
		return clone(m.val), nil
	}
	v, err := run()
	if err != nil {
		return v, err
	}
	c.mu.Lock()
	*slot = nil
	if ok {
		*slot = &memo[T]{key: key, at: now, val: clone(v)}
	}
	c.mu.Unlock()
	return v, nil
}

// rpmdbScratch says which entries of an rpm database directory are not its
// content: the SQLite shared-memory index (its modification time changes
// whenever rpm, dnf or zypper merely read the database: measured with rpm
// 4.18), Berkeley DB's environment files and the lock files.
func rpmdbScratch(name string, dir bool) bool {
	return !dir && (strings.HasSuffix(name, "-shm") || strings.HasPrefix(name, "__db.") || strings.HasSuffix(name, ".lock"))
}
