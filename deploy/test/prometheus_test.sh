#!/usr/bin/env bash
# deploy/test/prometheus_test.sh -- the shipped Prometheus files checked by Prometheus' own
# promtool (issue 18): both scrape configs (with the rules they load), the alert rules, and
# the rules' unit tests; and that every alert has a unit test in which it fires. The
# end-to-end check (a real Prometheus scraping a real node, every dashboard expression
# evaluated) is cmd/erlmcp TestPrometheusDashboardAndRules. About a second. Called by `make unit`.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
dir=$root/deploy/prometheus
fail() { echo "FAIL: $*" >&2; exit 1; }
ok() { echo "ok: $*"; }

command -v promtool >/dev/null 2>&1 ||
  fail "promtool not found: apt-get install prometheus (Debian's 2.42 ships promtool; .ci/run installs it without starting its service)"

for cfg in prometheus.yml prometheus-cluster.yml; do
  out=$(cd "$dir" && promtool check config "$cfg" 2>&1) || { echo "$out"; fail "promtool check config $cfg"; }
  ok "promtool check config $cfg (and the rule files it loads)"
done
out=$(promtool check rules "$dir/erlmcp-rules.yml" 2>&1) || { echo "$out"; fail "promtool check rules erlmcp-rules.yml"; }
ok "promtool check rules erlmcp-rules.yml: $(grep -o '[0-9]* rules found' <<<"$out")"
out=$(cd "$dir" && promtool test rules erlmcp-rules.test.yml 2>&1) || { echo "$out"; fail "promtool test rules erlmcp-rules.test.yml"; }
ok "promtool test rules erlmcp-rules.test.yml"

# Every alert name is tested firing: an "alertname: X" line followed by a non-empty exp_alerts.
missing=""
for name in $(sed -n 's/^ *- alert: *\([A-Za-z0-9_]*\).*/\1/p' "$dir/erlmcp-rules.yml" | sort -u); do
  awk -v n="$name" '$1 == "alertname:" && $2 == n { getline; if ($0 ~ /exp_alerts: *$/) found = 1 } END { exit !found }' \
    "$dir/erlmcp-rules.test.yml" || missing="$missing $name"
done
[[ -z $missing ]] || fail "alerts without a unit test in which they fire:$missing"
ok "every alert of erlmcp-rules.yml fires in a unit test"

# The cluster config scrapes the nodes of deploy/haproxy/haproxy.cfg as the README's "Cluster
# mode" starts them: node i on 127.0.0.1:808i, its metrics on 127.0.0.1:909i.
nodes=$(sed -n 's/.*ERLMCP_LB_SERVER\([0-9]\)-127\.0\.0\.1:808[0-9].*/\1/p' "$root/deploy/haproxy/haproxy.cfg" | sort -u)
[[ -n $nodes ]] || fail "no ERLMCP_LB_SERVERi-127.0.0.1:808i default in deploy/haproxy/haproxy.cfg"
for i in $nodes; do
  grep -q "targets: \[\"127.0.0.1:909$i\"\]" "$dir/prometheus-cluster.yml" ||
    fail "prometheus-cluster.yml does not scrape node$i (127.0.0.1:909$i), which haproxy.cfg balances to"
  grep -q "labels: {node: node$i}" "$dir/prometheus-cluster.yml" || fail "prometheus-cluster.yml: target 127.0.0.1:909$i lacks node: node$i"
done
ok "prometheus-cluster.yml scrapes every node of haproxy.cfg"
