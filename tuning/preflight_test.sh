#!/usr/bin/env bash
# preflight_test.sh -- runs preflight.sh against fake /proc and /sys trees
# built in a temp dir and checks its PASS/WARN/FAIL lines and exit codes.
# Self-contained (bash + coreutils + awk), no root, no network, < 5 s.
# Exits non-zero if any assertion fails. Called by `make test`.
set -euo pipefail

here=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")" && pwd)
preflight=$here/preflight.sh
tmp=$(mktemp -d)
trap 'rm -rf -- "$tmp"' EXIT

failures=0
tests=0
out="" rc=0

fail() {
	failures=$((failures + 1))
	printf 'FAIL: %s\n' "$*" >&2
}

# run NAME FIXTURE [ARGS...]: runs preflight.sh hermetically; sets $out, $rc.
run() {
	local name=$1 fx=$2
	shift 2
	current=$name
	rc=0
	out=$(env -u GOMAXPROCS \
		ERLMCP_PROC_ROOT="$fx/proc" ERLMCP_SYS_ROOT="$fx/sys" \
		ERLMCP_ETC_ROOT="${ETC_ROOT:-$fx/etc-root}" ERLMCP_EUID="${EUID_OVERRIDE:-1000}" \
		${ULIMIT_N:+ERLMCP_ULIMIT_N=$ULIMIT_N} ${ULIMIT_U:+ERLMCP_ULIMIT_U=$ULIMIT_U} \
		${GMP:+GOMAXPROCS=$GMP} \
		"$preflight" "$@" 2>&1) || rc=$?
}

expect_rc() {
	tests=$((tests + 1))
	[[ $rc == "$1" ]] || fail "$current: exit status $rc, want $1"$'\n'"$out"
}

# expect_line STATUS ID: a result line "STATUS ID ..." is present.
expect_line() {
	tests=$((tests + 1))
	grep -Eq "^$1 ${2//./\\.}( |\$)" <<<"$out" || fail "$current: no '$1 $2' line in:"$'\n'"$out"
}

expect_text() {
	tests=$((tests + 1))
	grep -Fq -- "$1" <<<"$out" || fail "$current: output lacks '$1':"$'\n'"$out"
}

expect_no_text() {
	tests=$((tests + 1))
	! grep -Eq -- "$1" <<<"$out" || fail "$current: output has /$1/:"$'\n'"$out"
}

# put FILE CONTENT: write a fixture file, creating its directory.
put() {
	mkdir -p -- "$(dirname -- "$1")"
	printf '%s\n' "$2" >"$1"
}

limits_file() {
	printf '%-26s%-21s%-21s%s\n' Limit "Soft Limit" "Hard Limit" Units \
		"Max processes" "$3" "$4" processes \
		"Max open files" "$1" "$2" files
}

# fixture DIR key=value...: a /proc + /sys tree; defaults describe a good box.
fixture() {
	local d=$1 kv
	shift
	local nofile_s=262144 nofile_h=262144 nproc_s=131072 nproc_h=unlimited mem=32883804 \
		overcommit=1 somaxconn=65535 syn=65535 range=$'1024\t65535' file_max=2097152 \
		nr_open=1048576 conntrack="" cgroup=v2 memmax=max cpus=0-7 cpumax="max 100000" \
		thp="always [madvise] never" listen=""
	for kv in "$@"; do
		local "$kv"
	done
	local p=$d/proc s=$d/sys
	put "$p/self/limits" "$(limits_file "$nofile_s" "$nofile_h" "$nproc_s" "$nproc_h")"
	put "$p/meminfo" "MemTotal:       $mem kB"$'\n'"MemFree:         1000000 kB"
	put "$p/self/status" $'Name:\tbash\nCpus_allowed_list:\t'"$cpus"
	put "$p/sys/vm/overcommit_memory" "$overcommit"
	put "$p/sys/net/core/somaxconn" "$somaxconn"
	put "$p/sys/net/ipv4/tcp_max_syn_backlog" "$syn"
	put "$p/sys/net/ipv4/ip_local_port_range" "$range"
	put "$p/sys/fs/file-max" "$file_max"
	put "$p/sys/fs/nr_open" "$nr_open"
	[[ -n $conntrack ]] && put "$p/sys/net/netfilter/nf_conntrack_max" "$conntrack"
	if [[ $cgroup == v2 ]]; then
		put "$p/self/cgroup" "0::/system.slice/erlmcp.service"
		put "$s/fs/cgroup/cgroup.controllers" "cpu memory pids"
		put "$s/fs/cgroup/system.slice/erlmcp.service/memory.max" "$memmax"
		put "$s/fs/cgroup/system.slice/erlmcp.service/cpu.max" "$cpumax"
	else
		put "$p/self/cgroup" $'5:memory:/docker/abc\n4:cpu,cpuacct:/docker/abc\n0::/'
		put "$s/fs/cgroup/memory/docker/abc/memory.limit_in_bytes" "$memmax"
		put "$s/fs/cgroup/cpu,cpuacct/docker/abc/cpu.cfs_quota_us" "-1"
		put "$s/fs/cgroup/cpu,cpuacct/docker/abc/cpu.cfs_period_us" "100000"
	fi
	put "$s/kernel/mm/transparent_hugepage/enabled" "$thp"
	mkdir -p "$p/net"
	{
		echo "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode"
		# 127.0.0.1:22 listening, and one established connection to :8080 (st 01).
		echo "   0: 0100007F:0016 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 1 1 0 100 0 0 10 0"
		echo "   1: 0100007F:9C40 0100007F:1F90 01 00000000:00000000 00:00000000 00000000     0        0 2 1 0 100 0 0 10 0"
		[[ -n $listen ]] && printf '   2: 00000000:%04X 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 3 1 0 100 0 0 10 0\n' "$listen"
	} >"$p/net/tcp"
	mkdir -p "$d/etc-root"
}

# --- fixtures ---------------------------------------------------------------
fixture "$tmp/good"
fixture "$tmp/bad" nofile_s=1024 nofile_h=20000 nproc_s=4096 nproc_h=96365 mem=4030000 \
	overcommit=0 somaxconn=128 syn=512 range=$'32768\t60999' file_max=100000 nr_open=65536 \
	conntrack=65536 memmax=2147483648 cpus=0-1 thp="[always] madvise never" listen=8080
fixture "$tmp/v1" cgroup=v1 memmax=9223372036854771712
fixture "$tmp/v1small" cgroup=v1 memmax=1073741824
fixture "$tmp/smallram" mem=12000000
fixture "$tmp/quota" cpus=0-15 cpumax="250000 100000"
fixture "$tmp/quotahalf" cpus=0-7 cpumax="50000 100000"
fixture "$tmp/running"
put "$tmp/running/proc/4242/comm" erlmcp
put "$tmp/running/proc/4242/limits" "$(limits_file 1024 4096 131072 131072)"

# --- good box: every check passes, exit 0 ------------------------------------
run good "$tmp/good"
expect_rc 0
for id in nofile.hard nofile.soft nofile.erlmcp nproc.hard nproc.soft mem.total sysctl.overcommit \
	sysctl.somaxconn sysctl.syn_backlog sysctl.port_range sysctl.file_max sysctl.nr_open \
	sysctl.conntrack cgroup.memory cpu.gomaxprocs thp port.8080 port.9090; do
	expect_line PASS "$id"
done
expect_no_text '^(FAIL|WARN) '
expect_text "result: 0 FAIL, 0 WARN, 18 PASS"

# --- bad box: FAIL per item, fix commands, exit 1 ------------------------------
GMP=8 run bad "$tmp/bad"
expect_rc 1
for id in nofile.hard nofile.soft nproc.hard nproc.soft mem.total sysctl.overcommit sysctl.somaxconn \
	sysctl.file_max sysctl.nr_open sysctl.conntrack cgroup.memory port.8080; do
	expect_line FAIL "$id"
done
# 9090 is free; the established connection to :8080 alone would not count.
expect_line PASS port.9090
# LimitNOFILE=262144 > fs.nr_open 65536: systemd could not start it.
expect_line FAIL nofile.erlmcp
for id in sysctl.syn_backlog sysctl.port_range cpu.gomaxprocs thp; do
	expect_line WARN "$id"
done
expect_text "fix: sudo sysctl -w vm.overcommit_memory=1"
expect_text "fix: sudo sysctl -w net.core.somaxconn=65535"
expect_text "fix: sudo sysctl -w fs.nr_open=1048576"
expect_text "GOMAXPROCS=8 > 2 usable CPUs"
expect_text "needs 4 source addresses"

# --- the established connection in net/tcp is not a listener -----------------
run listen-only-established "$tmp/good" --ports 8080,40000
expect_rc 0
expect_line PASS port.40000

# --- env overrides: soft below target but hard above -> WARN, not FAIL ---------
ULIMIT_N=20000:262144 ULIMIT_U=unlimited run soft-low "$tmp/good"
expect_rc 0
expect_line WARN nofile.soft
expect_line PASS nofile.hard
expect_line PASS nproc.soft

# --- the dev machine's shape: hard nofile 20,000 ------------------------------
ULIMIT_N=20000 run dev-box "$tmp/good"
expect_rc 1
expect_line FAIL nofile.hard
expect_line FAIL nofile.soft

# --- --target-connections scales the targets ----------------------------------
ULIMIT_N=65536 run small-target "$tmp/good" --target-connections 10000
expect_rc 0
expect_line PASS nofile.hard
ULIMIT_N=65536 run big-target "$tmp/good" --target-connections 100000
expect_rc 1
expect_line FAIL nofile.hard
expect_text "< 126024"
run huge-target "$tmp/good" --target-connections 300000
expect_line WARN files.sizing
expect_line FAIL nofile.erlmcp

# --- RAM between 8 and 16 GiB: WARN only -----------------------------------------
run smallram "$tmp/smallram"
expect_rc 0
expect_line WARN mem.total

# --- cgroup v1: "no limit" sentinel passes, 1 GiB fails --------------------------
run cgroup-v1 "$tmp/v1"
expect_rc 0
expect_line PASS cgroup.memory
expect_text "no cgroup memory limit"
run cgroup-v1-small "$tmp/v1small"
expect_rc 1
expect_line FAIL cgroup.memory
expect_text "memory.limit_in_bytes"

# --- cgroup v2 CPU quota 2.5 CPUs of 16 -> Go picks 3 ----------------------------
run quota "$tmp/quota"
expect_rc 0
expect_line PASS cpu.gomaxprocs
expect_text "Go picks 3"

# --- a quota below 2 CPUs still gives GOMAXPROCS 2 -----------------------------
run quota-half "$tmp/quotahalf"
expect_rc 0
expect_text "Go picks 2"

# --- a running erlmcp with too few descriptors ------------------------------------
run running "$tmp/running"
expect_rc 1
expect_line FAIL nofile.erlmcp
expect_text "running erlmcp (pid 4242) has only 1024"

# --- --json ---------------------------------------------------------------------
run json-bad "$tmp/bad" --json
expect_rc 1
expect_text '"status":"FAIL"'
expect_text '{"id":"sysctl.overcommit","status":"FAIL","value":"0","want":"1"'
expect_no_text '^(PASS|FAIL|WARN) '
tests=$((tests + 1))
[[ $(printf '%s\n' "$out" | wc -l) -eq 1 ]] || fail "json-bad: want one line of JSON, got:"$'\n'"$out"
if command -v python3 >/dev/null 2>&1; then
	tests=$((tests + 1))
	python3 -c 'import json,sys; d=json.load(sys.stdin); assert d["fail"] > 0 and len(d["checks"]) == d["pass"] + d["warn"] + d["fail"]' <<<"$out" ||
		fail "json-bad: not valid JSON or counts wrong"
fi
run json-good "$tmp/good" --json
expect_rc 0
expect_text '"status":"PASS","pass":18,"warn":0,"fail":0'

# --- --apply: refused without root, idempotent with root ------------------------
run apply-nonroot "$tmp/good" --apply
expect_rc 2
expect_text "needs root. Nothing was changed"
tests=$((tests + 1))
[[ ! -e $tmp/good/etc-root/etc ]] || fail "apply-nonroot: wrote files"

EUID_OVERRIDE=0 run apply-root "$tmp/good" --apply
expect_rc 0
expect_text "apply: installed $tmp/good/etc-root/etc/sysctl.d/99-erlmcp.conf"
expect_text "apply: installed $tmp/good/etc-root/etc/security/limits.d/99-erlmcp.conf"
expect_text "not running sysctl --system"
tests=$((tests + 1))
cmp -s "$here/sysctl.d/99-erlmcp.conf" "$tmp/good/etc-root/etc/sysctl.d/99-erlmcp.conf" || fail "apply-root: sysctl.d copy differs"
EUID_OVERRIDE=0 run apply-again "$tmp/good" --apply
expect_rc 0
expect_text "apply: unchanged $tmp/good/etc-root/etc/sysctl.d/99-erlmcp.conf"
expect_text "apply: unchanged $tmp/good/etc-root/etc/security/limits.d/99-erlmcp.conf"

# --- usage ----------------------------------------------------------------------
run help "$tmp/good" --help
expect_rc 0
expect_text "--target-connections N"
run bad-flag "$tmp/good" --frobnicate
expect_rc 2
run bad-target "$tmp/good" --target-connections lots
expect_rc 2
run bad-port "$tmp/good" --ports 8080,99999
expect_rc 2

if ((failures > 0)); then
	printf 'preflight_test: %d of %d assertions failed\n' "$failures" "$tests" >&2
	exit 1
fi
printf 'preflight_test: ok (%d assertions)\n' "$tests"
