#!/usr/bin/env bash
# bench/idle_scale.sh: idle cost per initialized session at several session
# counts, each against a fresh erlmcp daemon (so the baseline is clean), and
# the projection to 100K sessions.
set -euo pipefail

usage() {
  cat <<'USAGE'
usage: bench/idle_scale.sh [--sizes "1000 5000 10000 19000"] [--hold 10s] [--transport tcp|http]
                           [--hold-conns] [--rate-limiter] [--out DIR]

  --sizes LIST     session counts (default "1000 5000 10000 19000": one server process
                   may hold at most 20,000 descriptors on the reference box)
  --hold D         how long sessions are held idle before the server is sampled (default 10s;
                   longer than hibernation.after_ms so buffers are released)
  --transport T    tcp (newline JSON-RPC, default) or http (session-era Streamable HTTP)
  --hold-conns     http: keep each session's keep-alive connection open while held (default:
                   closed after initialize, so what is measured is the session alone)
  --rate-limiter   leave the daemon's rate limiter on (its default; off by default here)
  --bin PATH       use this erlmcp binary instead of building ./cmd/erlmcp
  --out DIR        results (default bench/results/tmp/idle-<UTC time>, git-ignored)
  -h, --help       this text

For 100K sessions use a box with nofile >= 200K (tuning/), then:
  bench/idle_scale.sh --sizes "100000" --hold 30s
(the client spreads itself over worker processes and 127.0.0.1-127.0.0.8 by itself).
USAGE
}

SIZES="1000 5000 10000 19000" HOLD=10s TRANSPORT=tcp OUT="" BIN="" HOLDCONNS=() RATELIMIT=false
while [[ $# -gt 0 ]]; do
  case "$1" in
    --sizes) SIZES=$2; shift 2 ;;
    --hold) HOLD=$2; shift 2 ;;
    --transport) TRANSPORT=$2; shift 2 ;;
    --out) OUT=$2; shift 2 ;;
    --bin) BIN=$2; shift 2 ;;
    --hold-conns) HOLDCONNS=(--hold-conns); shift ;;
    --rate-limiter) RATELIMIT=true; shift ;;
    -h|--help) usage; exit 0 ;;
    *) echo "idle_scale.sh: unknown argument $1" >&2; usage >&2; exit 2 ;;
  esac
done
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
OUT=${OUT:-$ROOT/bench/results/tmp/idle-$(date -u +%Y%m%dT%H%M%SZ)}
mkdir -p "$OUT"
command -v jq >/dev/null || { echo "idle_scale.sh: needs jq" >&2; exit 1; }
if [[ -n $BIN ]]; then cp "$BIN" "$OUT/erlmcp"; else (cd "$ROOT" && go build -o "$OUT/erlmcp" ./cmd/erlmcp); fi
# Kernel-chosen ports (read back from the daemon's "listening" lines), so runs never collide.
cat >"$OUT/erlmcp.yaml" <<YAML
server:
  control_socket: $OUT/erlmcp.sock
transports:
  tcp:
    addr: 127.0.0.1:0
observability:
  metrics:
    addr: 127.0.0.1:0
logging:
  level: info
rate_limiter:
  enabled: $RATELIMIT
YAML
PID=""
trap '[[ -n $PID ]] && kill $PID 2>/dev/null; wait 2>/dev/null || true' EXIT
# listened LOG TRANSPORT: the address the daemon logged for TRANSPORT, or nothing yet.
listened() { sed -n "s/.*msg=listening transport=$2 addr=\(127\.0\.0\.1:[0-9]*\).*/\1/p" "$1" | head -1; }
for n in $SIZES; do
  "$OUT/erlmcp" start -config "$OUT/erlmcp.yaml" >"$OUT/erlmcp.$n.log" 2>&1 &
  PID=$!
  ADDR="" MADDR=""
  for _ in $(seq 200); do
    ADDR=$(listened "$OUT/erlmcp.$n.log" tcp) MADDR=$(listened "$OUT/erlmcp.$n.log" metrics)
    [[ -n $ADDR && -n $MADDR ]] && break
    kill -0 "$PID" 2>/dev/null || break
    sleep 0.05
  done
  [[ -n $ADDR && -n $MADDR ]] || { cat "$OUT/erlmcp.$n.log" >&2; echo "idle_scale.sh: the daemon did not start" >&2; exit 1; }
  TARGET=(--addr "$ADDR")
  [[ $TRANSPORT == http ]] && TARGET=(--transport http --url "http://$ADDR/mcp" "${HOLDCONNS[@]}")
  sleep 1 # let the daemon settle before the baseline
  echo "idle_scale.sh: $n sessions" >&2
  "$OUT/erlmcp" bench --mode idle "${TARGET[@]}" --conns "$n" --duration "$HOLD" --pid "$PID" \
    --metrics "http://$MADDR/metrics" --source-ips 127.0.0.1-127.0.0.8 --quiet --json >"$OUT/idle.$n.json" ||
    echo "idle_scale.sh: $n: bench exited $?" >&2
  kill "$PID"; wait "$PID" 2>/dev/null || true; PID=""
done
{
  echo "machine: $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo), kernel $(uname -r); date $(date -u +%Y-%m-%dT%H:%M:%SZ); transport $TRANSPORT ${HOLDCONNS[*]}; rate limiter $RATELIMIT; hold $HOLD"
  echo
  echo "| sessions | RSS before MiB | RSS idle MiB | KiB RSS/session | KiB heap/session | goroutines before → idle | threads | errors | projected RSS at 100K |"
  echo "|---:|---:|---:|---:|---:|---|---:|---:|---:|"
  for n in $SIZES; do
    jq -r '.server as $s | "| \($s.sessions) | \($s.baseline.rssBytes/1048576*10|round/10) | \($s.loaded.rssBytes/1048576*10|round/10) | \($s.rssPerSessionBytes/1024*100|round/100) | \(($s.heapPerSessionBytes // 0)/1024*100|round/100) | \($s.baseline.goroutines) → \($s.loaded.goroutines) | \($s.loaded.threads) | \(.errors) | \((($s.baseline.rssBytes + $s.rssPerSessionBytes*100000)/1048576)|round) MiB |"' "$OUT/idle.$n.json"
  done
} | tee "$OUT/table.md"
