package alert

import (
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestStateMetricValue(t *testing.T) {
	require.Equal(t, -1.0, StateUnknown.MetricValue())
	require.Equal(t, 3.0, StateCrit.MetricValue())
	require.Equal(t, StateCrit, Worst(StateWarn, StateCrit))
	require.Equal(t, StateUnknown, Worst(StateUnknown, StatePending))
}

func TestParseKey(t *testing.T) {
	labels := map[string]string{"mountpoint": `/srv/a "b",c=d`, "device": "/dev/vda"}
	key := Key("web-7", "disk", "disk_used_ratio", labels)
	h, c, m, l, err := ParseKey(key)
	require.NoError(t, err)
	require.Equal(t, []string{"web-7", "disk", "disk_used_ratio"}, []string{h, c, m})
	require.Equal(t, labels, l)
	h, c, m, _, err = ParseKey("web-7/cpu")
	require.NoError(t, err)
	require.Equal(t, []string{"web-7", "cpu", ""}, []string{h, c, m})
	for _, bad := range []string{"", "web-7", "h/c/m", "h/c/m{a=b}", `h/c/m{a="b"`} {
		_, _, _, _, err := ParseKey(bad)
		require.Error(t, err, bad)
	}
}

// TestTransitionJSON: the JSON of an alert and its transition is served
// (/api/v1/status) and posted (webhook, file): it stays byte for byte what
// it was when these were agent.Alert and agent.Transition.
func TestTransitionJSON(t *testing.T) {
	at := time.Date(2026, 8, 1, 12, 0, 0, 0, time.UTC)
	full := Transition{Alert: Alert{Key: "web-7/disk/disk_used_ratio{mountpoint=\"/var\"}", Host: "web-7", Check: "disk", Metric: "disk_used_ratio",
		Labels: map[string]string{"mountpoint": "/var"}, State: StateCrit, Severity: StateCrit, Value: 0.93, Threshold: 0.9, Direction: "above",
		Since: at, BreachAt: at.Add(-time.Minute), Error: "e", Details: "d", RunbookURL: "https://r"},
		From: StateWarn, At: at, Reason: "why", Attempts: []Attempt{{At: at, Action: "disk_cleanup", Plan: "p", Output: "o", Result: "failed: x"}}, RemediationFailed: true}
	for _, tc := range []struct {
		t    Transition
		want string
	}{
		{full, `{"key":"web-7/disk/disk_used_ratio{mountpoint=\"/var\"}","host":"web-7","check":"disk","metric":"disk_used_ratio","labels":{"mountpoint":"/var"},"state":"crit","severity":"crit","value":0.93,"threshold":0.9,"direction":"above","since":"2026-08-01T12:00:00Z","breach_since":"2026-08-01T11:59:00Z","error":"e","details":"d","runbook_url":"https://r","from":"warn","at":"2026-08-01T12:00:00Z","reason":"why","attempts":[{"at":"2026-08-01T12:00:00Z","action":"disk_cleanup","plan":"p","output":"o","result":"failed: x","success":false}],"remediation_failed":true}`},
		{Transition{Alert: Alert{Key: "h/c", Host: "h", Check: "c"}}, `{"key":"h/c","host":"h","check":"c","state":"ok","severity":"ok","value":0,"since":"0001-01-01T00:00:00Z","from":"ok","at":"0001-01-01T00:00:00Z"}`},
	} {
		b, err := json.Marshal(tc.t)
		require.NoError(t, err)
		require.Equal(t, tc.want, string(b))
		var back Transition
		require.NoError(t, json.Unmarshal(b, &back))
		require.Equal(t, tc.t, back)
	}
}

// keyFmt is Key as first written (fmt's %q of each value): the reference
// the faster Key must equal, since keys are stored and matched.
func keyFmt(host, check, metric string, labels map[string]string) string {
	if metric == "" {
		return host + "/" + check
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%s/%s/%s{", host, check, metric)
	for i, k := range slices.Sorted(maps.Keys(labels)) {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, "%s=%q", k, labels[k])
	}
	b.WriteByte('}')
	return b.String()
}

// FuzzKeySameAsFmt: Key spells every key as fmt's %q did, for any labels,
// including values that need escapes and more names than its array holds.
func FuzzKeySameAsFmt(f *testing.F) {
	f.Add("web-7", "disk", "disk_used_ratio", "mountpoint", "/var", "device", "/dev/vda", 3)
	f.Add("h", "c", "m", "a", "\x00\"\\\n\u2028é\xff", "b", "", 12)
	f.Fuzz(func(t *testing.T, host, check, metric, k1, v1, k2, v2 string, extra int) {
		labels := map[string]string{k1: v1, k2: v2}
		for i := range extra % 16 {
			labels[fmt.Sprintf("l%02d", i)] = v1 + v2
		}
		if got, want := Key(host, check, metric, labels), keyFmt(host, check, metric, labels); got != want {
			t.Fatalf("Key = %q, want %q", got, want)
		}
	})
}

func BenchmarkKey(b *testing.B) {
	labels := map[string]string{"mountpoint": "/run/containerd/io.containerd.runtime.v2.task/k8s.io/0123456789abcdef/rootfs", "device": "overlay", "fstype": "overlay"}
	b.ReportAllocs()
	for b.Loop() {
		_ = Key("node-17", "disk", "disk_used_ratio", labels)
	}
}
