package antivirus

import (
	"bufio"
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/l2agent/l2agent/internal/fsutil"
	"github.com/l2agent/l2agent/internal/textfmt"
)

// ClamAV: clamd is asked PING and VERSION on the socket clamd.conf names;
// the signature age comes from the headers of the database files (so it is
// known while clamd is down); freshclam's log tells the last successful
// update; a running clamonacc means on-access scanning; the configured scan
// logs (clamscan/clamdscan --log) give the last scan and its infected files.

const (
	cvdHeaderSize  = 512
	maxClamdReply  = 4096
	maxFoundListed = 20
)

func (c *antivirusCheck) collectClamAV(ctx context.Context) avResult {
	o := c.opts.ClamAV
	r := avResult{Engine: "clamav"}
	confPath := c.rootPath(o.ClamdConf)
	conf, confErr := readClamdConf(confPath)

	var ver clamdVersion
	switch network, addr := c.clamdSocket(conf); {
	case network == "" && confErr != nil:
		r.UpDetails = fmt.Sprintf("clamd socket unknown: %v", confErr)
	case network == "":
		r.UpDetails = fmt.Sprintf("clamd socket unknown: %s sets neither LocalSocket nor TCPSocket", confPath)
	default:
		ver = c.pingClamd(ctx, &r, network, addr)
	}
	c.clamavSignatures(&r, conf, ver)
	if b, err := fsutil.ReadTail(c.rootPath(o.FreshclamLog), 4<<20); err == nil {
		r.LastUpdate = parseFreshclamLog(b, time.Local)
	}
	c.clamavOnAccess(ctx, &r)
	c.clamavLastScan(&r)
	return r
}

// clamdSocket returns where clamd listens: the configured address, else
// clamd.conf's LocalSocket or TCPSocket (asked on the loopback when clamd
// listens on every address). network is "" when neither is known.
func (c *antivirusCheck) clamdSocket(conf map[string]string) (network, addr string) {
	switch addr := c.opts.ClamAV.Address; {
	case addr != "" && filepath.IsAbs(addr):
		return "unix", c.rootPath(addr)
	case addr != "":
		return "tcp", addr
	case conf["LocalSocket"] != "":
		return "unix", c.rootPath(conf["LocalSocket"])
	case conf["TCPSocket"] != "":
		host := conf["TCPAddr"]
		if host == "" || host == "0.0.0.0" || host == "::" {
			host = "127.0.0.1"
		}
		return "tcp", net.JoinHostPort(host, conf["TCPSocket"])
	}
	return "", ""
}

// pingClamd asks clamd PING, then VERSION, and notes in r whether it is up
// and which engine and signatures it runs. It returns the VERSION reply
// (zero when there is none).
func (c *antivirusCheck) pingClamd(ctx context.Context, r *avResult, network, addr string) clamdVersion {
	where := network + ":" + addr
	reply, err := c.clamd(ctx, network, addr, "PING")
	switch {
	case err != nil:
		r.UpDetails = fmt.Sprintf("clamd at %s is down: %v", where, err)
		return clamdVersion{}
	case reply != "PONG":
		r.UpDetails = fmt.Sprintf("clamd at %s answered PING with %q", where, textfmt.Sanitize(reply))
		return clamdVersion{}
	}
	r.Up = true
	r.UpDetails = fmt.Sprintf("clamd at %s answers PING.", where)
	reply, err = c.clamd(ctx, network, addr, "VERSION")
	if err != nil {
		return clamdVersion{}
	}
	v, ok := parseClamdVersion(reply)
	if !ok {
		return clamdVersion{}
	}
	r.Version, r.SignatureVersion = v.Engine, v.Signatures
	r.UpDetails += " " + textfmt.Sanitize(reply)
	return v
}

// clamavSignatures notes in r the age of the signatures: from the newest
// database header in the database directory, else from clamd's VERSION
// reply ver.
func (c *antivirusCheck) clamavSignatures(r *avResult, conf map[string]string, ver clamdVersion) {
	dbDir := c.rootPath(cmp.Or(c.opts.ClamAV.DatabaseDir, conf["DatabaseDirectory"], "/var/lib/clamav"))
	dbs, dbErr := readCVDHeaders(dbDir)
	if h, ok := newestSignatures(dbs); ok {
		r.SignatureTime = h.Built
		r.SignatureDetails = fmt.Sprintf("Signature database %s version %d built %s (%d signatures).",
			textfmt.Sanitize(h.File), h.Version, h.Built.UTC().Format(time.RFC3339), h.Sigs)
		if r.SignatureVersion == "" {
			r.SignatureVersion = strconv.Itoa(h.Version)
		}
	} else if !ver.Date.IsZero() {
		r.SignatureTime = ver.Date
		r.SignatureDetails = "Signature date from clamd's VERSION reply; no database header readable in " + dbDir
	} else if dbErr != nil {
		r.UpDetails += fmt.Sprintf("\nNo signature database header: %v", dbErr)
	}
}

// clamavOnAccess notes in r whether on-access scanning runs: the
// on_access_process (clamonacc) is running. It leaves r.Realtime nil when
// the processes cannot be listed.
func (c *antivirusCheck) clamavOnAccess(ctx context.Context, r *avResult) {
	procs, err := runningProcesses(ctx, c.env.Paths.Procfs)
	if err != nil {
		return
	}
	name := c.opts.ClamAV.OnAccessProcess
	pids := procs.find(name)
	r.Realtime = new(len(pids) > 0)
	if len(pids) > 0 {
		r.RealtimeDetails = fmt.Sprintf("%s running (pid %d).", name, pids[0])
	} else {
		r.RealtimeDetails = fmt.Sprintf("%s (on-access scanning) is not running.", name)
	}
}

// clamavLastScan notes in r the newest scan found in the scan logs and its
// infected files; r is left as is when no log has a finished scan.
func (c *antivirusCheck) clamavLastScan(r *avResult) {
	var newest scanSummary
	for _, l := range c.opts.ClamAV.ScanLogs {
		b, err := fsutil.ReadTail(c.rootPath(l), 8<<20)
		if err != nil {
			continue
		}
		if s, ok := parseClamScanLog(b, time.Local); ok && s.End.After(newest.End) {
			newest = s
			newest.Log = l
		}
	}
	if !newest.End.IsZero() {
		r.LastScan = newest.End
		r.Infected = new(newest.Infected)
		r.InfectedDetails = newest.details()
	}
}

// clamd sends one command in the z (NUL-terminated) form and returns the
// reply. The whole exchange is bounded by the engine timeout: a clamd that
// accepts but does not answer is down, not a hang.
func (c *antivirusCheck) clamd(ctx context.Context, network, addr, cmd string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, c.opts.Timeout.D())
	defer cancel()
	conn, err := c.dial(ctx, network, addr)
	if err != nil {
		return "", err
	}
	defer conn.Close()
	if dl, ok := ctx.Deadline(); ok {
		conn.SetDeadline(dl)
	}
	stop := context.AfterFunc(ctx, func() { conn.SetDeadline(time.Unix(1, 0)) })
	defer stop()
	if _, err := conn.Write([]byte("z" + cmd + "\x00")); err != nil {
		return "", fmt.Errorf("send %s: %w", cmd, err)
	}
	var b []byte
	buf := make([]byte, 512)
	for len(b) < maxClamdReply && bytes.IndexByte(b, 0) < 0 {
		n, err := conn.Read(buf)
		b = append(b, buf[:n]...)
		switch {
		case err == nil:
		case errors.Is(err, io.EOF):
			return parseClamdReply(b)
		case errors.Is(err, os.ErrDeadlineExceeded):
			return "", fmt.Errorf("no reply to %s within %s", cmd, c.opts.Timeout.D())
		default:
			return "", fmt.Errorf("read reply to %s: %w", cmd, err)
		}
	}
	return parseClamdReply(b)
}

// parseClamdReply returns the reply up to its NUL terminator; a reply
// without one was cut short.
func parseClamdReply(b []byte) (string, error) {
	i := bytes.IndexByte(b, 0)
	if i < 0 {
		if len(b) == 0 {
			return "", errors.New("connection closed without a reply")
		}
		return "", fmt.Errorf("reply not terminated: %q", textfmt.Sanitize(string(b[:min(len(b), 80)])))
	}
	return strings.TrimSpace(string(b[:i])), nil
}

// clamdVersion is clamd's VERSION reply:
//
//	ClamAV 1.4.6/27400/Sun Nov 22 00:19:29 2026
//	ClamAV 1.4.6            (no daily database loaded)
type clamdVersion struct {
	Engine, Signatures string
	Date               time.Time // local time of clamd's host
}

func parseClamdVersion(s string) (clamdVersion, bool) {
	rest, ok := strings.CutPrefix(s, "ClamAV ")
	if !ok {
		return clamdVersion{}, false
	}
	parts := strings.SplitN(rest, "/", 3)
	v := clamdVersion{Engine: strings.TrimSpace(parts[0])}
	if v.Engine == "" || strings.ContainsAny(v.Engine, " \t") {
		return clamdVersion{}, false
	}
	if len(parts) == 3 {
		if _, err := strconv.ParseUint(parts[1], 10, 32); err != nil {
			return clamdVersion{}, false
		}
		v.Signatures = parts[1]
		if t, err := time.ParseInLocation(time.ANSIC, strings.TrimSpace(parts[2]), time.Local); err == nil {
			v.Date = t
		}
	}
	return v, true
}

// readClamdConf parses clamd.conf: "Option value" lines, # comments. The
// first value of an option wins (TCPAddr may be repeated).
func readClamdConf(path string) (map[string]string, error) {
	b, err := fsutil.ReadTail(path, 1<<20)
	if err != nil {
		return map[string]string{}, err
	}
	return parseClamdConf(b), nil
}

func parseClamdConf(b []byte) map[string]string {
	m := map[string]string{}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || line[0] == '#' {
			continue
		}
		k, v, _ := strings.Cut(line, " ")
		if i := strings.IndexByte(k, '\t'); i >= 0 {
			k, v = k[:i], k[i+1:]+" "+v
		}
		v = strings.Trim(strings.TrimSpace(v), `"`)
		if _, dup := m[k]; !dup {
			m[k] = v
		}
	}
	return m
}

// cvdHeader is the 512-byte header of a .cvd/.cld/.cud signature database:
//
//	ClamAV-VDB:build time:version:signatures:functionality level:MD5:dsig:builder:build time in seconds
type cvdHeader struct {
	File    string
	Version int
	Sigs    int
	Built   time.Time
	Builder string
}

// parseCVDHeader parses a database header. The build time in seconds
// (field 8) is used when present; old files only have the text form,
// "22 Nov 2026 00-19 +0000".
func parseCVDHeader(b []byte) (cvdHeader, error) {
	if len(b) > cvdHeaderSize {
		b = b[:cvdHeaderSize]
	}
	s := strings.TrimRight(string(b), " \n\r\x00")
	if i := strings.IndexAny(s, "\n\r"); i >= 0 {
		s = s[:i]
	}
	f := strings.Split(s, ":")
	if len(f) < 8 || f[0] != "ClamAV-VDB" {
		return cvdHeader{}, errors.New("not a ClamAV database header")
	}
	var h cvdHeader
	var err error
	if h.Version, err = strconv.Atoi(f[2]); err != nil || h.Version < 0 {
		return cvdHeader{}, fmt.Errorf("bad version %q", f[2])
	}
	if h.Sigs, err = strconv.Atoi(f[3]); err != nil || h.Sigs < 0 {
		return cvdHeader{}, fmt.Errorf("bad signature count %q", f[3])
	}
	h.Builder = f[7]
	if len(f) > 8 {
		if sec, err := strconv.ParseInt(strings.TrimSpace(f[8]), 10, 64); err == nil && sec > 0 && sec < 1<<40 {
			h.Built = time.Unix(sec, 0)
		}
	}
	if h.Built.IsZero() {
		t, err := time.Parse("02 Jan 2006 15-04 -0700", f[1])
		if err != nil {
			return cvdHeader{}, fmt.Errorf("bad build time %q", f[1])
		}
		h.Built = t
	}
	return h, nil
}

// readCVDHeaders reads the header of every database container in dir.
func readCVDHeaders(dir string) ([]cvdHeader, error) {
	var hs []cvdHeader
	var errs []error
	for _, ext := range []string{"cvd", "cld", "cud"} {
		ms, err := filepath.Glob(filepath.Join(dir, "*."+ext))
		if err != nil {
			return nil, err
		}
		for _, p := range ms {
			b, err := fsutil.ReadHead(p, cvdHeaderSize)
			if err != nil {
				errs = append(errs, err)
				continue
			}
			h, err := parseCVDHeader(b)
			if err != nil {
				errs = append(errs, fmt.Errorf("%s: %w", p, err))
				continue
			}
			h.File = filepath.Base(p)
			hs = append(hs, h)
		}
	}
	if len(hs) == 0 && len(errs) == 0 {
		errs = append(errs, fmt.Errorf("no *.cvd, *.cld or *.cud files in %s", dir))
	}
	return hs, errors.Join(errs...)
}

// newestSignatures picks the header that dates the signatures: the daily
// database (updated several times a day), else the newest of all.
func newestSignatures(hs []cvdHeader) (cvdHeader, bool) {
	var best cvdHeader
	bestDaily := false
	for _, h := range hs {
		daily := strings.HasPrefix(h.File, "daily.")
		switch {
		case best.File == "", daily && !bestDaily, daily == bestDaily && h.Built.After(best.Built):
			best, bestDaily = h, daily
		}
	}
	return best, best.File != ""
}

// parseFreshclamLog returns the time of the last successful database
// check or update in freshclam's log:
//
//	Wed Nov 25 00:26:14 2026 -> ClamAV update process started at Wed Nov 25 00:26:14 2026
//	Wed Nov 25 00:26:14 2026 -> daily.cld database is up-to-date (version: 27400, sigs: 1, f-level: 90, builder: l2agent)
//	Wed Nov 25 00:26:20 2026 -> daily.cvd updated (version: 27401, sigs: 2067100, f-level: 90, builder: raynman)
//
// Without LogTime the lines have no time; the run's start line dates them.
func parseFreshclamLog(b []byte, loc *time.Location) time.Time {
	var last, run time.Time
	for _, line := range strings.Split(string(b), "\n") {
		var ts time.Time
		if stamp, rest, ok := strings.Cut(line, " -> "); ok {
			if t, err := time.ParseInLocation(time.ANSIC, stamp, loc); err == nil {
				ts, line = t, rest
			}
		}
		if _, started, ok := strings.Cut(line, "update process started at "); ok {
			if t, err := time.ParseInLocation(time.ANSIC, strings.TrimSpace(started), loc); err == nil {
				run = t
			}
			continue
		}
		if strings.Contains(line, "ERROR") || strings.HasPrefix(line, "!") {
			continue
		}
		if strings.Contains(line, "database is up-to-date") || strings.Contains(line, " updated (version: ") ||
			strings.HasPrefix(line, "Database updated (") {
			t := ts
			if t.IsZero() {
				t = run
			}
			if t.After(last) {
				last = t
			}
		}
	}
	return last
}

// scanSummary is the last complete scan of a clamscan/clamdscan log.
type scanSummary struct {
	Log      string
	Infected int
	End      time.Time
	Found    []string // "path: Signature FOUND" lines of that scan
}

func (s scanSummary) details() string {
	var b strings.Builder
	fmt.Fprintf(&b, "Scan ended %s (log %s): %d infected files.\n", s.End.UTC().Format(time.RFC3339), textfmt.Sanitize(s.Log), s.Infected)
	for i, f := range s.Found {
		if i == maxFoundListed {
			fmt.Fprintf(&b, "  … and %d more\n", len(s.Found)-i)
			break
		}
		fmt.Fprintf(&b, "  %s\n", textfmt.Sanitize(f))
	}
	return b.String()
}

// parseClamScanLog returns the last complete summary of a clamscan or
// clamdscan --log file:
//
//	/srv/upload/x.exe: Win.Test.EICAR_HDB-1 FOUND
//	----------- SCAN SUMMARY -----------
//	Infected files: 1
//	End Date:   2026:11:25 00:18:59
//
// with the FOUND lines since the previous summary.
func parseClamScanLog(b []byte, loc *time.Location) (scanSummary, bool) {
	var last, cur scanSummary
	var found []string
	inSummary, ok := false, false
	for _, line := range strings.Split(string(b), "\n") {
		line = strings.TrimRight(line, "\r")
		switch {
		case strings.HasSuffix(line, " FOUND") && strings.Contains(line, ": ") && !inSummary:
			found = append(found, line)
		case strings.Contains(line, "SCAN SUMMARY"):
			inSummary, cur = true, scanSummary{Infected: -1}
		case inSummary && strings.HasPrefix(line, "Infected files:"):
			if n, err := strconv.Atoi(strings.TrimSpace(strings.TrimPrefix(line, "Infected files:"))); err == nil && n >= 0 {
				cur.Infected = n
			}
		case inSummary && strings.HasPrefix(line, "End Date:"):
			t, err := time.ParseInLocation("2006:01:02 15:04:05", strings.TrimSpace(strings.TrimPrefix(line, "End Date:")), loc)
			if err == nil && cur.Infected >= 0 {
				cur.End, cur.Found = t, slices.Clone(found)
				last, ok = cur, true
			}
			inSummary, found = false, nil
		}
	}
	return last, ok
}
