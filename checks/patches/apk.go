package patches

import (
	"bufio"
	"bytes"
	"context"
	"os"
	"strings"
)

// The apk backend (Alpine).
//
// `apk list --upgradable` reads the cached indexes (apk never refreshes
// them unless told to) and lists what `apk upgrade` would install. Alpine's
// indexes do not mark security fixes, so this backend reports no security
// count (patches_pending{kind="security"} and the oldest-pending metric
// are absent). The lists' age is that of the cached APKINDEX files; the
// last upgrade is the last change of the installed database.

func (c *patchesCheck) collectApk(ctx context.Context) (*patchStatus, error) {
	argv := []string{c.opts.Apk.Command, "list", "--upgradable"}
	out, err := c.command(ctx, argv...)
	if err != nil {
		return nil, err
	}
	if out.Exit != 0 {
		return nil, out.ExitError(argv)
	}
	st := &patchStatus{Backend: "apk", Updates: parseApkUpgradable(out.Stdout)}
	st.ListsTime = newestMtime(c.rootPath("/var/cache/apk/APKINDEX.*.tar.gz"), c.rootPath("/etc/apk/cache/APKINDEX.*.tar.gz"))
	if fi, err := os.Stat(c.rootPath("/lib/apk/db/installed")); err == nil {
		st.LastUpgrade = fi.ModTime()
	}
	return st, nil
}

// parseApkUpgradable parses `apk list --upgradable` (apk-tools 2.10+):
//
//	busybox-1.36.1-r19 x86_64 {busybox} (GPL-2.0-only) [upgradable from: busybox-1.36.1-r15]
func parseApkUpgradable(out []byte) []pkgUpdate {
	var us []pkgUpdate
	sc := bufio.NewScanner(bytes.NewReader(out))
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		i := strings.Index(line, "[upgradable from: ")
		if i < 0 || !strings.HasSuffix(line, "]") {
			continue
		}
		f := strings.Fields(line[:i])
		if len(f) < 2 {
			continue
		}
		name, cand, ok := splitApkPackage(f[0])
		if !ok {
			continue
		}
		_, old, ok := splitApkPackage(line[i+len("[upgradable from: ") : len(line)-1])
		if !ok {
			continue
		}
		us = append(us, pkgUpdate{Name: name, Installed: old, Candidate: cand, Source: f[1]})
	}
	return us
}

// splitApkPackage splits name-version-rN: apk versions always end in a
// -rN package release, so the version is the last two dash-separated parts.
func splitApkPackage(s string) (name, version string, ok bool) {
	rel := strings.LastIndexByte(s, '-')
	if rel <= 0 || !strings.HasPrefix(s[rel+1:], "r") {
		return "", "", false
	}
	ver := strings.LastIndexByte(s[:rel], '-')
	if ver <= 0 {
		return "", "", false
	}
	return s[:ver], s[ver+1:], true
}
