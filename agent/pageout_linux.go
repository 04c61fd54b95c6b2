package agent

import (
	"bufio"
	"os"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// pageOutCode asks the kernel to reclaim the pages of the agent's own
// executable that are mapped read-only (code, read-only data), with
// madvise(MADV_PAGEOUT). Go touches most of a binary once, at start and in
// a check's first run (parsing configs, registering kinds, compiling
// patterns): those pages would stay resident for the life of the process.
// What the agent goes on using is faulted back in from the page cache; the
// rest leaves the resident set. It returns the bytes advised.
func pageOutCode() (int, error) {
	exe, err := os.Readlink("/proc/self/exe")
	if err != nil {
		return 0, err
	}
	f, err := os.Open("/proc/self/maps")
	if err != nil {
		return 0, err
	}
	defer f.Close()
	total := 0
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 6 || fields[5] != exe || strings.Contains(fields[1], "w") {
			continue
		}
		lo, hi, ok := strings.Cut(fields[0], "-")
		if !ok {
			continue
		}
		start, err1 := strconv.ParseUint(lo, 16, 64)
		end, err2 := strconv.ParseUint(hi, 16, 64)
		if err1 != nil || err2 != nil || end <= start {
			continue
		}
		if _, _, errno := unix.Syscall(unix.SYS_MADVISE, uintptr(start), uintptr(end-start), unix.MADV_PAGEOUT); errno != 0 {
			return total, errno
		}
		total += int(end - start)
	}
	return total, sc.Err()
}
