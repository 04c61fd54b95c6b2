package fsutil

import (
	"encoding/binary"
	"hash"
	"hash/fnv"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
)

// Fingerprint hashes what identifies a version of files without reading
// them: each one's name, size, modification time, mode and inode (a file
// replaced by a rename gets another inode). A check that runs an expensive
// program whose answer depends only on files reuses the answer while the
// fingerprint of those files is the same. It cannot see a file rewritten in
// place within the same clock tick with the same size, so a reuse must also
// be bounded in time. The zero value is not ready: use NewFingerprint.
type Fingerprint struct {
	h   hash.Hash64
	bad bool
}

// NewFingerprint returns a fingerprint of words (a command's arguments, so
// that an answer is never reused for other options).
func NewFingerprint(words ...string) *Fingerprint {
	f := &Fingerprint{h: fnv.New64a()}
	for _, w := range words {
		f.String(w)
	}
	return f
}

// String adds s (a command line, an option) to the fingerprint.
func (f *Fingerprint) String(s string) {
	f.h.Write([]byte(s))
	f.h.Write([]byte{0})
}

// Info adds the file named path as fi describes it.
func (f *Fingerprint) Info(path string, fi fs.FileInfo) {
	f.String(path)
	var b [8]byte
	for _, v := range []uint64{uint64(fi.Size()), uint64(fi.ModTime().UnixNano()), uint64(fi.Mode()), Inode(fi)} {
		binary.LittleEndian.PutUint64(b[:], v)
		f.h.Write(b[:])
	}
}

// File adds the file at path (not following a final symbolic link, whose
// target is added as a string); a file that does not exist is added as
// missing. Any other error spoils the fingerprint (Sum's ok is false).
func (f *Fingerprint) File(path string) {
	fi, err := os.Lstat(path)
	switch {
	case os.IsNotExist(err):
		f.String(path + "\x00missing")
		return
	case err != nil:
		f.bad = true
		return
	}
	f.Info(path, fi)
	if fi.Mode()&fs.ModeSymlink != 0 {
		t, _ := os.Readlink(path)
		f.String(t)
	}
}

// Tree adds root and everything under it (symbolic links not followed:
// they may leave a rootfs); a root that does not exist is added as missing,
// so that its appearance changes the sum. skip, when not nil, leaves out
// entries (a directory with everything under it): files a tool writes while
// it reads, such as the rpm database's shared-memory index or a lock. With
// dirs false the directories' own metadata is left out (a tool that makes
// and removes a lock file changes its directory's time on every run); their
// names still count. An entry that cannot be read spoils the fingerprint.
func (f *Fingerprint) Tree(root string, dirs bool, skip func(name string, dir bool) bool) {
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
			f.String(p)
			return nil
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		f.Info(p, fi)
		if d.Type()&fs.ModeSymlink != 0 {
			t, _ := os.Readlink(p)
			f.String(t)
		}
		return nil
	})
	switch {
	case err == nil:
	case os.IsNotExist(err):
		f.String(root + "\x00missing")
	default:
		f.bad = true
	}
}

// Bytes adds the content of a short file (a boot id); a missing or
// unreadable one adds nothing but its absence.
func (f *Fingerprint) Bytes(path string) {
	b, _ := os.ReadFile(path)
	f.String(string(b))
}

// Spoil marks the fingerprint unusable: something it should cover could
// not be seen.
func (f *Fingerprint) Spoil() { f.bad = true }

// Sum returns the fingerprint; ok is false when something could not be
// read, and then nothing may be reused on its strength.
func (f *Fingerprint) Sum() (sum uint64, ok bool) { return f.h.Sum64(), !f.bad }

// Inode is the inode number of fi's file, 0 where unknown.
func Inode(fi fs.FileInfo) uint64 {
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		return st.Ino
	}
	return 0
}
