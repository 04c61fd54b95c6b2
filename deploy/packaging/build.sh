#!/bin/sh
# Builds the l2agent .deb and .rpm into OUTDIR (default: dist).
#
#   deploy/packaging/build.sh [OUTDIR]
#
# VERSION (env) is the package version, e.g. 1.2.3 or v1.2.3; by default the nearest v* git tag
# (git describe), else 0.0.0. The binary is static (CGO_ENABLED=0) and reports that version in
# `l2agent version`. L2AGENT_CONFIG (env) is the config shipped as /etc/l2agent/agent.yaml
# (default: configs/agent.yaml, the embedded default). nfpm v2.45.2 is run with `go run` (through the Go module proxy, not in go.mod).
set -eu

NFPM=github.com/goreleaser/nfpm/v2/cmd/nfpm@v2.45.2

root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"

out=${1:-dist}
mkdir -p "$out"
out=$(cd "$out" && pwd)

if [ -z "${VERSION:-}" ]; then
    VERSION=$(git describe --tags --match 'v[0-9]*' 2>/dev/null || true)
    VERSION=${VERSION:-0.0.0}
fi
VERSION=${VERSION#v}
export VERSION

stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT INT TERM

CGO_ENABLED=0 GOOS=linux GOARCH=amd64 go build -trimpath \
    -ldflags "-s -w -X github.com/l2agent/l2agent/agent.Version=$VERSION" \
    -o "$stage/l2agent" ./cmd/l2agent
L2AGENT_BIN=$stage/l2agent
L2AGENT_CONFIG=${L2AGENT_CONFIG:-configs/agent.yaml}
export L2AGENT_BIN L2AGENT_CONFIG

for packager in deb rpm; do
    go run "$NFPM" pkg --config deploy/packaging/nfpm.yaml --packager "$packager" --target "$out"
done
