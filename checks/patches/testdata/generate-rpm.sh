#!/usr/bin/env bash
# Regenerates the dnf and zypper outputs of this directory with the real
# tools, from Debian's packages (dnf 4.14, zypper 1.14.42, rpm, createrepo-c;
# note dnf-plugins-core conflicts with zypper on Debian 12, so needs-restarting
# is not run here). Everything happens in a scratch directory: a small RPM
# repository with updateinfo (rpm-updateinfo.xml: two security advisories and
# a bugfix) and private rpm databases with the old versions installed.
#
#   apt-get install -y --no-install-recommends dnf zypper createrepo-c rpm
#   bash generate-rpm.sh OUTDIR
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
out=${1:?usage: $0 OUTDIR}
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
mkdir -p "$out" "$T/rpmbuild/SPECS" "$T/repo" "$T/root" "$T/zroot" "$T/repos.d"
spec() { # name version release epoch
	cat >"$T/rpmbuild/SPECS/$1-$2.spec" <<SPEC
Name: $1
Version: $2
Release: $3
${4:+Epoch: $4}
Summary: l2agent test package
License: MIT
BuildArch: noarch
%description
l2agent test package.
%files
SPEC
	rpmbuild -bb --quiet --define "_topdir $T/rpmbuild" "$T/rpmbuild/SPECS/$1-$2.spec"
}
long=l2a-a-rather-long-package-name-that-dnf-wraps
spec l2a-sec 1.0 1; spec l2a-sec 1.1 1; spec l2a-other 1.0 1; spec l2a-other 2.0 1; spec l2a-current 1.0 1
spec $long 1.0.0 1.el9 2; spec $long 1.0.1 3.el9_4 2
R=$T/rpmbuild/RPMS/noarch
cp $R/l2a-sec-1.1-1.noarch.rpm $R/l2a-other-2.0-1.noarch.rpm $R/l2a-current-1.0-1.noarch.rpm $R/$long-1.0.1-3.el9_4.noarch.rpm "$T/repo/"
createrepo_c -q "$T/repo"
modifyrepo_c --mdtype=updateinfo "$here/rpm-updateinfo.xml" "$T/repo/repodata" >/dev/null
for r in root zroot; do
	rpm --root "$T/$r" --initdb
	rpm --root "$T/$r" -i --justdb --nodeps $R/l2a-sec-1.0-1.noarch.rpm $R/l2a-other-1.0-1.noarch.rpm \
		$R/l2a-current-1.0-1.noarch.rpm $R/$long-1.0.0-1.el9.noarch.rpm 2>/dev/null
done
printf '[l2a]\nname=l2agent test repository\nbaseurl=file://%s/repo\ngpgcheck=0\nenabled=1\n' "$T" >"$T/repos.d/l2a.repo"
DNF=(dnf --installroot="$T/root" --setopt=reposdir="$T/repos.d" --releasever=1 --setopt=cachedir="$T/root/var/cache/dnf")
"${DNF[@]}" -q makecache
"${DNF[@]}" -C -q updateinfo list --security >"$out/dnf-updateinfo-list-security.txt"
"${DNF[@]}" -C -q check-update >"$out/dnf-check-update.txt" || [ $? -eq 100 ]
# l2a-sec excluded (excludepkgs, as exclude= in dnf.conf or a .repo file):
# dnf hides it from both; --disableexcludes=all gives the two files above.
"${DNF[@]}" -C -q --setopt=excludepkgs=l2a-sec check-update >"$out/dnf-check-update-excluded.txt" || [ $? -eq 100 ]
"${DNF[@]}" -C -q --setopt=excludepkgs=l2a-sec updateinfo list --security >"$out/dnf-updateinfo-list-security-excluded.txt"
rpm --root "$T/root" -qa --qf '%{NAME}.%{ARCH}\t%{EPOCH}:%{VERSION}-%{RELEASE}\n' >"$out/rpm-qa.txt"
"${DNF[@]}" -C -y -q upgrade l2a-other >/dev/null
cp "$T/root/var/log/dnf.rpm.log" "$out/dnf.rpm.log"
Z=(zypper --root "$T/zroot" --non-interactive)
"${Z[@]}" ar -G -n "l2agent test repository" "file://$T/repo" l2a >/dev/null
"${Z[@]}" refresh >/dev/null
"${Z[@]}" --no-refresh --xmlout list-patches --category security >"$out/zypper-list-patches-security.xml"
"${Z[@]}" --no-refresh --xmlout list-updates >"$out/zypper-list-updates.xml"
"${Z[@]}" al l2a-other >/dev/null
"${Z[@]}" --no-refresh --xmlout list-updates >"$out/zypper-list-updates-locked.xml"
"${Z[@]}" --xmlout locks >"$out/zypper-locks.xml"
"${Z[@]}" rl l2a-other >/dev/null
# l2a-sec locked: its patch stays needed, list-updates hides the package,
# list-updates --all shows it.
"${Z[@]}" al l2a-sec >/dev/null
"${Z[@]}" --no-refresh --xmlout list-patches --category security >"$out/zypper-list-patches-security-locked-sec.xml"
"${Z[@]}" --no-refresh --xmlout list-updates >"$out/zypper-list-updates-locked-sec.xml"
"${Z[@]}" --no-refresh --xmlout list-updates --all >"$out/zypper-list-updates-all-locked-sec.xml"
"${Z[@]}" --xmlout locks >"$out/zypper-locks-sec.xml"
"${Z[@]}" rl l2a-sec >/dev/null
"${Z[@]}" --no-refresh up --no-recommends l2a-other >/dev/null 2>&1
cp "$T/zroot/var/log/zypp/history" "$out/zypp-history"
