package container

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"time"
)

// slimExcludes are the dpkg path filters of Debian's -slim images: no docs
// (but their copyright files), man pages, info, locales or lintian data.
var slimExcludes = []string{
	"path-exclude=/usr/share/doc/*", "path-include=/usr/share/doc/*/copyright",
	"path-exclude=/usr/share/man/*", "path-exclude=/usr/share/info/*", "path-exclude=/usr/share/groff/*",
	"path-exclude=/usr/share/locale/*", "path-exclude=/usr/share/lintian/*", "path-exclude=/usr/share/linda/*",
}

// aptSettings are the host's apt settings passed on to mmdebstrap: those that
// decide whether the host's mirror can be used at all (a frozen snapshot with
// an expired Valid-Until, a proxy).
var aptSettings = regexp.MustCompile(`^Acquire::(Check-Valid-Until|Check-Date|https?::Proxy) `)

// BaseTar returns the path of a tar of the base root filesystem, made by
// mmdebstrap into cacheDir once for each distinct base (its suite, packages
// and filters) and reused after that. The mirror is the host's own: its apt
// sources that name the suite. log receives mmdebstrap's output.
func BaseTar(ctx context.Context, b Base, cacheDir string, log io.Writer) (string, error) {
	args := []string{"--variant=minbase", "--skip=output/dev", "--aptopt=APT::Install-Recommends \"false\"",
		// usrmerge brings full perl into minbase, not into debian:bookworm-slim: it is replaced by
		// usr-is-merged (perl-base stays). Before resolv.conf goes: apt fetches usr-is-merged.
		"--customize-hook=chroot \"$1\" apt-get -y -q purge --autoremove perl libperl5.36 perl-modules-5.36",
		"--customize-hook=rm -f \"$1/etc/hostname\" \"$1/etc/resolv.conf\""}
	if len(b.Packages) > 0 {
		args = append(args, "--include="+strings.Join(b.Packages, ","))
	}
	for _, x := range slimExcludes {
		args = append(args, "--dpkgopt="+x)
	}
	key := sha256.Sum256([]byte(strings.Join(append(args, b.Suite), "\n")))
	out := filepath.Join(cacheDir, fmt.Sprintf("%s-%s.tar", strings.ReplaceAll(b.Name, ":", "-"), hex.EncodeToString(key[:6])))
	if _, err := os.Stat(out); err == nil {
		return out, nil
	}
	if err := os.MkdirAll(cacheDir, 0o755); err != nil {
		return "", fmt.Errorf("base cache: %w", err)
	}
	sources, err := hostSources(b.Suite)
	if err != nil {
		return "", err
	}
	opts, err := hostAptOptions(ctx)
	if err != nil {
		return "", err
	}
	tmp := out + ".partial.tar"
	argv := append(append(args, opts...), b.Suite, tmp)
	argv = append(argv, sources...)
	cmd := exec.CommandContext(ctx, "mmdebstrap", argv...)
	// Reproducible: every file's mtime is clamped to this time.
	cmd.Env = append(os.Environ(), "SOURCE_DATE_EPOCH=0")
	cmd.Stdout, cmd.Stderr = log, log
	start := time.Now()
	slog.Info("building the image's base with mmdebstrap (once; cached)", "base", b.Name, "out", out)
	if err := cmd.Run(); err != nil {
		os.Remove(tmp)
		return "", fmt.Errorf("mmdebstrap %s: %w", strings.Join(argv, " "), err)
	}
	if err := os.Rename(tmp, out); err != nil {
		return "", fmt.Errorf("base cache: %w", err)
	}
	slog.Info("base built", "base", b.Name, "took", time.Since(start).Round(time.Second))
	return out, nil
}

// hostSources lists the host's apt source files that name suite, for
// mmdebstrap, which pastes each into the new root's sources.
func hostSources(suite string) ([]string, error) {
	files := []string{"/etc/apt/sources.list"}
	for _, pat := range []string{"/etc/apt/sources.list.d/*.list", "/etc/apt/sources.list.d/*.sources"} {
		m, _ := filepath.Glob(pat)
		files = append(files, m...)
	}
	names := regexp.MustCompile(`(^|\s)` + regexp.QuoteMeta(suite) + `(-[a-z]+)?(\s|$)`)
	var out []string
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil && !errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("apt sources: %w", err)
		}
		for _, l := range strings.Split(string(b), "\n") {
			if !strings.HasPrefix(strings.TrimSpace(l), "#") && names.MatchString(l) {
				out = append(out, f)
				break
			}
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("no apt source of this host names %s (/etc/apt/sources.list{,.d}): mmdebstrap needs a Debian %s mirror", suite, suite)
	}
	return slices.Compact(out), nil
}

// hostAptOptions are the --aptopt arguments that carry aptSettings from the
// host's apt-config dump.
func hostAptOptions(ctx context.Context) ([]string, error) {
	out, err := exec.CommandContext(ctx, "apt-config", "dump").Output()
	if err != nil {
		return nil, fmt.Errorf("apt-config dump: %w", err)
	}
	var opts []string
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		if l := sc.Text(); aptSettings.MatchString(l) {
			opts = append(opts, "--aptopt="+strings.TrimSuffix(l, ";"))
		}
	}
	return opts, sc.Err()
}
