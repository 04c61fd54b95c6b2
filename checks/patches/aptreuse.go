package patches

import (
	"context"
	"encoding/binary"
	"errors"
	"hash"
	"hash/fnv"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"
)

// An apt simulation costs about two seconds of CPU and 70 MiB of memory
// (apt builds its cache from the lists in memory, as the check lets it write
// no binary cache), and its answer depends only on files: the dpkg status,
// the package lists and apt's configuration (Dir::Etc: sources, pins,
// apt.conf.d). The check fingerprints them (name, size, modification time,
// inode of each file) and reuses the last simulation while none changed, so
// an hourly check on a host whose lists are refreshed once or twice a day
// runs apt once or twice a day. aptReuseMax bounds the reuse all the same
// (a change the fingerprint cannot see, such as a file rewritten within
// the same nanosecond with the same size).
const aptReuseMax = 24 * time.Hour

// aptConfigItems are the apt-config names of apt's configuration files and
// directories, whose changes the fingerprint sees.
var aptConfigItems = []string{"Dir::Etc/d", "Dir::Etc::main/f", "Dir::Etc::parts/d", "Dir::Etc::sourcelist/f",
	"Dir::Etc::sourceparts/d", "Dir::Etc::preferences/f", "Dir::Etc::preferencesparts/d"}

// aptMemo is the last simulation and the fingerprint of what it read.
type aptMemo struct {
	key     uint64
	at      time.Time
	updates []pkgUpdate
}

// aptPendingReused is aptPending, reusing the last answer while its inputs
// are unchanged (see aptReuseMax).
func (c *patchesCheck) aptPendingReused(ctx context.Context, base []string, held map[string]bool, paths aptPaths) ([]pkgUpdate, error) {
	key, ok := aptFingerprint(paths, base)
	now := c.now()
	c.mu.Lock()
	memo := c.aptMemo
	c.mu.Unlock()
	if ok && memo != nil && memo.key == key && now.Sub(memo.at) >= 0 && now.Sub(memo.at) < aptReuseMax {
		return slices.Clone(memo.updates), nil
	}
	updates, err := c.aptPending(ctx, base, held, paths.Lists)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	c.aptMemo = nil
	if ok {
		c.aptMemo = &aptMemo{key: key, at: now, updates: slices.Clone(updates)}
	}
	c.mu.Unlock()
	return updates, nil
}

// aptFingerprint hashes the metadata of the files an apt simulation reads:
// the dpkg status, every file of the lists directory, and apt's
// configuration files and directories (paths.Config, or the default
// /etc/apt when apt-config named none), with the command's options. ok is
// false when one cannot be read: then nothing is reused.
func aptFingerprint(paths aptPaths, base []string) (key uint64, ok bool) {
	h := fnv.New64a()
	h.Write([]byte(strings.Join(base, "\x00")))
	add := func(path string, fi fs.FileInfo) {
		var b [8]byte
		h.Write([]byte(path))
		binary.LittleEndian.PutUint64(b[:], uint64(fi.Size()))
		h.Write(b[:])
		binary.LittleEndian.PutUint64(b[:], uint64(fi.ModTime().UnixNano()))
		h.Write(b[:])
		binary.LittleEndian.PutUint64(b[:], uint64(fi.Mode()))
		h.Write(b[:])
		binary.LittleEndian.PutUint64(b[:], inode(fi))
		h.Write(b[:])
	}
	fi, err := os.Stat(paths.Status)
	if err != nil {
		return 0, false
	}
	add(paths.Status, fi)
	entries, err := os.ReadDir(paths.Lists)
	if err != nil {
		return 0, false
	}
	for _, e := range entries { // sorted; partial/ and auxfiles/ are apt's scratch space
		if fi, err := e.Info(); err == nil && !e.IsDir() {
			add(e.Name(), fi)
		}
	}
	for _, p := range paths.Config {
		if !addTree(p, add, h) {
			return 0, false
		}
	}
	return h.Sum64(), true
}

// addTree adds the metadata of root and of everything under it; a root
// that does not exist adds nothing. It says whether it could read them.
func addTree(root string, add func(string, fs.FileInfo), h hash.Hash) bool {
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		add(p, fi)
		if d.Type()&fs.ModeSymlink != 0 { // where it points (not followed: it may leave a rootfs)
			t, _ := os.Readlink(p)
			h.Write([]byte(t))
		}
		return nil
	})
	return err == nil || errors.Is(err, fs.ErrNotExist)
}

// inode is the inode number of fi's file (0 where unknown): a file replaced
// by a rename gets another one.
func inode(fi fs.FileInfo) uint64 {
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		return st.Ino
	}
	return 0
}
