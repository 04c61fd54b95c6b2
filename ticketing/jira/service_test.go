package jira

import (
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/l2agent/l2agent/configs"
	"github.com/l2agent/l2agent/internal/alert"
	"github.com/l2agent/l2agent/internal/testkit"
	"github.com/l2agent/l2agent/ticketing"
)

// newService is the ticketing service (default policy) over a store of its
// own, delivering to be as backend "jira".
func newService(t *testing.T, be ticketing.Ticketer) (*ticketing.Service, *ticketing.Manager) {
	t.Helper()
	dir := t.TempDir()
	log := testkit.QuietLogger()
	st, err := ticketing.OpenStore(filepath.Join(dir, "l2agent.db"), false, log)
	require.NoError(t, err)
	var cfg configs.Ticketing
	cfg.ApplyDefaults(dir)
	svc := ticketing.NewService(cfg, st, []string{"jira"}, map[string]ticketing.Ticketer{"jira": be}, "test", log, nil)
	t.Cleanup(func() { svc.Stop() })
	return svc, svc.Manager
}

func transitionAt(key string, at time.Time, from, to alert.State, v float64) alert.Transition {
	return alert.Transition{Alert: alert.Alert{
		Key: key, Host: "web-7", Check: "disk", Metric: "disk_used_ratio", Labels: map[string]string{"mountpoint": "/var"},
		State: to, Value: v, Threshold: map[alert.State]float64{alert.StateWarn: 0.8, alert.StateOK: 0.8}[to], BreachAt: at,
	}, From: from, At: at, Reason: "disk_used_ratio"}
}

// fire: key goes from ok to warn at at; settle: back to ok.
func fire(key string, at time.Time) alert.Transition {
	return transitionAt(key, at, alert.StateOK, alert.StateWarn, 0.85)
}

func settle(key string, at time.Time) alert.Transition {
	return transitionAt(key, at, alert.StateWarn, alert.StateOK, 0.1)
}
