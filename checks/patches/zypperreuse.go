package patches

import (
	"context"
	"github.com/l2agent/l2agent/internal/fsutil"
	"path"
	"strings"
)

// What zypper reads for the check's queries, and so what its answer is
// reused on (reuse.go). From zypper(8), zypp.conf(5) and an strace of
// zypper 1.14.42's `--no-refresh list-updates`:
//
//   - the rpm database, in the directory rpm names (`rpm --eval %{_dbpath}`:
//     /usr/lib/sysimage/rpm on SLE 15 and openSUSE, /var/lib/rpm before);
//   - the repositories' metadata, /var/cache/zypp/raw (repomd.xml,
//     primary, updateinfo, …) and the solv files zypper built from it at
//     refresh, /var/cache/zypp/solv; left out: solv/@System, which zypper
//     rebuilds from the rpm database itself on the first run after it
//     changed (measured), and downloaded packages;
//   - the configuration: /etc/zypp (zypp.conf, zypp.conf.d, repos.d,
//     services.d, locks, vars.d, vendors.d, multiversion.d, needreboot), the
//     vendor defaults in /usr/etc/zypp, /etc/products.d (the base product
//     gives $releasever), rpm's macros in /etc/rpm; and where zypp.conf
//     moves them (cachedir, metadatadir, solvfilesdir, reposdir, configdir).
//
// zypper also writes /var/lib/zypp/AutoInstalled, /run/zypp.pid and its
// log on every run; /var/lib/zypp (AutoInstalled, SoftLocks) does not
// change which updates or patches are listed.

// zypperRoots are the configuration and metadata zypper reads, under the rootfs.
var zypperRoots = []string{"/etc/zypp", "/usr/etc/zypp", "/etc/products.d", "/etc/rpm", "/var/cache/zypp/raw", "/var/cache/zypp/solv"}

// zypperFingerprint fingerprints what zypper's queries read (see above);
// ok is false when something cannot be read: then nothing is reused.
func (c *patchesCheck) zypperFingerprint(ctx context.Context) (key uint64, ok bool) {
	f := fsutil.NewFingerprint(c.zypperArgs()...)
	roots := c.rpmDBPath(ctx) // already under the rootfs
	n := len(roots)
	roots = append(roots, zypperRoots...)
	// zypp.conf may move the metadata, the solv files and the .repo files.
	conf := iniMain(c.rootPath("/etc/zypp/zypp.conf"))
	if d := absPaths(conf["cachedir"]); len(d) == 1 {
		roots = append(roots, path.Join(d[0], "raw"), path.Join(d[0], "solv"))
	}
	for _, k := range []string{"metadatadir", "solvfilesdir", "reposdir", "configdir"} {
		roots = append(roots, absPaths(conf[k])...)
	}
	for i, p := range roots[n:] {
		roots[n+i] = c.rootPath(p)
	}
	for _, p := range roots {
		f.Tree(p, false, zypperScratch)
	}
	return f.Sum()
}

// zypperScratch says which entries are not inputs: the rpmdb's scratch
// files (rpmdbScratch), the @System solv cache, downloaded packages.
func zypperScratch(name string, dir bool) bool {
	if dir {
		return name == "@System" || name == "packages"
	}
	return rpmdbScratch(name, dir) || strings.HasSuffix(name, ".pid")
}
