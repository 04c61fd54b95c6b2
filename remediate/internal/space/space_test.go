package space

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/l2agent/l2agent/internal/remediatetest"
	"github.com/l2agent/l2agent/internal/textfmt"
)

// Measure counts the blocks of the matching regular files, never what a
// symlink points at; Freed says what changed, or why nothing did.
func TestMeasureAndFreed(t *testing.T) {
	ctx := context.Background()
	dir, outside := t.TempDir(), t.TempDir()
	size := remediatetest.Fill(t, 10000, filepath.Join(dir, "a.deb"), filepath.Join(dir, "sub", "b.deb"))
	remediatetest.Fill(t, 10000, filepath.Join(dir, "c.txt"), filepath.Join(outside, "big.deb"))
	require.NoError(t, os.Symlink(filepath.Join(outside, "big.deb"), filepath.Join(dir, "link.deb")))
	require.NoError(t, os.Symlink(outside, filepath.Join(dir, "linkdir")))
	deb := func(n string) bool { return filepath.Ext(n) == ".deb" }

	before := MeasureAll(ctx, []string{dir, filepath.Join(dir, "none")}, deb)
	require.Equal(t, Usage{Dir: dir, Exists: true, Bytes: size, Files: 2}, before[0])
	require.False(t, before[1].Exists)

	_, effect, none := Freed("packages", before, before)
	require.Empty(t, effect)
	require.Equal(t, "nothing freed ("+dir+": "+textfmt.HumanBytes(size)+" of packages left)", none)

	require.NoError(t, os.Remove(filepath.Join(dir, "a.deb")))
	after := MeasureAll(ctx, []string{dir, filepath.Join(dir, "none")}, deb)
	freed, effect, none := Freed("packages", before, after)
	require.Equal(t, size/2, freed)
	half := textfmt.HumanBytes(size / 2)
	require.Equal(t, "freed "+half+" of packages in "+dir+" ("+textfmt.HumanBytes(size)+" → "+half+")", effect)
	require.Empty(t, none)

	missing := MeasureAll(ctx, []string{filepath.Join(dir, "none")}, nil)
	_, _, none = Freed("packages", missing, missing)
	require.Equal(t, "nothing to free ("+filepath.Join(dir, "none")+": no such directory)", none)
	require.False(t, ReadOnly(dir))
	require.Equal(t, []string{"/var/x", "/r/var/x"}, append(Under("/", "/var/x"), Under("/r", "/var/x")...))
}
