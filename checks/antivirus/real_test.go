package antivirus_test

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/l2agent/l2agent/agent"
	"github.com/l2agent/l2agent/checks"
	"github.com/l2agent/l2agent/checks/antivirus"
	"github.com/l2agent/l2agent/configs"
	"github.com/l2agent/l2agent/internal/alert"
	"github.com/l2agent/l2agent/internal/checktest"
)

// testSignature is the "virus" of the custom database: a harmless string.
const testSignature = "L2AGENT-ANTIVIRUS-TEST-SIGNATURE-NOT-A-VIRUS"

// cvdHeader is a 512-byte database header as sigtool writes it.
func cvdHeader(version int, built time.Time) []byte {
	h := fmt.Sprintf("ClamAV-VDB:%s:%d:1:90:X:X:l2agent:%d", built.UTC().Format("02 Jan 2006 15-04 -0700"), version, built.Unix())
	return []byte(h + strings.Repeat(" ", 512-len(h)))
}

// writeDailyCUD writes daily.cud: an unsigned database container (the
// format sigtool --unsigned builds) holding daily.info and an .ndb body
// signature for testSignature. clamd loads it without a signed main
// database, and because its name starts with "daily." clamd reports its
// version and date in VERSION, as for an official daily.cvd.
func writeDailyCUD(t *testing.T, dir string, version int, built time.Time) {
	t.Helper()
	hdr := cvdHeader(version, built)
	ndb := []byte("L2agent.Test.Signature:0:*:" + hex.EncodeToString([]byte(testSignature)) + "\n")
	sum := sha256.Sum256(ndb)
	info := []byte(strings.TrimRight(string(hdr), " ") + "\n" + fmt.Sprintf("daily.ndb:%d:%x\n", len(ndb), sum))
	var tb bytes.Buffer
	tw := tar.NewWriter(&tb)
	for _, f := range []struct {
		name string
		body []byte
	}{{"daily.info", info}, {"daily.ndb", ndb}} {
		require.NoError(t, tw.WriteHeader(&tar.Header{Name: f.name, Mode: 0o644, Size: int64(len(f.body)), Format: tar.FormatUSTAR, ModTime: built}))
		_, err := tw.Write(f.body)
		require.NoError(t, err)
	}
	require.NoError(t, tw.Close())
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	_, err := zw.Write(tb.Bytes())
	require.NoError(t, err)
	require.NoError(t, zw.Close())
	require.NoError(t, os.WriteFile(filepath.Join(dir, "daily.cud"), append(hdr, gz.Bytes()...), 0o644))
}

func evaluate(t *testing.T, ev *agent.Evaluator, rules []configs.Rule, obs []checks.Observation, now time.Time) map[string]alert.State {
	t.Helper()
	ev.Evaluate("antivirus", rules, obs, nil, now)
	states := map[string]alert.State{}
	for _, a := range ev.Alerts() {
		states[strings.TrimPrefix(a.Key, "h/antivirus/")] = a.State
	}
	return states
}

// TestClamAVReal runs a real clamd on its own socket with a database the
// test writes, a real freshclam against a local mirror, a real clamscan,
// and evaluates the observations with the proposed default rules.
func TestClamAVReal(t *testing.T) {
	t.Parallel()
	clamd, clamscan, freshclam := checktest.NeedTool(t, "clamd"), checktest.NeedTool(t, "clamscan"), checktest.NeedTool(t, "freshclam")
	cfg, err := configs.Load("testdata/default-rules.yaml")
	require.NoError(t, err)
	var rules []configs.Rule
	for _, c := range cfg.Checks {
		if c.Kind == "antivirus" {
			rules = c.Rules
		}
	}
	require.NotEmpty(t, rules)

	dir := t.TempDir()
	db := filepath.Join(dir, "db")
	require.NoError(t, os.Mkdir(db, 0o755))
	built := time.Now().Add(-3 * 24 * time.Hour).Truncate(time.Second)
	writeDailyCUD(t, db, 27400, built)
	sock := filepath.Join(dir, "clamd.sock")
	conf := filepath.Join(dir, "clamd.conf")
	require.NoError(t, os.WriteFile(conf, []byte(fmt.Sprintf(
		"LocalSocket %s\nDatabaseDirectory %s\nForeground yes\nLogFile %s\nPidFile %s\nTemporaryDirectory %s\n",
		sock, db, filepath.Join(dir, "clamd.log"), filepath.Join(dir, "clamd.pid"), dir)), 0o644))

	cmd := exec.Command(clamd, "-c", conf)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	require.NoError(t, cmd.Start())
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	stopped := false
	stop := func() {
		if !stopped {
			stopped = true
			syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM)
			select {
			case <-exited:
			case <-time.After(10 * time.Second):
				syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
				<-exited
			}
		}
	}
	t.Cleanup(stop)
	start := time.Now()
	for {
		if c, err := net.Dial("unix", sock); err == nil {
			c.Close()
			break
		}
		select {
		case err := <-exited:
			log, _ := os.ReadFile(filepath.Join(dir, "clamd.log"))
			t.Fatalf("clamd exited: %v\n%s", err, log)
		case <-time.After(50 * time.Millisecond):
		}
		require.Less(t, time.Since(start), 60*time.Second, "clamd did not start")
	}
	t.Logf("clamd up in %s", time.Since(start))
	out, err := exec.Command(clamd, "--version").Output()
	require.NoError(t, err)
	version := regexp.MustCompile(`ClamAV ([0-9][^ /\n]*)`).FindStringSubmatch(string(out))
	require.NotNil(t, version, "%s", out)

	scanLog := filepath.Join(dir, "scan.log")
	freshLog := filepath.Join(dir, "freshclam.log")
	c, err := checks.New(configs.Check{Name: "antivirus", Kind: "antivirus", Options: &antivirus.Options{
		Engines: []string{"clamav"}, Timeout: configs.Duration(5 * time.Second),
		ClamAV: antivirus.ClamAVOptions{ClamdConf: conf, FreshclamLog: freshLog, ScanLogs: []string{scanLog},
			OnAccessProcess: "l2a-clamonacc"},
	}}, checks.Env{Paths: configs.Paths{Procfs: "/proc", Sysfs: "/sys", Rootfs: "/"}})
	require.NoError(t, err)
	run := func() (map[string]checks.Observation, []checks.Observation) {
		t.Helper()
		obs, err := c.Run(context.Background())
		require.NoError(t, err)
		m := map[string]checks.Observation{}
		for _, o := range obs {
			m[o.Metric] = o
		}
		return m, obs
	}

	ev := agent.NewEvaluator("h")
	got, obs := run()
	require.Equal(t, 1.0, got["antivirus_up"].Value, got["antivirus_up"].Details)
	require.Contains(t, got["antivirus_up"].Details, "ClamAV "+version[1]+"/27400/")
	require.Equal(t, map[string]string{"engine": "clamav", "version": version[1], "signature_version": "27400"}, got["antivirus_engine_info"].Labels)
	require.InDelta(t, 3*24*3600, got["antivirus_signature_age_seconds"].Value, 120)
	require.Contains(t, got["antivirus_signature_age_seconds"].Details, "daily.cud version 27400")
	require.Equal(t, 0.0, got["antivirus_realtime_protection"].Value)
	require.NotContains(t, got, "antivirus_infected_files", "no scan yet")
	require.NotContains(t, got, "antivirus_signature_update_timestamp_seconds", "freshclam never ran")
	states := evaluate(t, ev, rules, obs, time.Now())
	require.Equal(t, alert.StateOK, states[`antivirus_up{engine="clamav"}`])
	require.Equal(t, alert.StateWarn, states[`antivirus_signature_age_seconds{engine="clamav"}`], "3 days old: past 2 days")

	// freshclam against a local mirror whose databases are not newer: a
	// real "database is up-to-date" run in freshclam's log.
	www, fcdb := filepath.Join(dir, "www"), filepath.Join(dir, "fcdb")
	require.NoError(t, os.Mkdir(www, 0o755))
	require.NoError(t, os.Mkdir(fcdb, 0o755))
	for _, n := range []string{"daily", "main", "bytecode"} {
		body := append(cvdHeader(100, built), make([]byte, 1024)...)
		require.NoError(t, os.WriteFile(filepath.Join(www, n+".cvd"), body, 0o644))
		require.NoError(t, os.WriteFile(filepath.Join(fcdb, n+".cld"), body, 0o644))
	}
	mirror := httptest.NewServer(http.FileServer(http.Dir(www)))
	defer mirror.Close()
	fconf := filepath.Join(dir, "freshclam.conf")
	require.NoError(t, os.WriteFile(fconf, []byte(fmt.Sprintf("DatabaseDirectory %s\nUpdateLogFile %s\nLogTime yes\nDatabaseMirror %s\n"+
		"DNSDatabaseInfo no\nScriptedUpdates no\nTestDatabases no\nMaxAttempts 1\nConnectTimeout 5\nDatabaseOwner root\nForeground yes\n",
		fcdb, freshLog, mirror.URL)), 0o644))
	before := time.Now().Truncate(time.Second)
	out, err = exec.Command(freshclam, "--config-file="+fconf).CombinedOutput()
	require.NoError(t, err, "%s", out)
	got, _ = run()
	require.GreaterOrEqual(t, got["antivirus_signature_update_timestamp_seconds"].Value, float64(before.Unix()))
	mirror.Close()
	out, err = exec.Command(freshclam, "--config-file="+fconf).CombinedOutput()
	require.Error(t, err, "mirror gone: %s", out)
	got2, _ := run()
	require.Equal(t, got["antivirus_signature_update_timestamp_seconds"].Value, got2["antivirus_signature_update_timestamp_seconds"].Value, "a failed update keeps the last success")

	// On-access scanning: a process of that name runs.
	sleep, err := os.ReadFile(checktest.NeedTool(t, "sleep"))
	require.NoError(t, err)
	onacc := filepath.Join(dir, "l2a-clamonacc")
	require.NoError(t, os.WriteFile(onacc, sleep, 0o755))
	oa := exec.Command(onacc, "300")
	require.NoError(t, oa.Start())
	got, _ = run()
	require.Equal(t, 1.0, got["antivirus_realtime_protection"].Value)
	oa.Process.Kill()
	oa.Wait()

	// A scan that finds the test signature, logged with --log.
	files := filepath.Join(dir, "files")
	require.NoError(t, os.Mkdir(files, 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(files, "infected.txt"), []byte("xx "+testSignature+" xx\n"), 0o644))
	require.NoError(t, os.WriteFile(filepath.Join(files, "clean.txt"), []byte("nothing to see\n"), 0o644))
	scan := exec.Command(clamscan, "-d", db, "--log="+scanLog, "-r", files)
	out, err = scan.CombinedOutput()
	require.Equal(t, 1, scan.ProcessState.ExitCode(), "clamscan exits 1 when it finds a virus: %v\n%s", err, out)
	got, obs = run()
	require.Equal(t, 1.0, got["antivirus_infected_files"].Value)
	require.Contains(t, got["antivirus_infected_files"].Details, filepath.Join(files, "infected.txt")+": L2agent.Test.Signature.UNOFFICIAL FOUND")
	require.InDelta(t, float64(time.Now().Unix()), got["antivirus_last_scan_timestamp_seconds"].Value, 120)
	states = evaluate(t, ev, rules, obs, time.Now())
	require.Equal(t, alert.StateCrit, states[`antivirus_infected_files{engine="clamav"}`])

	// clamd stopped: the next run says down, the signature age still comes
	// from the database header, and the alert fires.
	stop()
	got, obs = run()
	require.Equal(t, 0.0, got["antivirus_up"].Value)
	require.Contains(t, got["antivirus_up"].Details, "is down")
	require.InDelta(t, 3*24*3600, got["antivirus_signature_age_seconds"].Value, 120)
	states = evaluate(t, ev, rules, obs, time.Now())
	require.Equal(t, alert.StateCrit, states[`antivirus_up{engine="clamav"}`])
}
