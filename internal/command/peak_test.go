package command

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"
)

// allocate is a program that builds a 64 MiB string (awk: mawk or gawk).
var allocate = []string{"awk", `BEGIN { s = "x"; while (length(s) < 67108864) s = s s; print length(s) }`}

// The peak RSS of what a context ran is recorded: a program that fills
// 64 MiB shows at least that, a small one far less.
func TestPeak(t *testing.T) {
	t.Parallel()
	var small, big Peak
	_, err := Capture(WithPeak(context.Background(), &small), "/bin/true")
	require.NoError(t, err)
	require.Positive(t, small.Bytes())
	require.Less(t, small.Bytes(), int64(64<<20), "true is small (Linux adds the peak of this test process at exec: see Peak)")

	out, err := Capture(WithPeak(context.Background(), &big), allocate...)
	require.NoError(t, err)
	require.Equal(t, "67108864\n", string(out.Stdout))
	require.GreaterOrEqual(t, big.Bytes(), int64(64<<20))
	_, err = Capture(WithPeak(context.Background(), &big), "/bin/true")
	require.NoError(t, err)
	require.GreaterOrEqual(t, big.Bytes(), int64(64<<20), "the largest stays")

	_, err = Capture(context.Background(), "/bin/true") // no Peak in the context: nothing to record
	require.NoError(t, err)
}

// A program gets RLIMIT_DATA: one that needs more than its limit fails
// (the limit is set microseconds after the start; awk takes far longer to
// build its string), the same under the default limit succeeds.
func TestMaxData(t *testing.T) {
	t.Parallel()
	var out Buffer
	out.Max = 1 << 10
	res, err := Run(context.Background(), allocate, Options{MaxData: 32 << 20, Stdout: &out, Stderr: &out})
	require.NoError(t, err)
	require.NotEqual(t, 0, res.Exit, "awk cannot have 64 MiB under a 32 MiB limit: %s", out.String())

	out = Buffer{Max: 1 << 10}
	res, err = Run(context.Background(), allocate, Options{Stdout: &out})
	require.NoError(t, err)
	require.Equal(t, 0, res.Exit)
}
