# deploy/lib.sh -- shared by the deploy scripts (sourced, not run).
PREFIX=${ERLMCP_PREFIX:-/opt/erlmcp}
HOST=${ERLMCP_HOST:-127.0.0.1}
PORT=${ERLMCP_PORT:-8080}
# Extra flags for every erlmcp command, e.g. to run without root:
#   ERLMCP_SET="-set server.control_socket=/tmp/x.sock -set logging.file="
read -r -a SET_ARGS <<< "${ERLMCP_SET:-}"
CONFIG=$PREFIX/etc/erlmcp.yaml
ERLMCP=$PREFIX/bin/erlmcp
say() { printf '%s: %s\n' "${0##*/}" "$*"; }
die() { printf '%s: %s\n' "${0##*/}" "$*" >&2; exit 1; }
erlmcp_cmd() { "$ERLMCP" "$1" -config "$CONFIG" "${SET_ARGS[@]}" "${@:2}"; }
running() { [[ -x $ERLMCP ]] && erlmcp_cmd ping >/dev/null 2>&1; }
under_systemd() { [[ ${ERLMCP_SYSTEMD:-0} == 1 ]]; }
# start_server: start in the background (pid and log under the prefix) or via systemd.
start_server() {
  if under_systemd; then systemctl start erlmcp; else
    mkdir -p "$PREFIX/var/log"
    [[ -f $PREFIX/etc/erlmcp.env ]] && { set -a; . "$PREFIX/etc/erlmcp.env"; set +a; }
    nohup "$ERLMCP" start -config "$CONFIG" "${SET_ARGS[@]}" >> "$PREFIX/var/log/erlmcp.out" 2>&1 < /dev/null &
    echo $! > "$PREFIX/var/erlmcp.pid"
  fi
  for _ in $(seq 1 100); do running && return 0; sleep 0.1; done
  return 1
}
# activate: upgrade in place when running (no dropped requests), else start.
activate() {
  # -binary: the installed path, not the running process's own executable (which may be
  # a file the install just replaced or removed).
  if running; then
    erlmcp_cmd upgrade -binary "$ERLMCP" -wait 60s || return 1
    erlmcp_cmd status -json | sed -n 's/.*"pid": \([0-9]*\).*/\1/p' > "$PREFIX/var/erlmcp.pid"
  else start_server || return 1; fi
}
