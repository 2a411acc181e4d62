# bench/lib.sh: the pieces shared by the scripts that start erlmcp nodes, Redis and haproxy
# on loopback (bench/cluster.sh, .ci/conformance-cluster.sh). Source it with bash after
# setting TMP (a scratch directory) and defining fail MESSAGE (prints and exits). Every
# process started here is appended to the array pids, which lib_cleanup stops.

LIB_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
pids=()

# lib_cleanup stops every process in pids (started here or added by the caller), then
# removes $TMP. Meant for `trap lib_cleanup EXIT`.
lib_cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  rm -rf "$TMP"
}

# free_port prints a loopback port the kernel chose (bound, then released).
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'; }

# start_redis runs redis-server on the unix socket $TMP/redis.sock only, without
# persistence, and waits for the socket; sets REDIS_PID.
start_redis() {
  redis-server --port 0 --unixsocket "$TMP/redis.sock" --unixsocketperm 700 --save '' --appendonly no \
    --dir "$TMP" --daemonize no --loglevel warning >"$TMP/redis.log" 2>&1 &
  REDIS_PID=$!
  pids+=("$REDIS_PID")
  for _ in $(seq 100); do [[ -S $TMP/redis.sock ]] && break; sleep 0.05; done
  [[ -S $TMP/redis.sock ]] || fail "redis-server did not start"
}

# start_node NAME CMD...: runs CMD (an `erlmcp start` whose TCP transport listens on
# 127.0.0.1:0) with its log in $TMP/node-NAME.log, and waits for the address it reports
# listening on; sets NODE_PID and NODE_ADDR.
start_node() {
  local name=$1; shift
  "$@" >"$TMP/node-$name.log" 2>&1 &
  NODE_PID=$!
  pids+=("$NODE_PID")
  NODE_ADDR=""
  for _ in $(seq 200); do
    NODE_ADDR=$(sed -n 's/.*msg=listening transport=tcp addr=\(127\.0\.0\.1:[0-9]*\).*/\1/p' "$TMP/node-$name.log" | head -1)
    [[ -n $NODE_ADDR ]] && return
    kill -0 "$NODE_PID" 2>/dev/null || break
    sleep 0.05
  done
  tail -20 "$TMP/node-$name.log" >&2
  fail "node $name did not start"
}

# start_haproxy NAME ADDR...: haproxy running the shipped deploy/haproxy/haproxy.cfg in front
# of ADDR... (at most 3), its stats socket at $TMP/NAME.stats, with the variables of the
# array LB_ENV added (e.g. ERLMCP_LB_STICKY=off); a port lost to a race between free_port and
# the bind is retried. Sets LB_PID and LB_PORT.
start_haproxy() {
  local name=$1; shift
  local env=(ERLMCP_LB_STATS_SOCKET="$TMP/$name.stats" ERLMCP_LB_SERVER2= ERLMCP_LB_SERVER3=)
  local i=1
  for a in "$@"; do env+=("ERLMCP_LB_SERVER$i=$a"); i=$((i + 1)); done
  env+=(${LB_ENV[@]+"${LB_ENV[@]}"})
  for _ in 1 2 3 4 5; do
    LB_PORT=$(free_port)
    env "${env[@]}" ERLMCP_LB_BIND="127.0.0.1:$LB_PORT" haproxy -db -f "$LIB_ROOT/deploy/haproxy/haproxy.cfg" \
      >"$TMP/haproxy-$name.log" 2>&1 &
    LB_PID=$!
    for _ in $(seq 100); do
      if (exec 3<>"/dev/tcp/127.0.0.1/$LB_PORT") 2>/dev/null; then
        pids+=("$LB_PID")
        return
      fi
      kill -0 "$LB_PID" 2>/dev/null || break
      sleep 0.05
    done
    kill "$LB_PID" 2>/dev/null || true
    wait "$LB_PID" 2>/dev/null || true
  done
  tail -20 "$TMP/haproxy-$name.log" >&2
  fail "haproxy $name did not start"
}
