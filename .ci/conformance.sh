#!/usr/bin/env bash
# Runs the official MCP conformance suite against `erlmcp start --profile conformance`,
# for both requirement sets (2025-11-25 session era, 2026-07-28 stateless era), with no
# expected-failures baseline: any failing check, scored or not, fails this script.
#
#   .ci/conformance.sh            # builds bin/erlmcp first
#   ERLMCP_BIN=path .ci/conformance.sh
set -euo pipefail
cd "$(dirname "$0")/.."

RUN="${CONFORMANCE_RUN:-../shared/conformance/run.sh}"
BIN="${ERLMCP_BIN:-bin/erlmcp}"
if [ -z "${ERLMCP_BIN:-}" ]; then
  go build -o "$BIN" ./cmd/erlmcp
fi

# A free loopback port: bind :0 and let the kernel choose.
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()')
LOG=$(mktemp -t erlmcp-conformance.XXXXXX.log)
SOCKDIR=$(mktemp -d -t erlmcp-conformance.XXXXXX)
ERLMCP_METRICS_ENABLED=false "$BIN" start --profile conformance --transports.tcp.addr "127.0.0.1:$PORT" \
  -set "server.control_socket=$SOCKDIR/erlmcp.sock" >"$LOG" 2>&1 &
PID=$!
cleanup() { kill "$PID" 2>/dev/null || true; wait "$PID" 2>/dev/null || true; rm -rf "$SOCKDIR"; }
trap cleanup EXIT

# Ready when the MCP endpoint answers a ping over HTTP.
for _ in $(seq 1 100); do
  if curl -fsS -o /dev/null -X POST "http://127.0.0.1:$PORT/mcp" -H 'Content-Type: application/json' \
      -H 'Accept: application/json, text/event-stream' \
      -d '{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"ci","version":"1"}}}' 2>/dev/null; then
    break
  fi
  if ! kill -0 "$PID" 2>/dev/null; then
    echo "conformance: erlmcp exited at start:" >&2; cat "$LOG" >&2; exit 1
  fi
  sleep 0.1
done

status=0
for req in 2025-11-25 2026-07-28; do
  out=$(mktemp -t conformance-$req.XXXXXX.txt)
  echo "== conformance --requirements $req (port $PORT)"
  if ! "$RUN" --url "http://127.0.0.1:$PORT/mcp" --requirements "$req" >"$out" 2>&1; then
    status=1
  fi
  sed -n '/=== SUMMARY ===/,$p' "$out"
  # Not-scored scenarios do not change run.sh's exit code: fail on them too.
  if grep -qE '^(✗|Total: [0-9]+ passed, [1-9][0-9]* failed)' "$out"; then
    status=1
  fi
done
if [ "$status" -ne 0 ]; then
  echo "conformance: FAILED (server log: $LOG)" >&2
fi
exit "$status"
