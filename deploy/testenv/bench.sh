#!/usr/bin/env bash
# Benchmarks l2agent against Debian's prometheus-node-exporter, side by side
# on this machine: idle RSS, idle CPU, scrape latency of /metrics.
#
# Usage: deploy/testenv/bench.sh            (from anywhere in the repo)
# Needs: go, curl, /usr/bin/prometheus-node-exporter (deploy/testenv/install.sh bench)
#
# Environment:
#   BENCH_IDLE_SECONDS   idle CPU window (default 60)
#   BENCH_SCRAPES        scrapes of /metrics per exporter (default 1000)
#   BENCH_SETTLE_SECONDS wait after both answer, before measuring (default 5)
#   BENCH_AGENT_BIN      use this l2agent binary instead of building one
#   BENCH_AGENT_CONFIG   use this agent config instead of the default one
#   BENCH_NODE_EXPORTER  node_exporter binary (default /usr/bin/prometheus-node-exporter)
#   BENCH_STRICT=1       exit 3 when a goal is not met
#
# Only 127.0.0.1 is used. Idle CPU is measured before the scrapes, so the
# scrape storm does not count as idle time.
set -euo pipefail

IDLE_SECONDS=${BENCH_IDLE_SECONDS:-60}
SCRAPES=${BENCH_SCRAPES:-1000}
SETTLE_SECONDS=${BENCH_SETTLE_SECONDS:-5}
START_TIMEOUT=${BENCH_START_TIMEOUT:-30}
NODE_EXPORTER=${BENCH_NODE_EXPORTER:-/usr/bin/prometheus-node-exporter}
# Prometheus sends this Accept header and asks for gzip; so do the scrapes.
ACCEPT='application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1'

log() { printf 'bench: %s\n' "$*" >&2; }
die() {
	log "ERROR: $*"
	exit 1
}

for v in IDLE_SECONDS SCRAPES SETTLE_SECONDS START_TIMEOUT; do
	[[ ${!v} =~ ^[0-9]+$ && ${!v} -gt 0 ]] || die "$v must be a positive integer, got '${!v}'"
done
command -v curl >/dev/null || die "curl not found; run deploy/testenv/install.sh bench"
command -v getconf >/dev/null || die "getconf not found"
[[ -x $NODE_EXPORTER ]] || die "$NODE_EXPORTER not found; run deploy/testenv/install.sh bench"

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
tmp=$(mktemp -d "${TMPDIR:-/tmp}/l2agent-bench.XXXXXX")
agent_pid=""
node_pid=""

stop_pid() {
	local pid=$1 i
	[[ -n $pid ]] || return 0
	kill -TERM "$pid" 2>/dev/null || return 0
	for i in $(seq 50); do
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.1
	done
	kill -KILL "$pid" 2>/dev/null || true
	wait "$pid" 2>/dev/null || true
}
cleanup() {
	local rc=$?
	trap - EXIT INT TERM
	stop_pid "$agent_pid"
	stop_pid "$node_pid"
	if [[ $rc -ne 0 && $rc -ne 3 ]]; then
		log "failed; logs kept in $tmp"
	else
		rm -rf "$tmp"
	fi
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# free_port prints a TCP port that nothing listens on (on any address).
free_port() {
	local port hex i
	for i in $(seq 100); do
		port=$((20000 + RANDOM % 40000))
		hex=$(printf '%04X' "$port")
		if ! awk -v p=":$hex" 'NR > 1 && substr($2, length($2) - 4) == p { f = 1 } END { exit !f }' \
			/proc/net/tcp /proc/net/tcp6 2>/dev/null; then
			echo "$port"
			return 0
		fi
	done
	die "no free port found"
}

# wait_up NAME PID URL LOGFILE: polls URL until it answers 200.
wait_up() {
	local name=$1 pid=$2 url=$3 logfile=$4 deadline
	deadline=$((SECONDS + START_TIMEOUT))
	until curl -fsS -o /dev/null --max-time 2 "$url" 2>/dev/null; do
		if ! kill -0 "$pid" 2>/dev/null; then
			log "$name exited; its log:"
			cat "$logfile" >&2
			die "$name did not start"
		fi
		if ((SECONDS >= deadline)); then
			log "$name log:"
			cat "$logfile" >&2
			die "$name did not answer $url within ${START_TIMEOUT}s"
		fi
		sleep 0.1
	done
}

rss_mib() { # PID
	awk '/^VmRSS:/ { printf "%.1f", $2 / 1024 }' "/proc/$1/status"
}

# cpu_ticks PID: user+system time of the process and its waited-for
# children, in clock ticks (fields 14-17 of /proc/PID/stat; the command
# name, field 2, may hold spaces, so count from after its closing paren).
cpu_ticks() {
	local stat
	stat=$(<"/proc/$1/stat")
	stat=${stat##*) }
	awk '{ print $12 + $13 + $14 + $15 }' <<<"$stat"
}

now() { date +%s.%N; }

# scrape URL OUT: SCRAPES scrapes in one curl process (one kept-alive
# connection); writes "http_code time_total" lines to OUT.
scrape() {
	local url=$1 out=$2 cfg i
	cfg="$tmp/curl-$RANDOM.cfg"
	{
		printf 'silent\ncompressed\nmax-time = 10\nheader = "Accept: %s"\n' "$ACCEPT"
		printf 'write-out = "%%{http_code} %%{time_total}\\n"\n'
		for ((i = 0; i < SCRAPES; i++)); do
			printf 'url = "%s"\noutput = "/dev/null"\n' "$url"
		done
	} >"$cfg"
	curl -K "$cfg" >"$out" || true # failures are counted from the codes
}

# percentile Q FILE: nearest-rank percentile (in ms) of the times of the
# successful scrapes in FILE.
percentile() {
	awk '$1 == 200 { print $2 }' "$2" | sort -g |
		awk -v q="$1" '{ v[NR] = $1 } END { if (NR == 0) { print "n/a"; exit } r = int(q * NR); if (r < q * NR) r++; if (r < 1) r = 1; printf "%.2f", v[r] * 1000 }'
}

ratio() { # A B
	awk -v a="$1" -v b="$2" 'BEGIN { if (a == "n/a" || b == "n/a" || b + 0 == 0) print "n/a"; else printf "%.2f", a / b }'
}

# ---- build and start ---------------------------------------------------------
if [[ -n ${BENCH_AGENT_BIN:-} ]]; then
	agent_bin=$BENCH_AGENT_BIN
	log "using agent binary $agent_bin"
else
	command -v go >/dev/null || die "go not found"
	agent_bin="$tmp/l2agent"
	log "building ./cmd/l2agent"
	build_start=$SECONDS
	(cd "$repo" && go build -o "$agent_bin" ./cmd/l2agent) || die "go build ./cmd/l2agent failed"
	log "built in $((SECONDS - build_start))s"
fi

agent_cfg="$tmp/agent.yaml"
if [[ -n ${BENCH_AGENT_CONFIG:-} ]]; then
	cp "$BENCH_AGENT_CONFIG" "$agent_cfg"
elif "$agent_bin" config default >"$agent_cfg.default" 2>"$tmp/config-default.err"; then
	# The default config (all its checks); state kept in the temp dir.
	sed -E "s|^state_dir:.*|state_dir: $tmp/state|" "$agent_cfg.default" >"$agent_cfg"
else
	log "'$agent_bin config default' failed ($(head -c 200 "$tmp/config-default.err")); using a minimal config (default checks)"
	printf 'state_dir: %s/state\n' "$tmp" >"$agent_cfg"
fi
mkdir -p "$tmp/state"

agent_addr="127.0.0.1:$(free_port)"
node_addr="127.0.0.1:$(free_port)"
while [[ $node_addr == "$agent_addr" ]]; do node_addr="127.0.0.1:$(free_port)"; done

"$agent_bin" run --config "$agent_cfg" --web.listen-address="$agent_addr" >"$tmp/agent.log" 2>&1 &
agent_pid=$!
"$NODE_EXPORTER" --web.listen-address="$node_addr" >"$tmp/node_exporter.log" 2>&1 &
node_pid=$!
log "l2agent pid $agent_pid on $agent_addr; node_exporter pid $node_pid on $node_addr"

wait_up l2agent "$agent_pid" "http://$agent_addr/metrics" "$tmp/agent.log"
wait_up node_exporter "$node_pid" "http://$node_addr/metrics" "$tmp/node_exporter.log"
log "both answer; settling ${SETTLE_SECONDS}s"
sleep "$SETTLE_SECONDS"

# ---- idle: RSS and CPU (no scrapes during this window) --------------------------
hz=$(getconf CLK_TCK)
log "measuring idle CPU for ${IDLE_SECONDS}s"
t0=$(now)
a0=$(cpu_ticks "$agent_pid")
n0=$(cpu_ticks "$node_pid")
sleep "$IDLE_SECONDS"
a1=$(cpu_ticks "$agent_pid")
n1=$(cpu_ticks "$node_pid")
t1=$(now)
cpu_pct() { awk -v d="$1" -v hz="$hz" -v t="$2" 'BEGIN { printf "%.3f", d / hz / t * 100 }'; }
elapsed=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f", b - a }')
agent_cpu=$(cpu_pct $((a1 - a0)) "$elapsed")
node_cpu=$(cpu_pct $((n1 - n0)) "$elapsed")
agent_rss=$(rss_mib "$agent_pid")
node_rss=$(rss_mib "$node_pid")

# ---- scrapes ------------------------------------------------------------------
agent_size=$(curl -fsS --max-time 10 "http://$agent_addr/metrics" | wc -c)
node_size=$(curl -fsS --max-time 10 "http://$node_addr/metrics" | wc -c)
agent_series=$(curl -fsS --max-time 10 "http://$agent_addr/metrics" | grep -cv '^#' || true)
node_series=$(curl -fsS --max-time 10 "http://$node_addr/metrics" | grep -cv '^#' || true)

log "scraping l2agent $SCRAPES times"
s0=$SECONDS
scrape "http://$agent_addr/metrics" "$tmp/agent.times"
log "  took $((SECONDS - s0))s"
log "scraping node_exporter $SCRAPES times"
s0=$SECONDS
scrape "http://$node_addr/metrics" "$tmp/node.times"
log "  took $((SECONDS - s0))s"

for who in agent node; do
	f="$tmp/$who.times"
	bad=$(awk '$1 != 200' "$f" | wc -l)
	n=$(wc -l <"$f")
	if ((bad > 0 || n != SCRAPES)); then
		log "WARNING: $who: $n results, $bad not HTTP 200 (codes: $(awk '$1 != 200 { print $1 }' "$f" | sort | uniq -c | tr '\n' ' '))"
	fi
done
agent_p50=$(percentile 0.50 "$tmp/agent.times")
agent_p99=$(percentile 0.99 "$tmp/agent.times")
node_p50=$(percentile 0.50 "$tmp/node.times")
node_p99=$(percentile 0.99 "$tmp/node.times")
agent_rss2=$(rss_mib "$agent_pid")
node_rss2=$(rss_mib "$node_pid")

kill -0 "$agent_pid" 2>/dev/null || die "l2agent died during the benchmark; log: $tmp/agent.log"
kill -0 "$node_pid" 2>/dev/null || die "node_exporter died during the benchmark"

# ---- report -------------------------------------------------------------------
node_version=$("$NODE_EXPORTER" --version 2>&1 | head -1)
cat <<EOF

## l2agent vs node_exporter

$(date -u +%Y-%m-%dT%H:%M:%SZ), $(nproc) cores, Linux $(uname -r); ${node_version}.
Idle window ${elapsed}s (CLK_TCK $hz), $SCRAPES scrapes each (one curl, keep-alive, gzip, Prometheus' Accept header).

| metric | l2agent | node_exporter | ratio agent/node_exporter |
| --- | ---: | ---: | ---: |
| idle RSS (MiB) | $agent_rss | $node_rss | $(ratio "$agent_rss" "$node_rss") |
| idle CPU (% of one core) | $agent_cpu | $node_cpu | $(ratio "$agent_cpu" "$node_cpu") |
| scrape p50 (ms) | $agent_p50 | $node_p50 | $(ratio "$agent_p50" "$node_p50") |
| scrape p99 (ms) | $agent_p99 | $node_p99 | $(ratio "$agent_p99" "$node_p99") |
| RSS after scrapes (MiB) | $agent_rss2 | $node_rss2 | $(ratio "$agent_rss2" "$node_rss2") |
| /metrics size (bytes, uncompressed) | $agent_size | $node_size | $(ratio "$agent_size" "$node_size") |
| /metrics samples | $agent_series | $node_series | $(ratio "$agent_series" "$node_series") |

EOF

verdict() { # VALUE LIMIT -> met / NOT met
	awk -v v="$1" -v l="$2" 'BEGIN { if (v == "n/a") print "unknown"; else if (v + 0 <= l + 0) print "met"; else print "NOT met" }'
}
rss_ratio=$(ratio "$agent_rss" "$node_rss")
p99_ratio=$(ratio "$agent_p99" "$node_p99")
g1=$(verdict "$rss_ratio" 1.0)
g2=$(verdict "$p99_ratio" 0.2)
g3=$(verdict "$agent_cpu" 0.1)
echo "Goals: idle RSS ≤ 1.0× node_exporter: $g1 (${rss_ratio}×); scrape p99 ≤ 0.2× node_exporter: $g2 (${p99_ratio}×); idle CPU ≤ 0.1 % of a core: $g3 (${agent_cpu} %)."

if [[ ${BENCH_STRICT:-0} == 1 && ($g1 != met || $g2 != met || $g3 != met) ]]; then
	exit 3
fi
