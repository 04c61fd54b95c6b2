package disk

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/l2agent/l2agent/checks"
	"github.com/l2agent/l2agent/internal/fsutil"
)

const (
	// stateVersion is the version of the state file's format.
	stateVersion = 1
	// maxStateBytes bounds the state file read: a few hundred bytes a mount.
	maxStateBytes = 4 << 20
	// stateRefresh is how often the last-seen times of present mounts are
	// written when nothing else changed: a mount that vanishes while the
	// agent is down is dated at most this much too early.
	stateRefresh = time.Hour
)

// seenMount is a mount this check has seen, as kept in the state file.
type seenMount struct {
	Mountpoint string    `json:"mountpoint"`
	Device     string    `json:"device"`
	FSType     string    `json:"fstype"`
	LastSeen   time.Time `json:"last_seen"`
}

// mountState is the state file: every mount seen and not yet forgotten.
type mountState struct {
	Version int         `json:"version"`
	Mounts  []seenMount `json:"mounts"`
}

// parseMountState reads a state file. Every entry must have an absolute
// mountpoint, a filesystem type and a last-seen time; a mountpoint may
// appear once.
func parseMountState(b []byte) (map[string]seenMount, error) {
	var s mountState
	if err := json.Unmarshal(b, &s); err != nil {
		return nil, fmt.Errorf("decode: %w", err)
	}
	if s.Version != stateVersion {
		return nil, fmt.Errorf("version %d: want %d", s.Version, stateVersion)
	}
	out := make(map[string]seenMount, len(s.Mounts))
	for i, m := range s.Mounts {
		switch {
		case !strings.HasPrefix(m.Mountpoint, "/"):
			return nil, fmt.Errorf("mounts[%d]: mountpoint %q is not absolute", i, m.Mountpoint)
		case m.FSType == "":
			return nil, fmt.Errorf("mounts[%d]: no fstype", i)
		case m.LastSeen.IsZero():
			return nil, fmt.Errorf("mounts[%d]: no last_seen", i)
		}
		if _, dup := out[m.Mountpoint]; dup {
			return nil, fmt.Errorf("mounts[%d]: mountpoint %q listed twice", i, m.Mountpoint)
		}
		out[m.Mountpoint] = m
	}
	return out, nil
}

// mountTracker remembers the mounts a check has seen, in memory and in its
// state file, so that a mount that disappears is reported as missing.
type mountTracker struct {
	path   string
	seen   map[string]seenMount // by mountpoint
	loaded bool                 // the file was read (or found missing) once
	file   os.FileInfo          // the file as last read or written; nil if none
	saved  time.Time            // when the state was last written
	failed bool                 // the last write failed (logged once)
}

// statePath is <state_dir>/disk-<check name>.json, the name made safe.
func statePath(dir, check string) string {
	name := strings.Map(func(r rune) rune {
		if r == '-' || r == '_' || r == '.' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' {
			return r
		}
		return '_'
	}, check)
	return filepath.Join(dir, "disk-"+name+".json")
}

// sync reads the state file when it is new to the tracker or was changed
// by someone else (an admin removing a mount to forget it), or is gone
// after the tracker wrote it (an admin resetting it). It returns an error
// to log when the file cannot be read; the tracker then keeps what it has.
func (t *mountTracker) sync() error {
	fi, err := os.Stat(t.path)
	switch {
	case errors.Is(err, os.ErrNotExist):
		if t.file != nil { // removed after it was read or written: start afresh
			t.seen, t.file = map[string]seenMount{}, nil
		}
		t.loaded = true
		return nil
	case err != nil:
		return fmt.Errorf("read %s: %w", t.path, err)
	case t.loaded && sameVersion(t.file, fi):
		return nil
	}
	t.loaded, t.file = true, fi
	f, err := os.Open(t.path)
	if err != nil {
		return fmt.Errorf("read %s: %w", t.path, err)
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxStateBytes+1))
	if err != nil {
		return fmt.Errorf("read %s: %w", t.path, err)
	}
	if len(b) > maxStateBytes {
		return fmt.Errorf("read %s: larger than %d bytes", t.path, maxStateBytes)
	}
	seen, err := parseMountState(b)
	if err != nil {
		return fmt.Errorf("read %s: %w", t.path, err)
	}
	t.seen = seen
	return nil
}

// save writes the state file atomically.
func (t *mountTracker) save(now time.Time) error {
	s := mountState{Version: stateVersion, Mounts: make([]seenMount, 0, len(t.seen))}
	for _, mp := range slices.Sorted(maps.Keys(t.seen)) {
		s.Mounts = append(s.Mounts, t.seen[mp])
	}
	b, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return fmt.Errorf("encode mount state: %w", err)
	}
	if err := fsutil.WriteFileAtomic(t.path, append(b, '\n'), 0o640); err != nil {
		return fmt.Errorf("write %s: %w", t.path, err)
	}
	t.saved = now
	if fi, err := os.Stat(t.path); err == nil {
		t.file = fi
	}
	return nil
}

// sameVersion tells whether b is the file a was: same inode (a file renamed
// over it is not), size and mtime (file times tick by the kernel's coarse
// clock, so the mtime alone may not change).
func sameVersion(a, b os.FileInfo) bool {
	return a != nil && os.SameFile(a, b) && a.Size() == b.Size() && a.ModTime().Equal(b.ModTime())
}

// missingMounts updates the mounts seen with those present now (kept by
// the filter) and returns the disk_mount_missing observations: 0 for each
// mount present, 1 for each mount seen before and absent, until it has
// been absent for missing_for. A remembered mount is forgotten at once when
// the filter no longer keeps it, when it matches forget_mountpoints, or
// when an autofs mount at or above its mountpoint is present (automounts
// come and go). all is every mount of the namespace, unfiltered.
func (c *diskCheck) missingMounts(all, kept []mount) []checks.Observation {
	now := c.now()
	t := &c.tracker
	changed := false
	if err := t.sync(); err != nil { // rewritten below from memory
		c.env.Log().Warn("disk: cannot read the mounts seen; keeping those in memory", "check", c.name, "err", err)
		changed = true
	}
	present := make(map[string]bool, len(kept))
	var obs []checks.Observation
	for _, m := range kept {
		present[m.Mountpoint] = true
		old, ok := t.seen[m.Mountpoint]
		changed = changed || !ok || old.Device != m.Device || old.FSType != m.FSType
		t.seen[m.Mountpoint] = seenMount{Mountpoint: m.Mountpoint, Device: m.Device, FSType: m.FSType, LastSeen: now}
		obs = append(obs, missingObs(m.Mountpoint, m.Device, m.FSType, 0, ""))
	}
	for _, mp := range slices.Sorted(maps.Keys(t.seen)) {
		s := t.seen[mp]
		if present[mp] {
			continue
		}
		if c.forget(s, all) || now.Sub(s.LastSeen) >= c.opts.MissingFor.D() {
			delete(t.seen, mp)
			changed = true
			continue
		}
		obs = append(obs, missingObs(s.Mountpoint, s.Device, s.FSType, 1, fmt.Sprintf(
			"Not mounted; last seen %s; reported missing until %s (missing_for), or until forgotten in %s.",
			s.LastSeen.UTC().Format(time.RFC3339), s.LastSeen.Add(c.opts.MissingFor.D()).UTC().Format(time.RFC3339), t.path)))
	}
	if changed || now.Sub(t.saved) >= stateRefresh {
		err := t.save(now)
		switch {
		case err != nil && !t.failed:
			c.env.Log().Warn("disk: cannot save the mounts seen; they are kept in memory only", "check", c.name, "err", err)
		case err == nil && t.failed:
			c.env.Log().Info("disk: mounts seen saved again", "check", c.name, "path", t.path)
		}
		t.failed = err != nil
	}
	return obs
}

// forget tells whether a remembered mount that is absent is dropped at once
// instead of being reported missing.
func (c *diskCheck) forget(s seenMount, all []mount) bool {
	m := mount{Mountpoint: s.Mountpoint, Device: s.Device, FSType: s.FSType}
	if !c.filter.keep(m) || matchesAny(c.forgetRE, s.Mountpoint) {
		return true
	}
	return slices.ContainsFunc(all, func(a mount) bool {
		return a.FSType == "autofs" && (a.Mountpoint == s.Mountpoint || strings.HasPrefix(s.Mountpoint, a.Mountpoint+"/"))
	})
}

func missingObs(mountpoint, device, fstype string, v float64, details string) checks.Observation {
	return checks.Observation{
		Metric:  "disk_mount_missing",
		Labels:  map[string]string{"mountpoint": mountpoint, "device": device, "fstype": fstype},
		Value:   v,
		Details: details,
	}
}
