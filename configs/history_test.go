package configs_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/l2agent/l2agent/configs"
)

// ticketing.history: defaults that keep today's behaviour (rules off), and
// each bad value rejected at its line and column.
func TestHistoryConfig(t *testing.T) {
	cfg, err := configs.Parse("ok.yml", []byte("ticketing: {}\n"))
	require.NoError(t, err)
	h := cfg.Ticketing.History
	require.Equal(t, 180*24*time.Hour, h.Keep.D())
	require.Equal(t, []int{50, 2000, 3, 0, 0}, []int{h.MaxPerKey, h.MaxTotal, h.Shown, h.FixNotHolding.Count, h.SkipFailingAction})
	require.Equal(t, 7*24*time.Hour, h.SkipFailingFor.D())

	_, err = configs.Parse("bad.yml", []byte(`ticketing:
  history:
    keep: 0s
    max_per_key: -1
    max_total: 10
    shown: 11
    fix_not_holding: {count: 1}
    skip_failing_action: -2
    skip_failing_for: 0s
`))
	var errs configs.Errors
	require.ErrorAs(t, err, &errs)
	var got []string
	for _, e := range errs {
		got = append(got, fmt.Sprintf("%d:%d %s", e.Line, e.Column, e.Message))
	}
	require.ElementsMatch(t, []string{
		"3:11 ticketing.history.keep 0s: want a positive duration (leave the key out for the default)",
		"4:18 ticketing.history.max_per_key -1: want at least 1",
		"6:12 ticketing.history.shown 11: want 1 to 10 (past incidents a ticket lists per section)",
		"7:30 ticketing.history.fix_not_holding.count 1: want 0 (off) or at least 2 (fixes within the window, this one included)",
		"8:26 ticketing.history.skip_failing_action -2: want 0 (off) or at least 1 (failed runs in a row)",
		"9:23 ticketing.history.skip_failing_for 0s: want a positive duration (leave the key out for the default)",
	}, got)
}
