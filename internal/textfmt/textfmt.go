// Package textfmt formats text and values for people: rune-safe truncation
// with a visible mark, IEC byte sizes, metric values in their unit, and
// sanitising and escaping of names read from the host for the medium they
// go to (escape.go).
package textfmt

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// Mark ends text that Truncate had to cut.
const Mark = "\n… (truncated)"

// Truncate bounds s to n bytes on a rune boundary, ending a cut with Mark.
func Truncate(s string, n int) string { return TruncateMark(s, n, Mark) }

// TruncateMark bounds s to n bytes, mark included, on a rune boundary,
// ending a cut with mark.
func TruncateMark(s string, n int, mark string) string {
	if len(s) <= n {
		return s
	}
	return Head(s, n-len(mark)) + mark
}

// Head returns the first n bytes of s, fewer so as to end on a rune
// boundary, with no mark.
func Head(s string, n int) string {
	if len(s) <= n {
		return s
	}
	cut := max(n, 0)
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut]
}

// Tail bounds s to its last n bytes, mark included, on a rune boundary,
// starting a cut with mark.
func Tail(s string, n int, mark string) string {
	if len(s) <= n {
		return s
	}
	cut := len(s) - n + len(mark)
	for cut < len(s) && !utf8.RuneStart(s[cut]) {
		cut++
	}
	return mark + s[cut:]
}

// Sanitize replaces control characters and invalid UTF-8 with '?', so that
// names from the host cannot break the lines of a report.
func Sanitize(s string) string {
	return strings.Map(func(r rune) rune {
		if r == utf8.RuneError || !unicode.IsPrint(r) {
			return '?'
		}
		return r
	}, s)
}

type integer interface {
	~int | ~int32 | ~int64 | ~uint | ~uint32 | ~uint64
}

// HumanBytes formats n in IEC units with one decimal: "512 B", "12.3 GiB".
func HumanBytes[T integer](n T) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := T(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}

// FormatValue writes an observation's value for people, in the unit its
// metric name says: "93.4%", "1.2 GiB", "198d 15h" (Duration), else the
// number.
func FormatValue(metric string, v float64) string {
	switch {
	case math.IsNaN(v) || math.IsInf(v, 0):
		return fmt.Sprint(v)
	case strings.HasSuffix(metric, "_ratio"):
		return fmt.Sprintf("%.1f%%", v*100)
	case strings.HasSuffix(metric, "_bytes") && v >= 0:
		return HumanBytes(uint64(v))
	case strings.HasSuffix(metric, "_timestamp_seconds") && v > 0 && v < 1e11:
		return time.Unix(int64(v), 0).UTC().Format(time.RFC3339)
	case strings.HasSuffix(metric, "_seconds") && math.Abs(v) < float64(math.MaxInt64/int64(time.Second)):
		return Duration(time.Duration(v * float64(time.Second)))
	}
	return fmt.Sprintf("%g", v)
}

// durationUnits are the units Duration writes, largest first.
var durationUnits = []struct {
	d    time.Duration
	name string
}{{24 * time.Hour, "d"}, {time.Hour, "h"}, {time.Minute, "m"}, {time.Second, "s"}}

// Duration writes d for people in its two largest units, rounded to the
// second: "198d 15h", "3h 5m", "1m 30s", "2h" (a zero second unit is left
// out). Under a minute it shows seconds, with one decimal under ten
// ("45s", "1.2s"), and under a second milliseconds ("350ms"). Machine
// outputs (JSON) carry exact seconds instead.
func Duration(d time.Duration) string {
	switch {
	case d < 0:
		return "-" + Duration(-d)
	case d < time.Second:
		return d.Round(time.Millisecond).String()
	case d < 10*time.Second:
		return strconv.FormatFloat(d.Round(100*time.Millisecond).Seconds(), 'f', -1, 64) + "s"
	case d < time.Minute-time.Second/2:
		return d.Round(time.Second).String()
	}
	i := largestUnit(d)
	d = d.Round(durationUnits[i+1].d)
	if j := largestUnit(d); j != i { // rounding carried into a larger unit
		i, d = j, d.Round(durationUnits[j+1].d)
	}
	big, small := durationUnits[i], durationUnits[i+1]
	s := fmt.Sprintf("%d%s", d/big.d, big.name)
	if n := (d % big.d) / small.d; n > 0 {
		s += fmt.Sprintf(" %d%s", n, small.name)
	}
	return s
}

// largestUnit is the index of the largest unit not above d, minutes at
// least.
func largestUnit(d time.Duration) int {
	for i, u := range durationUnits[:len(durationUnits)-1] {
		if d >= u.d {
			return i
		}
	}
	return len(durationUnits) - 2
}
