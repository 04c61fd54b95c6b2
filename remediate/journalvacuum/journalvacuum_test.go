package journalvacuum

import (
	"fmt"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/l2agent/l2agent/configs"
	"github.com/l2agent/l2agent/internal/remediatetest"
	"github.com/l2agent/l2agent/internal/textfmt"
)

func TestDefaults(t *testing.T) {
	require.Equal(t, "/usr/bin/journalctl", configs.Default().Remediation.Actions["journal_vacuum"].Settings.(*Settings).Command)
}

const machine = "var/log/journal/0123456789abcdef0123456789abcdef"

// journals writes an active journal and n archived ones in dir (the last a
// dirty one, set aside by journald) and returns the bytes the archived
// ones take.
func journals(t *testing.T, dir string, n int) int64 {
	t.Helper()
	remediatetest.Fill(t, 30000, filepath.Join(dir, "system.journal"))
	var archived []string
	for i := range n {
		name := fmt.Sprintf("system@0005d2b1%08x-%016x.journal", i, i)
		if i == n-1 {
			name = "user-1000@0005d2b1-0000000000000001.journal~"
		}
		archived = append(archived, filepath.Join(dir, name))
	}
	return remediatetest.Fill(t, 30000, archived...)
}

// The vacuum removes archived journals: the space they took is measured,
// counted and audited; the active journal stays out of the figure.
func TestCommand(t *testing.T) {
	root := t.TempDir()
	dir := filepath.Join(root, machine)
	size := journals(t, dir, 3)
	tc := remediatetest.CommandCase{Action: "journal_vacuum", Check: "disk", Params: "{vacuum_size: 500M, vacuum_time: 7d}", Root: root,
		Script:   fmt.Sprintf("rm -f '%s'/*@*\necho 'Vacuuming done, freed 96.0K of archived journals from /var/log/journal.' >&2", dir),
		WantArgs: []string{"--vacuum-size=500M", "--vacuum-time=604800s"}, WantFreed: size,
		WantResult: "success: journal vacuumed, freed " + textfmt.HumanBytes(size) + "; alert cleared"}
	tc.Run(t)
}

// journalctl exits 0 when there was nothing to vacuum and when it could not
// delete (a read-only /var/log/journal, as under the packaged systemd unit
// without a ReadWritePaths= drop-in). Either is a failure, with the reason.
func TestNoEffect(t *testing.T) {
	const done = "echo 'Vacuuming done, freed 0B of archived journals from /var/log/journal.' >&2"
	t.Run("nothing to free", func(t *testing.T) {
		root := t.TempDir()
		journals(t, filepath.Join(root, machine), 0)
		tc := remediatetest.CommandCase{Action: "journal_vacuum", Check: "disk", Params: "{vacuum_size: 500M}", Root: root, Script: done,
			WantArgs:   []string{"--vacuum-size=500M"},
			WantResult: "failed: STANDIN --vacuum-size=500M exited 0, freed 0 B; no effect: nothing to free (no archived journals in " + filepath.Join(root, "var/log/journal") + ")"}
		tc.Run(t)
	})
	t.Run("read-only file system", func(t *testing.T) {
		root := t.TempDir()
		dir := filepath.Join(root, "var/log/journal")
		var size int64
		remediatetest.ReadOnlyTmpfs(t, dir, func() { size = journals(t, filepath.Join(root, machine), 2) })
		tc := remediatetest.CommandCase{Action: "journal_vacuum", Check: "disk", Params: "{vacuum_time: 1d}", Root: root,
			Script:   fmt.Sprintf("rm -f '%s'/*/*@* 2>/dev/null\n%s", dir, done), // fails; exits 0 as journalctl does
			WantArgs: []string{"--vacuum-time=86400s"},
			WantResult: fmt.Sprintf("failed: STANDIN --vacuum-time=86400s exited 0, freed 0 B; no effect: read-only file system (%s: %s of archived journals left)",
				dir, textfmt.HumanBytes(size))}
		tc.Run(t)
	})
}
