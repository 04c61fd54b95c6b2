package version

import (
	"testing"

	"github.com/stretchr/testify/require"
)

func TestUserAgent(t *testing.T) {
	require.Equal(t, "l2agent/dev", UserAgent(), "before agent sets it")
	t.Cleanup(func() { current.Store(nil) })
	Set("1.4.0")
	require.Equal(t, "l2agent/1.4.0", UserAgent())
	Set("")
	require.Equal(t, "1.4.0", Get(), "an empty version is ignored")
}
