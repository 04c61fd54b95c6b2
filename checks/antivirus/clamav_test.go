package antivirus

import (
	"context"
	"net"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/l2agent/l2agent/checks"
	"github.com/l2agent/l2agent/configs"
	"github.com/l2agent/l2agent/internal/checktest"
)

func TestParseCVDHeader(t *testing.T) {
	t.Parallel()
	// The header of an official daily.cvd (fields as sigtool --info shows them).
	h, err := parseCVDHeader([]byte("ClamAV-VDB:09 Apr 2024 07-26 +0000:27240:2058064:90:e0d7b0ef3d9d5c7a5a07f0cc5d6ad6e1:FNBZmDqNEhRcbWhJkOuKp3xm8:raynman:1712647596" + strings.Repeat(" ", 300)))
	require.NoError(t, err)
	require.Equal(t, cvdHeader{Version: 27240, Sigs: 2058064, Builder: "raynman", Built: time.Unix(1712647596, 0)}, h)
	// Without the seconds field (old format) the text time is used.
	h, err = parseCVDHeader([]byte("ClamAV-VDB:09 Apr 2024 07-26 +0000:27240:2058064:90:md5:dsig:raynman"))
	require.NoError(t, err)
	require.Equal(t, time.Date(2024, 4, 9, 7, 26, 0, 0, time.UTC), h.Built.UTC())
	for _, bad := range []string{"", "ClamAV-VDB:x", "NotClamAV:1:2:3:4:5:6:7:8", "ClamAV-VDB:t:v:1:90:m:d:b:1", "ClamAV-VDB:bad time:1:1:90:m:d:b"} {
		_, err := parseCVDHeader([]byte(bad))
		require.Error(t, err, bad)
	}
	hs := []cvdHeader{
		{File: "main.cvd", Built: time.Unix(1000, 0)}, {File: "bytecode.cld", Built: time.Unix(5000, 0)}, {File: "daily.cld", Built: time.Unix(3000, 0)},
	}
	best, ok := newestSignatures(hs)
	require.True(t, ok)
	require.Equal(t, "daily.cld", best.File, "daily dates the signatures")
	best, _ = newestSignatures(hs[:2])
	require.Equal(t, "bytecode.cld", best.File)
}

func FuzzParseCVDHeader(f *testing.F) {
	f.Add([]byte(testCVDHeader("daily", 27400, time.Unix(1795306725, 0))))
	f.Add([]byte("ClamAV-VDB:09 Apr 2024 07-26 +0000:27240:2058064:90:m:d:raynman"))
	f.Fuzz(func(t *testing.T, b []byte) {
		h, err := parseCVDHeader(b)
		if err == nil && (h.Version < 0 || h.Sigs < 0 || h.Built.IsZero()) {
			t.Fatalf("bad header %+v", h)
		}
	})
}

// testCVDHeader is a database header as sigtool writes it.
func testCVDHeader(name string, version int, built time.Time) string {
	return "ClamAV-VDB:" + built.UTC().Format("02 Jan 2006 15-04 -0700") + ":" + strconv.Itoa(version) + ":1:90:X:X:l2agent:" + strconv.Itoa(int(built.Unix()))
}

func TestParseClamdReplies(t *testing.T) {
	t.Parallel()
	s, err := parseClamdReply([]byte("PONG\x00"))
	require.NoError(t, err)
	require.Equal(t, "PONG", s)
	_, err = parseClamdReply(nil)
	require.ErrorContains(t, err, "without a reply")
	_, err = parseClamdReply([]byte("PON"))
	require.ErrorContains(t, err, "not terminated")

	v, ok := parseClamdVersion("ClamAV 1.4.6/27400/Sun Nov 22 00:19:29 2026")
	require.True(t, ok)
	require.Equal(t, clamdVersion{Engine: "1.4.6", Signatures: "27400", Date: time.Date(2026, 11, 22, 0, 19, 29, 0, time.Local)}, v)
	v, ok = parseClamdVersion("ClamAV 1.4.6")
	require.True(t, ok, "no daily database loaded")
	require.Equal(t, clamdVersion{Engine: "1.4.6"}, v)
	for _, bad := range []string{"", "PONG", "ClamAV ", "ClamAV 1.0/x/y", "ClamAV a b"} {
		_, ok := parseClamdVersion(bad)
		require.False(t, ok, bad)
	}
}

func FuzzParseClamdReply(f *testing.F) {
	f.Add([]byte("ClamAV 1.4.6/27400/Sun Nov 22 00:19:29 2026\x00"))
	f.Add([]byte("PONG\x00"))
	f.Add([]byte("/tmp/x: Eicar FOUND\x00"))
	f.Fuzz(func(t *testing.T, b []byte) {
		s, err := parseClamdReply(b)
		if err != nil {
			return
		}
		if strings.ContainsRune(s, 0) {
			t.Fatal("NUL in reply")
		}
		if v, ok := parseClamdVersion(s); ok && v.Engine == "" {
			t.Fatal("version without engine")
		}
	})
}

func TestParseClamdConf(t *testing.T) {
	t.Parallel()
	m := parseClamdConf(checktest.Testdata(t, "clamd.conf.debian"))
	require.Equal(t, "/var/run/clamav/clamd.ctl", m["LocalSocket"])
	require.Equal(t, "/var/lib/clamav", m["DatabaseDirectory"])
	m = parseClamdConf([]byte("# c\nTCPSocket 3310\nTCPAddr 127.0.0.2\nTCPAddr ::1\nDatabaseDirectory\t\"/srv/db\"\n"))
	require.Equal(t, map[string]string{"TCPSocket": "3310", "TCPAddr": "127.0.0.2", "DatabaseDirectory": "/srv/db"}, m)
}

func TestParseFreshclamLog(t *testing.T) {
	t.Parallel()
	ok := checktest.Testdata(t, "freshclam-ok.log")
	fail := checktest.Testdata(t, "freshclam-fail.log")
	want := time.Date(2026, 11, 25, 0, 26, 14, 0, time.UTC)
	require.Equal(t, want, parseFreshclamLog(ok, time.UTC))
	require.True(t, parseFreshclamLog(fail, time.UTC).IsZero(), "a failed update is not a success")
	require.Equal(t, want, parseFreshclamLog(append(append([]byte{}, ok...), fail...), time.UTC), "the failure after it keeps the last success")
	// Without LogTime the run's start line dates the result.
	require.Equal(t, time.Date(2024, 9, 24, 10, 20, 16, 0, time.UTC), parseFreshclamLog([]byte(
		"ClamAV update process started at Tue Sep 24 10:20:16 2024\ndaily.cvd updated (version: 27408, sigs: 2067100, f-level: 90, builder: raynman)\n"), time.UTC))
}

func TestParseClamScanLog(t *testing.T) {
	t.Parallel()
	log := `
-------------------------------------------------------------------------------

/srv/a.txt: Old.Sig FOUND

----------- SCAN SUMMARY -----------
Known viruses: 1
Engine version: 1.4.6
Scanned directories: 1
Scanned files: 2
Infected files: 1
Data scanned: 0.00 MB
Data read: 0.00 MB (ratio 0.00:1)
Time: 0.019 sec (0 m 0 s)
Start Date: 2026:11:24 00:18:59
End Date:   2026:11:24 00:18:59

-------------------------------------------------------------------------------

/srv/b.txt: L2agent.Test.Signature.UNOFFICIAL FOUND
/srv/c d.txt: L2agent.Test.Signature.UNOFFICIAL FOUND

----------- SCAN SUMMARY -----------
Infected files: 2
Start Date: 2026:11:25 01:00:00
End Date:   2026:11:25 01:00:03
`
	s, ok := parseClamScanLog([]byte(log), time.UTC)
	require.True(t, ok)
	require.Equal(t, scanSummary{Infected: 2, End: time.Date(2026, 11, 25, 1, 0, 3, 0, time.UTC),
		Found: []string{"/srv/b.txt: L2agent.Test.Signature.UNOFFICIAL FOUND", "/srv/c d.txt: L2agent.Test.Signature.UNOFFICIAL FOUND"}}, s)
	_, ok = parseClamScanLog([]byte(log[:strings.LastIndex(log, "End Date")]), time.UTC)
	require.True(t, ok, "a scan still running: the previous summary")
	// A real clamscan --log file: a scan that found the test signature, then a clean one.
	real := checktest.Testdata(t, "clamscan.log")
	s, ok = parseClamScanLog(real, time.UTC)
	require.True(t, ok)
	require.Equal(t, scanSummary{Infected: 0, End: time.Date(2026, 11, 25, 0, 38, 12, 0, time.UTC)}, s)
	s, ok = parseClamScanLog(real[:strings.Index(string(real), "Infected files: 0")], time.UTC)
	require.True(t, ok)
	require.Equal(t, []string{"/tmp/scan/files/infected.txt: L2agent.Test.Signature.UNOFFICIAL FOUND"}, s.Found)
	_, ok = parseClamScanLog([]byte("nothing here\n"), time.UTC)
	require.False(t, ok)
}

func FuzzParseClamLogs(f *testing.F) {
	f.Add(string(checktest.Testdata(f, "freshclam-ok.log")))
	f.Add(string(checktest.Testdata(f, "freshclam-fail.log")))
	f.Add(string(checktest.Testdata(f, "clamscan.log")))
	f.Add("x: y FOUND\n--- SCAN SUMMARY ---\nInfected files: 1\nEnd Date: 2026:11:25 01:00:03\n")
	f.Fuzz(func(t *testing.T, s string) {
		parseFreshclamLog([]byte(s), time.UTC)
		if sum, ok := parseClamScanLog([]byte(s), time.UTC); ok && (sum.Infected < 0 || sum.End.IsZero()) {
			t.Fatalf("bad summary %+v", sum)
		}
		parseClamdConf([]byte(s))
	})
}

// TestClamdNoReply: a clamd that accepts but never answers is down within
// the timeout, not a hang.
func TestClamdNoReply(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	sock := filepath.Join(dir, "clamd.sock")
	l, err := net.Listen("unix", sock)
	require.NoError(t, err)
	defer l.Close()
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			defer c.Close() // held open, silent
		}
	}()
	c, err := checks.New(configs.Check{Name: "av", Kind: "antivirus", Options: &Options{
		Engines: []string{"clamav"}, Timeout: configs.Duration(300 * time.Millisecond),
		ClamAV: ClamAVOptions{Address: sock, ClamdConf: filepath.Join(dir, "none.conf"), DatabaseDir: dir},
	}}, checks.Env{})
	require.NoError(t, err)
	start := time.Now()
	obs, err := c.Run(context.Background())
	require.NoError(t, err)
	require.Less(t, time.Since(start), 3*time.Second)
	o := checktest.ByKeyObs(obs)[`antivirus_up{engine="clamav"}`]
	require.Equal(t, 0.0, o.Value)
	require.Contains(t, o.Details, "no reply to PING within 300ms")
}
