package container

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestParseContainerfile(t *testing.T) {
	t.Parallel()
	f, err := os.Open("Containerfile")
	require.NoError(t, err)
	defer f.Close()
	s, err := ParseContainerfile(f)
	require.NoError(t, err)
	require.Equal(t, Base{Name: "debian:bookworm-slim", Suite: "bookworm", Packages: []string{"ca-certificates", "tzdata"}}, s.Base)
	require.Equal(t, []Copy{{Src: "bin/l2agent", Dst: "/usr/bin/l2agent"}}, s.Copies)
	require.Equal(t, []string{"/usr/bin/l2agent"}, s.Entrypoint)
	require.Equal(t, []string{"run"}, s.Cmd)
	require.Equal(t, []string{"10061/tcp"}, s.Exposed)
	require.Equal(t, "0:0", s.User)
	require.Equal(t, "l2agent", s.Labels["org.opencontainers.image.title"])
	require.Contains(t, s.Env, "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin")

	s, err = ParseContainerfile(strings.NewReader("# c\nFROM debian:bookworm-slim\nENV A=1 B=\"two words\" \\\n  C=3\nentrypoint [\"/x\"]\n"))
	require.NoError(t, err)
	require.Equal(t, []string{"A=1", "B=two words", "C=3"}, s.Env)

	for src, want := range map[string]string{
		"FROM alpine:3\n":                                              `containerfile:1: FROM: want one FROM debian:bookworm-slim, got "alpine:3"`,
		"FROM debian:bookworm-slim\nRUN make\n":                        "containerfile:2: RUN: only `apt-get update",
		"FROM debian:bookworm-slim\nADD x /x\n":                        "containerfile:2: ADD: not understood",
		"FROM debian:bookworm-slim\nCOPY a b\n":                        "containerfile:2: COPY: want COPY SRC /ABSOLUTE/FILE",
		"FROM debian:bookworm-slim\nENTRYPOINT /usr/bin/l2agent run\n": "containerfile:2: ENTRYPOINT: want the exec form",
		"FROM debian:bookworm-slim\nENV A\n":                           "containerfile:2: ENV: want KEY=value",
		"FROM debian:bookworm-slim\nUSER a b\n":                        "containerfile:2: USER: want one value",
		"FROM debian:bookworm-slim\nCMD [\"x\"]\n":                     "no ENTRYPOINT",
		"ENTRYPOINT [\"x\"]\n":                                         "no FROM",
		"FROM debian:bookworm-slim\nENV A=1 \\\n":                      "containerfile:2: continued past the end",
	} {
		_, err := ParseContainerfile(strings.NewReader(src))
		require.ErrorContains(t, err, want, src)
	}
}

// fakeBase writes a small base tar as mmdebstrap would: dirs, a file, a
// symlink and a device node (which the image leaves out).
func fakeBase(t *testing.T) string {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, h := range []*tar.Header{
		{Typeflag: tar.TypeDir, Name: "./", Mode: 0o755},
		{Typeflag: tar.TypeDir, Name: "./usr/", Mode: 0o755},
		{Typeflag: tar.TypeDir, Name: "./usr/bin/", Mode: 0o755},
		{Typeflag: tar.TypeSymlink, Name: "./bin", Linkname: "usr/bin"},
		{Typeflag: tar.TypeDir, Name: "./dev/", Mode: 0o755},
		{Typeflag: tar.TypeChar, Name: "./dev/null", Mode: 0o666, Devmajor: 1, Devminor: 3},
		{Typeflag: tar.TypeReg, Name: "./etc/os-release", Mode: 0o644, Size: 10},
	} {
		require.NoError(t, tw.WriteHeader(h))
		if h.Size > 0 {
			_, err := tw.Write([]byte("ID=debian\n"))
			require.NoError(t, err)
		}
	}
	require.NoError(t, tw.Close())
	p := filepath.Join(t.TempDir(), "base.tar")
	require.NoError(t, os.WriteFile(p, buf.Bytes(), 0o644))
	return p
}

func TestBuildArchive(t *testing.T) {
	t.Parallel()
	ctxDir := t.TempDir()
	require.NoError(t, os.MkdirAll(filepath.Join(ctxDir, "bin"), 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(ctxDir, "bin/l2agent"), []byte("#!stand-in for the agent\n"), 0o755))
	spec, err := ParseContainerfile(strings.NewReader(`FROM debian:bookworm-slim
COPY bin/l2agent /usr/bin/l2agent
EXPOSE 10061
ENTRYPOINT ["/usr/bin/l2agent"]
CMD ["run"]
`))
	require.NoError(t, err)
	o := Options{Spec: spec, BaseTar: fakeBase(t), Context: ctxDir, Tag: "registry.example/l2agent:1.2", Created: time.Unix(1700000000, 0).UTC()}
	out := filepath.Join(t.TempDir(), "img.tar")
	res, err := Build(o, out)
	require.NoError(t, err)
	require.Len(t, res.Layers, 2)

	img := readArchive(t, out)
	require.JSONEq(t, `{"imageLayoutVersion":"1.0.0"}`, string(img.files["oci-layout"]))
	var index struct {
		Manifests []struct {
			Digest      string
			Size        int
			Annotations map[string]string
		}
	}
	require.NoError(t, json.Unmarshal(img.files["index.json"], &index))
	require.Len(t, index.Manifests, 1)
	m := index.Manifests[0]
	require.Equal(t, res.Digest, m.Digest)
	require.Equal(t, map[string]string{"io.containerd.image.name": "registry.example/l2agent:1.2", "org.opencontainers.image.ref.name": "1.2"}, m.Annotations)
	manifest := img.blob(t, m.Digest)
	require.Len(t, manifest, m.Size)

	var man struct {
		Config struct{ Digest string }
		Layers []struct {
			MediaType, Digest string
			Size              int
		}
	}
	require.NoError(t, json.Unmarshal(manifest, &man))
	var config struct {
		Architecture, OS string
		Created          time.Time
		Config           struct {
			Entrypoint, Cmd []string
			ExposedPorts    map[string]any
		}
		RootFS struct {
			DiffIDs []string `json:"diff_ids"`
		}
	}
	require.NoError(t, json.Unmarshal(img.blob(t, man.Config.Digest), &config))
	require.Equal(t, "linux", config.OS)
	require.Equal(t, o.Created, config.Created)
	require.Equal(t, []string{"/usr/bin/l2agent"}, config.Config.Entrypoint)
	require.Equal(t, []string{"run"}, config.Config.Cmd)
	require.Contains(t, config.Config.ExposedPorts, "10061/tcp")
	require.Len(t, config.RootFS.DiffIDs, 2)

	files := map[string]*tar.Header{}
	for i, l := range man.Layers {
		require.Equal(t, mediaLayer, l.MediaType)
		gz := img.blob(t, l.Digest)
		require.Len(t, gz, l.Size)
		zr, err := gzip.NewReader(bytes.NewReader(gz))
		require.NoError(t, err)
		raw, err := io.ReadAll(zr)
		require.NoError(t, err)
		require.Equal(t, config.RootFS.DiffIDs[i], sha(raw), "diff ID of layer %d", i)
		tr := tar.NewReader(bytes.NewReader(raw))
		for {
			h, err := tr.Next()
			if errors.Is(err, io.EOF) {
				break
			}
			require.NoError(t, err)
			files[strings.TrimPrefix(h.Name, "./")] = h
		}
	}
	require.Contains(t, files, "etc/os-release")
	require.Equal(t, "usr/bin", files["bin"].Linkname)
	require.Contains(t, files, "dev/")
	require.NotContains(t, files, "dev/null", "device nodes are the runtime's")
	require.Equal(t, int64(0o755), files["usr/bin/l2agent"].Mode)
	require.Equal(t, o.Created, files["usr/bin/l2agent"].ModTime.UTC())

	// Docker's manifest.json names the same blobs, so `docker load` takes the archive.
	var docker []struct {
		Config   string
		RepoTags []string
		Layers   []string
	}
	require.NoError(t, json.Unmarshal(img.files["manifest.json"], &docker))
	require.Len(t, docker, 1)
	require.Equal(t, []string{"registry.example/l2agent:1.2"}, docker[0].RepoTags)
	require.Equal(t, man.Config.Digest, "sha256:"+filepath.Base(docker[0].Config))
	for i, l := range docker[0].Layers {
		require.Equal(t, man.Layers[i].Digest, "sha256:"+filepath.Base(l))
		require.Contains(t, img.files, l)
	}

	// Reproducible: the same inputs give the same image.
	again, err := Build(o, filepath.Join(t.TempDir(), "again.tar"))
	require.NoError(t, err)
	require.Equal(t, res.Digest, again.Digest)
	leftovers, err := filepath.Glob(filepath.Join(filepath.Dir(out), ".*"))
	require.NoError(t, err)
	require.Empty(t, leftovers, "no temporary files left")
}

func TestBuildRefusesDynamicBinary(t *testing.T) {
	t.Parallel()
	dynamic := "/usr/bin/true" // Debian's is linked against libc
	if static(dynamic) == nil {
		t.Skipf("%s is not dynamically linked here", dynamic)
	}
	spec := &Spec{Copies: []Copy{{Src: dynamic, Dst: "/usr/bin/l2agent"}}, Entrypoint: []string{"/usr/bin/l2agent"}}
	_, err := Build(Options{Spec: spec, BaseTar: fakeBase(t), Context: "/", Tag: DefaultTag}, filepath.Join(t.TempDir(), "x.tar"))
	require.ErrorContains(t, err, "dynamically linked; build it with CGO_ENABLED=0")
}

func TestCutTag(t *testing.T) {
	t.Parallel()
	for ref, want := range map[string][2]string{
		"localhost/l2agent:latest":        {"localhost/l2agent", "latest"},
		"registry:5000/team/l2agent:v1.2": {"registry:5000/team/l2agent", "v1.2"},
		"registry:5000/l2agent":           {"registry:5000/l2agent", "latest"},
		"l2agent":                         {"l2agent", "latest"},
	} {
		repo, tag, _ := cutTag(ref)
		require.Equal(t, want, [2]string{repo, tag}, ref)
	}
}

// archive is an image archive read into memory (small test images only).
type archive struct{ files map[string][]byte }

func readArchive(t *testing.T, path string) archive {
	t.Helper()
	f, err := os.Open(path)
	require.NoError(t, err)
	defer f.Close()
	a := archive{files: map[string][]byte{}}
	tr := tar.NewReader(f)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return a
		}
		require.NoError(t, err)
		b, err := io.ReadAll(tr)
		require.NoError(t, err)
		a.files[h.Name] = b
	}
}

func (a archive) blob(t *testing.T, digest string) []byte {
	t.Helper()
	b, ok := a.files["blobs/sha256/"+strings.TrimPrefix(digest, "sha256:")]
	require.True(t, ok, "no blob %s", digest)
	require.Equal(t, digest, sha(b), "blob content")
	return b
}

func sha(b []byte) string {
	s := sha256.Sum256(b)
	return fmt.Sprintf("sha256:%s", hex.EncodeToString(s[:]))
}
