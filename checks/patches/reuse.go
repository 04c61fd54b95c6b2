package patches

import (
	"encoding/binary"
	"errors"
	"hash"
	"hash/fnv"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
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

// fingerprint hashes the metadata of files.
type fingerprint struct{ h hash.Hash64 }

// newFingerprint starts a fingerprint of the given words (the command's
// arguments, so that other options never reuse an answer).
func newFingerprint(words ...string) *fingerprint {
	f := &fingerprint{h: fnv.New64a()}
	f.h.Write([]byte(strings.Join(words, "\x00")))
	f.h.Write([]byte{0})
	return f
}

// add hashes a file's name and metadata.
func (f *fingerprint) add(name string, fi fs.FileInfo) {
	var b [8]byte
	f.h.Write([]byte(name))
	for _, v := range []uint64{uint64(fi.Size()), uint64(fi.ModTime().UnixNano()), uint64(fi.Mode()), inode(fi)} {
		binary.LittleEndian.PutUint64(b[:], v)
		f.h.Write(b[:])
	}
}

// file adds one file, which must exist.
func (f *fingerprint) file(path string) error {
	fi, err := os.Stat(path)
	if err != nil {
		return err
	}
	f.add(path, fi)
	return nil
}

// tree adds root and everything under it; a root that does not exist adds
// nothing (its appearance later changes the sum). skip, when not nil, says
// which entries to leave out (a directory with everything under it): files
// the tool itself writes while it reads, such as the rpmdb's shared-memory
// index or a lock. With dirs false the directories' own metadata is left
// out (a tool that creates and removes a lock file in its cache changes its
// directory's modification time on every run); names still count.
func (f *fingerprint) tree(root string, dirs bool, skip func(name string, dir bool) bool) error {
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if skip != nil && p != root && skip(d.Name(), d.IsDir()) {
			if d.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		if d.IsDir() && !dirs {
			f.h.Write([]byte(p))
			return nil
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		f.add(p, fi)
		if d.Type()&fs.ModeSymlink != 0 { // where it points (not followed: it may leave a rootfs)
			t, _ := os.Readlink(p)
			f.h.Write([]byte(t))
		}
		return nil
	})
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return nil
}

// bytes adds a short file's content (a boot id); a missing file adds nothing.
func (f *fingerprint) bytes(path string) {
	if b, err := os.ReadFile(path); err == nil {
		f.h.Write(b)
	}
	f.h.Write([]byte{0})
}

func (f *fingerprint) sum() uint64 { return f.h.Sum64() }

// inode is the inode number of fi's file (0 where unknown): a file replaced
// by a rename gets another one.
func inode(fi fs.FileInfo) uint64 {
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		return st.Ino
	}
	return 0
}

// rpmdbScratch says which entries of an rpm database directory are not its
// content: the SQLite shared-memory index (its modification time changes
// whenever rpm, dnf or zypper merely read the database: measured with rpm
// 4.18), Berkeley DB's environment files and the lock files.
func rpmdbScratch(name string, dir bool) bool {
	return !dir && (strings.HasSuffix(name, "-shm") || strings.HasPrefix(name, "__db.") || strings.HasSuffix(name, ".lock"))
}
