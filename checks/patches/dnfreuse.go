package patches

import (
	"bufio"
	"bytes"
	"context"
	"github.com/l2agent/l2agent/internal/fsutil"
	"os"
	"path"
	"slices"
	"strings"
)

// What dnf reads for the check's queries, and so what its answer is reused
// on (reuse.go). From dnf.conf(5) and an strace of dnf 4.14's
// `check-update` and `updateinfo list --security` with -C:
//
//   - the rpm database, in the directory rpm names (`rpm --eval %{_dbpath}`:
//     /var/lib/rpm, /usr/lib/sysimage/rpm on Fedora 36+ and EL 10);
//   - the metadata cache, `cachedir` of dnf.conf (/var/cache/dnf;
//     /var/cache/libdnf5 for dnf 5, /var/cache/yum for yum): repomd.xml and
//     the primary, filelists and updateinfo files of each repository. Left
//     out: the .solv/.solvx files dnf derives from them (and rewrites
//     itself), downloaded packages, the lock dnf creates and removes on
//     every run, which changes the directory's modification time;
//   - the configuration: /etc/dnf (dnf.conf, vars, modules.d,
//     modules.defaults.d, plugins, protected.d, aliases.d), the `reposdir`
//     directories (/etc/yum.repos.d, /etc/yum/repos.d, /etc/distro.repos.d),
//     /etc/yum.conf and /etc/yum for yum, dnf 5's distribution defaults in
//     /usr/share/dnf5, and rpm's macros in /etc/rpm;
//   - for needs-restarting, also the boot: <procfs>/sys/kernel/random/boot_id.
//
// dnf also writes its logs (dnf.log, dnf.librepo.log, hawkey.log,
// dnf.rpm.log) on every run; they are not inputs.

// dnfConfigRoots are dnf's and yum's configuration, under the rootfs.
var dnfConfigRoots = []string{"/etc/dnf", "/etc/yum.repos.d", "/etc/yum/repos.d", "/etc/distro.repos.d",
	"/etc/yum.conf", "/etc/yum", "/etc/rpm", "/usr/share/dnf5"}

// dnfCacheRoots are the default metadata caches of dnf 4, dnf 5 and yum.
var dnfCacheRoots = []string{"/var/cache/dnf", "/var/cache/libdnf5", "/var/cache/yum"}

// foreignRoot is the rootfs when it is not / and commands do not run
// chrooted into it: then dnf gets --installroot, rpm and zypper --root,
// as apt gets -o Dir=, so that they read the host's files through it.
func (c *patchesCheck) foreignRoot() string {
	if c.env.Paths.Rootfs != "/" && c.env.CommandRoot() == "" {
		return c.env.Paths.Rootfs
	}
	return ""
}

// dnfArgs is the start of every dnf query: cache only, quiet.
func (c *patchesCheck) dnfArgs(dnf string) []string {
	argv := []string{dnf, "-C", "-q"}
	if r := c.foreignRoot(); r != "" {
		argv = append(argv, "--installroot="+r)
	}
	return argv
}

// rpmArgs is the start of every rpm query.
func (c *patchesCheck) rpmArgs() []string {
	argv := []string{c.opts.Dnf.Rpm}
	if r := c.foreignRoot(); r != "" {
		argv = append(argv, "--root="+r)
	}
	return argv
}

// rpmDBPath is the rpm database's directory as rpm names it, under the
// rootfs; if rpm cannot say, the usual two.
func (c *patchesCheck) rpmDBPath(ctx context.Context) []string {
	argv := append(c.rpmArgs(), "--eval", "%{_dbpath}")
	if out, err := c.command(ctx, argv...); err == nil && out.Exit == 0 {
		if p := strings.TrimSpace(string(out.Stdout)); path.IsAbs(p) {
			return []string{c.rootPath(p)}
		}
	}
	return []string{c.rootPath("/var/lib/rpm"), c.rootPath("/usr/lib/sysimage/rpm")}
}

// dnfFingerprint fingerprints what dnf's queries read (see above); ok is
// false when something cannot be read: then nothing is reused.
func (c *patchesCheck) dnfFingerprint(ctx context.Context, dnf string) (key uint64, ok bool) {
	f := fsutil.NewFingerprint(append(c.dnfArgs(dnf), c.needsRestarting(dnf)...)...)
	roots := c.rpmDBPath(ctx)
	for _, p := range dnfConfigRoots {
		roots = append(roots, c.rootPath(p))
	}
	conf := iniMain(c.rootPath("/etc/dnf/dnf.conf")) // where cachedir and reposdir are set elsewhere
	caches := append(slices.Clone(dnfCacheRoots), absPaths(conf["cachedir"])...)
	for _, p := range absPaths(conf["reposdir"]) {
		roots = append(roots, c.rootPath(p))
	}
	for _, p := range roots {
		f.Tree(p, false, rpmdbScratch)
	}
	for _, p := range caches {
		f.Tree(c.rootPath(p), false, dnfCacheScratch)
	}
	f.Bytes(path.Join(c.env.Paths.Procfs, "sys/kernel/random/boot_id"))
	return f.Sum()
}

// dnfCacheScratch says which entries of dnf's cache are not metadata it
// reads as such: what it derives from the metadata (the libsolv caches),
// downloaded packages, locks and pid files.
func dnfCacheScratch(name string, dir bool) bool {
	if dir {
		return name == "packages"
	}
	for _, suf := range []string{".solv", ".solvx", ".pid", ".lock", "-shm"} {
		if strings.HasSuffix(name, suf) {
			return true
		}
	}
	return false
}

// iniMain returns the keys of the [main] section of an INI file (dnf.conf,
// zypp.conf); nothing when it cannot be read.
func iniMain(file string) map[string]string {
	m := map[string]string{}
	b, err := os.ReadFile(file)
	if err != nil {
		return m
	}
	main := false
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if strings.HasPrefix(line, "[") {
			main = line == "[main]"
			continue
		}
		if k, v, ok := strings.Cut(line, "="); main && ok && !strings.HasPrefix(line, "#") {
			m[strings.TrimSpace(k)] = strings.TrimSpace(v)
		}
	}
	return m
}

// absPaths splits a list of paths (separated by commas or blanks) and
// keeps the absolute ones.
func absPaths(v string) []string {
	var ps []string
	for _, d := range strings.FieldsFunc(v, func(r rune) bool { return r == ',' || r == ' ' || r == '\t' }) {
		if path.IsAbs(d) {
			ps = append(ps, d)
		}
	}
	return ps
}
