// Command build makes l2agent's container image without a container daemon or a registry:
// it reads deploy/container/Containerfile, makes (once, cached) its Debian base with mmdebstrap
// and writes an OCI image archive. `make image` runs it after `make build`:
//
//	go run ./deploy/container/build [-o bin/l2agent-image.tar] [-tag localhost/l2agent:latest]
//
// It runs as root (mmdebstrap), from the repository's root (COPY sources are relative to it).
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"syscall"
	"time"

	"github.com/l2agent/l2agent/deploy/container"
)

func main() {
	containerfile := flag.String("f", "deploy/container/Containerfile", "the Containerfile")
	context := flag.String("context", ".", "the directory COPY sources are relative to")
	out := flag.String("o", "bin/l2agent-image.tar", "the OCI archive to write")
	tag := flag.String("tag", container.DefaultTag, "the image's reference")
	cache := flag.String("cache", container.DefaultCacheDir(), "where the base root filesystem is kept between builds")
	flag.Parse()
	if err := run(*containerfile, *context, *out, *tag, *cache); err != nil {
		fmt.Fprintln(os.Stderr, "build:", err)
		os.Exit(1)
	}
}

func run(containerfile, dir, out, tag, cache string) error {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	start := time.Now()
	created, err := sourceDate()
	if err != nil {
		return err
	}
	res, err := container.BuildFile(ctx, container.BuildOptions{
		Containerfile: containerfile, Context: dir, Out: out, Tag: tag, CacheDir: cache, Created: created, Log: os.Stderr,
	})
	if err != nil {
		return err
	}
	abs, _ := filepath.Abs(out)
	fmt.Printf("%s  %s\n  %s (%.1f MiB)", res.Tag, res.Digest, abs, float64(res.ArchiveBytes)/(1<<20))
	var unpacked int64
	for _, l := range res.Layers {
		unpacked += l.Uncompressed
	}
	fmt.Printf(", %.1f MiB unpacked, %d layers, built in %s\n", float64(unpacked)/(1<<20), len(res.Layers), time.Since(start).Round(100*time.Millisecond))
	slog.Debug("layers", "layers", res.Layers)
	return nil
}

// sourceDate is the image's time: SOURCE_DATE_EPOCH when set (reproducible
// builds; the Makefile passes the last commit's time), else the epoch.
func sourceDate() (time.Time, error) {
	s := os.Getenv("SOURCE_DATE_EPOCH")
	if s == "" {
		return time.Unix(0, 0).UTC(), nil
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return time.Time{}, fmt.Errorf("SOURCE_DATE_EPOCH=%q: %w", s, err)
	}
	return time.Unix(n, 0).UTC(), nil
}
