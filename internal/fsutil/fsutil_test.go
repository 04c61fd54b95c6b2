package fsutil

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestReadHead(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	p := filepath.Join(dir, "f")
	require.NoError(t, os.WriteFile(p, []byte("abcdef"), 0o600))
	b, err := ReadHead(p, 4)
	require.NoError(t, err)
	require.Equal(t, "abcd", string(b))
	b, err = ReadHead(p, 100)
	require.NoError(t, err)
	require.Equal(t, "abcdef", string(b), "shorter than n")

	require.NoError(t, os.WriteFile(p, nil, 0o600))
	b, err = ReadHead(p, 4)
	require.NoError(t, err, "empty")
	require.Empty(t, b)

	_, err = ReadHead(filepath.Join(dir, "missing"), 4)
	require.ErrorIs(t, err, os.ErrNotExist)
}

func TestReadTail(t *testing.T) {
	t.Parallel()
	p := filepath.Join(t.TempDir(), "log")
	require.NoError(t, os.WriteFile(p, []byte("line one\nline two\nline three\n"), 0o600))
	b, err := ReadTail(p, 100)
	require.NoError(t, err)
	require.Equal(t, "line one\nline two\nline three\n", string(b))
	b, err = ReadTail(p, 14)
	require.NoError(t, err)
	require.Equal(t, "line three\n", string(b), "starts at a line boundary")
}

func TestWriteFileAtomic(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	p := filepath.Join(dir, "sub", "state.json")
	require.NoError(t, WriteFileAtomic(p, []byte("{}\n"), 0o640))
	require.NoError(t, WriteFileAtomic(p, []byte("{\"a\":1}\n"), 0o640))
	b, err := os.ReadFile(p)
	require.NoError(t, err)
	require.Equal(t, "{\"a\":1}\n", string(b))
	fi, err := os.Stat(p)
	require.NoError(t, err)
	require.Equal(t, os.FileMode(0o640), fi.Mode().Perm())
	es, err := os.ReadDir(filepath.Dir(p))
	require.NoError(t, err)
	require.Len(t, es, 1, "no temp file left")
}
