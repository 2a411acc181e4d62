#!/usr/bin/env bash
# deploy/deploy.sh -- seed section 8: backup, preflight, deploy with automatic rollback.
set -euo pipefail
usage() {
  cat <<'USAGE'
usage: deploy/deploy.sh backup <env>        tar + sha256 of $ERLMCP_PREFIX into backups/ (newest 5 kept)
       deploy/deploy.sh --preflight         tuning/preflight.sh, config check, port availability
       deploy/deploy.sh <env> [TARBALL]     backup, install the release, `erlmcp upgrade` when running
                                            (else start), health_check.sh + smoke_tests.sh;
                                            AUTOMATIC ROLLBACK to the backup on any failure
Environment: ERLMCP_PREFIX (/opt/erlmcp), ERLMCP_HOST/ERLMCP_PORT (127.0.0.1:8080),
ERLMCP_SET (extra -set flags for every erlmcp command), ERLMCP_SYSTEMD=1 (start via systemctl).
TARBALL defaults to the newest _build/prod/erlmcp-*.tar.gz.
USAGE
}
[[ ${1:-} == -h || ${1:-} == --help ]] && { usage; exit 0; }
[[ $# -ge 1 ]] || { usage >&2; exit 2; }
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib.sh"

backup() {
  local env_name=$1 name i=0
  [[ -d $PREFIX/bin ]] || { say "nothing installed in $PREFIX: no backup"; return 0; }
  mkdir -p "$PREFIX/backups"
  name=erlmcp-backup-$(date +%Y%m%d-%H%M%S)
  while [[ -e $PREFIX/backups/$name.tar.gz ]]; do i=$((i+1)); name=erlmcp-backup-$(date +%Y%m%d-%H%M%S)-$i; done
  local dirs=(); for d in bin etc releases systemd logrotate; do [[ -e $PREFIX/$d ]] && dirs+=("$d"); done
  tar -C "$PREFIX" -czf "$PREFIX/backups/$name.tar.gz" "${dirs[@]}"
  (cd "$PREFIX/backups" && sha256sum "$name.tar.gz" > "$name.tar.gz.sha256")
  ls -1t "$PREFIX/backups"/erlmcp-backup-*.tar.gz | tail -n +6 | while read -r old; do rm -f "$old" "$old.sha256"; done
  say "backup $name ($env_name) in $PREFIX/backups"
  LAST_BACKUP=$name
}

preflight() {
  local rc=0 pf
  for pf in "$here/../tuning/preflight.sh" "$PREFIX/tuning/preflight.sh"; do
    [[ -x $pf ]] && { "$pf" || rc=1; break; }
  done
  if [[ -x $ERLMCP && -f $CONFIG ]]; then erlmcp_cmd config check "$CONFIG" 2>/dev/null || "$ERLMCP" config check "$CONFIG" || rc=1; fi
  if running; then say "port $PORT: served by the running erlmcp (deploy will upgrade in place)"
  elif (exec 3<>"/dev/tcp/$HOST/$PORT") 2>/dev/null; then say "FAIL port $HOST:$PORT is taken by another process"; rc=1
  else say "PASS port $HOST:$PORT is free"; fi
  return $rc
}

install_release() {
  local tarball=$1 tmp
  tmp=$(mktemp -d)
  tar -C "$tmp" -xzf "$tarball"
  [[ -x $tmp/erlmcp/bin/erlmcp ]] || { rm -rf "$tmp"; die "$tarball holds no erlmcp/bin/erlmcp"; }
  mkdir -p "$PREFIX/bin" "$PREFIX/etc" "$PREFIX/var"
  # The binary is replaced by rename: the running process keeps its inode, `erlmcp upgrade` runs the new file.
  cp "$tmp/erlmcp/bin/erlmcp" "$PREFIX/bin/.erlmcp.new" && mv -f "$PREFIX/bin/.erlmcp.new" "$PREFIX/bin/erlmcp"
  for f in "$tmp"/erlmcp/bin/*; do [[ $(basename "$f") == erlmcp ]] || cp -a "$f" "$PREFIX/bin/"; done
  for f in "$tmp"/erlmcp/etc/*; do  # the operator's config is kept; the release's is beside it
    if [[ -e $PREFIX/etc/$(basename "$f") ]]; then cp "$f" "$PREFIX/etc/$(basename "$f").release"; else cp "$f" "$PREFIX/etc/"; fi
  done
  for d in releases systemd logrotate; do [[ -e $tmp/erlmcp/$d ]] && { rm -rf "$PREFIX/$d"; cp -a "$tmp/erlmcp/$d" "$PREFIX/$d"; }; done
  rm -rf "$tmp"
}

case $1 in
  backup) [[ $# -eq 2 ]] || { usage >&2; exit 2; }; backup "$2"; exit 0 ;;
  --preflight) preflight; exit $? ;;
esac
env_name=$1
tarball=${2:-$(ls -1t "$here"/../_build/prod/erlmcp-*.tar.gz 2>/dev/null | head -n1 || true)}
[[ -f $tarball ]] || die "no release tarball (run make release, or pass TARBALL)"
if [[ -f $tarball.sha256 ]]; then
  (cd "$(dirname "$tarball")" && sha256sum --quiet -c "$(basename "$tarball").sha256") || die "checksum mismatch for $tarball"
fi
LAST_BACKUP=
backup "$env_name"
rollback() {
  say "ROLLBACK: $1"
  if [[ -n $LAST_BACKUP ]]; then "$here/rollback.sh" "$env_name" "$LAST_BACKUP" || die "rollback to $LAST_BACKUP failed too"
  else running && erlmcp_cmd stop || true; fi
  die "deploy of $tarball failed ($1); rolled back to ${LAST_BACKUP:-nothing (first install: stopped)}"
}
say "installing $tarball into $PREFIX ($env_name)"
install_release "$tarball"
activate || rollback "the new release did not start"
"$here/health_check.sh" "http://$HOST:$PORT" || rollback "health check failed"
"$here/smoke_tests.sh" "$env_name" || rollback "smoke tests failed"
say "deployed $(cat "$PREFIX/releases/VERSION" 2>/dev/null) to $PREFIX ($env_name): healthy"
