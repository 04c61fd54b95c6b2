package cpu

import (
	"bytes"
	"os"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestParseStat(t *testing.T) {
	t.Parallel()
	b, err := os.ReadFile("testdata/procfs/stat")
	require.NoError(t, err)
	tm, n, err := parseStat(bytes.NewReader(b))
	require.NoError(t, err)
	require.Equal(t, cpuTimes{User: 14985, System: 8369, Idle: 68822, Iowait: 265, Softirq: 154}, tm)
	require.Equal(t, 2, n)

	// A kernel before 2.6.11 (no steal, guest): 7 counters.
	tm, n, err = parseStat(strings.NewReader("cpu  1 2 3 4 5 6 7\ncpu0 1 2 3 4 5 6 7\nintr 1\n"))
	require.NoError(t, err)
	require.Equal(t, cpuTimes{User: 1, Nice: 2, System: 3, Idle: 4, Iowait: 5, Irq: 6, Softirq: 7}, tm)
	require.Equal(t, 1, n)

	// The interrupt counts of a large host: a line longer than the buffer.
	_, n, err = parseStat(strings.NewReader("cpu  1 2 3 4\ncpu0 1 2 3 4\nintr " + strings.Repeat("12345 ", 100000) + "\n"))
	require.NoError(t, err)
	require.Equal(t, 1, n)
	_, n, err = parseStat(strings.NewReader("intr " + strings.Repeat("12345 ", 100000) + "\ncpu  1 2 3 4\ncpu0 1 2 3 4"))
	require.NoError(t, err, "a long line before the cpu lines is skipped; the last line needs no newline")
	require.Equal(t, 1, n)
	_, _, err = parseStat(strings.NewReader("cpu  " + strings.Repeat("1 ", 3000) + "\ncpu0 1\n"))
	require.ErrorContains(t, err, "cpu line longer than 4096 bytes")

	// Offline CPUs have no line: cpu0 and cpu3 online.
	_, n, err = parseStat(strings.NewReader("cpu  1 2 3 4\ncpu0 1 2 3 4\ncpu3 1 2 3 4\nintr 1\ncpu9 1 2 3 4\n"))
	require.NoError(t, err)
	require.Equal(t, 2, n, "a cpu line after the block is not counted")

	for in, want := range map[string]string{
		"":                                    "no cpu line",
		"intr 1\n":                            "no cpu line",
		"cpu0 1 2 3 4\n":                      "no cpu line",
		"cpu  1 2 3 4\nintr 1\n":              "no cpuN line",
		"cpu  1 2 3\ncpu0 1 2 3 4\n":          "3 counters",
		"cpu  1 2 x 4\ncpu0 1 2 3 4\n":        `bad counter "x"`,
		"cpu  1 2 -3 4\ncpu0 1 2 3 4\n":       `bad counter "-3"`,
		"cpu  1 2 3 4\ncpu 1 2 3 4\ncpu0 1\n": "two cpu lines",
	} {
		_, _, err := parseStat(strings.NewReader(in))
		require.ErrorContains(t, err, want, "%q", in)
	}
}

// TestParseStatReal counts the CPUs as /proc/cpuinfo lists them (what the
// check used to read): the same number.
func TestParseStatReal(t *testing.T) {
	t.Parallel()
	f, err := os.Open("/proc/stat")
	require.NoError(t, err)
	defer f.Close()
	tm, n, err := parseStat(f)
	require.NoError(t, err)
	require.Positive(t, tm.Idle+tm.User+tm.System)
	info, err := os.ReadFile("/proc/cpuinfo")
	require.NoError(t, err)
	procs := 0
	for l := range strings.Lines(string(info)) {
		if strings.HasPrefix(l, "processor") {
			procs++
		}
	}
	if procs == 0 {
		t.Skip("this architecture's /proc/cpuinfo has no processor lines")
	}
	require.Equal(t, procs, n)
}

// statFields is parseStat written the plain way, for the fuzz test.
func statFields(s string) (cpuTimes, int, bool) {
	var t cpuTimes
	total, n := false, 0
	for l := range strings.Lines(s) {
		f := strings.Fields(l)
		name := ""
		if i := strings.IndexByte(l, ' '); i >= 0 {
			name = l[:i]
		} else {
			name = strings.TrimRight(l, "\n")
		}
		if !strings.HasPrefix(name, "cpu") {
			if total || n > 0 {
				break
			}
			continue
		}
		if nl := strings.HasSuffix(l, "\n"); (nl && len(l) > 4096) || (!nl && len(l) >= 4096) {
			return t, 0, false // longer than parseStat's buffer
		}
		if name == "cpu" {
			if total {
				return t, 0, false
			}
			vals := f[1:]
			if len(vals) > 8 {
				vals = vals[:8]
			}
			if len(vals) < 4 {
				return t, 0, false
			}
			dst := []*uint64{&t.User, &t.Nice, &t.System, &t.Idle, &t.Iowait, &t.Irq, &t.Softirq, &t.Steal}
			for i, v := range vals {
				u, err := strconv.ParseUint(v, 10, 64)
				if err != nil {
					return t, 0, false
				}
				*dst[i] = u
			}
			total = true
			continue
		}
		if _, err := strconv.ParseUint(name[3:], 10, 32); err == nil {
			n++
		}
	}
	return t, n, total && n > 0
}

func FuzzParseStat(f *testing.F) {
	if b, err := os.ReadFile("testdata/procfs/stat"); err == nil {
		f.Add(string(b))
	}
	f.Add("cpu  1 2 3 4 5 6 7 8 9 10\ncpu0 1 2 3 4\ncpu1 1\nintr 5\n")
	f.Add("cpu  1 2 3\ncpu0\n")
	f.Add("intr " + strings.Repeat("0 ", 3000) + "\ncpu  1 2 3 4\ncpu0 1\n")
	f.Fuzz(func(t *testing.T, s string) {
		if !printableLines(s) {
			t.Skip() // the plain version splits fields differently on these
		}
		tm, n, err := parseStat(strings.NewReader(s))
		want, wantN, ok := statFields(s)
		if ok != (err == nil) {
			t.Fatalf("%q: parseStat err %v, plain version ok %v", s, err, ok)
		}
		if ok && (tm != want || n != wantN) {
			t.Fatalf("%q: parseStat %+v %d, plain version %+v %d", s, tm, n, want, wantN)
		}
	})
}

// printableLines reports whether every byte is printable ASCII or a newline: the
// plain version's strings.Fields treats Unicode spaces as separators.
func printableLines(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c != '\n' && (c < 0x20 || c > 0x7e) {
			return false
		}
	}
	return true
}
