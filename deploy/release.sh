#!/usr/bin/env bash
# deploy/release.sh -- build the release: _build/prod/rel/erlmcp/ and a versioned tarball.
set -euo pipefail

usage() {
  cat <<'USAGE'
usage: deploy/release.sh [--help]

Builds (from the repository root, as `make release` does):
  _build/prod/rel/erlmcp/bin/erlmcp            version/commit/date linked in (-ldflags)
  _build/prod/rel/erlmcp/etc/erlmcp.yaml       every key, commented, from `erlmcp config defaults`
  _build/prod/rel/erlmcp/etc/erlmcp.env        the seed's environment variables
  _build/prod/rel/erlmcp/releases/VERSION
  _build/prod/rel/erlmcp/systemd/erlmcp.service, logrotate/erlmcp (when present)
  _build/prod/erlmcp-VERSION-linux-amd64.tar.gz and .sha256
Environment: VERSION, COMMIT, DATE, GO, GOOS, GOARCH override the defaults.
USAGE
}
[[ ${1:-} == -h || ${1:-} == --help ]] && { usage; exit 0; }
[[ $# -eq 0 ]] || { usage >&2; exit 2; }

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
GO=${GO:-go}
VERSION=${VERSION:-$(cat VERSION)}
COMMIT=${COMMIT:-$(git rev-parse --short HEAD 2>/dev/null || echo unknown)}
DATE=${DATE:-$(date -u +%Y-%m-%dT%H:%M:%SZ)}
GOOS=${GOOS:-linux}
GOARCH=${GOARCH:-amd64}
rel=_build/prod/rel/erlmcp
tarball=_build/prod/erlmcp-$VERSION-$GOOS-$GOARCH.tar.gz

rm -rf "$rel"
mkdir -p "$rel/bin" "$rel/etc" "$rel/releases" "$rel/systemd" "$rel/logrotate"
GOOS=$GOOS GOARCH=$GOARCH CGO_ENABLED=0 "$GO" build -trimpath \
  -ldflags "-s -w -X main.version=$VERSION -X main.commit=$COMMIT -X main.date=$DATE" \
  -o "$rel/bin/erlmcp" ./cmd/erlmcp

# The config is generated from server.DefaultSettings() and the fields' doc comments, so it
# cannot drift from the code; production values differ from the defaults only where noted.
host_bin="$rel/bin/erlmcp"
if [[ $GOOS/$GOARCH != $("$GO" env GOOS)/$("$GO" env GOARCH) ]]; then
  host_bin=$(mktemp -d)/erlmcp
  "$GO" build -o "$host_bin" ./cmd/erlmcp
fi
"$host_bin" config defaults -src server \
  -set server.profile=production \
  -set server.control_socket=/run/erlmcp/erlmcp.sock \
  -set transports.tcp.addr=0.0.0.0:8080 \
  -set logging.file=/var/log/erlmcp/erlmcp.log \
  > "$rel/etc/erlmcp.yaml"
"$host_bin" config check "$rel/etc/erlmcp.yaml" >/dev/null

if [[ -f tuning/systemd/erlmcp.env.example ]]; then
  cp tuning/systemd/erlmcp.env.example "$rel/etc/erlmcp.env"
else
  printf '%s\n' ERLMCP_PROFILE=production ERLMCP_LOG_LEVEL=info ERLMCP_METRICS_ENABLED=true \
    ERLMCP_TRACING_ENABLED=false ERLMCP_OTEL_ENABLED=false ERLMCP_HIBERNATION_ENABLED=true \
    '#OTEL_EXPORTER_OTLP_ENDPOINT=http://otel-collector:4318' > "$rel/etc/erlmcp.env"
fi
echo "$VERSION" > "$rel/releases/VERSION"
printf 'version=%s\ncommit=%s\ndate=%s\nplatform=%s/%s\n' "$VERSION" "$COMMIT" "$DATE" "$GOOS" "$GOARCH" > "$rel/releases/BUILD"
cp tuning/systemd/erlmcp.service "$rel/systemd/"
if [[ -f deploy/logrotate/erlmcp ]]; then
  cp deploy/logrotate/erlmcp "$rel/logrotate/"
else
  rmdir "$rel/logrotate"
  echo "release: deploy/logrotate/erlmcp not found; release has no logrotate file" >&2
fi

tar -C _build/prod/rel -czf "$tarball" erlmcp
(cd "$(dirname "$tarball")" && sha256sum "$(basename "$tarball")" > "$(basename "$tarball").sha256")
echo "release: $rel ($(du -sh "$rel" | cut -f1), seed budget < 100M)"
echo "release: $tarball ($(du -h "$tarball" | cut -f1)) sha256 $(cut -d' ' -f1 "$tarball.sha256")"
