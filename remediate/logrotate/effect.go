package logrotate

// The effect of logrotate -f CONFIG: the logs the config names rotated.

import (
	"context"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"

	"github.com/l2agent/l2agent/remediate/internal/allowlisted"
	"github.com/l2agent/l2agent/remediate/internal/space"
)

// Bounds of what the measure reads.
const (
	maxConfigBytes = 1 << 20 // per config file
	maxConfigFiles = 100     // the config and what it includes
	maxIncludes    = 3       // include levels followed
	maxLogs        = 1000    // log files measured
)

// scriptStarts open a script block that runs to endscript.
var scriptStarts = map[string]bool{"prerotate": true, "postrotate": true, "firstaction": true, "lastaction": true, "preremove": true}

// logFile is one log as the measure sees it: its inode and size, and the
// inodes of its rotated siblings in its directory (x.log.1, x.log-20260801.gz).
type logFile struct {
	ino      uint64
	size     int64
	siblings map[string]uint64
}

// measureLogs reads the log patterns of the config and the logs they match
// before the run, and returns what compares them after it: a log rotated
// when it is gone, has another inode, shrank, or has a rotated sibling
// that is new. No log matched, a read-only log directory, or no log
// rotated is no effect.
func measureLogs(_ context.Context, r allowlisted.Run) func(context.Context) (string, string) {
	pats, err := configPatterns(r.Root, r.Value)
	before := snapshot(r.Root, pats)
	return func(context.Context) (string, string) {
		switch {
		case err != nil:
			return "", "cannot tell which logs it rotates: " + err.Error()
		case len(before) == 0:
			return "", fmt.Sprintf("nothing to rotate (no log file matches %s)", strings.Join(pats, " "))
		}
		after := snapshot(r.Root, pats)
		host := func(p string) string { return strings.TrimPrefix(p, strings.TrimSuffix(r.Root, "/")) }
		var rotated, readOnly []string
		for _, p := range slices.Sorted(maps.Keys(before)) {
			a, ok := after[p]
			if hasRotated(before[p], a, ok) {
				rotated = append(rotated, host(p))
			} else if dir := host(filepath.Dir(p)); space.ReadOnly(filepath.Dir(p)) && !slices.Contains(readOnly, dir) {
				readOnly = append(readOnly, dir)
			}
		}
		switch {
		case len(rotated) > 0:
			return fmt.Sprintf("rotated %d of %d logs: %s", len(rotated), len(before), listed(rotated, 5)), ""
		case len(readOnly) > 0:
			return "", fmt.Sprintf("read-only file system (%s)", strings.Join(readOnly, ", "))
		}
		return "", fmt.Sprintf("nothing rotated (%d logs matching %s unchanged)", len(before), strings.Join(pats, " "))
	}
}

// hasRotated compares a log before and after (exists: it still does).
func hasRotated(b, a logFile, exists bool) bool {
	if !exists || a.ino != b.ino || a.size < b.size {
		return true
	}
	for name, ino := range a.siblings {
		if old, ok := b.siblings[name]; !ok || old != ino {
			return true
		}
	}
	return false
}

// snapshot stats the logs the patterns match under root.
func snapshot(root string, pats []string) map[string]logFile {
	out := map[string]logFile{}
	for _, pat := range pats {
		ms, _ := filepath.Glob(space.Under(root, pat)[0])
		for _, p := range ms {
			if len(out) >= maxLogs {
				return out
			}
			var st syscall.Stat_t
			if syscall.Lstat(p, &st) != nil || st.Mode&syscall.S_IFMT != syscall.S_IFREG {
				continue
			}
			out[p] = logFile{ino: st.Ino, size: st.Size, siblings: siblings(p)}
		}
	}
	return out
}

// siblings lists the files beside p whose name starts with p's, by inode.
func siblings(p string) map[string]uint64 {
	out := map[string]uint64{}
	base := filepath.Base(p)
	ents, _ := os.ReadDir(filepath.Dir(p))
	for _, e := range ents {
		if n := e.Name(); n != base && strings.HasPrefix(n, base) {
			if fi, err := e.Info(); err == nil {
				if st, ok := fi.Sys().(*syscall.Stat_t); ok {
					out[n] = st.Ino
				}
			}
		}
	}
	return out
}

// configPatterns lists the log file patterns of a logrotate config under
// root: the words before each block's `{`; `include` is followed (a file,
// or the files of a directory).
func configPatterns(root, config string) ([]string, error) {
	var pats []string
	files := 0
	var read func(path string, depth int) error
	read = func(path string, depth int) error {
		if files++; files > maxConfigFiles {
			return nil
		}
		b, err := readBounded(space.Under(root, path)[0])
		if err != nil {
			return fmt.Errorf("read %s: %w", path, err)
		}
		p, includes := parseConfig(string(b))
		pats = append(pats, p...)
		if depth >= maxIncludes {
			return nil
		}
		for _, inc := range includes {
			for _, f := range includedFiles(root, inc) {
				if err := read(f, depth+1); err != nil {
					return err
				}
			}
		}
		return nil
	}
	err := read(config, 0)
	return pats, err
}

func readBounded(p string) ([]byte, error) {
	f, err := os.Open(p)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return io.ReadAll(io.LimitReader(f, maxConfigBytes))
}

// includedFiles is what `include PATH` reads: the file, or the regular
// files of the directory, sorted.
func includedFiles(root, inc string) []string {
	fi, err := os.Stat(space.Under(root, inc)[0])
	if err != nil || !fi.IsDir() {
		return []string{inc}
	}
	ents, _ := os.ReadDir(space.Under(root, inc)[0])
	var out []string
	for _, e := range ents {
		if e.Type().IsRegular() {
			out = append(out, filepath.Join(inc, e.Name()))
		}
	}
	return out
}

// parseConfig returns the patterns and the includes of one config file.
// It skips directives, the insides of blocks and their scripts.
func parseConfig(text string) (pats, includes []string) {
	inBlock, inScript := false, false
	var pending []string // patterns whose `{` is still to come
	for line := range strings.Lines(text) {
		line = strings.TrimSpace(line)
		words := splitWords(line)
		if len(words) == 0 || strings.HasPrefix(line, "#") {
			continue
		}
		switch {
		case inScript:
			inScript = line != "endscript"
		case inBlock:
			inScript = scriptStarts[words[0]]
			inBlock = !strings.HasPrefix(line, "}")
		case words[0] == "include" && len(words) > 1:
			includes = append(includes, words[1])
		case len(pending) == 0 && !strings.HasPrefix(words[0], "/") && words[0] != "{":
			// a global directive: weekly, rotate 4, …
		default:
			for _, w := range words {
				open := strings.HasSuffix(w, "{")
				if w = strings.TrimSuffix(w, "{"); w != "" {
					pending = append(pending, w)
				}
				if open {
					pats, pending, inBlock = append(pats, pending...), nil, true
					break
				}
			}
		}
	}
	return pats, includes
}

// splitWords splits a line at blanks, keeping "quoted words" whole.
func splitWords(line string) []string {
	var out []string
	var cur strings.Builder
	quote := rune(0)
	for _, r := range line {
		switch {
		case quote != 0 && r == quote:
			quote = 0
		case quote != 0:
			cur.WriteRune(r)
		case r == '"' || r == '\'':
			quote = r
		case r == ' ' || r == '\t':
			if cur.Len() > 0 {
				out = append(out, cur.String())
				cur.Reset()
			}
		default:
			cur.WriteRune(r)
		}
	}
	if cur.Len() > 0 {
		out = append(out, cur.String())
	}
	return out
}

// listed joins the first n of ss, with how many more.
func listed(ss []string, n int) string {
	if len(ss) <= n {
		return strings.Join(ss, ", ")
	}
	return strings.Join(ss[:n], ", ") + fmt.Sprintf(" and %d more", len(ss)-n)
}
