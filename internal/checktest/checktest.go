// Package checktest holds helpers shared by the tests of the check units
// (checks/<kind>/): observations indexed by metric and labels, a unit's
// testdata, and the programs and privileges a real-system test needs.
package checktest

import (
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/l2agent/l2agent/checks"
)

// Key names o by its metric and sorted labels, as in
// `disk_used_ratio{mountpoint="/"}`.
func Key(o checks.Observation) string {
	if len(o.Labels) == 0 {
		return o.Metric
	}
	ls := make([]string, 0, len(o.Labels))
	for k, v := range o.Labels {
		ls = append(ls, k+"="+strconv.Quote(v))
	}
	slices.Sort(ls)
	return o.Metric + "{" + strings.Join(ls, ",") + "}"
}

// ByKey indexes the values of obs by Key, failing on duplicates.
func ByKey(t testing.TB, obs []checks.Observation) map[string]float64 {
	t.Helper()
	m := make(map[string]float64, len(obs))
	for _, o := range obs {
		k := Key(o)
		_, dup := m[k]
		require.False(t, dup, "duplicate observation %s", k)
		m[k] = o.Value
	}
	return m
}

// ByKeyObs indexes obs by Key; a later duplicate wins.
func ByKeyObs(obs []checks.Observation) map[string]checks.Observation {
	m := make(map[string]checks.Observation, len(obs))
	for _, o := range obs {
		m[Key(o)] = o
	}
	return m
}

// ObsByKey indexes the values (failing on duplicates) and the details of
// obs by Key.
func ObsByKey(t testing.TB, obs []checks.Observation) (map[string]float64, map[string]string) {
	t.Helper()
	details := map[string]string{}
	for k, o := range ByKeyObs(obs) {
		details[k] = o.Details
	}
	return ByKey(t, obs), details
}

// Testdata returns the file testdata/<name> of the package under test.
func Testdata(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	require.NoError(t, err)
	return b
}

// NeedTool returns the path of a program a test needs. A missing program
// fails the test under CI=true (deploy/testenv/install.sh installs it) and
// skips it otherwise.
func NeedTool(t testing.TB, name string) string {
	t.Helper()
	if p, err := exec.LookPath(name); err == nil {
		return p
	}
	for _, dir := range []string{"/usr/sbin", "/sbin", "/usr/bin"} {
		if p := filepath.Join(dir, name); isExecutable(p) {
			return p
		}
	}
	if os.Getenv("CI") == "true" {
		t.Fatalf("CI=true: %s is missing; deploy/testenv/install.sh installs it", name)
	}
	t.Skipf("%s is not installed (deploy/testenv/install.sh installs it)", name)
	return ""
}

// NeedRoot skips (or, under CI=true, fails) a test that must run as root.
func NeedRoot(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		if os.Getenv("CI") == "true" {
			t.Fatal("CI=true: this test must run as root")
		}
		t.Skip("needs root")
	}
}

func isExecutable(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0
}

// ProcessLines counts the lines of a process table (a check's diagnostics)
// after its header.
func ProcessLines(s string) int {
	n := 0
	for l := range strings.Lines(s) {
		if f := strings.Fields(l); len(f) > 0 && f[0] != "PID" {
			if _, err := strconv.Atoi(f[0]); err == nil {
				n++
			}
		}
	}
	return n
}
