#!/usr/bin/env bash
# Fleet benchmark (issue 17): FLEET_HOSTS simulated agents (default 10,000)
# each fire one crit alert into a real 2-node Alertmanager cluster (Debian's
# prometheus-alertmanager on 127.0.0.1, group_wait 30s, group_interval 5m,
# log level info), breaches spread over FLEET_WINDOW, and it prints one BENCH
# line: hosts, alerts, POSTs, lost per node, p50/p99/max from breach to the
# alert visible in the Alertmanager API, the agents' CPU per alert, the
# Alertmanagers' CPU per alert, wall time. Numbers are printed, never
# asserted; a lost alert fails it.
#
# Each simulated agent has its own store and outbox (bbolt), ticketing
# service, Alertmanager backend and HTTP transport, as a real agent; the
# agents run in FLEET_WORKERS processes that run nothing else, whose
# getrusage is the CPU figure. How it is measured: TestRealFleetBench in
# ticketing/alertmanager/fleet_bench_test.go and ticketing/alertmanager/README.md.
#
# Usage: deploy/testenv/fleet.sh            (from anywhere in the repo; make bench runs it)
# Environment:
#   FLEET_HOSTS    simulated agents (default 10000)
#   FLEET_WINDOW   the breaches are spread over it, each host at a hash of its
#                  name as the agent's jitter spreads schedules (default 30s:
#                  the default disk schedule, @every 30s with jitter_max 30s);
#                  0 fires every host at the same instant
#   FLEET_WORKERS  processes running the agents (default 4)
#   FLEET_IDLE     idle window measured before the breaches (default 10s)
#   FLEET_PROFILE  a directory: CPU profiles of the workers and of each
#                  Alertmanager over the breaches go there
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$repo"
hosts=${FLEET_HOSTS:-10000}
[[ $hosts =~ ^[0-9]+$ && $hosts -gt 0 ]] || { echo "fleet: FLEET_HOSTS must be a positive integer" >&2; exit 1; }

bash deploy/testenv/install.sh alertmanager

# Each Alertmanager holds one connection per agent, each worker two per agent
# plus a store: raise the soft limit of open files to the hard one.
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
if (($(ulimit -n) < hosts + 1024)); then
	echo "fleet: warning: $(ulimit -n) open files allowed, an Alertmanager node needs about $((hosts + 1024))" >&2
fi

export L2AGENT_FLEET_HOSTS=$hosts
export L2AGENT_FLEET_WINDOW=${FLEET_WINDOW:-30s}
export L2AGENT_FLEET_WORKERS=${FLEET_WORKERS:-4}
export L2AGENT_FLEET_IDLE=${FLEET_IDLE:-10s}
if [[ -n ${FLEET_PROFILE:-} ]]; then
	mkdir -p "$FLEET_PROFILE"
	L2AGENT_FLEET_PROFILE=$(cd "$FLEET_PROFILE" && pwd)
	export L2AGENT_FLEET_PROFILE
fi
echo "fleet: load before the run: $(cut -d' ' -f1-3 /proc/loadavg) on $(nproc) cores" >&2
log=$(mktemp "${TMPDIR:-/tmp}/l2agent-fleet.XXXXXX")
if go test -v -count=1 -timeout 30m -run '^TestRealFleetBench$' ./ticketing/alertmanager/ >"$log" 2>&1; then
	grep -E '^(BENCH|ok)' "$log"
	rm -f "$log"
else
	tail -n 200 "$log" >&2
	echo "fleet: FAILED; the whole output is in $log" >&2
	exit 1
fi
