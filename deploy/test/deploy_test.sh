#!/usr/bin/env bash
# deploy/test/deploy_test.sh -- the deploy scripts on a temp prefix with real processes:
# deploy a good release, then a broken one (fails health) that rolls back by itself, leaving
# the good one serving; rollback.sh to a named backup; a corrupted backup refused.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
work=$(mktemp -d)
export ERLMCP_PREFIX=$work/prefix
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
export ERLMCP_PORT=$port ERLMCP_HOST=127.0.0.1
export ERLMCP_SET="-set server.control_socket=$work/ctl.sock -set transports.tcp.addr=127.0.0.1:$port -set observability.metrics.addr=127.0.0.1:0 -set logging.file= -set rate_limiter.enabled=false"
export ERLMCP_WRK_DURATION=1s
cleanup() {
  local pid; pid=$(cat "$ERLMCP_PREFIX/var/erlmcp.pid" 2>/dev/null || true)
  [[ -n $pid ]] && kill "$pid" 2>/dev/null || true
  "$ERLMCP_PREFIX/bin/erlmcp" stop $ERLMCP_SET >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT
fail() { echo "FAIL: $*"; exit 1; }
ok() { echo "ok: $*"; }

# Two good releases (versions 1.0.0, 1.1.0) and a broken 2.0.0 whose server serves no /health.
(cd "$root" && VERSION=1.0.0 bash deploy/release.sh >/dev/null 2>&1 && cp _build/prod/erlmcp-1.0.0-linux-amd64.tar.gz* "$work/")
(cd "$root" && VERSION=1.1.0 bash deploy/release.sh >/dev/null 2>&1 && cp _build/prod/erlmcp-1.1.0-linux-amd64.tar.gz* "$work/")
mkdir -p "$work/broken" && tar -C "$work/broken" -xzf "$work/erlmcp-1.1.0-linux-amd64.tar.gz"
mv "$work/broken/erlmcp/bin/erlmcp" "$work/broken/erlmcp/bin/erlmcp.real"
printf '#!/bin/sh\nexec "$(dirname "$0")/erlmcp.real" "$@" -set observability.health.enabled=false\n' > "$work/broken/erlmcp/bin/erlmcp"
chmod +x "$work/broken/erlmcp/bin/erlmcp"; echo 2.0.0 > "$work/broken/erlmcp/releases/VERSION"
tar -C "$work/broken" -czf "$work/erlmcp-2.0.0-broken.tar.gz" erlmcp

version() { "$ERLMCP_PREFIX/bin/erlmcp" versions $ERLMCP_SET | sed -n 's/^running server: erlmcp \([^ ]*\).*/\1/p'; }

"$root/deploy/deploy.sh" production "$work/erlmcp-1.0.0-linux-amd64.tar.gz" > "$work/d1.log" 2>&1 || { cat "$work/d1.log"; fail "deploy 1.0.0"; }
[[ $(version) == 1.0.0 ]] || fail "running $(version), want 1.0.0"; ok "deploy 1.0.0 (fresh start)"
"$root/deploy/deploy.sh" production "$work/erlmcp-1.1.0-linux-amd64.tar.gz" > "$work/d2.log" 2>&1 || { cat "$work/d2.log"; fail "deploy 1.1.0"; }
[[ $(version) == 1.1.0 ]] || fail "running $(version), want 1.1.0"; ok "deploy 1.1.0 (upgrade in place)"
pid_good=$(cat "$ERLMCP_PREFIX/var/erlmcp.pid")

if "$root/deploy/deploy.sh" production "$work/erlmcp-2.0.0-broken.tar.gz" > "$work/d3.log" 2>&1; then cat "$work/d3.log"; fail "broken deploy succeeded"; fi
grep -q "ROLLBACK: health check failed" "$work/d3.log" || { cat "$work/d3.log"; fail "no automatic rollback"; }
[[ $(version) == 1.1.0 ]] || { cat "$work/d3.log"; fail "after rollback running $(version), want 1.1.0"; }
# Not health_check.sh here: an upgrade keeps the process's arguments, so the restored 1.1.0
# inherited the broken wrapper's "-set observability.health.enabled=false" (a test artifact).
"$ERLMCP_PREFIX/bin/erlmcp" ping $ERLMCP_SET >/dev/null || fail "ping after rollback"
ok "broken 2.0.0 failed health and rolled back by itself to 1.1.0"

first=$(ls -1tr "$ERLMCP_PREFIX/backups"/erlmcp-backup-*.tar.gz | head -n1); first=$(basename "$first" .tar.gz)
"$root/deploy/rollback.sh" production "$first" > "$work/r1.log" 2>&1 || { cat "$work/r1.log"; fail "rollback to $first"; }
[[ $(version) == 1.0.0 ]] || fail "after rollback to $first running $(version), want 1.0.0"; ok "rollback.sh to named backup $first (1.0.0)"

newest=$(ls -1t "$ERLMCP_PREFIX/backups"/erlmcp-backup-*.tar.gz | head -n1)
printf 'garbage' >> "$newest"
if "$root/deploy/rollback.sh" production > "$work/r2.log" 2>&1; then fail "corrupted backup accepted"; fi
grep -q "checksum mismatch" "$work/r2.log" || { cat "$work/r2.log"; fail "no checksum message"; }
[[ $(version) == 1.0.0 ]] || fail "corrupted rollback changed the running version"
ok "corrupted backup refused by its checksum"
"$root/deploy/smoke_tests.sh" production | grep -E "^(PASS|FAIL) 7.1" | grep -q FAIL && fail "smoke tests 7.1"
echo "deploy_test: all passed"
