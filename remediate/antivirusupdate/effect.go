package antivirusupdate

// The effect of freshclam: signature databases newer than before.

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/l2agent/l2agent/remediate/internal/space"
)

// freshclamConfs are where freshclam reads DatabaseDirectory (Debian's,
// then Red Hat's); its default is defaultDBDir.
var freshclamConfs = []string{"/etc/clamav/freshclam.conf", "/etc/freshclam.conf"}

const (
	defaultDBDir = "/var/lib/clamav"
	headerSize   = 512 // a .cvd/.cld header: ClamAV-VDB:build time:version:…
)

// databaseDir is the signature database directory freshclam writes, under
// root: freshclam.conf's DatabaseDirectory, else /var/lib/clamav.
func databaseDir(root string) string {
	for _, c := range freshclamConfs {
		f, err := os.Open(space.Under(root, c)[0])
		if err != nil {
			continue
		}
		sc := bufio.NewScanner(io.LimitReader(f, 1<<20))
		dir := ""
		for sc.Scan() {
			if k, v, ok := strings.Cut(strings.TrimSpace(sc.Text()), " "); ok && k == "DatabaseDirectory" {
				dir = strings.Trim(strings.TrimSpace(v), `"`)
			}
		}
		f.Close()
		if filepath.IsAbs(dir) {
			return space.Under(root, filepath.Clean(dir))[0]
		}
	}
	return space.Under(root, defaultDBDir)[0]
}

// versions reads the version in the header of every signature database
// in dir, by database (daily, main, bytecode): a .cld, which freshclam
// makes of a .cvd it patched, and a .cvd of the same database count as one,
// the newer.
func versions(dir string) map[string]int {
	out := map[string]int{}
	for _, ext := range []string{"*.cvd", "*.cld"} {
		ms, _ := filepath.Glob(filepath.Join(dir, ext))
		for _, p := range ms {
			v, ok := headerVersion(p)
			db := strings.TrimSuffix(filepath.Base(p), filepath.Ext(p))
			if ok && v > out[db] {
				out[db] = v
			}
		}
	}
	return out
}

// headerVersion reads the version field of a database header.
func headerVersion(p string) (int, bool) {
	f, err := os.Open(p)
	if err != nil {
		return 0, false
	}
	defer f.Close()
	b := make([]byte, headerSize)
	n, _ := io.ReadFull(f, b)
	fields := strings.Split(string(b[:n]), ":")
	if len(fields) < 3 || fields[0] != "ClamAV-VDB" {
		return 0, false
	}
	v, err := strconv.Atoi(fields[2])
	return v, err == nil && v >= 0
}

// measureSignatures reads the database versions before freshclam runs and
// returns what compares them after: any database newer (or new) is the
// effect. Databases that stayed as they were (freshclam says "up-to-date"
// when the mirror has nothing newer, and exits 0), none at all, or a
// read-only database directory are no effect.
func measureSignatures(_ context.Context, root string) func(context.Context) (string, string) {
	dir := databaseDir(root)
	before := versions(dir)
	return func(context.Context) (string, string) {
		after := versions(dir)
		var newer []string
		for _, db := range slices.Sorted(maps.Keys(after)) {
			if b, ok := before[db]; !ok {
				newer = append(newer, fmt.Sprintf("%s %d (new)", db, after[db]))
			} else if after[db] > b {
				newer = append(newer, fmt.Sprintf("%s %d → %d", db, b, after[db]))
			}
		}
		switch {
		case len(newer) > 0:
			return "signatures newer: " + strings.Join(newer, ", "), ""
		case space.ReadOnly(dir):
			return "", fmt.Sprintf("read-only file system (%s)", dir)
		case len(after) == 0:
			return "", fmt.Sprintf("no signature database in %s", dir)
		}
		var have []string
		for _, db := range slices.Sorted(maps.Keys(after)) {
			have = append(have, fmt.Sprintf("%s %d", db, after[db]))
		}
		return "", fmt.Sprintf("signatures not newer (%s in %s)", strings.Join(have, ", "), dir)
	}
}
