package antivirusupdate

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/l2agent/l2agent/configs"
	"github.com/l2agent/l2agent/internal/remediatetest"
)

func TestDefaults(t *testing.T) {
	p := configs.Default().Remediation.Actions["antivirus_update"]
	require.Equal(t, "/usr/bin/freshclam", p.Settings.(*Settings).Command)
	require.Equal(t, configs.Duration(10*time.Minute), p.Timeout, "a signature download may take 10 minutes")
}

func TestCommand(t *testing.T) {
	tc := remediatetest.CommandCase{Action: "antivirus_update", Check: "antivirus", Params: "{}",
		Script:   "echo 'daily.cvd updated (version: 27000)'",
		WantArgs: []string{"--stdout"}, WantResult: "success: signatures updated; alert cleared"}
	tc.Run(t)
}
