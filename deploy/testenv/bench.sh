#!/usr/bin/env bash
# Benchmarks l2agent side by side with the agents it replaces, in one run on
# this machine: Debian's prometheus-node-exporter, Debian's zabbix-agent2
# (passive only, on 127.0.0.1; it serves no /metrics, so idle figures only)
# and a bare client_golang process (deploy/testenv/floor, GOMAXPROCS=1: the
# floor of any Go exporter). All start fresh, together, then:
#
#   1. RSS before any scrape, after BENCH_SETTLE_SECONDS;
#   2. idle CPU over BENCH_IDLE_SECONDS (no scrapes; children included), and
#      again over the same length from BENCH_STEADY_AFTER seconds after the
#      start (steady: past the start-up, see below);
#   3. BENCH_SCRAPES sequential scrapes on one kept-alive connection:
#      p50/p99 latency and CPU per scrape;
#   4. BENCH_CONCURRENCY concurrent scrapers for BENCH_LOAD_SECONDS: scrapes/s;
#   5. BENCH_AFTER_SECONDS of rest, then RSS idle after load and peak RSS (VmHWM).
#
# It prints a Markdown table with each figure as a ratio to node_exporter.
# Numbers are printed, never asserted.
#
# Usage: deploy/testenv/bench.sh            (from anywhere in the repo)
# Needs: go, /usr/bin/prometheus-node-exporter, /usr/sbin/zabbix_agent2
#        (deploy/testenv/install.sh bench)
#
# Environment:
#   BENCH_IDLE_SECONDS   idle CPU window (default 300: the goal is stated over
#                        at least 5 minutes; shorter windows depend on which
#                        scheduled checks fall in them)
#   BENCH_SCRAPES        sequential scrapes per exporter (default 500)
#   BENCH_CONCURRENCY    concurrent scrapers (default 8)
#   BENCH_LOAD_SECONDS   how long they scrape (default 20)
#   BENCH_SETTLE_SECONDS wait after all answer, before measuring (default 60:
#                        past the agent's first check runs and the one-time
#                        re-reading of its code after its first page-out)
#   BENCH_STEADY_AFTER   start of the second idle window, in seconds after all
#                        answer (default 660: after each check with a schedule
#                        of up to 10 minutes has run again since the first
#                        page-out of the agent's code, which it reads back on
#                        that run; 0 leaves the window out)
#   BENCH_AFTER_SECONDS  rest after the load before the last RSS (default 10)
#   BENCH_AGENT_BIN      use this l2agent binary instead of building one
#   BENCH_AGENT_CONFIG   use this agent config instead of the embedded default
#   BENCH_NODE_EXPORTER  node_exporter binary (default /usr/bin/prometheus-node-exporter)
#   BENCH_ZABBIX_AGENT2  zabbix agent 2 binary (default /usr/sbin/zabbix_agent2; "" to leave it out)
#
# CPU time is read from /proc/PID/stat (utime+stime of the process and of the
# children it waited for, in clock ticks) and, for precision below a tick,
# from /proc/PID/task/*/schedstat (nanoseconds, live threads): the figure is
# the larger of the two. Only 127.0.0.1 is used.
set -euo pipefail

IDLE_SECONDS=${BENCH_IDLE_SECONDS:-300}
SCRAPES=${BENCH_SCRAPES:-500}
CONCURRENCY=${BENCH_CONCURRENCY:-8}
LOAD_SECONDS=${BENCH_LOAD_SECONDS:-20}
SETTLE_SECONDS=${BENCH_SETTLE_SECONDS:-60}
AFTER_SECONDS=${BENCH_AFTER_SECONDS:-10}
STEADY_AFTER=${BENCH_STEADY_AFTER:-660}
START_TIMEOUT=${BENCH_START_TIMEOUT:-30}
NODE_EXPORTER=${BENCH_NODE_EXPORTER:-/usr/bin/prometheus-node-exporter}
ZABBIX_AGENT2=${BENCH_ZABBIX_AGENT2-/usr/sbin/zabbix_agent2}

log() { printf 'bench: %s\n' "$*" >&2; }
die() {
	log "ERROR: $*"
	exit 1
}

for v in IDLE_SECONDS SCRAPES CONCURRENCY LOAD_SECONDS SETTLE_SECONDS AFTER_SECONDS START_TIMEOUT; do
	[[ ${!v} =~ ^[0-9]+$ && ${!v} -gt 0 ]] || die "$v must be a positive integer, got '${!v}'"
done
[[ $STEADY_AFTER =~ ^[0-9]+$ ]] || die "STEADY_AFTER must be a non-negative integer, got '$STEADY_AFTER'"
command -v go >/dev/null || die "go not found"
command -v getconf >/dev/null || die "getconf not found"
[[ -x $NODE_EXPORTER ]] || die "$NODE_EXPORTER not found; run deploy/testenv/install.sh bench"
[[ -z $ZABBIX_AGENT2 || -x $ZABBIX_AGENT2 ]] || die "$ZABBIX_AGENT2 not found; run deploy/testenv/install.sh bench"

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
tmp=$(mktemp -d "${TMPDIR:-/tmp}/l2agent-bench.XXXXXX")
declare -A pid=()

stop_pid() {
	local p=$1 i
	[[ -n $p ]] || return 0
	kill -TERM "$p" 2>/dev/null || return 0
	for i in $(seq 50); do
		kill -0 "$p" 2>/dev/null || break
		sleep 0.1
	done
	kill -KILL "$p" 2>/dev/null || true
	wait "$p" 2>/dev/null || true
}
cleanup() {
	local rc=$? who
	trap - EXIT INT TERM
	for who in "${!pid[@]}"; do stop_pid "${pid[$who]}"; done
	[[ -z ${made_run_sshd:-} ]] || rmdir /run/sshd 2>/dev/null || true
	if [[ $rc -ne 0 ]]; then
		log "failed; logs kept in $tmp"
	else
		rm -rf "$tmp"
	fi
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# A host that runs sshd has /run/sshd (its unit's RuntimeDirectory), without
# which `sshd -T` fails and the mfa check would measure an error every run.
if [[ $(id -u) -eq 0 && -x /usr/sbin/sshd && ! -e /run/sshd ]]; then
	mkdir -m 0755 /run/sshd && made_run_sshd=1
	log "made /run/sshd for the run, as a host running sshd has it"
fi

# free_port [LOW HIGH] prints a TCP port in [LOW, HIGH) (default 20000-60000)
# that nothing listens on and that no earlier call printed.
used_ports=" "
free_port() {
	local low=${1:-20000} high=${2:-60000} port hex i
	for i in $(seq 200); do
		port=$((low + RANDOM % (high - low)))
		[[ $used_ports == *" $port "* ]] && continue
		hex=$(printf '%04X' "$port")
		if ! awk -v p=":$hex" 'NR > 1 && substr($2, length($2) - 4) == p { f = 1 } END { exit !f }' \
			/proc/net/tcp /proc/net/tcp6 2>/dev/null; then
			used_ports+="$port "
			echo "$port"
			return 0
		fi
	done
	die "no free port found"
}

# wait_up NAME: until NAME answers (HTTP 200 on its URL; zabbix: its port listens).
wait_up() {
	local who=$1 deadline
	deadline=$((SECONDS + START_TIMEOUT))
	until up "$who"; do
		kill -0 "${pid[$who]}" 2>/dev/null || {
			cat "$tmp/$who.log" >&2
			die "$who exited"
		}
		((SECONDS < deadline)) || {
			cat "$tmp/$who.log" >&2
			die "$who did not answer within ${START_TIMEOUT}s"
		}
		sleep 0.2
	done
}
up() {
	if [[ $1 == zabbix ]]; then
		local hex
		hex=$(printf '%04X' "${port[zabbix]}")
		awk -v p=":$hex" 'NR > 1 && $4 == "0A" && substr($2, length($2) - 4) == p { f = 1 } END { exit !f }' /proc/net/tcp
	else
		"$tmp/scrape" -url "${url[$1]}" -n 1 2>/dev/null | grep -q 'errors=0'
	fi
}

status_kib() { # PID FIELD
	awk -v f="$2:" '$1 == f { print $2 }' "/proc/$1/status"
}
mib() { awk -v k="$1" 'BEGIN { printf "%.1f", k / 1024 }'; }

# cpu_ns PID: CPU time of the process and of its waited-for children, in
# nanoseconds: the larger of /proc/PID/stat (ticks) and the threads'
# schedstat plus the children's ticks.
hz=$(getconf CLK_TCK)
cpu_ns() {
	local stat self kids sched
	stat=$(<"/proc/$1/stat")
	stat=${stat##*) }
	read -r self kids <<<"$(awk '{ print $12 + $13, $14 + $15 }' <<<"$stat")"
	sched=$(cat /proc/"$1"/task/*/schedstat 2>/dev/null | awk '{ s += $1 } END { printf "%.0f", s }')
	awk -v s="$self" -v k="$kids" -v n="$sched" -v hz="$hz" \
		'BEGIN { t = s * 1e9 / hz; if (n > t) t = n; printf "%.0f", t + k * 1e9 / hz }'
}

ratio() { # A B
	awk -v a="$1" -v b="$2" 'BEGIN { if (a == "–" || b == "–" || b + 0 == 0) print ""; else printf " (%.2f×)", a / b }'
}
kv() { # KEY LINE
	sed -nE "s/.*(^| )$1=([^ ]+).*/\2/p" <<<"$2"
}

# ---- build and start ---------------------------------------------------------
log "building the scrape tool, the client_golang floor$([[ -z ${BENCH_AGENT_BIN:-} ]] && echo ' and ./cmd/l2agent')"
(cd "$repo" && go build -o "$tmp/scrape" ./deploy/testenv/scrape && go build -o "$tmp/floor" ./deploy/testenv/floor) ||
	die "go build of the bench helpers failed"
if [[ -n ${BENCH_AGENT_BIN:-} ]]; then
	agent_bin=$BENCH_AGENT_BIN
else
	agent_bin="$tmp/l2agent"
	# As deploy/packaging/build.sh builds it: static, stripped.
	(cd "$repo" && CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o "$agent_bin" ./cmd/l2agent) || die "go build ./cmd/l2agent failed"
fi

if [[ -n ${BENCH_AGENT_CONFIG:-} ]]; then
	cp "$BENCH_AGENT_CONFIG" "$tmp/agent.yaml.in"
else
	"$agent_bin" config default >"$tmp/agent.yaml.in" || die "'$agent_bin config default' failed"
fi
# All its checks, the file ticket backend; state, API socket in the temp dir.
sed -E "s|^state_dir:.*|state_dir: $tmp/state|" "$tmp/agent.yaml.in" >"$tmp/agent.yaml"
mkdir -p "$tmp/state"

declare -A port=() url=()
for who in agent node floor; do port[$who]=$(free_port); done
port[zabbix]=$(free_port 20000 32768) # zabbix_agent2 takes 1024-32767
for who in agent node floor; do url[$who]="http://127.0.0.1:${port[$who]}/metrics"; done

"$agent_bin" run --config "$tmp/agent.yaml" --web.listen-address="127.0.0.1:${port[agent]}" >"$tmp/agent.log" 2>&1 &
pid[agent]=$!
"$NODE_EXPORTER" --web.listen-address="127.0.0.1:${port[node]}" >"$tmp/node.log" 2>&1 &
pid[node]=$!
GOMAXPROCS=1 "$tmp/floor" -listen "127.0.0.1:${port[floor]}" >"$tmp/floor.log" 2>&1 &
pid[floor]=$!
who_all=(node zabbix floor agent)
if [[ -n $ZABBIX_AGENT2 ]]; then
	# Passive checks only, on 127.0.0.1; the plugins Debian's package configures.
	cat >"$tmp/zabbix_agent2.conf" <<CONF
LogType=file
LogFile=$tmp/zabbix.log
PidFile=$tmp/zabbix.pid
ControlSocket=$tmp/zabbix.sock
Server=127.0.0.1
ServerActive=
ListenIP=127.0.0.1
ListenPort=${port[zabbix]}
Hostname=bench
Include=/etc/zabbix/zabbix_agent2.d/plugins.d/*.conf
CONF
	"$ZABBIX_AGENT2" -c "$tmp/zabbix_agent2.conf" -f >"$tmp/zabbix.out" 2>&1 &
	pid[zabbix]=$!
	: >>"$tmp/zabbix.log"
else
	who_all=(node floor agent)
fi
for who in "${who_all[@]}"; do wait_up "$who"; done
started=$(date +%s)
log "all answer (l2agent pid ${pid[agent]}, node_exporter ${pid[node]}, floor ${pid[floor]}${pid[zabbix]:+, zabbix_agent2 ${pid[zabbix]}}); settling ${SETTLE_SECONDS}s"
sleep "$SETTLE_SECONDS"

declare -A rss0=() idle=() steady=() p50=() p99=() per_scrape=() conc=() rss1=() hwm=()
for who in "${who_all[@]}"; do rss0[$who]=$(mib "$(status_kib "${pid[$who]}" VmRSS)"); done

# ---- idle CPU -----------------------------------------------------------------
idle_window() { # ARRAY: CPU ms per minute of each, over IDLE_SECONDS from now
	local -n out=$1
	local -A c0=()
	local t0 t1 who
	t0=$(date +%s.%N)
	for who in "${who_all[@]}"; do c0[$who]=$(cpu_ns "${pid[$who]}"); done
	sleep "$IDLE_SECONDS"
	t1=$(date +%s.%N)
	for who in "${who_all[@]}"; do
		out[$who]=$(awk -v a="${c0[$who]}" -v b="$(cpu_ns "${pid[$who]}")" -v t0="$t0" -v t1="$t1" \
			'BEGIN { printf "%.1f", (b - a) / 1e6 / (t1 - t0) * 60 }')
	done
}
log "idle window: ${IDLE_SECONDS}s, no scrapes"
idle_window idle
if ((STEADY_AFTER > 0)); then
	wait_s=$((started + STEADY_AFTER - $(date +%s)))
	if ((wait_s > 0)); then
		log "waiting ${wait_s}s for the steady idle window (${STEADY_AFTER}s after the start)"
		sleep "$wait_s"
	fi
	log "steady idle window: ${IDLE_SECONDS}s, no scrapes"
	idle_window steady
fi

# ---- scrapes ------------------------------------------------------------------
for who in node floor agent; do
	log "$who: $SCRAPES sequential scrapes"
	a=$(cpu_ns "${pid[$who]}")
	line=$("$tmp/scrape" -url "${url[$who]}" -n "$SCRAPES")
	b=$(cpu_ns "${pid[$who]}")
	[[ $(kv errors "$line") == 0 ]] || log "WARNING: $who: $line"
	p50[$who]=$(kv p50_ms "$line")
	p99[$who]=$(kv p99_ms "$line")
	per_scrape[$who]=$(awk -v a="$a" -v b="$b" -v n="$SCRAPES" 'BEGIN { printf "%.2f", (b - a) / 1e6 / n }')
done
for who in node floor agent; do
	log "$who: $CONCURRENCY concurrent scrapers for ${LOAD_SECONDS}s"
	line=$("$tmp/scrape" -url "${url[$who]}" -c "$CONCURRENCY" -d "${LOAD_SECONDS}s")
	[[ $(kv errors "$line") == 0 ]] || log "WARNING: $who: $line"
	conc[$who]=$(kv per_second "$line")
done
log "resting ${AFTER_SECONDS}s"
sleep "$AFTER_SECONDS"
for who in "${who_all[@]}"; do
	kill -0 "${pid[$who]}" 2>/dev/null || die "$who died during the benchmark; log: $tmp/$who.log"
	rss1[$who]=$(mib "$(status_kib "${pid[$who]}" VmRSS)")
	hwm[$who]=$(mib "$(status_kib "${pid[$who]}" VmHWM)")
done
children=$("$tmp/scrape" -url "${url[agent]}" -n 1 >/dev/null && curl -fsS --max-time 10 "${url[agent]}" 2>/dev/null |
	awk '/^l2agent_check_child_max_rss_bytes\{/ { sub(/.*check="/, ""); sub(/"}/, ""); printf "%s%s %.1f MiB", sep, $1, $2 / 1048576; sep = ", " }' || true)

# ---- report -------------------------------------------------------------------
for who in zabbix; do # no /metrics
	p50[$who]="–" p99[$who]="–" per_scrape[$who]="–" conc[$who]="–"
done
if [[ -z $ZABBIX_AGENT2 ]]; then
	for v in rss0 idle steady rss1 hwm; do eval "$v[zabbix]='–'"; done
fi
row() { # TITLE ARRAY
	local -n a=$2
	printf '| %s | %s | %s%s | %s%s | %s%s |\n' "$1" "${a[node]}" \
		"${a[zabbix]}" "$(ratio "${a[zabbix]}" "${a[node]}")" \
		"${a[floor]}" "$(ratio "${a[floor]}" "${a[node]}")" \
		"${a[agent]}" "$(ratio "${a[agent]}" "${a[node]}")"
}
steady_row=""
if ((STEADY_AFTER > 0)); then
	steady_row=$'\n'$(row "idle CPU (same), steady: from ${STEADY_AFTER}s after the start" steady)
fi
node_version=$("$NODE_EXPORTER" --version 2>&1 | head -1)
zabbix_version=$([[ -n $ZABBIX_AGENT2 ]] && "$ZABBIX_AGENT2" -V 2>&1 | head -1 || echo "not run")
cat <<REPORT

## l2agent side by side

$(date -u +%Y-%m-%dT%H:%M:%SZ), $(nproc) cores ($(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)), Linux $(uname -r), load average before the run $(cut -d' ' -f1-3 /proc/loadavg).
${node_version}; ${zabbix_version}; client_golang floor with GOMAXPROCS=1; l2agent $("$agent_bin" version 2>/dev/null | head -1 | cut -d' ' -f2-) with $([[ -n ${BENCH_AGENT_CONFIG:-} ]] && echo "$BENCH_AGENT_CONFIG" || echo "its embedded default config"), as $(id -un).
Idle window ${IDLE_SECONDS}s from ${SETTLE_SECONDS}s after the start$( ((STEADY_AFTER > 0)) && echo " and from ${STEADY_AFTER}s"); ${SCRAPES} sequential scrapes; ${CONCURRENCY} concurrent scrapers for ${LOAD_SECONDS}s; ${AFTER_SECONDS}s of rest before the last RSS. Ratios are to node_exporter.

| | node_exporter | zabbix_agent2 (passive, idle only) | client_golang floor | l2agent |
| --- | ---: | ---: | ---: | ---: |
$(row "scrape p50, sequential (ms)" p50)
$(row "scrape p99, sequential (ms)" p99)
$(row "CPU per scrape (ms)" per_scrape)
$(row "concurrent scrapes/s" conc)
$(row "idle CPU (ms per minute, children included), from ${SETTLE_SECONDS}s after the start" idle)${steady_row}
$(row "RSS before any scrape (MiB)" rss0)
$(row "RSS idle, after load (MiB)" rss1)
$(row "peak RSS, VmHWM (MiB)" hwm)

$([[ -n $ZABBIX_AGENT2 ]] && printf 'l2agent idle CPU / Zabbix agent 2'"'"'s: %s from %ss%s.' "$(ratio "${idle[agent]}" "${idle[zabbix]}" | tr -d ' ()')" "$SETTLE_SECONDS" "$( ((STEADY_AFTER > 0)) && printf ', %s steady (from %ss)' "$(ratio "${steady[agent]}" "${steady[zabbix]}" | tr -d ' ()')" "$STEADY_AFTER")")
l2agent's programs, peak RSS of each check's last run (l2agent_check_child_max_rss_bytes): ${children:-none}.
Goals (issue 17): idle CPU ≤ 10 ms per minute over ≥ 300 s and ≤ 0.5× Zabbix agent 2's; RSS idle after load ≤ 0.8× and peak RSS ≤ 1.0× node_exporter's; scrape p99 ≤ 0.15× node_exporter's; CPU per scrape ≤ the floor's.
REPORT
