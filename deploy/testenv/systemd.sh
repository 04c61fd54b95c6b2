#!/usr/bin/env bash
# A Debian 12 container that boots systemd as PID 1 (systemd-nspawn --boot), to test the .deb
# and its unit under a real systemd on a host whose own PID 1 is not systemd.
#
# Usage: deploy/testenv/systemd.sh ACTION ...
#   prepare              install the host tools (install.sh systemd) and build the cached root
#                        once (mmdebstrap, ~90 s); later calls return at once
#   tree NAME            a fresh copy of the cached root for container NAME (cp -a, ~1 s); a
#                        test may change it (chroot, dpkg --root) before it boots
#   start NAME           boot NAME's tree (made first if missing), wait until the manager is
#                        running or degraded; prints the tree's path
#   exec NAME CMD...     run CMD inside (its namespaces and root, clean environment); the exit
#                        code is CMD's
#   copy NAME SRC DEST   copy a host file into the running container (through its own mounts:
#                        nspawn mounts a tmpfs on its /tmp)
#   stop NAME            orderly halt (bounded), then kill what is left; removes the tree
#                        (its boot log stays in the state dir until the next start)
#   gc                   stop the containers whose owner process is gone
#
# The container has a private network (only its own lo): what listens on its 127.0.0.1 is not
# reachable from the host and cannot clash with the host's ports. Every start first stops the
# containers left by owners that died (a test binary killed by its -timeout); the owner is
# $L2AGENT_CT_OWNER (a PID), by default the caller of this script.
#
# Environment (all optional):
#   L2AGENT_TESTENV_CACHE  cache root (default /var/cache/l2agent-testenv): the root is built in
#                          systemd/rootfs, the trees live in systemd/trees/NAME
#   L2AGENT_CT_STATE       pids and boot logs (default /run/l2agent-testenv/systemd/NAME)
#   L2AGENT_CT_BOOT_TIMEOUT, L2AGENT_CT_STOP_TIMEOUT  seconds (default 120, 60)
# Needs root on a Debian 12 host; the root's apt sources are the host's own.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
CACHE=${L2AGENT_TESTENV_CACHE:-/var/cache/l2agent-testenv}/systemd
ROOTFS=$CACHE/rootfs
TREES=$CACHE/trees
STATE_ROOT=${L2AGENT_CT_STATE:-/run/l2agent-testenv/systemd}
BOOT_TIMEOUT=${L2AGENT_CT_BOOT_TIMEOUT:-120}
STOP_TIMEOUT=${L2AGENT_CT_STOP_TIMEOUT:-60}
SUITE=bookworm
# What the tests run inside besides systemd: curl (metrics), procps (ps), python3 (Ansible's
# modules), iproute2 (ss). Changing the list rebuilds the root (the stamp below).
PACKAGES=systemd,systemd-sysv,dbus,libpam-systemd,curl,procps,python3,iproute2
STAMP="suite=$SUITE packages=$PACKAGES v=1"
# A pure cgroup v2 tree inside, as on a stock Debian 12 host (the host here is hybrid).
export SYSTEMD_NSPAWN_UNIFIED_HIERARCHY=1
CT_PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin

log() { printf 'systemd.sh: %s\n' "$*" >&2; }
die() {
	log "ERROR: $*"
	exit 1
}
usage() {
	sed -n '5,21p' "$0" | sed 's/^# \{0,1\}//' >&2
	exit 2
}
valid_name() { [[ $1 =~ ^[a-zA-Z0-9][a-zA-Z0-9_-]{0,40}$ ]] || die "bad container name '$1'"; }

# ---- the cached root ---------------------------------------------------------------------------
rootfs_ready() { [[ -x $ROOTFS/usr/lib/systemd/systemd && -f $ROOTFS/.l2agent-stamp && $(cat "$ROOTFS/.l2agent-stamp") == "$STAMP" ]]; }

# The host's apt sources that name the suite: mmdebstrap takes a file as a MIRROR argument and
# copies its lines (one-line or deb822) into the root. Without them it would use deb.debian.org
# directly, not what the host is configured for.
host_sources() {
	local f
	for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources; do
		[[ -s $f ]] || continue
		grep -Eq "(^|[[:space:]])$SUITE(-[a-z]+)?([[:space:]]|\$)" "$f" && printf '%s\n' "$f"
	done
	return 0
}

# The host's apt settings without which its mirror may be unusable (an archive snapshot whose
# Release files are expired, a proxy), passed on to mmdebstrap.
host_aptopts() {
	apt-config dump 2>/dev/null | grep -E '^Acquire::(Check-Valid-Until|Check-Date|https?::Proxy) ' |
		sed 's/;$//' | while read -r k v; do printf -- '--aptopt=%s %s\n' "$k" "$v"; done
}

cmd_prepare() {
	[[ $# -eq 0 ]] || usage
	bash "$HERE/install.sh" systemd >&2
	mkdir -p "$CACHE"
	exec 9>"$CACHE/.lock"
	flock 9 # one build at a time (test packages run in parallel)
	if rootfs_ready; then
		log "root cached in $ROOTFS"
		return 0
	fi
	local srcs=() opts=() s t0=$SECONDS
	while IFS= read -r s; do srcs+=("$s"); done < <(host_sources)
	[[ ${#srcs[@]} -gt 0 ]] || die "no apt source for $SUITE in /etc/apt/sources.list{,.d}"
	while IFS= read -r s; do opts+=("$s"); done < <(host_aptopts)
	rm -rf "$ROOTFS" "$ROOTFS.partial"
	log "building $ROOTFS (mmdebstrap $SUITE minbase + $PACKAGES; sources ${srcs[*]})"
	# The host's /etc/hostname is removed so that the container is named by nspawn.
	mmdebstrap --variant=minbase --include="$PACKAGES" "${opts[@]}" \
		--dpkgopt='path-exclude=/usr/share/locale/*' \
		--customize-hook='rm -f "$1/etc/hostname"' \
		"$SUITE" "$ROOTFS.partial" "${srcs[@]}" >&2
	[[ -x $ROOTFS.partial/usr/lib/systemd/systemd ]] || die "mmdebstrap left no systemd in $ROOTFS.partial"
	# mmdebstrap leaves /etc/machine-id empty (a new one each boot, and journalctl would not
	# find the journal of an earlier boot): one fixed id.
	tr -d - </proc/sys/kernel/random/uuid >"$ROOTFS.partial/etc/machine-id"
	printf '%s\n' "$STAMP" >"$ROOTFS.partial/.l2agent-stamp"
	mv "$ROOTFS.partial" "$ROOTFS"
	log "root ready in $((SECONDS - t0)) s: $(du -sh "$ROOTFS" | cut -f1)"
}

# ---- state of a container ----------------------------------------------------------------------
# $STATE_ROOT/NAME/{owner,nspawn.pid,leader.pid,pidns,cgroup,cgmounts,nspawn.log}
sdir() { printf '%s/%s' "$STATE_ROOT" "$1"; }
alive() { [[ -n ${1:-} ]] && kill -0 "$1" 2>/dev/null; }
# A PID read from a state file is acted on only while it is still what it was.
nspawn_alive() { alive "${1:-}" && [[ $(cat /proc/"$1"/comm 2>/dev/null) == systemd-nspawn ]]; }
init_alive() { alive "${1:-}" && [[ -n ${2:-} && $(readlink /proc/"$1"/ns/pid 2>/dev/null) == "$2" ]]; }
running() {
	local s
	s=$(sdir "$1")
	[[ -s $s/nspawn.pid ]] && nspawn_alive "$(cat "$s/nspawn.pid")"
}
leader() {
	local s
	s=$(sdir "$1")
	[[ -s $s/leader.pid ]] || die "container $1 is not running"
	cat "$s/leader.pid"
}
# The container's init: nspawn's child in another PID namespace.
find_leader() {
	local c self
	self=$(readlink /proc/self/ns/pid)
	for c in $(cat /proc/"$1"/task/*/children 2>/dev/null); do
		[[ $(readlink /proc/"$c"/ns/pid 2>/dev/null) != "$self" ]] && echo "$c" && return 0
	done
	return 1
}
ns_pids() {
	local p
	for p in /proc/[0-9]*; do
		[[ $(readlink "$p/ns/pid" 2>/dev/null) == "$1" ]] && echo "${p#/proc/}"
	done
	return 0
}
# The host's cgroup hierarchies nspawn writes to: cgroup2 and the v1 name=systemd one.
cg_mounts() {
	awk '{ for (i = 7; i <= NF; i++) if ($i == "-") { t = $(i + 1); o = $(i + 3); break }
	       if (t == "cgroup2" || (t == "cgroup" && o ~ /(^|,)name=systemd(,|$)/)) print $5 }' /proc/self/mountinfo
}
cg_pids() {
	local m
	for m in $(cg_mounts); do
		[[ -d $m/$1 ]] && find "$m/$1" -name cgroup.procs -exec cat {} + 2>/dev/null
	done | sort -un
}
cg_remove() {
	local m
	for m in $(cg_mounts); do
		[[ -d $m/$1 ]] && find "$m/$1" -depth -type d -exec rmdir {} + 2>/dev/null
	done
	return 0
}
# in_ct NAME CMD...: CMD in the container's namespaces and root, with a clean environment.
in_ct() {
	local l
	l=$(leader "$1")
	shift
	nsenter --target "$l" --mount --uts --ipc --net --pid --cgroup --root --wd -- \
		/usr/bin/env -i PATH="$CT_PATH" HOME=/root LANG=C.UTF-8 TERM=dumb \
		SYSTEMD_PAGER= SYSTEMD_COLORS=0 "$@"
}

# ---- actions -----------------------------------------------------------------------------------
cmd_tree() {
	[[ $# -eq 1 ]] || usage
	valid_name "$1"
	rootfs_ready || die "no cached root: run $0 prepare (make test-env)"
	running "$1" && die "container $1 is running; stop it first"
	rm -rf "${TREES:?}/$1"
	mkdir -p "$TREES"
	cp -a "$ROOTFS" "$TREES/$1"
	rm -f "$TREES/$1/.l2agent-stamp"
	mkdir -p "$(sdir "$1")"
	echo "${L2AGENT_CT_OWNER:-$PPID}" >"$(sdir "$1")/owner" # gc removes it after its owner
	printf '%s\n' "$TREES/$1"
}

cmd_start() {
	[[ $# -eq 1 ]] || usage
	local name=$1 s dir np l st deadline cg t0=$EPOCHREALTIME
	valid_name "$name"
	cmd_gc
	running "$name" && die "container $name is already running"
	dir=$TREES/$name
	[[ -x $dir/usr/lib/systemd/systemd ]] || cmd_tree "$name" >/dev/null
	s=$(sdir "$name")
	rm -rf "$s"
	mkdir -p "$s"
	echo "${L2AGENT_CT_OWNER:-$PPID}" >"$s/owner"
	cg_mounts >"$s/cgmounts"
	# Without systemd on the host nobody gives nspawn a cgroup of its own, and with --keep-unit
	# it makes supervisor/ and payload/ next to its own: from the root cgroup two containers
	# would share /payload. Hence a cgroup per container, entered before exec.
	cg=
	[[ -d /run/systemd/system ]] || cg=l2agent-ct.$name
	printf '%s\n' "$cg" >"$s/cgroup"
	# --register=no --keep-unit: no machined and no system bus on this host.
	# --console=read-only: the boot messages go to nspawn.log; setsid: no terminal signals.
	# --system-call-filter: nspawn's own seccomp filter (systemd 252) leaves out the Landlock
	# calls, with which l2agent's remediation helper confines its actions: allowed, as on a host.
	setsid bash -c '
		s=$1 cg=$2; shift 2
		echo $$ >"$s/nspawn.pid"
		if [ -n "$cg" ]; then
			for m in $(cat "$s/cgmounts"); do mkdir -p "$m/$cg" && echo $$ >"$m/$cg/cgroup.procs"; done
		fi
		exec "$@"' sh "$s" "$cg" \
		systemd-nspawn --quiet --directory="$dir" --machine="$name" --boot \
		--register=no --keep-unit --private-network --link-journal=no --console=read-only \
		--system-call-filter="landlock_create_ruleset landlock_add_rule landlock_restrict_self" \
		</dev/null >"$s/nspawn.log" 2>&1 &
	deadline=$((SECONDS + BOOT_TIMEOUT))
	until [[ -s $s/nspawn.pid ]]; do
		[[ $SECONDS -lt $deadline ]] || die "systemd-nspawn did not start"
		sleep 0.05
	done
	np=$(cat "$s/nspawn.pid")
	until l=$(find_leader "$np"); do
		alive "$np" || start_failed "$name" "systemd-nspawn exited"
		[[ $SECONDS -lt $deadline ]] || start_failed "$name" "no container init under systemd-nspawn $np"
		sleep 0.05
	done
	echo "$l" >"$s/leader.pid"
	readlink /proc/"$l"/ns/pid >"$s/pidns"
	# is-system-running --wait fails at once while the manager is not up yet: poll.
	while :; do
		alive "$np" || start_failed "$name" "container $name stopped while booting"
		st=$(timeout 5 nsenter --target "$l" --mount --uts --ipc --net --pid --cgroup --root --wd -- \
			/usr/bin/env -i PATH="$CT_PATH" systemctl is-system-running 2>/dev/null || true)
		case $st in running | degraded) break ;; esac
		if [[ $SECONDS -ge $deadline ]]; then
			in_ct "$name" systemctl list-jobs --no-pager >&2 || true
			die "container $name still '$st' after ${BOOT_TIMEOUT}s (left running: $0 stop $name)"
		fi
		sleep 0.1
	done
	log "container $name: $st in $(awk -v a="$t0" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.1f", b - a }') s"
	[[ $st == degraded ]] && in_ct "$name" systemctl --failed --no-legend --plain --no-pager >&2
	printf '%s\n' "$dir"
}

start_failed() { # NAME MESSAGE: nspawn is gone; undo what start made
	local s
	s=$(sdir "$1")
	tail -n 30 "$s/nspawn.log" >&2 || true
	cg_remove "$(cat "$s/cgroup" 2>/dev/null)"
	rm -f "$s/nspawn.pid" "$s/leader.pid" "$s/pidns"
	die "$2"
}

cmd_exec() {
	[[ $# -ge 2 ]] || usage
	local name=$1
	shift
	in_ct "$name" "$@"
}

cmd_copy() {
	[[ $# -eq 3 ]] || usage
	local name=$1 src=$2 dest=$3
	[[ -f $src ]] || die "$src: not a file"
	in_ct "$name" sh -c 'd=$1; case $d in */) d=$d${2##*/} ;; esac; [ -d "$d" ] && d=$d/${2##*/}; cat >"$d" && chmod "$3" "$d"' \
		sh "$dest" "$src" "$(stat -c %a "$src")" <"$src"
}

cmd_stop() {
	[[ $# -eq 1 ]] || usage
	local name=$1 s np l ns cg left t0=$SECONDS
	valid_name "$name"
	s=$(sdir "$name")
	np=$(cat "$s/nspawn.pid" 2>/dev/null || true)
	l=$(cat "$s/leader.pid" 2>/dev/null || true)
	ns=$(cat "$s/pidns" 2>/dev/null || true)
	cg=$(cat "$s/cgroup" 2>/dev/null || true)
	if nspawn_alive "$np"; then
		# SIGTERM makes nspawn send SIGRTMIN+3 to the container's systemd: an orderly halt.
		kill -TERM "$np"
		for _ in $(seq $((STOP_TIMEOUT * 10))); do
			alive "$np" || break
			sleep 0.1
		done
		if alive "$np"; then
			log "container $name: no clean halt in ${STOP_TIMEOUT}s, killing it"
			init_alive "$l" "$ns" && kill -KILL "$l" # PID 1 of the namespace: takes it all along
			sleep 1
			nspawn_alive "$np" && kill -KILL "$np"
		fi
	fi
	# Whatever is left in its PID namespace or cgroups (there should be nothing).
	for _ in $(seq 25); do
		left=$({
			[[ -n $ns ]] && ns_pids "$ns"
			[[ -n $cg ]] && cg_pids "$cg"
			true
		} | sort -un)
		[[ -z $left ]] && break
		sleep 0.2
	done
	if [[ -n $left ]]; then
		log "container $name: killing leftover processes $(echo $left)"
		# shellcheck disable=SC2086
		kill -KILL $left 2>/dev/null || true
	fi
	[[ -n $cg ]] && cg_remove "$cg"
	rm -f "$s/nspawn.pid" "$s/leader.pid" "$s/pidns" "$s/owner" # nspawn.log stays
	rm -rf "${TREES:?}/$name"
	log "container $name: stopped in $((SECONDS - t0)) s"
}

# Stops every container whose owner process is gone, and forgets the stopped ones (their
# nspawn.log is kept until then, for a post-mortem).
cmd_gc() {
	local d name owner
	for d in "$STATE_ROOT"/*/; do
		[[ -d $d ]] || continue
		name=$(basename "$d")
		if [[ ! -s $d/owner ]]; then
			running "$name" || rm -rf "${d:?}"
			continue
		fi
		owner=$(cat "$d/owner")
		alive "$owner" && continue
		log "container $name: its owner $owner is gone; stopping it"
		cmd_stop "$name"
	done
}

[[ $(id -u) -eq 0 ]] || die "must run as root"
case ${1:-} in
prepare | tree | start | exec | copy | stop | gc)
	action=$1
	shift
	"cmd_$action" "$@"
	;;
*) usage ;;
esac
