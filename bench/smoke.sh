#!/usr/bin/env bash
# bench/smoke.sh: the cheap CI run of `erlmcp bench`, so the tool cannot rot:
# a fresh daemon on spare loopback ports, a few hundred connections for a few
# seconds in each mode and transport; fails on any error or zero throughput.
set -euo pipefail

usage() {
  cat <<'USAGE'
usage: bench/smoke.sh [--conns 200] [--duration 2s] [--bin bin/erlmcp]

Builds bin/erlmcp unless --bin is given, starts it on free loopback ports (the
kernel picks them; read back from the daemon's log), runs pingpong, pipelined and mixed over TCP, pingpong over HTTP (stateless
and session era), and idle, each for --duration; exit 1 if any run has errors.
USAGE
}
CONNS=200 DURATION=2s BIN=""
while [[ $# -gt 0 ]]; do
  case "$1" in
    --conns) CONNS=$2; shift 2 ;;
    --duration) DURATION=$2; shift 2 ;;
    --bin) BIN=$2; shift 2 ;;
    -h|--help) usage; exit 0 ;;
    *) echo "smoke.sh: unknown argument $1" >&2; usage >&2; exit 2 ;;
  esac
done
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
TMP=$(mktemp -d)
if [[ -z $BIN ]]; then
  BIN=$TMP/erlmcp
  (cd "$ROOT" && go build -o "$BIN" ./cmd/erlmcp)
fi
cat >"$TMP/erlmcp.yaml" <<YAML
server:
  control_socket: $TMP/erlmcp.sock
transports:
  tcp:
    addr: 127.0.0.1:0
observability:
  metrics:
    addr: 127.0.0.1:0
logging:
  level: info
rate_limiter:
  enabled: false
YAML
"$BIN" start -config "$TMP/erlmcp.yaml" >"$TMP/erlmcp.log" 2>&1 &
PID=$!
trap 'kill $PID 2>/dev/null; wait $PID 2>/dev/null; rm -rf "$TMP"' EXIT
up=0 PORT="" MPORT=""
for _ in $(seq 200); do
  PORT=$(sed -n 's/.*msg=listening transport=tcp addr=127\.0\.0\.1:\([0-9]*\).*/\1/p' "$TMP/erlmcp.log" | head -1)
  MPORT=$(sed -n 's/.*msg=listening transport=metrics addr=127\.0\.0\.1:\([0-9]*\).*/\1/p' "$TMP/erlmcp.log" | head -1)
  if [[ -n $PORT && -n $MPORT ]] && (exec 3<>/dev/tcp/127.0.0.1/$PORT) 2>/dev/null; then up=1; break; fi
  kill -0 $PID 2>/dev/null || break
  sleep 0.05
done
if [[ $up == 0 ]]; then echo "FAIL: the daemon did not start:"; cat "$TMP/erlmcp.log"; exit 1; fi

fail=0
check() {
  local name=$1; shift
  local out
  if ! out=$("$BIN" bench --quiet --json --conns "$CONNS" --duration "$DURATION" --pid "$PID" "$@"); then
    echo "FAIL $name: erlmcp bench exited non-zero"; fail=1; return
  fi
  local line
  line=$(jq -r '"\(.rps|floor) req/s, p99 \(.latency.p99) ms, errors \(.errors) \(.errorsByKind // {} | tostring)"' <<<"$out")
  if [[ $(jq '.errors' <<<"$out") != 0 ]] || [[ $(jq '.mode != "idle" and .requests == 0' <<<"$out") == true ]]; then
    echo "FAIL $name: $line"; fail=1
  else
    echo "ok   $name: $line"
  fi
}
check "tcp pingpong" --mode pingpong --addr 127.0.0.1:$PORT
check "tcp pipelined 16" --mode pipelined --depth 16 --addr 127.0.0.1:$PORT
check "tcp mixed" --mode mixed --addr 127.0.0.1:$PORT
check "http stateless" --mode pingpong --transport http --url http://127.0.0.1:$PORT/mcp --stateless
check "http session" --mode pingpong --transport http --url http://127.0.0.1:$PORT/mcp
check "tcp idle" --mode idle --addr 127.0.0.1:$PORT --metrics http://127.0.0.1:$MPORT/metrics
exit $fail
