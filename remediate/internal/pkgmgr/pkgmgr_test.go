package pkgmgr

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestFind(t *testing.T) {
	root := t.TempDir()
	_, err := Find("", root)
	require.ErrorContains(t, err, "no package manager found")
	require.NoError(t, os.MkdirAll(filepath.Join(root, "usr/bin"), 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(root, "usr/bin/zypper"), nil, 0o755))
	m, err := Find("", root)
	require.NoError(t, err)
	require.Equal(t, "zypper", m.Name, "detected under root")
	m, err = Find("apk", root)
	require.NoError(t, err)
	require.Equal(t, "/sbin/apk", m.Command, "named, whether installed or not")
	_, err = Find("pacman", root)
	require.EqualError(t, err, `unknown package manager "pacman"`)
	require.Equal(t, "/var/cache/apk", JoinRoot("/", "/var/cache/apk"))
	require.Equal(t, root+"/var/cache/apk", JoinRoot(root, "/var/cache/apk"))
}
