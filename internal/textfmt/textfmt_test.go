package textfmt

import (
	"math"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/stretchr/testify/require"
)

func TestFormatValue(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		metric string
		v      float64
		want   string
	}{
		{"disk_used_ratio", 0.9388, "93.9%"},
		{"disk_free_bytes", 1536, "1.5 KiB"},
		{"disk_free_bytes", 12, "12 B"},
		{"disk_time_to_full_seconds", 14400, "4h"},
		{"antivirus_signature_age_seconds", 4766*3600 + 36*60 + 56, "198d 15h"},
		{"patches_pending", 3, "3"},
		{"patches_last_upgrade_timestamp_seconds", 1764028800, "2025-11-25T00:00:00Z"},
		{"disk_used_ratio", math.NaN(), "NaN"},
		{"disk_time_to_full_seconds", 1e300, "1e+300"},
	} {
		require.Equal(t, tc.want, FormatValue(tc.metric, tc.v), "%s %v", tc.metric, tc.v)
	}
}

func TestDuration(t *testing.T) {
	t.Parallel()
	for d, want := range map[time.Duration]string{
		0:                                     "0s",
		350 * time.Millisecond:                "350ms",
		1234 * time.Millisecond:               "1.2s",
		3 * time.Second:                       "3s",
		45 * time.Second:                      "45s",
		59*time.Second + 600*time.Millisecond: "1m",
		90 * time.Second:                      "1m 30s",
		time.Hour:                             "1h",
		3*time.Hour + 5*time.Minute + 10*time.Second:           "3h 5m",
		59*time.Minute + 59*time.Second + 600*time.Millisecond: "1h",
		23*time.Hour + 59*time.Minute + 30*time.Second:         "1d",
		4766*time.Hour + 36*time.Minute + 56*time.Second:       "198d 15h",
		7 * 24 * time.Hour: "7d",
		-90 * time.Second:  "-1m 30s",
	} {
		require.Equal(t, want, Duration(d), "%s", d)
	}
}

func TestHumanBytes(t *testing.T) {
	t.Parallel()
	for n, want := range map[uint64]string{
		0: "0 B", 1023: "1023 B", 1024: "1.0 KiB", 1536: "1.5 KiB",
		13207024435: "12.3 GiB", 1 << 60: "1.0 EiB", ^uint64(0): "16.0 EiB",
	} {
		require.Equal(t, want, HumanBytes(n), n)
	}
}

func TestHumanBytesSigned(t *testing.T) {
	t.Parallel()
	require.Equal(t, "-5 B", HumanBytes(int64(-5)))
	require.Equal(t, "2.0 MiB", HumanBytes(int64(2<<20)))
}

func TestTruncate(t *testing.T) {
	t.Parallel()
	require.Equal(t, "short", Truncate("short", 100))
	got := Truncate(strings.Repeat("é", 50), 40)
	require.LessOrEqual(t, len(got), 40)
	require.True(t, strings.HasSuffix(got, "é"+Mark), got)
	require.True(t, utf8.ValidString(got))
	require.Equal(t, Mark, Truncate("abcdefghijklmnopqrstuvwxyz", 2), "a bound below the mark keeps only the mark")
	require.Equal(t, "ab…", TruncateMark("abcdef", 5, "…"))
	require.Equal(t, "abcdef", TruncateMark("abcdef", 6, "…"))
	require.Equal(t, "é", Head("éé", 3))
	require.Equal(t, "", Head("é", 1))
}

func TestTail(t *testing.T) {
	t.Parallel()
	require.Equal(t, "abc", Tail("abc", 3, "… "))
	got := Tail(strings.Repeat("é", 50), 40, "… ")
	require.LessOrEqual(t, len(got), 40)
	require.True(t, strings.HasPrefix(got, "… é"), got)
	require.True(t, utf8.ValidString(got))
}

func TestSanitize(t *testing.T) {
	t.Parallel()
	require.Equal(t, "a?b?c", Sanitize("a\nb\xffc"))
}
