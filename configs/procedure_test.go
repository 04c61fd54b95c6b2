package configs_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/l2agent/l2agent/configs"
)

// writeRunbooks writes a config naming runbook_file (relative) and the
// runbook file itself in a temp dir, and returns the config's path.
func writeRunbooks(t *testing.T, runbooks string) string {
	t.Helper()
	dir := t.TempDir()
	cfg := "runbook_file: runbooks.yaml\nchecks:\n  - {name: disk, kind: disk}\n  - {name: data, kind: disk}\n"
	require.NoError(t, os.WriteFile(filepath.Join(dir, "agent.yaml"), []byte(cfg), 0o600))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "runbooks.yaml"), []byte(runbooks), 0o600))
	return filepath.Join(dir, "agent.yaml")
}

func TestRunbookFile(t *testing.T) {
	path := writeRunbooks(t, `procedures:
  - metric: disk_used_ratio
    check: data
    meaning: The data volume of the database.
    first_checks: ["psql -c 'select pg_size_pretty(pg_database_size(current_database()))'"]
    escalate: always, to the DBA on call.
  - metric: disk_inodes_used_ratio
    extend: true
    first_checks: ["Our mail queue lives in /var/spool/postfix."]
`)
	cfg, err := configs.Load(path)
	require.NoError(t, err)

	p, doc, ok := cfg.ProcedureFor("data", "disk_used_ratio")
	require.True(t, ok)
	require.Equal(t, "The data volume of the database.", p.Meaning, "the entry for this check replaces the built-in procedure")
	require.Empty(t, doc, "no link to the built-in one")

	p, doc, ok = cfg.ProcedureFor("disk", "disk_used_ratio")
	require.True(t, ok)
	require.Contains(t, p.Meaning, "filling up", "another check keeps the built-in procedure")
	require.Equal(t, "checks/disk/README.md#procedures", doc)
	text := p.Text(doc)
	require.Contains(t, text, "First checks:\n    - df -hT")
	require.Contains(t, text, "(risk: ")
	require.Contains(t, text, "Reference: "+configs.DocsBase+"checks/disk/README.md#procedures")

	p, _, ok = cfg.ProcedureFor("disk", "disk_inodes_used_ratio")
	require.True(t, ok)
	require.Equal(t, "Our mail queue lives in /var/spool/postfix.", p.FirstChecks[len(p.FirstChecks)-1], "extend adds to the built-in lines")
	require.Greater(t, len(p.FirstChecks), 1)
	require.NotEmpty(t, p.SafeFixes, "and keeps the built-in fixes")

	_, _, ok = cfg.ProcedureFor("x", "no_such_metric")
	require.False(t, ok)
}

func TestRunbookFileErrors(t *testing.T) {
	for name, c := range map[string]struct{ file, want string }{
		"unknown metric": {"procedures:\n  - metric: disk_full\n    meaning: x\n",
			"runbooks.yaml:2:13: procedure 1: unknown metric \"disk_full\""},
		"check that does not emit it": {"procedures:\n  - metric: cpu_load_per_core\n    check: disk\n    meaning: x\n",
			"runbooks.yaml:3:12: procedure 1: no check \"disk\" of this config emits cpu_load_per_core"},
		"unknown key": {"procedures:\n  - metric: disk_used_ratio\n    meening: x\n",
			"runbooks.yaml:3:5: unknown key \"meening\""},
		"empty": {"procedures:\n  - metric: disk_used_ratio\n",
			"runbooks.yaml:2:5: procedure 1 (disk_used_ratio): empty"},
		"syntax": {"procedures: [\n", "runbooks.yaml:"},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := configs.Load(writeRunbooks(t, c.file))
			require.Error(t, err)
			require.Contains(t, err.Error(), c.want)
		})
	}
	dir := t.TempDir()
	path := filepath.Join(dir, "agent.yaml")
	require.NoError(t, os.WriteFile(path, []byte("runbook_file: missing.yaml\n"), 0o600))
	_, err := configs.Load(path)
	require.ErrorContains(t, err, "agent.yaml:1:15: runbook_file: open "+filepath.Join(dir, "missing.yaml"))
	require.True(t, strings.HasPrefix(err.Error(), path))
}
