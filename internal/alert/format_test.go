package alert

import (
	"math"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestFormatValue(t *testing.T) {
	for _, tc := range []struct {
		metric string
		v      float64
		want   string
	}{
		{"disk_used_ratio", 0.9388, "93.9%"},
		{"disk_free_bytes", 1536, "1.5 KiB"},
		{"disk_free_bytes", 12, "12 B"},
		{"disk_time_to_full_seconds", 14400, "4h0m0s"},
		{"patches_pending", 3, "3"},
		{"patches_last_upgrade_timestamp_seconds", 1764028800, "2025-11-25T00:00:00Z"},
		{"disk_used_ratio", math.NaN(), "NaN"},
		{"disk_time_to_full_seconds", 1e300, "1e+300"},
	} {
		require.Equal(t, tc.want, FormatValue(tc.metric, tc.v), "%s %v", tc.metric, tc.v)
	}
}
