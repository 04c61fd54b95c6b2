package procfs

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
)

// PSILine is one line of a /proc/pressure file: the share of wall time in
// which some (or all) non-idle tasks were stalled on the resource, as
// percentages averaged over 10s, 60s and 300s, and the total stall time in
// microseconds.
type PSILine struct {
	Avg10, Avg60, Avg300 float64
	Total                uint64
}

// PSI is a parsed /proc/pressure/<resource> file. Full is nil when the kernel
// does not report it (cpu before Linux 5.13).
type PSI struct {
	Some PSILine
	Full *PSILine
}

// parsePSI parses the text of a /proc/pressure file (see
// Documentation/accounting/psi.rst). Lines of unknown kinds and unknown keys
// are ignored, for kernels yet to come; a missing "some" line, a missing
// average or total, or a value that is not a finite non-negative number is an
// error.
func parsePSI(r io.Reader) (PSI, error) {
	var (
		p       PSI
		gotSome bool
	)
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		kind, rest, _ := strings.Cut(strings.TrimSpace(sc.Text()), " ")
		if kind == "" || (kind != "some" && kind != "full") {
			continue
		}
		l, err := parsePSILine(rest)
		if err != nil {
			return PSI{}, fmt.Errorf("%s line: %w", kind, err)
		}
		if kind == "some" {
			p.Some, gotSome = l, true
		} else {
			p.Full = &l
		}
	}
	if err := sc.Err(); err != nil {
		return PSI{}, err
	}
	if !gotSome {
		return PSI{}, errors.New("no \"some\" line")
	}
	return p, nil
}

func parsePSILine(s string) (PSILine, error) {
	var (
		l    PSILine
		seen uint8 // one bit per required key
	)
	for _, f := range strings.Fields(s) {
		k, v, ok := strings.Cut(f, "=")
		if !ok {
			return l, fmt.Errorf("field %q: want key=value", f)
		}
		var avg *float64
		switch k {
		case "avg10":
			avg, seen = &l.Avg10, seen|1
		case "avg60":
			avg, seen = &l.Avg60, seen|2
		case "avg300":
			avg, seen = &l.Avg300, seen|4
		case "total":
			n, err := strconv.ParseUint(v, 10, 64)
			if err != nil {
				return l, fmt.Errorf("total: %w", err)
			}
			l.Total, seen = n, seen|8
			continue
		default:
			continue
		}
		x, err := strconv.ParseFloat(v, 64)
		if err != nil || x < 0 || math.IsInf(x, 0) || math.IsNaN(x) {
			return l, fmt.Errorf("%s: bad value %q", k, v)
		}
		*avg = x
	}
	if seen != 0b1111 {
		return l, errors.New("want avg10, avg60, avg300 and total")
	}
	return l, nil
}

// ReadPSI reads <procfs>/pressure/<resource>. ok is false, with no error, when
// the kernel has no pressure stall information (built without CONFIG_PSI,
// booted with psi=0, or older than 4.20).
func ReadPSI(procfs, resource string) (p PSI, ok bool, err error) {
	path := filepath.Join(procfs, "pressure", resource)
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) || errors.Is(err, syscall.EOPNOTSUPP) {
		return PSI{}, false, nil
	}
	if err != nil {
		return PSI{}, false, fmt.Errorf("read %s: %w", path, err)
	}
	if p, err = parsePSI(bytes.NewReader(b)); err != nil {
		return PSI{}, false, fmt.Errorf("parse %s: %w", path, err)
	}
	return p, true, nil
}
