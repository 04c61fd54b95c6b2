#!/usr/bin/env bash
# Installs the real components that l2agent's test suite and benchmark need,
# from Debian packages. Idempotent: when every needed binary is already there
# it does not touch apt at all (fast path for cached CI machines).
#
# Usage: deploy/testenv/install.sh [GROUP...]
#   GROUP is one of the groups named in COMPONENTS below (core, bench, ...);
#   "all" (the default when no group is given) selects every group.
#
# Debian packages start their daemons from postinst. This script installs
# with a temporary /usr/sbin/policy-rc.d that denies every start (exit 101),
# so no prometheus or node_exporter is left listening on 9090/9100; it only
# removes that file if it created it.
set -euo pipefail

# One entry per line: "GROUPS BINARY PACKAGE". GROUPS is a comma-separated
# list. BINARY is looked up on PATH and in /usr/bin, /usr/sbin, /sbin.
# To add a component (Request Tracker, clamav, openssh-server, ...) add a
# line here, with a new group if it is only needed by some tests.
COMPONENTS=(
	"core,bench curl                     curl"
	"core       prometheus               prometheus"
	"core       promtool                 prometheus"
	"bench      prometheus-node-exporter prometheus-node-exporter"
	"bench      zabbix_agent2            zabbix-agent2"
	"mfa        /usr/sbin/sshd           openssh-server"
	"mfa        ssh-keygen               openssh-client"
	"mfa        google-authenticator     libpam-google-authenticator"
	"mfa        /lib/x86_64-linux-gnu/security/pam_oath.so libpam-oath"
	"patches    /usr/bin/apt-ftparchive  apt-utils"
	"patches    /usr/bin/dpkg-deb        dpkg"
	"patches-rpm dnf                     dnf"
	"patches-rpm zypper                  zypper"
	"patches-rpm rpm                     rpm"
	"patches-rpm rpmbuild                rpm"
	"patches-rpm createrepo_c            createrepo-c"
	"patches-rpm modifyrepo_c            createrepo-c"
	"antivirus  /usr/sbin/clamd          clamav-daemon"
	"antivirus  /usr/bin/clamscan        clamav"
	"antivirus  /usr/bin/freshclam       clamav-freshclam"
	"alertmanager prometheus-alertmanager prometheus-alertmanager"
	"alertmanager amtool                  prometheus-alertmanager"
	"ansible    ansible-playbook         ansible-core"
	"ansible    /usr/lib/python3/dist-packages/apt/__init__.py python3-apt"
	"ansible    ssh                      openssh-client"
	"ansible    ssh-keygen               openssh-client"
	"ansible    socat                    socat"
	"packaging  rpm                      rpm"
	"packaging  lintian                  lintian"
	"systemd    mmdebstrap               mmdebstrap"
	"systemd    systemd-nspawn           systemd-container"
	"systemd    nsenter                  util-linux"
	"image      mmdebstrap               mmdebstrap"
	"image      systemd-nspawn           systemd-container"
)

# Default listen ports of the daemons the packages would start.
DAEMON_PORTS=(9090 9093 9094 9100 10050)

log() { printf 'install.sh: %s\n' "$*"; }

usage() {
	local groups
	groups=$(all_groups | tr '\n' ' ')
	printf 'usage: %s [all | %s]...\n' "$0" "${groups% }" >&2
	exit "${1:-2}"
}

all_groups() {
	local entry g
	for entry in "${COMPONENTS[@]}"; do
		read -r g _ <<<"$entry"
		tr ',' '\n' <<<"$g"
	done | sort -u
}

find_bin() {
	local bin=$1 dir
	if [[ $bin == /* ]]; then # an absolute path: any file (a PAM module is not executable)
		[[ -e $bin ]] && printf '%s\n' "$bin" && return 0
		return 1
	fi
	if command -v "$bin" >/dev/null 2>&1; then
		command -v "$bin"
		return 0
	fi
	for dir in /usr/bin /usr/sbin /sbin /bin; do
		if [[ -x "$dir/$bin" ]]; then
			printf '%s\n' "$dir/$bin"
			return 0
		fi
	done
	return 1
}

# Is port $1 in LISTEN state on any IPv4/IPv6 address?
port_listening() {
	local hex
	hex=$(printf '%04X' "$1")
	awk -v p=":$hex" 'NR > 1 && $4 == "0A" && substr($2, length($2) - 4) == p { found = 1 } END { exit !found }' \
		/proc/net/tcp /proc/net/tcp6 2>/dev/null
}

# ---- select the components -------------------------------------------------
wanted_groups=("$@")
[[ ${#wanted_groups[@]} -eq 0 ]] && wanted_groups=(all)
known=$(all_groups)
for g in "${wanted_groups[@]}"; do
	case $g in
	-h | --help) usage 0 ;;
	all) ;;
	*) grep -qxF -- "$g" <<<"$known" || {
		log "unknown group '$g'"
		usage
	} ;;
	esac
done

selected() { # $1 = comma-separated groups of an entry
	local g eg
	for g in "${wanted_groups[@]}"; do
		[[ $g == all ]] && return 0
		for eg in ${1//,/ }; do
			[[ $eg == "$g" ]] && return 0
		done
	done
	return 1
}

missing_pkgs=()
missing_bins=()
for entry in "${COMPONENTS[@]}"; do
	read -r groups bin pkg <<<"$entry"
	selected "$groups" || continue
	if path=$(find_bin "$bin"); then
		log "present: $bin ($path)"
	else
		log "missing: $bin (package $pkg)"
		missing_bins+=("$bin")
		case " ${missing_pkgs[*]-} " in
		*" $pkg "*) ;;
		*) missing_pkgs+=("$pkg") ;;
		esac
	fi
done

if [[ ${#missing_pkgs[@]} -eq 0 ]]; then
	log "all components for group(s) ${wanted_groups[*]} are present; apt not used"
	exit 0
fi

# ---- install ---------------------------------------------------------------
if [[ $(id -u) -ne 0 ]]; then
	log "not running as root: cannot install ${missing_pkgs[*]}."
	log "run this script as root (e.g. sudo $0 ${*:-}), or install by hand:"
	log "  apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends ${missing_pkgs[*]}"
	exit 1
fi
command -v apt-get >/dev/null 2>&1 || {
	log "apt-get not found: this installer needs a Debian-based system"
	exit 1
}

policy=/usr/sbin/policy-rc.d
created_policy=0
# shellcheck disable=SC2317 # called from the EXIT trap
cleanup() {
	if [[ $created_policy -eq 1 ]]; then
		rm -f "$policy"
		log "removed temporary $policy"
	fi
}
trap cleanup EXIT
if [[ -e $policy ]]; then
	log "$policy already exists; leaving it as it is"
else
	printf '#!/bin/sh\n# temporary, written by l2agent deploy/testenv/install.sh\nexit 101\n' >"$policy"
	chmod 0755 "$policy"
	created_policy=1
	log "wrote temporary $policy (exit 101: no daemon starts during install)"
fi

# systemd-container must have exactly the installed systemd's version: a plain install would
# upgrade the host's systemd to the archive's newest. Pinned when the archive still has it.
for i in "${!missing_pkgs[@]}"; do
	[[ ${missing_pkgs[$i]} == systemd-container ]] || continue
	v=$(dpkg-query -W -f='${Version}' systemd 2>/dev/null || true)
	if [[ -n $v ]] && apt-cache madison systemd-container | awk -v v="$v" '$3 == v { f = 1 } END { exit !f }'; then
		missing_pkgs[$i]="systemd-container=$v"
	fi
done

export DEBIAN_FRONTEND=noninteractive
log "apt-get update"
apt-get update -q
log "apt-get install ${missing_pkgs[*]}"
apt-get install -y -q --no-install-recommends -o DPkg::Lock::Timeout=300 "${missing_pkgs[@]}"

failed=0
for bin in "${missing_bins[@]}"; do
	if path=$(find_bin "$bin"); then
		log "installed: $bin ($path)"
	else
		log "ERROR: $bin still not found after installing"
		failed=1
	fi
done
for pkg in "${missing_pkgs[@]}"; do
	log "package: $(dpkg-query -W -f='${Package} ${Version}' "${pkg%%=*}")"
done
for port in "${DAEMON_PORTS[@]}"; do
	if port_listening "$port"; then
		log "WARNING: something is listening on port $port after the install"
	fi
done
exit "$failed"
