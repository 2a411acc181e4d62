#!/usr/bin/env bash
# bench/peers/run.sh: the same load against erlmcp and its peers, in one run.
#
# Builds erlmcp and the peers (mark3labs/mcp-go, modelcontextprotocol/go-sdk,
# a bare fasthttp canned reply, a bare netpoll line echo), starts each in turn
# on loopback, drives it with `erlmcp bench` (and wrk when installed), and
# prints a Markdown table: req/s, ratio to the bare handler, p99, server RSS.
set -euo pipefail

usage() {
  cat <<'USAGE'
usage: bench/peers/run.sh [--duration 10s] [--warmup 2s] [--conns 64] [--out DIR] [--no-wrk] [--quick]

  --duration D   measured time per row (default 10s)
  --warmup D     unmeasured warm-up per row (default 2s)
  --conns N      connections (default 64; wrk uses the same with -t2)
  --out DIR      where binaries, logs and JSON results go (default bench/results/tmp/peers-<UTC time>, git-ignored)
  --no-wrk       skip the wrk rows even if wrk is installed
  --tcp-only     only the TCP rows (erlmcp ping-pong and pipelined, netpoll echo), run
                 back to back in each round so the ratios see the same machine load
  --quick        --duration 3s --warmup 1s (a smoke run)
  --repeat N     run every row N times, interleaved (rounds), and report the median
                 round of each row (default 1; use 3 on a shared or noisy box)
  --bin PATH     use this erlmcp binary instead of building ./cmd/erlmcp
  --table DIR    print the table of an earlier run's results in DIR, run nothing
  -h, --help     this text

Rows (all on 127.0.0.1, one server at a time, same client and flags):
  HTTP tools/call echo: erlmcp stateless 2026-07-28 and session era, mcp-go v1.2.1
  (stateless), go-sdk v1.8.0 (stateless, JSON responses), bare fasthttp (ceiling).
  TCP: erlmcp ping-pong vs a bare netpoll line echo (ceiling), erlmcp pipelined
  depth 16 vs erlmcp ping-pong.
Peers live in their own Go module (bench/peers/go.mod) and never enter erlmcp's.
USAGE
}

DURATION=10s WARMUP=2s CONNS=64 OUT="" WRK=1 TABLE="" BIN="" REPEAT=1 TCPONLY=0
while [[ $# -gt 0 ]]; do
  case "$1" in
    --duration) DURATION=$2; shift 2 ;;
    --warmup) WARMUP=$2; shift 2 ;;
    --conns) CONNS=$2; shift 2 ;;
    --out) OUT=$2; shift 2 ;;
    --no-wrk) WRK=0; shift ;;
    --tcp-only) TCPONLY=1 WRK=0; shift ;;
    --quick) DURATION=3s WARMUP=1s; shift ;;
    --table) TABLE=$2; shift 2 ;;
    --bin) BIN=$2; shift 2 ;;
    --repeat) REPEAT=$2; shift 2 ;;
    -h|--help) usage; exit 0 ;;
    *) echo "run.sh: unknown argument $1" >&2; usage >&2; exit 2 ;;
  esac
done

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
if [[ -n $TABLE ]]; then OUT=$TABLE; fi
OUT=${OUT:-$ROOT/bench/results/tmp/peers-$(date -u +%Y%m%dT%H%M%SZ)}
mkdir -p "$OUT" && OUT=$(cd "$OUT" && pwd) # absolute: the peers are built from bench/peers

# runs builds everything and runs every row, appending to $OUT/rows.txt.
runs() {
mkdir -p "$OUT/bin"
: >"$OUT/rows.txt"
echo "$CONNS connections, ${DURATION} measured after ${WARMUP} warm-up, median of $REPEAT round(s)" >"$OUT/params.txt"
command -v jq >/dev/null || { echo "run.sh: needs jq (apt-get install -y jq)" >&2; exit 1; }
if [[ $WRK == 1 ]] && ! command -v wrk >/dev/null; then
  echo "run.sh: wrk not installed (apt-get install -y wrk): wrk rows skipped" >&2
  WRK=0
fi

echo "building erlmcp and peers into $OUT/bin" >&2
if [[ -n $BIN ]]; then cp "$BIN" "$OUT/bin/erlmcp"; else (cd "$ROOT" && go build -o "$OUT/bin/erlmcp" ./cmd/erlmcp); fi
(cd "$ROOT/bench/peers" && go build -o "$OUT/bin/" ./...)
BENCH="$OUT/bin/erlmcp"

# Kernel-chosen free ports (bound and released here, then taken by each server), so two runs
# side by side never collide.
free_ports() { python3 -c 'import socket,sys
ss=[socket.socket() for _ in range(int(sys.argv[1]))]
[s.bind(("127.0.0.1",0)) for s in ss]
print(" ".join(str(s.getsockname()[1]) for s in ss))' "$1"; }
read -r PORT_OURS PORT_METRICS PORT_MCPGO PORT_GOSDK PORT_FAST PORT_NETPOLL <<<"$(free_ports 6)"
cat >"$OUT/erlmcp.yaml" <<YAML
server:
  control_socket: $OUT/erlmcp.sock
transports:
  tcp:
    addr: 127.0.0.1:$PORT_OURS
observability:
  metrics:
    addr: 127.0.0.1:$PORT_METRICS
logging:
  level: warn
# Throughput rows measure the data path: the per-client rate limiter (a policy,
# default on) would answer most of them with -32003.
rate_limiter:
  enabled: false
YAML

SERVER_PID=""
stop_server() {
  if [[ -n $SERVER_PID ]]; then
    kill "$SERVER_PID" 2>/dev/null || true
    wait "$SERVER_PID" 2>/dev/null || true
    SERVER_PID=""
  fi
}
trap stop_server EXIT

# start NAME PORT CMD...: starts a server and waits for its port.
start() {
  local name=$1 port=$2; shift 2
  "$@" >"$OUT/$name.log" 2>&1 &
  SERVER_PID=$!
  for _ in $(seq 100); do
    if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then return 0; fi
    sleep 0.05
  done
  echo "run.sh: $name did not listen on $port; log:" >&2
  cat "$OUT/$name.log" >&2
  exit 1
}

# load ROW-NAME JSON-FILE ARGS...: one erlmcp bench run against the current server.
load() {
  local row=$1 file=$2; shift 2
  echo "run.sh: $row" >&2
  "$BENCH" bench --quiet --json --duration "$DURATION" --warmup "$WARMUP" --conns "$CONNS" \
    --pid "$SERVER_PID" "$@" >"$OUT/$file.r$ROUND.json" || echo "run.sh: $row: erlmcp bench exited $? (see errors in the table)" >&2
  if [[ $ROUND == 1 ]]; then echo "$row|$file|erlmcp bench $*" >>"$OUT/rows.txt"; fi
}

# wrkrow ROW-NAME FILE URL: the same tools/call through wrk (stateless 2026 headers).
wrkrow() {
  local row=$1 file=$2 url=$3
  [[ $WRK == 1 ]] || return 0
  echo "run.sh: $row (wrk)" >&2
  local rss0
  wrk -t2 -c"$CONNS" -d"$WARMUP" -s "$ROOT/bench/wrk/mcp_tools_call.lua" "$url" >/dev/null
  wrk -t2 -c"$CONNS" -d"$DURATION" --latency -s "$ROOT/bench/wrk/mcp_tools_call.lua" "$url" >"$OUT/$file.wrk.txt"
  rss0=$(awk '/VmRSS/ {print $2}' "/proc/$SERVER_PID/status")
  local rps p99 errs
  rps=$(awk '/^Requests\/sec:/ {print $2}' "$OUT/$file.wrk.txt")
  p99=$(awk '/^p50 / {print $5}' "$OUT/$file.wrk.txt")
  errs=$(awk '/^non-200:/ {print $2 + $5}' "$OUT/$file.wrk.txt")
  jq -n --argjson rps "$rps" --argjson p99 "$p99" --argjson rss "$((rss0 * 1024))" --argjson e "${errs:-0}" \
    '{rps:$rps, latency:{p99:$p99}, errors:$e, server:{loaded:{rssBytes:$rss}}}' >"$OUT/$file.r$ROUND.json"
  if [[ $ROUND == 1 ]]; then echo "$row (wrk)|$file|wrk -t2 -c$CONNS -d$DURATION -s bench/wrk/mcp_tools_call.lua" >>"$OUT/rows.txt"; fi
}

HTTP_ARGS=(--mode pingpong --transport http)
for ROUND in $(seq "$REPEAT"); do
echo "run.sh: round $ROUND of $REPEAT" >&2

if [[ $TCPONLY == 1 ]]; then
  start erlmcp $PORT_OURS "$BENCH" start -config "$OUT/erlmcp.yaml"
  load "erlmcp TCP ping-pong" ours.tcp.pingpong --mode pingpong --addr 127.0.0.1:$PORT_OURS
  load "erlmcp TCP pipelined depth 16" ours.tcp.pipelined --mode pipelined --depth 16 --addr 127.0.0.1:$PORT_OURS
  stop_server
  start netpoll $PORT_NETPOLL "$OUT/bin/netpoll" -addr 127.0.0.1:$PORT_NETPOLL
  load "bare netpoll line echo (TCP ceiling)" netpoll --mode pingpong --addr 127.0.0.1:$PORT_NETPOLL
  stop_server
  continue
fi
start fasthttp $PORT_FAST "$OUT/bin/fasthttp" -addr 127.0.0.1:$PORT_FAST
load "bare fasthttp canned reply (ceiling)" fast "${HTTP_ARGS[@]}" --url http://127.0.0.1:$PORT_FAST/mcp --stateless
wrkrow "bare fasthttp canned reply (ceiling)" fast.wrk http://127.0.0.1:$PORT_FAST/mcp
stop_server

start erlmcp $PORT_OURS "$BENCH" start -config "$OUT/erlmcp.yaml"
load "erlmcp /mcp stateless 2026-07-28" ours.http.stateless "${HTTP_ARGS[@]}" --url http://127.0.0.1:$PORT_OURS/mcp --stateless
load "erlmcp /mcp session era" ours.http.session "${HTTP_ARGS[@]}" --url http://127.0.0.1:$PORT_OURS/mcp
wrkrow "erlmcp /mcp stateless 2026-07-28" ours.wrk http://127.0.0.1:$PORT_OURS/mcp
load "erlmcp TCP ping-pong" ours.tcp.pingpong --mode pingpong --addr 127.0.0.1:$PORT_OURS
load "erlmcp TCP pipelined depth 16" ours.tcp.pipelined --mode pipelined --depth 16 --addr 127.0.0.1:$PORT_OURS
stop_server

start mcpgo $PORT_MCPGO "$OUT/bin/mcpgo" -addr 127.0.0.1:$PORT_MCPGO -stateless
load "mcp-go v1.2.1 (stateless)" mcpgo "${HTTP_ARGS[@]}" --url http://127.0.0.1:$PORT_MCPGO/mcp
wrkrow "mcp-go v1.2.1 (stateless)" mcpgo.wrk http://127.0.0.1:$PORT_MCPGO/mcp
stop_server

start gosdk $PORT_GOSDK "$OUT/bin/gosdk" -addr 127.0.0.1:$PORT_GOSDK -stateless -json
load "go-sdk v1.8.0 (stateless, JSON)" gosdk "${HTTP_ARGS[@]}" --url http://127.0.0.1:$PORT_GOSDK/mcp
wrkrow "go-sdk v1.8.0 (stateless, JSON)" gosdk.wrk http://127.0.0.1:$PORT_GOSDK/mcp
stop_server

start netpoll $PORT_NETPOLL "$OUT/bin/netpoll" -addr 127.0.0.1:$PORT_NETPOLL
load "bare netpoll line echo (TCP ceiling)" netpoll --mode pingpong --addr 127.0.0.1:$PORT_NETPOLL
stop_server
done

}

# table prints the Markdown table of $OUT.
table() {
# Ratios against the bare fasthttp row of the same client (HTTP) and
# against the netpoll echo (TCP).
# Each row's median round becomes $OUT/<row>.json.
while IFS='|' read -r _ file _; do
  med=$(for f in "$OUT/$file".r*.json; do echo "$(jq -r .rps "$f") $f"; done | sort -n | awk '{a[NR]=$2} END {print a[int((NR+1)/2)]}')
  cp "$med" "$OUT/$file.json"
done <"$OUT/rows.txt"
rps() { jq -r '.rps' "$OUT/$1.json"; }
FAST=$([[ -f $OUT/fast.json ]] && rps fast || echo 0); FASTW=$([[ -f $OUT/fast.wrk.json ]] && rps fast.wrk || echo 0); NETPOLL=$(rps netpoll); PP=$(rps ours.tcp.pingpong)
{
  echo "machine: $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo), kernel $(uname -r), $(go version | cut -d' ' -f3)"
  echo "date: $(date -u -r "$OUT/rows.txt" +%Y-%m-%dT%H:%M:%SZ); $(cat "$OUT/params.txt"); results in $OUT"
  echo
  echo "| target | req/s | ratio | p99 ms | server RSS MiB | server CPU µs/req | client CPU µs/req | errors | command |"
  echo "|---|---:|---|---:|---:|---:|---:|---:|---|"
  while IFS='|' read -r name file cmd; do
    base=$FAST basename="bare fasthttp"
    case $file in
      *.wrk) base=$FASTW basename="bare fasthttp (wrk)" ;;
      ours.tcp.pingpong|netpoll) base=$NETPOLL basename="netpoll echo" ;;
      ours.tcp.pipelined) base=$PP basename="erlmcp TCP ping-pong" ;;
    esac
    jq -r --arg name "$name" --arg cmd "$cmd" --argjson base "$base" --arg bn "$basename" \
      '"| \($name) | \(.rps|floor) | \(if $base > 0 then ((.rps / $base * 100 | round) / 100 | tostring) + "× " + $bn else "" end) | \(.latency.p99*1000|round/1000) | \((.server.loaded.rssBytes // 0) / 1048576 | . * 10 | round / 10) | \(.server.cpuPerReqMicros // "" | if . == "" then "" else (. * 10 | round / 10) end) | \(.clientCPUPerReqMicros // "" | if . == "" then "" else (. * 10 | round / 10) end) | \(.errors) | `\($cmd)` |"' \
      "$OUT/$file.json"
  done <"$OUT/rows.txt"
  echo
  ratio() { [[ -f $OUT/$1.json && -f $OUT/$2.json ]] && jq -rn --slurpfile a "$OUT/$1.json" --slurpfile b "$OUT/$2.json" \
    '($a[0].rps / $b[0].rps * 100 | round / 100 | tostring) + "×"' || echo "n/a"; }
  echo "erlmcp /mcp stateless vs peers (erlmcp bench): $(ratio ours.http.stateless mcpgo) mcp-go, $(ratio ours.http.stateless gosdk) go-sdk, $(ratio ours.http.stateless fast) bare fasthttp"
  echo "erlmcp /mcp stateless vs peers (wrk):          $(ratio ours.wrk mcpgo.wrk) mcp-go, $(ratio ours.wrk gosdk.wrk) go-sdk, $(ratio ours.wrk fast.wrk) bare fasthttp"
  # erlmcp bench drives the peers in the session era (they do not speak 2026-07-28), so
  # this is the same-era comparison.
  echo "erlmcp /mcp session era vs peers (erlmcp bench, same era): $(ratio ours.http.session mcpgo) mcp-go, $(ratio ours.http.session gosdk) go-sdk, $(ratio ours.http.session fast) bare fasthttp"
  echo "erlmcp TCP: ping-pong $(ratio ours.tcp.pingpong netpoll) netpoll echo; pipelined depth 16 $(ratio ours.tcp.pipelined ours.tcp.pingpong) own ping-pong"
} | tee "$OUT/table.md"
}

if [[ -z $TABLE ]]; then runs; fi
table
