#!/usr/bin/env bash
# deploy/health_check.sh URL -- the health endpoints (seed 4.3, 8.3).
set -euo pipefail
if [[ ${1:-} == -h || ${1:-} == --help || $# -ne 1 ]]; then
  echo "usage: deploy/health_check.sh URL   e.g. http://localhost:8080"
  echo "GETs /health /health/transport /health/session /health/registry /ready; exits 1 naming the first failing check."
  [[ $# -eq 1 ]] && exit 0 || exit 2
fi
url=${1%/}
for path in /health /health/transport /health/session /health/registry /ready; do
  code=$(curl -s -o /tmp/erlmcp-health.$$ -w '%{http_code}' --max-time 5 "$url$path" || true)
  body=$(head -c 300 /tmp/erlmcp-health.$$ 2>/dev/null || true); rm -f /tmp/erlmcp-health.$$
  if [[ $code != 200 ]]; then
    echo "FAIL $path: HTTP $code $body"; exit 1
  fi
  echo "PASS $path"
done
