package patches

import (
	"context"
	"github.com/l2agent/l2agent/internal/fsutil"
	"os"
	"slices"
)

// An apt simulation costs about two seconds of CPU and 70 MiB of memory
// (apt builds its cache from the lists in memory, as the check lets it write
// no binary cache), and its answer depends only on files: the dpkg status,
// the package lists and apt's configuration (Dir::Etc: sources, pins,
// apt.conf.d). It is reused while they are unchanged (reuse.go).

// aptConfigItems are the apt-config names of apt's configuration files and
// directories, whose changes the fingerprint sees.
var aptConfigItems = []string{"Dir::Etc/d", "Dir::Etc::main/f", "Dir::Etc::parts/d", "Dir::Etc::sourcelist/f",
	"Dir::Etc::sourceparts/d", "Dir::Etc::preferences/f", "Dir::Etc::preferencesparts/d"}

// aptPendingReused is aptPending, reusing the last answer while its inputs
// are unchanged (see reuseMax).
func (c *patchesCheck) aptPendingReused(ctx context.Context, base []string, held map[string]bool, paths aptPaths) ([]pkgUpdate, error) {
	key, ok := aptFingerprint(paths, base)
	return reuseAnswer(c, &c.aptMemo, key, ok, slices.Clone, func() ([]pkgUpdate, error) {
		return c.aptPending(ctx, base, held, paths.Lists)
	})
}

// aptFingerprint hashes the metadata of the files an apt simulation reads:
// the dpkg status, every file of the lists directory, and apt's
// configuration files and directories (paths.Config, or the default
// /etc/apt when apt-config named none), with the command's options. ok is
// false when one cannot be read: then nothing is reused.
func aptFingerprint(paths aptPaths, base []string) (key uint64, ok bool) {
	f := fsutil.NewFingerprint(base...)
	f.File(paths.Status)
	entries, err := os.ReadDir(paths.Lists)
	if err != nil {
		return 0, false
	}
	for _, e := range entries { // sorted; partial/ and auxfiles/ are apt's scratch space
		if fi, err := e.Info(); err == nil && !e.IsDir() {
			f.Info(e.Name(), fi)
		}
	}
	for _, p := range paths.Config {
		f.Tree(p, true, nil)
	}
	return f.Sum()
}
