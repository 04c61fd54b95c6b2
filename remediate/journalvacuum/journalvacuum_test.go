package journalvacuum

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/l2agent/l2agent/configs"
	"github.com/l2agent/l2agent/internal/remediatetest"
)

func TestDefaults(t *testing.T) {
	require.Equal(t, "/usr/bin/journalctl", configs.Default().Remediation.Actions["journal_vacuum"].Settings.(*Settings).Command)
}

func TestCommand(t *testing.T) {
	tc := remediatetest.CommandCase{Action: "journal_vacuum", Check: "disk", Params: "{vacuum_size: 500M, vacuum_time: 7d}",
		Script:   "echo 'Vacuuming done, freed 96.0M of archived journals from /var/log/journal.' >&2",
		WantArgs: []string{"--vacuum-size=500M", "--vacuum-time=604800s"}, WantResult: "success: journal vacuumed, freed 96.0 MiB; alert cleared", WantFreed: 96 << 20}
	tc.Run(t)
}
