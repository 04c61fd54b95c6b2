#!/bin/sh
# Builds the l2agent .deb and .rpm into OUTDIR (default: dist), both from nfpm.yaml.
#
#   deploy/packaging/build.sh [OUTDIR]
#
# VERSION (env) is the package version, e.g. 1.2.3 or v1.2.3 (a leading v is dropped). By
# default it comes from git (see version.sh): the v* tag on HEAD; after one,
# 1.2.3+git<date>.<hash>; before any, 0.0.0~git<date>.<hash> (below every release). The binary
# is static (CGO_ENABLED=0) and reports that version in `l2agent version`. L2AGENT_CONFIG (env)
# is the config shipped as /etc/l2agent/agent.yaml (default: configs/agent.yaml, the embedded
# default). nfpm v2.45.2 is run with `go run` (through the Go module proxy, not in go.mod).
#
# Besides the binary, the config and the unit, the packages hold what Debian's own do, made
# here by deploy/packaging/pkgdocs from the built binary and the git commit: the man page
# l2agent(1) from the CLI's help, the changelog (changelog.Debian.gz; the rpm's %changelog)
# and the copyright file (naming the Go modules linked into the binary and their licenses).
set -eu

NFPM=github.com/goreleaser/nfpm/v2/cmd/nfpm@v2.45.2

root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"

out=${1:-dist}
mkdir -p "$out"
out=$(cd "$out" && pwd)

VERSION=$(sh deploy/packaging/version.sh)
export VERSION
RELEASE=1

stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT INT TERM

commit=$(git rev-parse --short=7 HEAD 2>/dev/null || echo unknown)
# Dates in the packages are the commit's, so a commit always gives the same files.
SOURCE_DATE_EPOCH=${SOURCE_DATE_EPOCH:-$(git log -1 --format=%ct 2>/dev/null || date +%s)}
export SOURCE_DATE_EPOCH

CGO_ENABLED=0 GOOS=linux GOARCH=amd64 go build -trimpath \
    -ldflags "-s -w -X github.com/l2agent/l2agent/agent.Version=$VERSION" \
    -o "$stage/l2agent" ./cmd/l2agent
maintainer=$(sed -n 's/^maintainer: *//p' deploy/packaging/nfpm.yaml)
go run ./deploy/packaging/pkgdocs -bin "$stage/l2agent" -out "$stage" \
    -version "$VERSION" -release "$RELEASE" -commit "$commit" -date "$SOURCE_DATE_EPOCH" \
    -maintainer "$maintainer" -readme README.md -modcache "$(go env GOMODCACHE)"

L2AGENT_BIN=$stage/l2agent
L2AGENT_DOCS=$stage
L2AGENT_CONFIG=${L2AGENT_CONFIG:-configs/agent.yaml}
case $L2AGENT_CONFIG in /*) ;; *) L2AGENT_CONFIG=$root/$L2AGENT_CONFIG ;; esac
export L2AGENT_BIN L2AGENT_DOCS L2AGENT_CONFIG RELEASE

# nfpm reads `changelog:` and `scripts:` relative to its working directory and expands no
# variable in them: it runs in the stage, where deploy/ is the repository's and changelog.yml
# is the one pkgdocs made for the packager at hand.
ln -s "$root/deploy" "$stage/deploy"
for packager in deb rpm; do
    cp "$stage/changelog-$packager.yml" "$stage/changelog.yml"
    (cd "$stage" && go run "$NFPM" pkg --config deploy/packaging/nfpm.yaml --packager "$packager" --target "$out")
done
