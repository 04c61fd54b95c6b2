package container

import (
	"archive/tar"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"debug/elf"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"maps"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"time"
)

// Media types of the OCI image spec.
const (
	mediaManifest = "application/vnd.oci.image.manifest.v1+json"
	mediaConfig   = "application/vnd.oci.image.config.v1+json"
	mediaLayer    = "application/vnd.oci.image.layer.v1.tar+gzip"
)

// Options say what Build puts in the archive.
type Options struct {
	Spec    *Spec
	BaseTar string    // the base root filesystem (BaseTar)
	Context string    // the directory COPY sources are relative to (the repository)
	Tag     string    // full reference, e.g. DefaultTag
	Created time.Time // the image's creation time and the mtime of its files
}

// Result describes a built archive.
type Result struct {
	Tag          string
	Digest       string  // of the manifest: what a registry calls the image
	ArchiveBytes int64   // the .tar on disk (the layers compressed)
	Layers       []Layer // base first
}

// Layer is one layer's blob.
type Layer struct {
	Digest, DiffID     string
	Size, Uncompressed int64
	CreatedBy          string
}

// Build writes the image as an OCI archive to out (atomically).
func Build(o Options, out string) (*Result, error) {
	dir := filepath.Dir(out)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("image: %w", err)
	}
	base, err := o.baseLayer(dir)
	if err != nil {
		return nil, err
	}
	defer os.Remove(base.path)
	app, err := o.appLayer(dir)
	if err != nil {
		return nil, err
	}
	defer os.Remove(app.path)
	layers := []*blobFile{base, app}
	config, err := o.config(layers)
	if err != nil {
		return nil, err
	}
	manifest, err := json.Marshal(map[string]any{
		"schemaVersion": 2,
		"mediaType":     mediaManifest,
		"config":        descriptor(mediaConfig, config),
		"layers":        []any{base.descriptor(), app.descriptor()},
	})
	if err != nil {
		return nil, fmt.Errorf("image manifest: %w", err)
	}
	res := &Result{Tag: o.Tag, Digest: digest(manifest)}
	for _, l := range layers {
		res.Layers = append(res.Layers, l.Layer)
	}
	if res.ArchiveBytes, err = o.writeArchive(out, manifest, config, layers); err != nil {
		return nil, err
	}
	return res, nil
}

// blobFile is a layer written to a temporary file.
type blobFile struct {
	Layer
	path string
}

func (b *blobFile) descriptor() map[string]any {
	return map[string]any{"mediaType": mediaLayer, "digest": b.Digest, "size": b.Size}
}

func descriptor(mediaType string, b []byte) map[string]any {
	return map[string]any{"mediaType": mediaType, "digest": digest(b), "size": len(b)}
}

func digest(b []byte) string {
	s := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(s[:])
}

// newLayer writes a gzipped tar layer to a temporary file in dir, hashing the
// tar (the diff ID) and the gzip (the digest) on the way. fill writes the
// entries.
func newLayer(dir, createdBy string, fill func(*tar.Writer) error) (*blobFile, error) {
	f, err := os.CreateTemp(dir, ".layer-*")
	if err != nil {
		return nil, fmt.Errorf("image layer: %w", err)
	}
	b := &blobFile{path: f.Name(), Layer: Layer{CreatedBy: createdBy}}
	gzSum, tarSum := sha256.New(), sha256.New()
	gzCount, tarCount := &counter{Hash: gzSum}, &counter{Hash: tarSum}
	gz, _ := gzip.NewWriterLevel(io.MultiWriter(f, gzCount), gzip.BestCompression)
	tw := tar.NewWriter(io.MultiWriter(gz, tarCount))
	err = fill(tw)
	err = errors.Join(err, tw.Close(), gz.Close(), f.Close())
	if err != nil {
		os.Remove(f.Name())
		return nil, fmt.Errorf("image layer (%s): %w", createdBy, err)
	}
	b.Digest, b.Size = "sha256:"+hex.EncodeToString(gzSum.Sum(nil)), gzCount.n
	b.DiffID, b.Uncompressed = "sha256:"+hex.EncodeToString(tarSum.Sum(nil)), tarCount.n
	return b, nil
}

type counter struct {
	hash.Hash
	n int64
}

func (c *counter) Write(p []byte) (int, error) {
	c.n += int64(len(p))
	return c.Hash.Write(p)
}

// baseLayer copies the base tar into a layer, leaving out device nodes (a
// runtime gives the container its own /dev).
func (o Options) baseLayer(dir string) (*blobFile, error) {
	f, err := os.Open(o.BaseTar)
	if err != nil {
		return nil, fmt.Errorf("image base: %w", err)
	}
	defer f.Close()
	return newLayer(dir, "FROM "+o.Spec.Base.Name+" + apt-get install "+strings.Join(o.Spec.Base.Packages, " "), func(tw *tar.Writer) error {
		tr := tar.NewReader(f)
		for {
			h, err := tr.Next()
			if errors.Is(err, io.EOF) {
				return nil
			}
			if err != nil {
				return fmt.Errorf("read %s: %w", o.BaseTar, err)
			}
			if h.Typeflag == tar.TypeChar || h.Typeflag == tar.TypeBlock || h.Typeflag == tar.TypeFifo {
				continue
			}
			h.Format, h.AccessTime, h.ChangeTime = tar.FormatPAX, time.Time{}, time.Time{}
			if err := tw.WriteHeader(h); err != nil {
				return err
			}
			if _, err := io.Copy(tw, tr); err != nil {
				return err
			}
		}
	})
}

// appLayer holds the COPY files, owned by root, with the image's time.
func (o Options) appLayer(dir string) (*blobFile, error) {
	var what []string
	for _, c := range o.Spec.Copies {
		what = append(what, "COPY "+c.Src+" "+c.Dst)
	}
	return newLayer(dir, strings.Join(what, "; "), func(tw *tar.Writer) error {
		for _, c := range o.Spec.Copies {
			src := filepath.Join(o.Context, c.Src)
			b, err := os.ReadFile(src)
			if err != nil {
				return err
			}
			if err := static(src); err != nil {
				return err
			}
			fi, err := os.Stat(src)
			if err != nil {
				return err
			}
			h := &tar.Header{Typeflag: tar.TypeReg, Name: strings.TrimPrefix(c.Dst, "/"), Size: int64(len(b)),
				Mode: int64(fi.Mode().Perm()), ModTime: o.Created, Format: tar.FormatPAX}
			if err := tw.WriteHeader(h); err != nil {
				return err
			}
			if _, err := tw.Write(b); err != nil {
				return err
			}
		}
		return nil
	})
}

// static refuses an ELF program that needs a dynamic loader: the agent is
// built static (CGO_ENABLED=0) and must not depend on the base's libc.
func static(path string) error {
	f, err := elf.Open(path)
	if err != nil {
		return nil // not ELF: a data file
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			return fmt.Errorf("%s is dynamically linked; build it with CGO_ENABLED=0 (make build)", path)
		}
	}
	return nil
}

// config is the image configuration (OCI image spec, config.md).
func (o Options) config(layers []*blobFile) ([]byte, error) {
	s := o.Spec
	exposed := map[string]struct{}{}
	for _, p := range s.Exposed {
		exposed[p] = struct{}{}
	}
	var diffIDs []string
	var history []map[string]any
	for _, l := range layers {
		diffIDs = append(diffIDs, l.DiffID)
		history = append(history, map[string]any{"created": o.Created, "created_by": l.CreatedBy})
	}
	b, err := json.Marshal(map[string]any{
		"created":      o.Created,
		"architecture": runtime.GOARCH,
		"os":           "linux",
		"config": map[string]any{
			"User": s.User, "Env": s.Env, "Entrypoint": s.Entrypoint, "Cmd": s.Cmd,
			"WorkingDir": s.WorkDir, "Labels": s.Labels, "ExposedPorts": exposed,
		},
		"rootfs":  map[string]any{"type": "layers", "diff_ids": diffIDs},
		"history": history,
	})
	if err != nil {
		return nil, fmt.Errorf("image config: %w", err)
	}
	return b, nil
}

// writeArchive writes the OCI image layout (oci-layout, index.json, blobs/)
// and Docker's manifest.json into one tar at out.
func (o Options) writeArchive(out string, manifest, config []byte, layers []*blobFile) (int64, error) {
	_, tag, _ := cutTag(o.Tag)
	index, err := json.Marshal(map[string]any{
		"schemaVersion": 2,
		"manifests": []any{map[string]any{
			"mediaType": mediaManifest, "digest": digest(manifest), "size": len(manifest),
			"annotations": map[string]string{
				"io.containerd.image.name":          o.Tag, // ctr import, kind load
				"org.opencontainers.image.ref.name": tag,   // skopeo/podman oci-archive:FILE:TAG
			},
		}},
	})
	if err != nil {
		return 0, fmt.Errorf("image index: %w", err)
	}
	blob := func(d string) string { return "blobs/sha256/" + strings.TrimPrefix(d, "sha256:") }
	var layerPaths []string
	for _, l := range layers {
		layerPaths = append(layerPaths, blob(l.Digest))
	}
	docker, err := json.Marshal([]any{map[string]any{"Config": blob(digest(config)), "RepoTags": []string{o.Tag}, "Layers": layerPaths}})
	if err != nil {
		return 0, fmt.Errorf("image docker manifest: %w", err)
	}
	f, err := os.CreateTemp(filepath.Dir(out), ".image-*")
	if err != nil {
		return 0, fmt.Errorf("image archive: %w", err)
	}
	defer os.Remove(f.Name())
	if err := f.Chmod(0o644); err != nil { // CreateTemp makes it 0600
		f.Close()
		return 0, fmt.Errorf("image archive: %w", err)
	}
	tw := tar.NewWriter(f)
	err = o.writeEntries(tw, map[string][]byte{
		"oci-layout": []byte(`{"imageLayoutVersion":"1.0.0"}`), "index.json": index, "manifest.json": docker,
		blob(digest(manifest)): manifest, blob(digest(config)): config,
	}, layers, blob)
	if err = errors.Join(err, tw.Close(), f.Sync(), f.Close()); err != nil {
		return 0, fmt.Errorf("image archive %s: %w", out, err)
	}
	fi, err := os.Stat(f.Name())
	if err != nil {
		return 0, fmt.Errorf("image archive: %w", err)
	}
	if err := os.Rename(f.Name(), out); err != nil {
		return 0, fmt.Errorf("image archive: %w", err)
	}
	return fi.Size(), nil
}

func (o Options) writeEntries(tw *tar.Writer, small map[string][]byte, layers []*blobFile, blob func(string) string) error {
	dir := func(name string) error {
		return tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: name, Mode: 0o755, ModTime: o.Created, Format: tar.FormatPAX})
	}
	if err := errors.Join(dir("blobs/"), dir("blobs/sha256/")); err != nil {
		return err
	}
	for _, name := range slices.Sorted(maps.Keys(small)) {
		h := &tar.Header{Typeflag: tar.TypeReg, Name: name, Mode: 0o644, Size: int64(len(small[name])), ModTime: o.Created, Format: tar.FormatPAX}
		if err := tw.WriteHeader(h); err != nil {
			return err
		}
		if _, err := tw.Write(small[name]); err != nil {
			return err
		}
	}
	for _, l := range layers {
		h := &tar.Header{Typeflag: tar.TypeReg, Name: blob(l.Digest), Mode: 0o644, Size: l.Size, ModTime: o.Created, Format: tar.FormatPAX}
		if err := tw.WriteHeader(h); err != nil {
			return err
		}
		f, err := os.Open(l.path)
		if err != nil {
			return err
		}
		_, err = io.Copy(tw, f)
		f.Close()
		if err != nil {
			return err
		}
	}
	return nil
}

// cutTag splits a reference into repository and tag (latest when none).
func cutTag(ref string) (repo, tag string, ok bool) {
	i := strings.LastIndexByte(ref, ':')
	if i < 0 || strings.Contains(ref[i:], "/") {
		return ref, "latest", false
	}
	return ref[:i], ref[i+1:], true
}

// BuildOptions say what BuildFile builds.
type BuildOptions struct {
	Containerfile string // its path
	Context       string // COPY sources are relative to it
	Out           string // the archive
	Tag           string
	CacheDir      string // where BaseTar keeps the base
	Created       time.Time
	Log           io.Writer // mmdebstrap's output
}

// BuildFile reads a Containerfile, makes its base (or takes it from the
// cache) and writes the image archive.
func BuildFile(ctx context.Context, o BuildOptions) (*Result, error) {
	f, err := os.Open(o.Containerfile)
	if err != nil {
		return nil, fmt.Errorf("image: %w", err)
	}
	spec, err := ParseContainerfile(f)
	f.Close()
	if err != nil {
		return nil, err
	}
	base, err := BaseTar(ctx, spec.Base, o.CacheDir, o.Log)
	if err != nil {
		return nil, err
	}
	return Build(Options{Spec: spec, BaseTar: base, Context: o.Context, Tag: o.Tag, Created: o.Created}, o.Out)
}

// DefaultCacheDir is where the base is kept: $L2AGENT_CACHE_DIR, else the
// user's cache directory (~/.cache/l2agent), else the system temporary one.
func DefaultCacheDir() string {
	if d := os.Getenv("L2AGENT_CACHE_DIR"); d != "" {
		return d
	}
	if d, err := os.UserCacheDir(); err == nil {
		return filepath.Join(d, "l2agent")
	}
	return filepath.Join(os.TempDir(), "l2agent-cache")
}
