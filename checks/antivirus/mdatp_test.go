package antivirus

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/l2agent/l2agent/checks"
	"github.com/l2agent/l2agent/configs"
	"github.com/l2agent/l2agent/internal/checktest"
)

func TestParseMDATPHealth(t *testing.T) {
	t.Parallel()
	h, err := parseMDATPHealth(checktest.Testdata(t, "mdatp-health-healthy.json"))
	require.NoError(t, err)
	require.Equal(t, mdatpHealth{Healthy: true, Licensed: new(true), AppVersion: "101.24092.0004", EngineVersion: "1.1.24090.1005",
		EngineLoadStatus: "Engine load succeeded", DefinitionsVersion: "1.421.1210.0", DefinitionsStatus: "upToDate",
		DefinitionsUpdated: time.UnixMilli(1795305600000), DefinitionsMinutesAgo: new(95.0), RealTime: new(true), RealTimeAvailable: new(true)}, h)

	h, err = parseMDATPHealth(checktest.Testdata(t, "mdatp-health-unhealthy.json"))
	require.NoError(t, err)
	require.False(t, h.Healthy)
	require.True(t, h.EngineNotLoaded)
	require.Equal(t, []string{"no active event provider", "definitions are out of date"}, h.HealthIssues)
	require.Equal(t, "unavailable", h.DefinitionsStatus)
	require.Equal(t, new(false), h.RealTime)

	// Plain values and numbers instead of setting objects and strings.
	h, err = parseMDATPHealth([]byte(`{"healthy":true,"realTimeProtectionEnabled":true,"definitionsUpdated":1795305600000,"definitionsStatus":"up_to_date","healthIssues":[{"id":1}]}`))
	require.NoError(t, err)
	require.Equal(t, new(true), h.RealTime)
	require.Equal(t, time.UnixMilli(1795305600000), h.DefinitionsUpdated)
	require.Equal(t, "up_to_date", h.DefinitionsStatus)
	require.Equal(t, []string{`{"id":1}`}, h.HealthIssues)

	_, err = parseMDATPHealth([]byte(`{"licensed":true}`))
	require.ErrorContains(t, err, `no "healthy" field`)
	_, err = parseMDATPHealth([]byte("ERROR: daemon is not running"))
	require.ErrorContains(t, err, "not JSON")
}

func FuzzParseMDATPHealth(f *testing.F) {
	f.Add(checktest.Testdata(f, "mdatp-health-healthy.json"))
	f.Add(checktest.Testdata(f, "mdatp-health-unhealthy.json"))
	f.Add([]byte(`{"healthy":{"value":true},"definitionsUpdated":"1e400","definitionsUpdatedMinutesAgo":"NaN"}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		h, err := parseMDATPHealth(b)
		if err != nil {
			return
		}
		if h.DefinitionsMinutesAgo != nil && *h.DefinitionsMinutesAgo < 0 {
			t.Fatal("negative age")
		}
	})
}

// writeScript writes an executable shell script standing in for a tool.
func writeScript(t *testing.T, dir, name, body string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	require.NoError(t, os.WriteFile(p, []byte("#!/bin/sh\n"+body), 0o755))
	return p
}

// TestMDATPStandIn runs a stand-in mdatp that prints the documented JSON.
func TestMDATPStandIn(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	healthy, err := filepath.Abs("testdata/mdatp-health-healthy.json")
	require.NoError(t, err)
	unhealthy, err := filepath.Abs("testdata/mdatp-health-unhealthy.json")
	require.NoError(t, err)
	state := filepath.Join(dir, "state")
	mdatp := writeScript(t, dir, "mdatp", `[ "$1 $2 $3" = "health --output json" ] || { echo "unexpected: $*" >&2; exit 2; }
case "$(cat `+state+`)" in
healthy) cat `+healthy+` ;;
unhealthy) cat `+unhealthy+` ;;
*) echo "ERROR: Could not connect to the daemon. Is the service running?" >&2; exit 1 ;;
esac
`)
	c, err := checks.New(configs.Check{Name: "av", Kind: "antivirus", Options: &Options{
		Engines: []string{"mdatp"}, MDATP: MDATPOptions{Path: mdatp}}}, checks.Env{})
	require.NoError(t, err)
	now := time.UnixMilli(1795305600000).Add(3 * time.Hour)
	c.(*antivirusCheck).now = func() time.Time { return now }

	require.NoError(t, os.WriteFile(state, []byte("healthy"), 0o644))
	obs, err := c.Run(context.Background())
	require.NoError(t, err)
	got, details := checktest.ObsByKey(t, obs)
	require.Equal(t, map[string]float64{
		`antivirus_up{engine="mdatp"}`: 1, `antivirus_signature_age_seconds{engine="mdatp"}`: 3 * 3600,
		`antivirus_realtime_protection{engine="mdatp"}`:                                                   1,
		`antivirus_engine_info{engine="mdatp",signature_version="1.421.1210.0",version="101.24092.0004"}`: 1,
	}, got)
	require.Equal(t, "Defender reports healthy. Engine: Engine load succeeded.", details[`antivirus_up{engine="mdatp"}`])

	require.NoError(t, os.WriteFile(state, []byte("unhealthy"), 0o644))
	obs, err = c.Run(context.Background())
	require.NoError(t, err)
	got, details = checktest.ObsByKey(t, obs)
	require.Equal(t, 0.0, got[`antivirus_up{engine="mdatp"}`])
	require.Equal(t, 0.0, got[`antivirus_realtime_protection{engine="mdatp"}`])
	require.Equal(t, float64(now.Sub(time.UnixMilli(1794096000000))/time.Second), got[`antivirus_signature_age_seconds{engine="mdatp"}`])
	require.Equal(t, "Defender reports UNHEALTHY. Engine: Engine not loaded. Not licensed (device not onboarded).\n  health issue: no active event provider\n  health issue: definitions are out of date",
		details[`antivirus_up{engine="mdatp"}`])
	require.Contains(t, details[`antivirus_signature_age_seconds{engine="mdatp"}`], "status unavailable")

	require.NoError(t, os.WriteFile(state, []byte("down"), 0o644))
	obs, err = c.Run(context.Background())
	require.NoError(t, err)
	got, details = checktest.ObsByKey(t, obs)
	require.Equal(t, map[string]float64{`antivirus_up{engine="mdatp"}`: 0}, got)
	require.Contains(t, details[`antivirus_up{engine="mdatp"}`], "Could not connect to the daemon")

	// A hung mdatp is cut at the timeout.
	c, err = checks.New(configs.Check{Name: "av", Kind: "antivirus", Options: &Options{
		Engines: []string{"mdatp"}, Timeout: configs.Duration(200 * time.Millisecond),
		MDATP: MDATPOptions{Path: writeScript(t, dir, "mdatp-hung", "exec sleep 30\n")}}}, checks.Env{})
	require.NoError(t, err)
	start := time.Now()
	obs, err = c.Run(context.Background())
	require.NoError(t, err)
	require.Less(t, time.Since(start), 4*time.Second)
	require.Equal(t, 0.0, obs[0].Value)
}
