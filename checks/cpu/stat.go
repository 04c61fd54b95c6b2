package cpu

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"strconv"
)

// cpuTimes is the "cpu" line of /proc/stat: time spent in each state by
// all CPUs since boot, in USER_HZ ticks. Guest and guest_nice are inside
// User and Nice, so they are not kept.
type cpuTimes struct {
	User, Nice, System, Idle, Iowait, Irq, Softirq, Steal uint64
}

// parseStat reads the total CPU times and the number of online CPUs (the
// "cpuN" lines, one per online CPU as /proc/cpuinfo lists them) from the
// head of a /proc/stat. It stops at the first line after the cpu lines, so
// the interrupt counts that follow (tens of KB on a large host) are not
// read. Fields a kernel does not have yet (iowait before 2.5.41, steal
// before 2.6.11) are zero.
func parseStat(r io.Reader) (cpuTimes, int, error) {
	var (
		t     cpuTimes
		total bool
		n     int
	)
	br := bufio.NewReaderSize(r, 4096)
	for {
		line, err := br.ReadSlice('\n')
		long := err == bufio.ErrBufferFull // a line longer than the buffer: only its head is here
		if err != nil && !long && (err != io.EOF || len(line) == 0) {
			if err == io.EOF {
				break
			}
			return cpuTimes{}, 0, err
		}
		name, rest, _ := bytes.Cut(bytes.TrimSuffix(line, []byte{'\n'}), []byte{' '})
		if !bytes.HasPrefix(name, []byte("cpu")) {
			if total || n > 0 {
				break // the cpu lines come first and together
			}
			if long {
				if err := skipLine(br); err != nil {
					return cpuTimes{}, 0, err
				}
			}
			continue
		}
		if long {
			return cpuTimes{}, 0, fmt.Errorf("%s line longer than %d bytes", name, br.Size())
		}
		if len(name) == 3 {
			if total {
				return cpuTimes{}, 0, errors.New("two cpu lines")
			}
			if t, err = parseTimes(rest); err != nil {
				return cpuTimes{}, 0, fmt.Errorf("cpu line: %w", err)
			}
			total = true
		} else if _, err := strconv.ParseUint(string(name[3:]), 10, 32); err == nil {
			n++
		}
	}
	if !total {
		return cpuTimes{}, 0, errors.New("no cpu line")
	}
	if n == 0 {
		return cpuTimes{}, 0, errors.New("no cpuN line")
	}
	return t, n, nil
}

// skipLine reads up to the end of the line; the end of the input ends it too.
func skipLine(br *bufio.Reader) error {
	for {
		_, err := br.ReadSlice('\n')
		switch err {
		case nil, io.EOF:
			return nil
		case bufio.ErrBufferFull:
		default:
			return err
		}
	}
}

// parseTimes parses the counters after "cpu": at least user, nice, system
// and idle.
func parseTimes(b []byte) (cpuTimes, error) {
	var t cpuTimes
	dst := []*uint64{&t.User, &t.Nice, &t.System, &t.Idle, &t.Iowait, &t.Irq, &t.Softirq, &t.Steal}
	i := 0
	for f := range bytes.FieldsSeq(b) {
		if i == len(dst) {
			break
		}
		v, err := strconv.ParseUint(string(f), 10, 64)
		if err != nil {
			return cpuTimes{}, fmt.Errorf("bad counter %q", f)
		}
		*dst[i] = v
		i++
	}
	if i < 4 {
		return cpuTimes{}, fmt.Errorf("%d counters, want at least 4", i)
	}
	return t, nil
}
