package ticketing

import (
	"testing"

	"github.com/stretchr/testify/require"
)

// TestProcedureInTicket: a ticket whose rule has no runbook_url shows the
// standard procedure of its check's metric; one with a runbook_url shows
// the link instead; no procedure, no section.
func TestProcedureInTicket(t *testing.T) {
	h := newHarness(t, testConfig())
	var asked []string
	h.svc.Manager.SetProcedures(func(check, metric string) string {
		asked = append(asked, check+"/"+metric)
		if metric != "disk_used_ratio" {
			return ""
		}
		return "  What it means: the filesystem is filling up.\n"
	})
	require.NoError(t, h.svc.Manager.Handle(h.transition(0, "ok", "warn", 0.85)))
	ops := outbox(t, h.svc.Store, "rec")
	require.Len(t, ops, 1)
	require.Contains(t, ops[0].Ticket.Body, "\nStandard procedure (no runbook_url for this rule):\n  What it means: the filesystem is filling up.\n\nWhat was tried:")
	require.Equal(t, []string{"disk/disk_used_ratio"}, asked)
	h.flush()

	withURL := h.transition(0, "ok", "warn", 0.85)
	withURL.Key, withURL.Labels = `web-7/disk/disk_used_ratio{mountpoint="/srv"}`, map[string]string{"mountpoint": "/srv"}
	withURL.RunbookURL = "https://wiki.example.com/disk"
	require.NoError(t, h.svc.Manager.Handle(withURL))
	ops = outbox(t, h.svc.Store, "rec")
	require.Len(t, ops, 1)
	require.Contains(t, ops[0].Ticket.Body, "Runbook:          https://wiki.example.com/disk")
	require.NotContains(t, ops[0].Ticket.Body, "Standard procedure")
	h.flush()

	none := h.transition(0, "ok", "warn", 0.85)
	none.Key, none.Metric = `web-7/disk/disk_inodes_used_ratio{mountpoint="/var"}`, "disk_inodes_used_ratio"
	require.NoError(t, h.svc.Manager.Handle(none))
	ops = outbox(t, h.svc.Store, "rec")
	require.Len(t, ops, 1)
	require.NotContains(t, ops[0].Ticket.Body, "Standard procedure")

	h.svc.Manager.SetProcedures(nil)
	require.Empty(t, h.svc.Manager.procedure(&Incident{Check: "disk", Metric: "disk_used_ratio"}))
}
