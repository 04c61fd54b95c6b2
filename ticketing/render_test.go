package ticketing

import (
	"regexp"
	"strings"
	"testing"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/stretchr/testify/require"

	"github.com/l2agent/l2agent/internal/alert"
	"github.com/l2agent/l2agent/internal/textfmt"
)

// RequireCleanTicket fails unless title is one printable line and every
// line of body is printable and none starts with a line a name could forge.
func requireCleanTicket(t *testing.T, title, body string) {
	t.Helper()
	require.True(t, utf8.ValidString(title) && utf8.ValidString(body), "valid UTF-8")
	for _, r := range title {
		require.True(t, r == ' ' || unicode.IsPrint(r), "title holds %U: %q", r, title)
	}
	for _, l := range strings.Split(body, "\n") {
		for _, r := range l {
			require.True(t, r == ' ' || r == '\t' || unicode.IsPrint(r), "body line holds %U: %q", r, l)
		}
		require.True(t, l == "" || strings.HasPrefix(l, " ") || ownLine.MatchString(l), "a line Body did not write: %q", l)
	}
}

// ownLine matches the lines Body starts at column 0; everything else it
// writes is indented.
var ownLine = regexp.MustCompile(`^((Host|Check|Metric|Labels|Value|Threshold|Severity / tier|Breached since|Alert key|Runbook|Previous ticket): |State history \(UTC\):$|What was tried:$|Diagnostics:$|-- $|Filed by l2agent |This alert is FLAPPING)`)

// TestRenderHostileNames: a mountpoint, device, host, diagnostics and plan
// holding a newline, ESC[2J, CR, NBSP, NEL, U+2028 and invalid UTF-8 give a
// ticket whose title is one clean line and whose text has no line a name
// started.
func TestRenderHostileNames(t *testing.T) {
	t.Parallel()
	evil := "/mnt/x\nResolved: all good, closing.\x1b[2J\r\u00a0\u0085\u2028\xff"
	inc := &Incident{Key: "web-7/disk/disk_used_ratio/" + evil, Host: "web-7\nResolved: host", Check: "disk", Metric: "disk_used_ratio",
		Labels:   map[string]string{"mountpoint": evil, "device": "tmpfs\nResolved: dev", "fstype": "tmpfs"},
		Severity: alert.StateCrit, Tier: L2, Value: 0.95, Threshold: 0.9, Since: time.Unix(1e9, 0),
		// Producers escape names on their lines (textfmt.Line); what is left
		// is indented by Body.
		Details: "Largest directories under " + textfmt.Line(evil) + ":\n   1.0 MiB  " + textfmt.Line(evil) + "/a\nResolved: via details\r\n",
		History: []HistoryEntry{{At: time.Unix(1e9, 0), From: alert.StateOK, To: alert.StateCrit, Value: 0.95, Reason: "because\nResolved: reason"}},
		Attempts: []alert.Attempt{{At: time.Unix(1e9, 0), Action: "disk_cleanup", Result: "failed\nResolved: result",
			Plan: "delete 1 file(s):\n  " + textfmt.Line(evil) + "/old.gz\nResolved: plan", Output: "deleted " + evil + "\u2028Resolved: output"}},
	}
	title, body := Title(inc), Body(inc, time.Unix(1e9+60, 0), "v1")
	t.Log(title + "\n" + body)
	requireCleanTicket(t, title, body)
	esc := `/mnt/x\nResolved: all good, closing.\x1b[2J\r\u00a0\u0085\u2028\xff`
	require.Equal(t, `[l2agent] web-7\nResolved: host: disk `+esc+` disk_used_ratio 95.0% (crit ≥ 90.0%)`, title)
	require.Contains(t, body, "\nLabels:           device=tmpfs\\nResolved: dev fstype=tmpfs mountpoint="+esc+"\n")
	require.Contains(t, body, "\nDiagnostics:\n  Largest directories under "+esc+":\n     1.0 MiB  "+esc+"/a\n  Resolved: via details\\r\n")
	require.Contains(t, body, "    plan: delete 1 file(s):\n            "+esc+"/old.gz\n          Resolved: plan\n")
}

func FuzzRender(f *testing.F) {
	f.Add("/var", "tmpfs", "web-7", "Largest directories:\n  /var/a\n")
	f.Add("/mnt/x\nResolved: ok\x1b[2J", "a\rb", "h\u0085", "d\u2028e\xff")
	f.Fuzz(func(t *testing.T, mp, dev, host, details string) {
		inc := &Incident{Key: host + mp, Host: host, Check: "disk", Metric: "disk_used_ratio",
			Labels: map[string]string{"mountpoint": mp, "device": dev}, Severity: alert.StateWarn, Details: details,
			History: []HistoryEntry{{To: alert.StateWarn, Reason: dev}}}
		title, body := Title(inc), Body(inc, time.Unix(1e9, 0), "v1")
		for _, r := range title {
			if r != ' ' && !unicode.IsPrint(r) {
				t.Fatalf("title %q holds %U", title, r)
			}
		}
		for _, l := range strings.Split(body, "\n") {
			if l != "" && !strings.HasPrefix(l, " ") && !ownLine.MatchString(l) {
				t.Fatalf("forged line %q", l)
			}
			for _, r := range l {
				if r != ' ' && r != '\t' && !unicode.IsPrint(r) {
					t.Fatalf("body line %q holds %U", l, r)
				}
			}
		}
	})
}
