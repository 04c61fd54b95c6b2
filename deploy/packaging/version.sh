#!/bin/sh
# Prints the package version build.sh uses: VERSION (env; a leading v dropped) when set, else
# one from git that dpkg and rpm accept and order rightly:
#   on a tag v1.2.3                 1.2.3
#   after it                        1.2.3+git<YYYYMMDD>.<hash>   (above 1.2.3, below 1.2.4)
#   with no v* tag before HEAD      0.0.0~git<YYYYMMDD>.<hash>   (below every release)
# <YYYYMMDD> is the commit's date (UTC) and <hash> its short hash, so a commit always gets the
# same version; of two snapshots of one day, the order is that of their hashes (set VERSION to
# choose). A VERSION dpkg or rpm would refuse or misorder is rejected with the reason.
set -eu

cd "$(dirname "$0")/../.."

fail() {
    printf 'version.sh: %s\n' "$*" >&2
    exit 1
}

# check V: V is a version dpkg and rpm accept: it starts with a digit (dpkg) and has no hyphen
# (rpm; build.sh adds the release after one): 1.2.3, 1.2.3~rc1 (below 1.2.3), 1.2.3+hotfix1.
check() {
    case $1 in
        [0-9]*) ;;
        *) fail "version $1: a package version starts with a digit (e.g. 1.2.3)" ;;
    esac
    if printf '%s' "$1" | grep -q '[^A-Za-z0-9.+~]'; then
        fail "version $1: only letters, digits and . + ~ (a pre-release is 1.2.3~rc1, not 1.2.3-rc1)"
    fi
}

if [ -n "${VERSION:-}" ]; then
    v=${VERSION#v}
    check "$v"
    if printf '%s' "$v" | grep -Eq '^[0-9a-f]{7,40}$' && printf '%s' "$v" | grep -q '[a-f]'; then
        fail "VERSION=$VERSION looks like a git commit hash, which would sort above every release; leave VERSION unset for a snapshot version"
    fi
    printf '%s\n' "$v"
    exit 0
fi

git rev-parse --verify -q HEAD >/dev/null 2>&1 ||
    fail "not a git checkout: set VERSION (e.g. VERSION=1.2.3)"
hash=$(git rev-parse --short=7 HEAD)
date=$(TZ=UTC git log -1 --date=format-local:%Y%m%d --format=%cd HEAD)
# A tag's semver pre-release (v1.2.3-rc1) is dpkg's and rpm's ~ (1.2.3~rc1).
if tag=$(git describe --tags --exact-match --match 'v[0-9]*' HEAD 2>/dev/null); then
    v=$(printf '%s' "${tag#v}" | tr - '~')
elif tag=$(git describe --tags --abbrev=0 --match 'v[0-9]*' HEAD 2>/dev/null); then
    v=$(printf '%s+git%s.%s' "${tag#v}" "$date" "$hash" | tr - '~')
else
    v=0.0.0~git$date.$hash
fi
check "$v"
printf '%s\n' "$v"
