package antivirus

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/l2agent/l2agent/configs"
)

func TestAntivirusConfig(t *testing.T) {
	t.Parallel()
	cfg, err := configs.Load("testdata/default-rules.yaml")
	require.NoError(t, err, "the proposed default rules are valid")
	require.Equal(t, "/etc/clamav/clamd.conf", cfg.Checks[0].Options.(*Options).ClamAV.ClamdConf)

	_, err = configs.Parse("bad.yml", []byte(`checks:
  - name: av
    kind: antivirus
    antivirus:
      engines: [clamav, sophos, clamav]
      clamav:
        address: "clamd"
        scan_logs: [scan.log]
      processes:
        - name: clamav
          processes: [/usr/bin/x]
        - name: edr
`))
	require.Error(t, err)
	for _, want := range []string{
		`antivirus engine "sophos": want one of clamav, mdatp`,
		`antivirus engine "clamav" listed twice`,
		`antivirus clamav.address "clamd": want a unix socket path or host:port`,
		`antivirus scan log "scan.log": must be an absolute path`,
		`antivirus processes name "clamav" is reserved`,
		`antivirus process name "/usr/bin/x": want a program name without a path`,
		`antivirus engine "edr": list processes, units or both`,
	} {
		require.ErrorContains(t, err, want)
	}
}
