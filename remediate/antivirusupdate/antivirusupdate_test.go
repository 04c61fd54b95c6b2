package antivirusupdate

import (
	"fmt"
	"os"
	"path/filepath"
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

// header is the 512-byte header of a signature database of that version.
func header(version int) string {
	h := fmt.Sprintf("ClamAV-VDB:25 Nov 2026 07-16 +0000:%d:2077364:90:2f4d1a4b9e2c:sig:l2agent:1795590960", version)
	return fmt.Sprintf("%-512s", h)
}

// writeDB writes a database file with a header of version in dir.
func writeDB(t *testing.T, dir, name string, version int) {
	t.Helper()
	require.NoError(t, os.MkdirAll(dir, 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(dir, name), []byte(header(version)+"payload"), 0o644))
}

// freshclam turns the daily.cvd into a newer daily.cld: the signatures are
// newer, in the database directory freshclam.conf names.
func TestCommand(t *testing.T) {
	root := t.TempDir()
	db := filepath.Join(root, "srv/clamav")
	require.NoError(t, os.MkdirAll(filepath.Join(root, "etc/clamav"), 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(root, "etc/clamav/freshclam.conf"), []byte("# comment\nDatabaseDirectory /srv/clamav\nDatabaseMirror database.clamav.net\n"), 0o644))
	writeDB(t, db, "daily.cvd", 27000)
	writeDB(t, db, "main.cvd", 62)
	tc := remediatetest.CommandCase{Action: "antivirus_update", Check: "antivirus", Params: "{}", Root: root,
		Script:   fmt.Sprintf("printf '%%s' '%s' > '%s/daily.cld' && rm '%s/daily.cvd'\necho 'daily.cld updated (version: 27001)'", header(27001), db, db),
		WantArgs: []string{"--stdout"}, WantResult: "success: signatures updated; alert cleared"}
	tc.Run(t)
	v := versions(db)
	require.Equal(t, map[string]int{"daily": 27001, "main": 62}, v)
}

// freshclam exits 0 when the mirror has nothing newer, and when it could
// not write the database directory a sandbox left read-only. Either is a
// failure, with the reason.
func TestNoEffect(t *testing.T) {
	const ran = "failed: STANDIN --stdout exited 0; no effect: "
	t.Run("signatures not newer", func(t *testing.T) {
		root := t.TempDir()
		db := filepath.Join(root, "var/lib/clamav")
		writeDB(t, db, "daily.cld", 27400)
		writeDB(t, db, "main.cvd", 62)
		tc := remediatetest.CommandCase{Action: "antivirus_update", Check: "antivirus", Params: "{}", Root: root,
			Script:   "echo 'daily.cld database is up-to-date (version: 27400, sigs: 1, f-level: 90, builder: l2agent)'",
			WantArgs: []string{"--stdout"}, WantResult: ran + "signatures not newer (daily 27400, main 62 in " + db + ")"}
		tc.Run(t)
	})
	t.Run("read-only file system", func(t *testing.T) {
		root := t.TempDir()
		db := filepath.Join(root, "var/lib/clamav")
		remediatetest.ReadOnlyTmpfs(t, db, func() { writeDB(t, db, "daily.cvd", 27000) })
		tc := remediatetest.CommandCase{Action: "antivirus_update", Check: "antivirus", Params: "{}", Root: root,
			Script:   fmt.Sprintf("printf x > '%s/daily.cld' 2>/dev/null", db), // fails; exits 0 all the same
			WantArgs: []string{"--stdout"}, WantResult: ran + "read-only file system (" + db + ")"}
		tc.Run(t)
	})
	t.Run("no database", func(t *testing.T) {
		root := t.TempDir()
		tc := remediatetest.CommandCase{Action: "antivirus_update", Check: "antivirus", Params: "{}", Root: root,
			WantArgs: []string{"--stdout"}, WantResult: ran + "no signature database in " + filepath.Join(root, "var/lib/clamav")}
		tc.Run(t)
	})
}
