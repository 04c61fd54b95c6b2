// Package container builds l2agent's container image with no container daemon and no
// registry: it reads the Containerfile, makes its Debian base with mmdebstrap from Debian's
// packages (cached), and writes an OCI image archive (an OCI image layout in one tar, which
// also holds Docker's manifest.json, so `docker load`, `podman load`, `skopeo copy
// oci-archive:…`, `ctr images import` and `kind load image-archive` all take it).
// deploy/container/build is its command; `make image` runs it.
package container

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"regexp"
	"strings"
)

// DefaultTag is the reference `make image` tags the image with, and the one
// deploy/kubernetes/daemonset.yaml runs (a test keeps them equal).
const DefaultTag = "localhost/l2agent:latest"

// Spec is what a Containerfile says.
type Spec struct {
	Base       Base              // from FROM and the apt-get RUN line
	Copies     []Copy            // COPY, in order
	Env        []string          // KEY=value, in order
	Labels     map[string]string // LABEL
	Exposed    []string          // EXPOSE, as port/proto
	WorkDir    string
	User       string
	Entrypoint []string
	Cmd        []string
}

// Copy is one COPY: a file of the build context to an absolute path in the image.
type Copy struct {
	Src, Dst string
}

// Base is a Debian root filesystem mmdebstrap makes.
type Base struct {
	Name     string   // as FROM names it, e.g. debian:bookworm-slim
	Suite    string   // bookworm
	Packages []string // --include, beyond the variant's
}

// bases are the FROM images this builder can make, with their Debian suite.
var bases = map[string]string{"debian:bookworm-slim": "bookworm"}

// aptRun is the one RUN form understood: installing packages from Debian's archive.
var aptRun = regexp.MustCompile(`^apt-get update && apt-get install -y --no-install-recommends ((?:[a-z0-9][a-z0-9+.-]+ ?)+) && rm -rf /var/lib/apt/lists/\*$`)

// ParseContainerfile reads the subset of the Containerfile syntax the builder
// implements; any other instruction or form is an error naming its line.
func ParseContainerfile(r io.Reader) (*Spec, error) {
	s := &Spec{Labels: map[string]string{}}
	lines, err := logicalLines(r)
	if err != nil {
		return nil, err
	}
	for _, l := range lines {
		instr, args, _ := strings.Cut(l.text, " ")
		args = strings.TrimSpace(args)
		if err := s.apply(strings.ToUpper(instr), args); err != nil {
			return nil, fmt.Errorf("containerfile:%d: %s: %w", l.n, instr, err)
		}
	}
	if s.Base.Name == "" {
		return nil, errors.New("containerfile: no FROM")
	}
	if len(s.Entrypoint) == 0 {
		return nil, errors.New("containerfile: no ENTRYPOINT")
	}
	return s, nil
}

type line struct {
	n    int
	text string
}

// logicalLines joins continued lines (ending in a backslash) and drops
// comments and blank lines.
func logicalLines(r io.Reader) ([]line, error) {
	var out []line
	var cur strings.Builder
	start := 0
	sc := bufio.NewScanner(r)
	for n := 1; sc.Scan(); n++ {
		t := strings.TrimSpace(sc.Text())
		if cur.Len() == 0 && (t == "" || strings.HasPrefix(t, "#")) {
			continue
		}
		if cur.Len() == 0 {
			start = n
		}
		if body, ok := strings.CutSuffix(t, `\`); ok {
			cur.WriteString(strings.TrimSpace(body) + " ")
			continue
		}
		cur.WriteString(t)
		out = append(out, line{start, cur.String()})
		cur.Reset()
	}
	if cur.Len() > 0 {
		return nil, fmt.Errorf("containerfile:%d: continued past the end", start)
	}
	return out, sc.Err()
}

func (s *Spec) apply(instr, args string) error {
	switch instr {
	case "FROM":
		suite, ok := bases[args]
		if !ok || s.Base.Name != "" {
			return fmt.Errorf("want one FROM debian:bookworm-slim, got %q", args)
		}
		s.Base.Name, s.Base.Suite = args, suite
	case "RUN":
		m := aptRun.FindStringSubmatch(args)
		if m == nil || s.Base.Name == "" || len(s.Copies) > 0 {
			return fmt.Errorf("only `%s` right after FROM is understood, got %q", "apt-get update && apt-get install -y --no-install-recommends PKG... && rm -rf /var/lib/apt/lists/*", args)
		}
		s.Base.Packages = append(s.Base.Packages, strings.Fields(m[1])...)
	case "COPY":
		f := strings.Fields(args)
		if len(f) != 2 || strings.HasPrefix(f[0], "-") || !strings.HasPrefix(f[1], "/") || strings.HasSuffix(f[1], "/") {
			return fmt.Errorf("want COPY SRC /ABSOLUTE/FILE, got %q", args)
		}
		s.Copies = append(s.Copies, Copy{Src: f[0], Dst: f[1]})
	case "ENV", "LABEL":
		return s.keyValues(instr, args)
	case "EXPOSE":
		for _, p := range strings.Fields(args) {
			if !strings.Contains(p, "/") {
				p += "/tcp"
			}
			s.Exposed = append(s.Exposed, p)
		}
	case "WORKDIR", "USER":
		if args == "" || strings.ContainsAny(args, " \t") {
			return fmt.Errorf("want one value, got %q", args)
		}
		if instr == "WORKDIR" {
			s.WorkDir = args
		} else {
			s.User = args
		}
	case "ENTRYPOINT", "CMD":
		var argv []string
		if err := json.Unmarshal([]byte(args), &argv); err != nil || len(argv) == 0 {
			return fmt.Errorf("want the exec form [\"prog\", \"arg\"], got %q", args)
		}
		if instr == "ENTRYPOINT" {
			s.Entrypoint = argv
		} else {
			s.Cmd = argv
		}
	default:
		return fmt.Errorf("not understood by deploy/container/build")
	}
	return nil
}

// keyValues reads ENV and LABEL: one or more KEY=value, value optionally in
// double quotes (with no escapes inside).
var keyValue = regexp.MustCompile(`^([A-Za-z_][A-Za-z0-9_.-]*)=("[^"\\]*"|[^"\s]*)(?:\s+|$)`)

func (s *Spec) keyValues(instr, args string) error {
	if args == "" {
		return fmt.Errorf("want KEY=value")
	}
	for args != "" {
		m := keyValue.FindStringSubmatch(args)
		if m == nil {
			return fmt.Errorf("want KEY=value or KEY=\"value\", got %q", args)
		}
		args = args[len(m[0]):]
		k, v := m[1], strings.Trim(m[2], `"`)
		if instr == "ENV" {
			s.Env = append(s.Env, k+"="+v)
		} else {
			s.Labels[k] = v
		}
	}
	return nil
}
