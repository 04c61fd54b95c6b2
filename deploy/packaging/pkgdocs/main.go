// Command pkgdocs makes the documents the l2agent packages ship besides the program, as
// Debian's own packages do; deploy/packaging/build.sh runs it on the binary it just built:
//
//	OUT/l2agent.1.gz          the man page l2agent(1), made from the CLI's --help output
//	OUT/changelog-deb.yml     the changelog, for nfpm (changelog.Debian.gz in the .deb)
//	OUT/changelog-rpm.yml     the same for the rpm's %changelog
//	OUT/copyright             machine-readable (DEP-5): l2agent's license and the Go modules
//	                          linked into the binary, with theirs
//
// Everything is a function of its inputs (the date is the commit's), so one commit always
// gives the same files.
package main

import (
	"bytes"
	"compress/gzip"
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"time"
)

type options struct {
	bin, out, version, release, commit, maintainer, readme, modcache string
	date                                                             time.Time
}

func main() {
	var o options
	var epoch int64
	flag.StringVar(&o.bin, "bin", "", "the built l2agent binary (run for its --help; its build info names the modules)")
	flag.StringVar(&o.out, "out", ".", "directory to write into")
	flag.StringVar(&o.version, "version", "", "package version, e.g. 1.2.3 or 0.0.0~git20261205.8c97ce8")
	flag.StringVar(&o.release, "release", "1", "package release (deb revision)")
	flag.StringVar(&o.commit, "commit", "unknown", "git commit the package is built from")
	flag.Int64Var(&epoch, "date", 0, "the documents' date, seconds since 1970 (the commit's, SOURCE_DATE_EPOCH)")
	flag.StringVar(&o.maintainer, "maintainer", "", "Name <email> (nfpm.yaml's maintainer)")
	flag.StringVar(&o.readme, "readme", "README.md", "README whose \"## Changes\" section the changelog quotes")
	flag.StringVar(&o.modcache, "modcache", "", "GOMODCACHE, where the linked modules' licenses are read")
	flag.Parse()
	o.date = time.Unix(epoch, 0).UTC()
	if o.bin == "" || o.version == "" || o.maintainer == "" || epoch <= 0 || flag.NArg() > 0 {
		fmt.Fprintln(os.Stderr, "pkgdocs: -bin, -version, -maintainer and -date are required; no arguments")
		flag.Usage()
		os.Exit(2)
	}
	if err := run(o); err != nil {
		fmt.Fprintf(os.Stderr, "pkgdocs: %v\n", err)
		os.Exit(1)
	}
}

func run(o options) error {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	help, err := collectHelp(ctx, o.bin)
	if err != nil {
		return err
	}
	page, err := gzipped(manPage(help, o.version, o.date))
	if err != nil {
		return fmt.Errorf("compress the man page: %w", err)
	}
	changes, err := readmeChanges(o.readme)
	if err != nil {
		return err
	}
	deb, rpm, err := changelogs(o, changes)
	if err != nil {
		return err
	}
	cr, err := copyright(o.bin, o.modcache, o.maintainer, o.date)
	if err != nil {
		return err
	}
	for name, b := range map[string][]byte{"l2agent.1.gz": page, "changelog-deb.yml": deb, "changelog-rpm.yml": rpm, "copyright": cr} {
		if err := os.WriteFile(filepath.Join(o.out, name), b, 0o644); err != nil {
			return fmt.Errorf("write %s: %w", name, err)
		}
	}
	return nil
}

// gzipped is b compressed as `gzip -9n` does: no name, no time in the header.
func gzipped(b []byte) ([]byte, error) {
	var buf bytes.Buffer
	zw, err := gzip.NewWriterLevel(&buf, gzip.BestCompression)
	if err != nil {
		return nil, err
	}
	if _, err := zw.Write(b); err != nil {
		return nil, err
	}
	if err := zw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}
