#!/usr/bin/env bash
# The official MCP conformance suite through haproxy in front of three erlmcp nodes in cluster
# mode (issue 8), each `--profile conformance`, sharing one redis-server on a unix socket:
#   - 2026-07-28 (stateless era) through haproxy with ERLMCP_LB_STICKY=off: plain round-robin,
#     every request may land on any node (input-required round trips and tasks included);
#   - 2025-11-25 (session era) through haproxy with Mcp-Session-Id stickiness.
# Both run the shipped deploy/haproxy/haproxy.cfg. No expected-failures baseline: any failing
# check, scored or not, fails this script; so does a stateless run that did not reach every node.
#
#   .ci/conformance-cluster.sh            # builds bin/erlmcp first
#   ERLMCP_BIN=path .ci/conformance-cluster.sh
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PATH:/usr/sbin:/sbin"

RUN="${CONFORMANCE_RUN:-../shared/conformance/run.sh}"
BIN="${ERLMCP_BIN:-bin/erlmcp}"
if [ -z "${ERLMCP_BIN:-}" ]; then
  go build -o "$BIN" ./cmd/erlmcp
fi
for c in redis-server haproxy python3 curl; do
  command -v "$c" >/dev/null || { echo "conformance-cluster: $c is required (.ci/run installs it)" >&2; exit 1; }
done

TMP=$(mktemp -d -t erlmcp-ccl.XXXXXX)
fail() { echo "conformance-cluster: $*" >&2; for f in "$TMP"/*.log; do echo "--- $f" >&2; tail -20 "$f" >&2; done; exit 1; }
# shellcheck source=../bench/lib.sh
source bench/lib.sh # pids, lib_cleanup, start_redis, start_node, start_haproxy
trap lib_cleanup EXIT

start_redis

# Three nodes on kernel-chosen ports, read back from their logs.
prefix="erlmcp-ccl-$$-$(date +%s):"
addrs=()
for n in a b c; do
  start_node "$n" env ERLMCP_METRICS_ENABLED=false "$BIN" start --profile conformance --transports.tcp.addr 127.0.0.1:0 \
    -set "server.control_socket=$TMP/$n.sock" -set cluster.enabled=true \
    -set "cluster.redis_url=unix://$TMP/redis.sock" -set "cluster.node=$n" -set "cluster.key_prefix=$prefix"
  addrs+=("$NODE_ADDR")
done

# haproxy: the shipped config, once with stickiness and once without.
LB_ENV=(ERLMCP_LB_CHECK_INTER=250ms)
start_haproxy sticky "${addrs[@]}"
STICKY_PORT=$LB_PORT
LB_ENV+=(ERLMCP_LB_STICKY=off)
start_haproxy rr "${addrs[@]}"
RR_PORT=$LB_PORT

# Ready when an initialize answers through each haproxy (all nodes joined Redis by then).
for port in "$STICKY_PORT" "$RR_PORT"; do
  up=0
  for _ in $(seq 100); do
    if curl -fsS -o /dev/null -X POST "http://127.0.0.1:$port/mcp" -H 'Content-Type: application/json' \
        -H 'Accept: application/json, text/event-stream' \
        -d '{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"ci","version":"1"}}}' 2>/dev/null; then
      up=1; break
    fi
    sleep 0.1
  done
  [ "$up" = 1 ] || fail "no answer through haproxy on port $port"
done

# Requests each node served through a haproxy (show stat: stot per server).
served() { # stats socket
  python3 - "$1" <<'PY'
import csv, io, socket, sys
s = socket.socket(socket.AF_UNIX); s.connect(sys.argv[1]); s.sendall(b"show stat\n")
buf = b""
while True:
    d = s.recv(65536)
    if not d: break
    buf += d
rows = list(csv.reader(io.StringIO(buf.decode().lstrip("# "))))
col = {n: i for i, n in enumerate(rows[0])}
print(" ".join(f"{r[col['svname']]}={r[col['stot']]}" for r in rows[1:]
               if len(r) > col['stot'] and r[col['pxname']] == "erlmcp_nodes" and r[col['svname']] != "BACKEND"))
PY
}

status=0
run_suite() { # requirements, port
  local req=$1 port=$2 out
  out=$(mktemp -t conformance-cluster-$req.XXXXXX.txt)
  echo "== conformance --requirements $req through haproxy :$port (3 nodes, cluster mode)"
  if ! "$RUN" --url "http://127.0.0.1:$port/mcp" --requirements "$req" >"$out" 2>&1; then
    status=1
  fi
  sed -n '/=== SUMMARY ===/,$p' "$out"
  # Not-scored scenarios do not change run.sh's exit code: fail on them too.
  if grep -qE '^(✗|Total: [0-9]+ passed, [1-9][0-9]* failed)' "$out"; then
    status=1
  fi
}
run_suite 2026-07-28 "$RR_PORT"
rr=$(served "$TMP/rr.stats")
echo "stateless round-robin, requests per node: $rr"
for s in $rr; do
  if [ "${s#*=}" -lt 5 ]; then echo "conformance-cluster: node ${s%%=*} served ${s#*=} requests: the stateless run did not spread" >&2; status=1; fi
done
run_suite 2025-11-25 "$STICKY_PORT"
echo "session era with stickiness, requests per node: $(served "$TMP/sticky.stats")"
for n in a b c; do
  if grep -qE 'level=(ERROR|error)|panic' "$TMP/node-$n.log"; then
    echo "conformance-cluster: node $n logged errors:" >&2; grep -E 'level=(ERROR|error)|panic' "$TMP/node-$n.log" | head -20 >&2; status=1
  fi
done
if [ "$status" -ne 0 ]; then
  echo "conformance-cluster: FAILED" >&2
  for f in "$TMP"/node-*.log; do echo "--- $f" >&2; tail -30 "$f" >&2; done
fi
exit "$status"
