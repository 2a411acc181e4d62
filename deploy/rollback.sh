#!/usr/bin/env bash
# deploy/rollback.sh <env> [backup-name] -- restore a backup (seed 9.2), newest by default.
set -euo pipefail
if [[ ${1:-} == -h || ${1:-} == --help || $# -lt 1 || $# -gt 2 ]]; then
  cat <<'USAGE'
usage: deploy/rollback.sh <env> [backup-name]
Restores $ERLMCP_PREFIX/backups/<backup-name>.tar.gz (newest when no name) after checking its
sha256 (a corrupted backup is refused), then upgrades the running server to it with no dropped
requests (or starts it) and checks ping. ERLMCP_PREFIX default /opt/erlmcp.
USAGE
  [[ $# -ge 1 ]] && exit 0 || exit 2
fi
. "$(dirname "$0")/lib.sh"
env_name=$1
backups=$PREFIX/backups
name=${2:-}
if [[ -z $name ]]; then
  name=$(ls -1t "$backups"/erlmcp-backup-*.tar.gz 2>/dev/null | head -n1 || true)
  [[ -n $name ]] || die "no backup in $backups"
  name=$(basename "$name" .tar.gz)
fi
name=${name%.tar.gz}
tarball=$backups/$name.tar.gz
[[ -f $tarball ]] || die "no backup $tarball"
[[ -f $tarball.sha256 ]] || die "no checksum $tarball.sha256: refusing an unverifiable backup"
(cd "$backups" && sha256sum --quiet -c "$name.tar.gz.sha256") >/dev/null 2>&1 \
  || die "checksum mismatch for $tarball: refusing a corrupted backup"
say "restoring $name ($env_name) into $PREFIX"
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
tar -C "$tmp" -xzf "$tarball"
for d in bin etc releases systemd logrotate; do
  [[ -e $tmp/$d ]] || continue
  rm -rf "$PREFIX/$d.rollback"; cp -a "$tmp/$d" "$PREFIX/$d.rollback"
  rm -rf "$PREFIX/$d"; mv "$PREFIX/$d.rollback" "$PREFIX/$d"
done
activate || die "restored $name but the server did not start"
erlmcp_cmd ping >/dev/null || die "restored $name but ping fails"
say "rolled back to $name ($(cat "$PREFIX/releases/VERSION" 2>/dev/null || echo '?')): pong"
