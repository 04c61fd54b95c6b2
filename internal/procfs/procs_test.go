package procfs

import (
	"context"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/l2agent/l2agent/internal/textfmt"
)

// Real lines: a busy shell loop, a program named "x) (y z", and a kernel thread.
const (
	statSh       = "9126 (sh) R 9125 9122 2689 0 -1 4194304 123 0 0 0 179 0 0 0 20 0 1 0 47025 2654208 399 18446744073709551615 94714032349184 94714032425913 140731133716032 0 0 0 0 6 65536 0 0 0 17 0 0 0 0 0 0 94714032455216 94714032460352 94714915069952 140731133721024 140731133721081 140731133721081 140731133722604 0\n"
	statParens   = "8626 (x) (y z) S 8625 8612 2689 0 -1 4194304 129 0 0 0 0 0 0 0 20 0 1 0 45892 2990080 408 18446744073709551615 94484104478720 94484104496649 140722174540352 0 0 0 0 6 0 1 0 0 17 0 0 0 0 0 0 94484104510736 94484104512000 94484659531776 140722174548477 140722174548493 140722174548493 140722174549995 0\n"
	statKthreadd = "2 (kthreadd) S 0 0 0 0 -1 2129984 0 0 0 0 0 0 0 0 20 0 1 0 20 0 0 18446744073709551615 0 0 0 0 0 0 0 2147483647 0 1 0 0 0 1 0 0 0 0 0 0 0 0 0 0 0 0 0\n"
)

func TestParseProcStat(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		in   string
		want Stat
		err  string
	}{
		{in: statSh, want: Stat{PID: 9126, Comm: "sh", State: 'R', Flags: 4194304, UTime: 179, RSSPages: 399}},
		{in: statParens, want: Stat{PID: 8626, Comm: "x) (y z", State: 'S', Flags: 4194304, RSSPages: 408}},
		{in: statKthreadd, want: Stat{PID: 2, Comm: "kthreadd", State: 'S', Flags: 2129984}},
		{in: "", err: "no (comm)"},
		{in: "12 (sh", err: "no (comm)"},
		{in: "x (sh) R" + strings.Repeat(" 0", 30), err: "bad pid"},
		{in: "0 (sh) R" + strings.Repeat(" 0", 30), err: "bad pid"},
		{in: "1 (sh) R 0 0", err: "fields after comm"},
		{in: "1 (sh) RR" + strings.Repeat(" 0", 30), err: "bad state"},
		{in: "1 (sh) R" + strings.Repeat(" 0", 10) + " -5" + strings.Repeat(" 0", 20), err: "field 14"},
	} {
		got, err := parseStat(tc.in)
		if tc.err != "" {
			require.ErrorContains(t, err, tc.err, tc.in)
			continue
		}
		require.NoError(t, err)
		require.Equal(t, tc.want, got)
		require.Equal(t, tc.in == statKthreadd, got.KernelThread(), tc.in)
	}
}

func FuzzParseProcStat(f *testing.F) {
	for _, s := range []string{statSh, statParens, statKthreadd, "1 () R", "1 (a)b) c"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		st, err := parseStat(s)
		if err == nil && (st.PID <= 0 || strings.Count(s, ")") == 0) {
			t.Fatalf("accepted %q as %+v", s, st)
		}
	})
}

func TestScanProcs(t *testing.T) {
	t.Parallel()
	ps, err := Scan(context.Background(), "testdata/procfs")
	require.NoError(t, err)
	require.Len(t, ps, 3)
	require.Equal(t, "x) (y z", ps[8626].Comm)
	require.EqualValues(t, 179, ps[9126].ticks())

	// A pid without a stat (it exited, or hidepid), a bad stat and entries
	// that are no pids are left out.
	dir := t.TempDir()
	for name, stat := range map[string]string{"1": "", "7": "7 (x", "42": strings.Replace(statSh, "9126", "42", 1), "self": "", "0": statKthreadd} {
		require.NoError(t, os.Mkdir(filepath.Join(dir, name), 0o755))
		if stat != "" {
			require.NoError(t, os.WriteFile(filepath.Join(dir, name, "stat"), []byte(stat), 0o644))
		}
	}
	ps, err = Scan(context.Background(), dir)
	require.NoError(t, err)
	require.Equal(t, []int{42}, slices.Collect(maps.Keys(ps)))

	_, err = Scan(context.Background(), "testdata/nonexistent")
	require.ErrorContains(t, err, "read testdata/nonexistent")

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err = Scan(ctx, "testdata/procfs")
	require.ErrorIs(t, err, context.Canceled)
}

func TestRankCPU(t *testing.T) {
	t.Parallel()
	p := func(pid int, ticks uint64) Proc {
		return Proc{Stat: Stat{PID: pid, UTime: ticks / 2, STime: ticks - ticks/2}}
	}
	before := map[int]Proc{1: p(1, 1000), 2: p(2, 50), 3: p(3, 500), 9: p(9, 7)}
	after := map[int]Proc{
		1: p(1, 1010), // 10 ticks: 0.1 core over 1s
		2: p(2, 150),  // 100 ticks: 1 core
		3: p(3, 500),  // idle, but more lifetime CPU than 4
		4: p(4, 30),   // new: charged all 30 ticks
		5: p(5, 0),    // new and idle
		// 9 exited
	}
	got := rankCPU(before, after, time.Second)
	var pids []int
	for _, r := range got {
		pids = append(pids, r.PID)
	}
	require.Equal(t, []int{2, 4, 1, 3, 5}, pids)
	require.InDelta(t, 1.0, got[0].CPU, 1e-9)
	require.InDelta(t, 0.3, got[1].CPU, 1e-9)
	require.InDelta(t, 0.1, got[2].CPU, 1e-9)

	// A reused pid with fewer ticks than before is a new process.
	got = rankCPU(map[int]Proc{7: p(7, 900)}, map[int]Proc{7: p(7, 20)}, 2*time.Second)
	require.InDelta(t, 0.1, got[0].CPU, 1e-9)
}

func TestTopProcsByRSS(t *testing.T) {
	t.Parallel()
	fi, err := os.Stat("testdata/procfs/8626")
	require.NoError(t, err)
	uid := strconv.FormatUint(uint64(fi.Sys().(*syscall.Stat_t).Uid), 10) // the owner of the checkout
	rootfs := t.TempDir()
	require.NoError(t, os.MkdirAll(filepath.Join(rootfs, "etc"), 0o755))
	passwd := "alice:x:" + uid + ":100::/home/alice:/bin/sh\nroot:x:0:0:root:/root:/bin/bash\n"
	require.NoError(t, os.WriteFile(filepath.Join(rootfs, "etc", "passwd"), []byte(passwd), 0o644))

	s, err := TopByRSS(context.Background(), "testdata/procfs", rootfs, 2)
	require.NoError(t, err)
	lines := strings.Split(strings.TrimSuffix(s, "\n"), "\n")
	require.Len(t, lines, 3, s)
	require.Regexp(t, `^\s+PID USER\s+RSS\s+COMMAND$`, lines[0])
	page := os.Getpagesize()
	require.Regexp(t, `^\s+8626 alice\s+`+textfmt.HumanBytes(uint64(408*page))+`  /tmp/x\) \(y z 30$`, lines[1])
	require.Regexp(t, `^\s+9126 alice\s+`+textfmt.HumanBytes(uint64(399*page))+`  sh -c i=0; while \[ \$i -lt 3000000 \]; do i=\$\(\(i\+1\)\); done$`, lines[2])

	s, err = TopByRSS(context.Background(), "testdata/procfs", t.TempDir(), 10)
	require.NoError(t, err)
	require.Contains(t, s, "  [kthreadd]\n", "a process without cmdline shows its [comm]")
	require.Contains(t, s, " "+uid+" ", "no passwd: numeric uid")
}

func TestUserNames(t *testing.T) {
	t.Parallel()
	rootfs := t.TempDir()
	require.Empty(t, userNames(rootfs))
	require.NoError(t, os.MkdirAll(filepath.Join(rootfs, "etc"), 0o755))
	passwd := "root:x:0:0:root:/root:/bin/bash\ntoor:x:0:0::/root:/bin/sh\n# comment\nbad:x:notanumber:0::/:/bin/sh\nshort:x\nwww-data:x:33:33::/var/www:/usr/sbin/nologin\n"
	require.NoError(t, os.WriteFile(filepath.Join(rootfs, "etc", "passwd"), []byte(passwd), 0o644))
	require.Equal(t, map[uint32]string{0: "root", 33: "www-data"}, userNames(rootfs))
}

func TestCommand(t *testing.T) {
	t.Parallel()
	procfs := t.TempDir()
	write := func(pid, cmdline string) {
		require.NoError(t, os.MkdirAll(filepath.Join(procfs, pid), 0o755))
		require.NoError(t, os.WriteFile(filepath.Join(procfs, pid, "cmdline"), []byte(cmdline), 0o644))
	}
	write("1", "evil\x00\x1b[2J\nrm -rf\x00\xff")
	require.Equal(t, "evil ?[2J?rm -rf ?", cmdline(procfs, Proc{Stat: Stat{PID: 1}}))
	write("2", strings.Repeat("é", 200))
	got := cmdline(procfs, Proc{Stat: Stat{PID: 2}})
	require.LessOrEqual(t, len(got), maxCommand+len("…"))
	require.True(t, strings.HasSuffix(got, "é…"), got)
	require.Equal(t, "[kworker/0:1]", cmdline(procfs, Proc{Stat: Stat{PID: 3, Comm: "kworker/0:1"}}))
}
