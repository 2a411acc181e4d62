#!/usr/bin/env bash
# bench/cluster.sh: the cost of cluster mode per request (issue 8), one run, interleaved rounds.
#
# Four set-ups, all up at once, all on this box (so this measures overhead, not scale-out):
#   direct      one node, cluster off, no load balancer
#   lb1         haproxy (deploy/haproxy/haproxy.cfg) -> one node, cluster off
#   lb1-cluster haproxy -> one node, cluster on (redis-server on a unix socket)
#   lb3         haproxy -> three nodes, cluster off (the control for lb3-cluster: what
#               spreading one box's load over three processes costs by itself)
#   lb3-cluster haproxy -> three nodes, cluster on (same Redis)
# Two workloads through each: stateless 2026-07-28 tools/call, and session-era tools/call
# (each connection initializes a session; haproxy sticks it to its node).
# Every (round, workload, set-up) is one `erlmcp bench --mode pingpong` run; the server CPU of
# each run is read from /proc/PID/stat (utime+stime) of the erlmcp nodes, haproxy and Redis
# before and after, divided by the requests: CPU µs/request, the robust figure on a small
# noisy box. Medians over the rounds; ratios against the same node count with cluster off
# (lb1-cluster vs lb1, lb3-cluster vs lb3; direct and lb3 vs lb1), same run.
set -euo pipefail

usage() {
  cat <<'USAGE'
usage: bench/cluster.sh [--rounds 3] [--duration 3s] [--conns 32] [--bin bin/erlmcp] [--out FILE.json]

Builds bin/erlmcp unless --bin is given; needs redis-server, haproxy, jq, python3.
Prints a Markdown table; --out also writes every run's figures as JSON.
USAGE
}
ROUNDS=3 DURATION=3s CONNS=32 BIN="" OUT=""
while [[ $# -gt 0 ]]; do
  case "$1" in
    --rounds) ROUNDS=$2; shift 2 ;;
    --duration) DURATION=$2; shift 2 ;;
    --conns) CONNS=$2; shift 2 ;;
    --bin) BIN=$2; shift 2 ;;
    --out) OUT=$2; shift 2 ;;
    -h|--help) usage; exit 0 ;;
    *) echo "cluster.sh: unknown argument $1" >&2; usage >&2; exit 2 ;;
  esac
done
export PATH="$PATH:/usr/sbin:/sbin"
for c in redis-server haproxy jq python3; do
  command -v "$c" >/dev/null || { echo "cluster.sh: $c is required" >&2; exit 1; }
done
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
TMP=$(mktemp -d -t erlmcp-bcl.XXXXXX)
if [[ -z $BIN ]]; then
  BIN=$TMP/erlmcp
  (cd "$ROOT" && go build -o "$BIN" ./cmd/erlmcp)
fi
fail() { echo "cluster.sh: $*" >&2; exit 1; }
# shellcheck source=lib.sh
source "$ROOT/bench/lib.sh" # pids, lib_cleanup, start_redis, start_node, start_haproxy
trap lib_cleanup EXIT

start_redis

# node NAME [cluster]: starts a node; sets NODE_PID and NODE_ADDR.
node() {
  local name=$1 cluster=${2:-}
  local args=(start -set transports.tcp.addr=127.0.0.1:0 -set observability.metrics.addr=127.0.0.1:0
    -set "server.control_socket=$TMP/$name.sock" -set rate_limiter.enabled=false)
  if [[ -n $cluster ]]; then
    args+=(-set cluster.enabled=true -set "cluster.redis_url=unix://$TMP/redis.sock" -set "cluster.node=$name"
      -set "cluster.key_prefix=erlmcp-bench-$$:")
  fi
  start_node "$name" "$BIN" "${args[@]}"
}

# lb NAME ADDR...: haproxy with the shipped config in front of ADDRs; sets LB_PID and LB_URL.
lb() {
  start_haproxy "$@"
  LB_URL="http://127.0.0.1:$LB_PORT/mcp"
}

declare -A URL NODEPIDS LBPID
node direct;   URL[direct]="http://$NODE_ADDR/mcp"; NODEPIDS[direct]=$NODE_PID; LBPID[direct]=""
node plain;    NODEPIDS[lb1]=$NODE_PID; lb lb1 "$NODE_ADDR"; URL[lb1]=$LB_URL; LBPID[lb1]=$LB_PID
node c1 on;    NODEPIDS[lb1-cluster]=$NODE_PID; lb lb1c "$NODE_ADDR"; URL[lb1-cluster]=$LB_URL; LBPID[lb1-cluster]=$LB_PID
addrs=() p3=()
for n in p q r; do node "$n"; addrs+=("$NODE_ADDR"); p3+=("$NODE_PID"); done
NODEPIDS[lb3]="${p3[*]}"; lb lb3 "${addrs[@]}"; URL[lb3]=$LB_URL; LBPID[lb3]=$LB_PID
addrs=() p3=()
for n in x y z; do node "$n" on; addrs+=("$NODE_ADDR"); p3+=("$NODE_PID"); done
NODEPIDS[lb3-cluster]="${p3[*]}"; lb lb3c "${addrs[@]}"; URL[lb3-cluster]=$LB_URL; LBPID[lb3-cluster]=$LB_PID
SETUPS=(direct lb1 lb1-cluster lb3 lb3-cluster)
sleep 2 # every node joined, first heartbeats done, haproxy checks UP

# cpu_ticks PID...: utime+stime of the processes, in clock ticks.
cpu_ticks() {
  local t=0 p
  for p in "$@"; do
    [[ -z $p ]] && continue
    t=$((t + $(awk '{print $14 + $15}' "/proc/$p/stat")))
  done
  echo "$t"
}
HZ=$(getconf CLK_TCK)

RUNS=$TMP/runs.jsonl
: >"$RUNS"
echo "cluster.sh: $ROUNDS rounds x 2 workloads x ${#SETUPS[@]} set-ups, $DURATION, $CONNS connections each" >&2
for round in $(seq "$ROUNDS"); do
  for wl in stateless session; do
    flags=(--transport http --mode pingpong --conns "$CONNS" --duration "$DURATION" --warmup 0s --json --quiet)
    [[ $wl == stateless ]] && flags+=(--stateless)
    for s in "${SETUPS[@]}"; do
      # shellcheck disable=SC2086
      n0=$(cpu_ticks ${NODEPIDS[$s]}); l0=$(cpu_ticks ${LBPID[$s]}); r0=$(cpu_ticks "$REDIS_PID")
      out=$("$BIN" bench "${flags[@]}" --url "${URL[$s]}")
      # shellcheck disable=SC2086
      n1=$(cpu_ticks ${NODEPIDS[$s]}); l1=$(cpu_ticks ${LBPID[$s]}); r1=$(cpu_ticks "$REDIS_PID")
      jq -c --arg setup "$s" --arg wl "$wl" --argjson round "$round" --argjson hz "$HZ" \
        --argjson node $((n1 - n0)) --argjson lb $((l1 - l0)) --argjson redis $((r1 - r0)) \
        '{setup: $setup, workload: $wl, round: $round, requests, rps, errors, p50: .latency.p50, p99: .latency.p99,
          node_us: ($node / $hz * 1e6 / ([.requests,1]|max)), lb_us: ($lb / $hz * 1e6 / ([.requests,1]|max)),
          redis_us: ($redis / $hz * 1e6 / ([.requests,1]|max)), client_us: .clientCPUPerReqMicros}' <<<"$out" >>"$RUNS"
      tail -1 "$RUNS" | jq -r '"  round \(.round) \(.workload) \(.setup): \(.rps|floor) req/s, errors \(.errors), node \(.node_us|.*10|round/10) µs/req"' >&2
    done
  done
done
[[ -n $OUT ]] && jq -s . "$RUNS" >"$OUT"

python3 - "$RUNS" <<'PY'
import json, statistics, sys
runs = [json.loads(l) for l in open(sys.argv[1])]
med = lambda xs: statistics.median(xs)
setups = ["direct", "lb1", "lb1-cluster", "lb3", "lb3-cluster"]
bad = [r for r in runs if r["errors"]]
# Each set-up's baseline: the same node count with cluster mode off.
against = {"direct": "lb1", "lb1": "lb1", "lb1-cluster": "lb1", "lb3": "lb1", "lb3-cluster": "lb3"}
print("| workload | set-up | req/s | p50 ms | p99 ms | erlmcp CPU µs/req | ratio (per-round range) | haproxy µs/req | redis µs/req |")
print("|---|---|---:|---:|---:|---:|---:|---:|---:|")
for wl in ["stateless", "session"]:
    for s in setups:
        rs = [r for r in runs if r["workload"] == wl and r["setup"] == s]
        node = med([r["node_us"] for r in rs])
        b = against[s]
        base = med([r["node_us"] for r in runs if r["workload"] == wl and r["setup"] == b])
        # the ratio of medians, and the range of the per-round ratios
        ratios = sorted(r["node_us"] / x["node_us"] for r in rs for x in runs
                        if x["workload"] == wl and x["setup"] == b and x["round"] == r["round"])
        spread = f" ({ratios[0]:.2f}–{ratios[-1]:.2f})" if len(ratios) > 1 else ""
        lb = "–" if s == "direct" else f"{med([r['lb_us'] for r in rs]):.1f}"
        redis = f"{med([r['redis_us'] for r in rs]):.2f}" if "cluster" in s else "–"
        print(f"| {wl} | {s} | {med([r['rps'] for r in rs]):,.0f} | {med([r['p50'] for r in rs]):.3f} | "
              f"{med([r['p99'] for r in rs]):.3f} | {node:.1f} | {node/base:.2f}{spread} vs {b} | {lb} | {redis} |")
if bad:
    print(f"\n{len(bad)} runs had errors: " + ", ".join(f"{r['workload']}/{r['setup']}/{r['round']}: {r['errors']}" for r in bad))
    sys.exit(1)
PY
