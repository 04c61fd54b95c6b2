package alert

import (
	"fmt"
	"math"
	"strings"
	"time"
)

// FormatValue writes an alert's value for people, in the unit its metric
// name says: "93.4%", "1.2 GiB", "4h0m0s", else the number.
func FormatValue(metric string, v float64) string {
	switch {
	case math.IsNaN(v) || math.IsInf(v, 0):
		return fmt.Sprint(v)
	case strings.HasSuffix(metric, "_ratio"):
		return fmt.Sprintf("%.1f%%", v*100)
	case strings.HasSuffix(metric, "_bytes") && v >= 0:
		return humanBytes(uint64(v))
	case strings.HasSuffix(metric, "_timestamp_seconds") && v > 0 && v < 1e11:
		return time.Unix(int64(v), 0).UTC().Format(time.RFC3339)
	case strings.HasSuffix(metric, "_seconds") && math.Abs(v) < float64(math.MaxInt64/int64(time.Second)):
		return time.Duration(v * float64(time.Second)).Round(time.Second).String()
	}
	return fmt.Sprintf("%g", v)
}

// humanBytes formats n in IEC units with one decimal: "512 B", "12.3 GiB".
func humanBytes(n uint64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := uint64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}
