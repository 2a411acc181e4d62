#!/usr/bin/env bash
# preflight.sh -- check that this box can hold N concurrent erlmcp-go
# sessions (seed checklist sections 1.2 and 6.1), print PASS/FAIL/WARN per
# item with the command that fixes it, and optionally install the fixes.
# Run `preflight.sh --help` for usage. Read-only unless --apply is given.
#
# Everything is read from /proc and /sys, so it works in containers and can be
# pointed at fixtures (preflight_test.sh). Test-only environment overrides:
#   ERLMCP_PROC_ROOT   directory used instead of /proc
#   ERLMCP_SYS_ROOT    directory used instead of /sys
#   ERLMCP_ULIMIT_N    "SOFT[:HARD]" open files instead of self/limits
#   ERLMCP_ULIMIT_U    "SOFT[:HARD]" processes instead of self/limits
#   ERLMCP_ETC_ROOT    prefix for the files --apply writes; when set,
#                      `sysctl --system` is not run
#   ERLMCP_EUID        effective uid used by the root check of --apply
set -euo pipefail

prog=${0##*/}
here=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")" && pwd)
proc=${ERLMCP_PROC_ROOT:-/proc}
sys=${ERLMCP_SYS_ROOT:-/sys}
etc_root=${ERLMCP_ETC_ROOT:-}
euid=${ERLMCP_EUID:-$(id -u)}

# Stands for "unlimited" in comparisons (int64 max).
readonly unlimited=9223372036854775807
# The value the files in this directory install (sized for 100,000).
readonly shipped_nofile=262144

target=100000
apply=0
json=0
ports="8080 9090"

usage() {
	cat <<EOF
Usage: $prog [--target-connections N] [--ports LIST] [--json] [--apply]

Checks the kernel and process limits erlmcp-go needs to hold N concurrent
sessions on this box and prints one line per item:
  PASS  meets the target
  WARN  works, but not as recommended (does not change the exit status)
  FAIL  will break at the target; the next line gives the command to fix it

Options:
  --target-connections N  sessions to size for (default 100000). Scales the
                          open-files, RAM, fs.file-max and conntrack targets.
  --ports LIST            listening ports that must be free, comma-separated
                          (default 8080,9090)
  --json                  print the results as one JSON object instead
  --apply                 as root: install sysctl.d/99-erlmcp.conf and
                          limits.d/99-erlmcp.conf from $here
                          into /etc, run \`sysctl --system\`, then check again.
                          Installs only what differs, so it can be rerun.
  -h, --help              this text

Exit status: 0 no FAIL, 1 at least one FAIL, 2 bad usage or --apply refused.
Checks read /proc and /sys only; see the header of this script for the
ERLMCP_* variables tests use to point it at fixtures.
EOF
}

die_usage() {
	printf '%s: %s\nTry: %s --help\n' "$prog" "$1" "$prog" >&2
	exit 2
}

while (($# > 0)); do
	case $1 in
	--target-connections) (($# >= 2)) || die_usage "--target-connections needs a number"; target=$2; shift 2 ;;
	--target-connections=*) target=${1#*=}; shift ;;
	--ports) (($# >= 2)) || die_usage "--ports needs a list"; ports=${2//,/ }; shift 2 ;;
	--ports=*) ports=${1#*=}; ports=${ports//,/ }; shift ;;
	--json) json=1; shift ;;
	--apply) apply=1; shift ;;
	-h | --help) usage; exit 0 ;;
	*) die_usage "unknown argument: $1" ;;
	esac
done
[[ $target =~ ^[1-9][0-9]{0,8}$ ]] || die_usage "--target-connections must be a whole number from 1 to 999999999, got '$target'"
for p in $ports; do
	if ! [[ $p =~ ^[0-9]{1,5}$ ]] || ((p < 1 || p > 65535)); then
		die_usage "bad port '$p' in --ports"
	fi
done

# ---------------------------------------------------------------------------
# Targets derived from N (the arithmetic is in tuning/README.md).
# ---------------------------------------------------------------------------
max() { if (($1 > $2)); then echo "$1"; else echo "$2"; fi; }
# Open files: one per session, +25% for sockets still closing while their
# replacements connect (reconnect storm), +1024 for listeners, logs,
# upstreams. The seed's floor is 65,536 (its 50K target gives 63,524).
need_nofile=$(max 65536 $((target * 5 / 4 + 1024)))
# Threads of the user: the seed's number; a Go server needs a few dozen.
need_nproc=131072
# RAM: ~80 KiB per session worst case (4 KiB kernel socket, 32 KiB socket
# buffers, 8-16 KiB user space, GC headroom); the seed's floor is 8 GiB,
# recommended 16 GiB (twice the need).
need_mem_kib=$(max $((8 * 1024 * 1024)) $((target * 80)))
want_mem_kib=$((need_mem_kib * 2))
# System-wide files: server + a load generator's ends + the rest of the box.
need_file_max=$(max 262144 $((target * 2 + 65536)))
# fs.nr_open caps RLIMIT_NOFILE: the unit's LimitNOFILE must fit under it.
need_nr_open=$(max "$shipped_nofile" "$need_nofile")
need_somaxconn=4096
need_port_width=60000
need_conntrack=$need_nofile

# ---------------------------------------------------------------------------
# Results
# ---------------------------------------------------------------------------
r_id=() r_status=() r_value=() r_want=() r_msg=() r_fix=()
n_pass=0 n_warn=0 n_fail=0

# record STATUS ID VALUE WANT MESSAGE [FIX]
record() {
	r_status+=("$1") r_id+=("$2") r_value+=("$3") r_want+=("$4") r_msg+=("$5") r_fix+=("${6:-}")
	case $1 in
	PASS) n_pass=$((n_pass + 1)) ;;
	WARN) n_warn=$((n_warn + 1)) ;;
	FAIL) n_fail=$((n_fail + 1)) ;;
	esac
	if ((json == 0)); then
		printf '%s %-24s %s\n' "$1" "$2" "$5"
		if [[ $1 != PASS && -n ${6:-} ]]; then
			printf '     fix: %s\n' "$6"
		fi
	fi
}

# human KIB -> "7.5 GiB"
human_kib() {
	awk -v k="$1" 'BEGIN { if (k >= 1048576) printf "%.1f GiB", k / 1048576; else printf "%.0f MiB", k / 1024 }'
}

# read_sysctl net.core.somaxconn -> value with runs of whitespace squeezed, or "".
read_sysctl() {
	local f="$proc/sys/${1//.//}" v
	[[ -r $f ]] || return 0
	v=$(<"$f") || return 0
	# shellcheck disable=SC2086 # word splitting squeezes tabs and spaces
	echo $v
}

# limit_pair "Max open files" ERLMCP_ULIMIT_N -n -> "SOFT HARD" ("unlimited" -> int64 max)
limit_pair() {
	local name=$1 override=$2 flag=$3 soft hard line
	if [[ -n $override ]]; then
		soft=${override%%:*}
		hard=${override#*:}
	elif [[ -r $proc/self/limits ]] && line=$(grep -m1 "^$name " "$proc/self/limits"); then
		# shellcheck disable=SC2086 # split the columns
		set -- ${line#"$name"}
		soft=$1 hard=$2
	else
		soft=$(ulimit -S "$flag") hard=$(ulimit -H "$flag")
	fi
	[[ $soft == unlimited ]] && soft=$unlimited
	[[ $hard == unlimited ]] && hard=$unlimited
	echo "$soft $hard"
}

show_limit() { if (($1 == unlimited)); then echo unlimited; else echo "$1"; fi; }

set_nofile=$(max "$shipped_nofile" "$need_nofile")
nofile_fix="sudo $here/preflight.sh --apply, then log in again   # systemd: LimitNOFILE=$set_nofile; docker: --ulimit nofile=$set_nofile:$set_nofile"
nproc_fix="sudo $here/preflight.sh --apply, then log in again   # systemd: LimitNPROC=$need_nproc; docker: --ulimit nproc=$need_nproc:$need_nproc"

# ---------------------------------------------------------------------------
# Checks
# ---------------------------------------------------------------------------
check_nofile() {
	local soft hard nr_open unit_nofile unit_file pid comm_file running_soft=""
	read -r soft hard < <(limit_pair "Max open files" "${ERLMCP_ULIMIT_N:-}" -n)
	if ((hard >= need_nofile)); then
		record PASS nofile.hard "$hard" "$need_nofile" "ulimit -Hn $(show_limit "$hard") >= $need_nofile"
	else
		record FAIL nofile.hard "$hard" "$need_nofile" "ulimit -Hn $hard < $need_nofile (one descriptor per session)" "$nofile_fix"
	fi
	if ((soft >= need_nofile)); then
		record PASS nofile.soft "$soft" "$need_nofile" "ulimit -Sn $(show_limit "$soft") >= $need_nofile"
	elif ((hard >= need_nofile)); then
		record WARN nofile.soft "$soft" "$need_nofile" "ulimit -Sn $soft < $need_nofile; erlmcp (Go) raises its soft limit to the hard one at start, other tools will not" "ulimit -Sn $(show_limit "$hard")   # in the shell that starts erlmcp; permanently: $nofile_fix"
	else
		record FAIL nofile.soft "$soft" "$need_nofile" "ulimit -Sn $soft < $need_nofile" "$nofile_fix"
	fi

	# What the erlmcp process has or will get: a running process's own
	# limits if there is one, else what the systemd unit asks for, which the
	# kernel refuses above fs.nr_open.
	for comm_file in "$proc"/[0-9]*/comm; do
		[[ -r $comm_file && $(<"$comm_file") == erlmcp ]] || continue
		pid=${comm_file%/comm}
		pid=${pid##*/}
		running_soft=$(grep -m1 '^Max open files ' "$proc/$pid/limits" 2>/dev/null | awk '{print $4}') || true
		break
	done 2>/dev/null
	if [[ -n $running_soft ]]; then
		[[ $running_soft == unlimited ]] && running_soft=$unlimited
		if ((running_soft >= need_nofile)); then
			record PASS nofile.erlmcp "$running_soft" "$need_nofile" "running erlmcp (pid $pid) has $(show_limit "$running_soft") open files"
		else
			record FAIL nofile.erlmcp "$running_soft" "$need_nofile" "running erlmcp (pid $pid) has only $running_soft open files" "raise LimitNOFILE in erlmcp.service (or the limits of whatever started it), then: sudo systemctl restart erlmcp"
		fi
		return
	fi
	unit_file=$etc_root/etc/systemd/system/erlmcp.service
	[[ -r $unit_file ]] || unit_file=$here/systemd/erlmcp.service
	unit_nofile=$(sed -n 's/^LimitNOFILE=\([0-9]*\).*/\1/p' "$unit_file" | tail -n1)
	unit_nofile=${unit_nofile:-0}
	nr_open=$(read_sysctl fs.nr_open)
	if [[ -n $nr_open ]] && ((unit_nofile > nr_open)); then
		record FAIL nofile.erlmcp "$unit_nofile" "$need_nofile" "erlmcp.service asks LimitNOFILE=$unit_nofile > fs.nr_open $nr_open: systemd cannot set it and the start fails" "sudo sysctl -w fs.nr_open=$(max 1048576 "$need_nr_open")   # persist: sudo $here/preflight.sh --apply"
	elif ((unit_nofile >= need_nofile)); then
		record PASS nofile.erlmcp "$unit_nofile" "$need_nofile" "not running; under systemd it gets LimitNOFILE=$unit_nofile ($unit_file), started from this shell it would get $(show_limit "$hard")"
	else
		record FAIL nofile.erlmcp "$unit_nofile" "$need_nofile" "not running; under systemd it would get LimitNOFILE=$unit_nofile ($unit_file) < $need_nofile" "set LimitNOFILE=$need_nofile in $unit_file, then: sudo systemctl daemon-reload"
	fi
}

check_nproc() {
	local soft hard
	read -r soft hard < <(limit_pair "Max processes" "${ERLMCP_ULIMIT_U:-}" -u)
	if ((hard >= need_nproc)); then
		record PASS nproc.hard "$hard" "$need_nproc" "ulimit -Hu $(show_limit "$hard") >= $need_nproc"
	else
		record FAIL nproc.hard "$hard" "$need_nproc" "ulimit -Hu $hard < $need_nproc (seed 1.2)" "$nproc_fix"
	fi
	if ((soft >= need_nproc)); then
		record PASS nproc.soft "$soft" "$need_nproc" "ulimit -Su $(show_limit "$soft") >= $need_nproc"
	else
		record FAIL nproc.soft "$soft" "$need_nproc" "ulimit -Su $soft < $need_nproc (seed 1.2)" "$nproc_fix"
	fi
}

check_memory() {
	local kib
	kib=$(awk '$1 == "MemTotal:" {print $2}' "$proc/meminfo" 2>/dev/null) || true
	if [[ -z $kib ]]; then
		record WARN mem.total "" "$need_mem_kib" "cannot read MemTotal from $proc/meminfo; skipped"
	elif ((kib < need_mem_kib)); then
		record FAIL mem.total "$kib" "$need_mem_kib" "MemTotal $(human_kib "$kib") < $(human_kib "$need_mem_kib") needed for $target sessions (seed: >= 8 GiB)" "use a box with >= $(human_kib "$want_mem_kib") RAM, or lower --target-connections / transports.tcp.max_connections"
	elif ((kib < want_mem_kib)); then
		record WARN mem.total "$kib" "$want_mem_kib" "MemTotal $(human_kib "$kib") >= $(human_kib "$need_mem_kib") but < $(human_kib "$want_mem_kib") recommended (seed: 16 GiB)" "use a box with >= $(human_kib "$want_mem_kib") RAM for headroom"
	else
		record PASS mem.total "$kib" "$need_mem_kib" "MemTotal $(human_kib "$kib") >= $(human_kib "$want_mem_kib") recommended"
	fi
}

# check_sysctl_min ID KEY MIN WHY SET_TO [SEVERITY]: SEVERITY (FAIL or WARN)
# is reported when the value is below MIN.
check_sysctl_min() {
	local id=$1 key=$2 min=$3 why=$4 set_to=$5 sev=${6:-FAIL} v
	v=$(read_sysctl "$key")
	if [[ -z $v ]]; then
		record WARN "$id" "" "$min" "$key unreadable in $proc/sys; skipped"
	elif ((v >= min)); then
		record PASS "$id" "$v" "$min" "$key = $v >= $min"
	else
		record "$sev" "$id" "$v" "$min" "$key = $v < $min ($why)" "sudo sysctl -w $key=$set_to   # persist: sudo $here/preflight.sh --apply"
	fi
}

check_overcommit() {
	local v
	v=$(read_sysctl vm.overcommit_memory)
	if [[ -z $v ]]; then
		record WARN sysctl.overcommit "" 1 "vm.overcommit_memory unreadable; skipped"
	elif [[ $v == 1 ]]; then
		record PASS sysctl.overcommit "$v" 1 "vm.overcommit_memory = 1"
	else
		record FAIL sysctl.overcommit "$v" 1 "vm.overcommit_memory = $v, want 1 (seed 1.2; Go reserves address space it does not touch)" "sudo sysctl -w vm.overcommit_memory=1   # persist: sudo $here/preflight.sh --apply"
	fi
}

check_port_range() {
	local v lo hi width sources
	v=$(read_sysctl net.ipv4.ip_local_port_range)
	if [[ -z $v ]]; then
		record WARN sysctl.port_range "" "$need_port_width" "net.ipv4.ip_local_port_range unreadable; skipped"
		return
	fi
	read -r lo hi <<<"$v"
	width=$((hi - lo + 1))
	sources=$(((target + width - 1) / width))
	if ((width >= need_port_width)); then
		record PASS sysctl.port_range "$width" "$need_port_width" "ip_local_port_range $lo-$hi = $width ports; a local load generator needs $sources source address(es) for $target connections"
	else
		record WARN sysctl.port_range "$width" "$need_port_width" "ip_local_port_range $lo-$hi = $width ports (outbound only); a local load generator needs $sources source addresses (127.0.0.x) for $target connections" "sudo sysctl -w net.ipv4.ip_local_port_range='1024 65535' net.ipv4.ip_local_reserved_ports=8080,8443,9090"
	fi
}

check_conntrack() {
	local v
	v=$(read_sysctl net.netfilter.nf_conntrack_max)
	if [[ -z $v ]]; then
		record PASS sysctl.conntrack "" "$need_conntrack" "nf_conntrack not loaded; no connection-tracking table to fill"
	elif ((v >= need_conntrack)); then
		record PASS sysctl.conntrack "$v" "$need_conntrack" "net.netfilter.nf_conntrack_max = $v >= $need_conntrack"
	else
		record FAIL sysctl.conntrack "$v" "$need_conntrack" "net.netfilter.nf_conntrack_max = $v < $need_conntrack: the kernel drops new SYNs when the table is full" "sudo sysctl -w net.netfilter.nf_conntrack_max=$need_conntrack   # persist: sudo $here/preflight.sh --apply"
	fi
}

# cgroup_paths CONTROLLER -> the process's cgroup path, then each parent, to "/"
cgroup_paths() {
	local p
	if [[ $1 == v2 ]]; then
		p=$(awk -F: '$1 == "0" && $2 == "" {print $3; exit}' "$proc/self/cgroup" 2>/dev/null) || true
	else
		p=$(awk -F: -v c="$1" '{ n = split($2, a, ","); for (i = 1; i <= n; i++) if (a[i] == c) { print $3; exit } }' "$proc/self/cgroup" 2>/dev/null) || true
	fi
	p=${p:-/}
	while [[ -n $p && $p != / ]]; do
		echo "$p"
		p=${p%/*}
	done
	echo ""
}

# cgroup_memory_limit -> "BYTES WHERE", BYTES empty when there is no limit.
# The effective limit is the smallest along the path; in a container the
# path from self/cgroup may not exist in its namespace, so the root counts too.
cgroup_memory_limit() {
	local min="" where="" p f v
	if [[ -r $sys/fs/cgroup/cgroup.controllers ]]; then
		while IFS= read -r p; do
			f=$sys/fs/cgroup$p/memory.max
			[[ -r $f ]] || continue
			v=$(<"$f")
			[[ $v == max ]] && continue
			if [[ -z $min ]] || ((v < min)); then min=$v where=$f; fi
		done < <(cgroup_paths v2)
	else
		while IFS= read -r p; do
			f=$sys/fs/cgroup/memory$p/memory.limit_in_bytes
			[[ -r $f ]] || continue
			v=$(<"$f")
			# v1 reports "no limit" as a huge page-rounded number.
			((v >= 1 << 62)) && continue
			if [[ -z $min ]] || ((v < min)); then min=$v where=$f; fi
		done < <(cgroup_paths memory)
	fi
	echo "$min $where"
}

check_cgroup_memory() {
	local bytes where kib
	read -r bytes where < <(cgroup_memory_limit)
	if [[ -z $bytes ]]; then
		record PASS cgroup.memory "" "$need_mem_kib" "no cgroup memory limit; MemTotal applies (set GOMEMLIMIT / memory_guard.memory_limit_bytes below it)"
		return
	fi
	kib=$((bytes / 1024))
	if ((kib < need_mem_kib)); then
		record FAIL cgroup.memory "$kib" "$need_mem_kib" "cgroup memory limit $(human_kib "$kib") ($where) < $(human_kib "$need_mem_kib") needed for $target sessions" "raise the limit (systemd: MemoryMax=; docker: --memory=$(((need_mem_kib + 1048575) / 1048576))g) or lower --target-connections"
	else
		record PASS cgroup.memory "$kib" "$need_mem_kib" "cgroup memory limit $(human_kib "$kib") ($where); set GOMEMLIMIT ~90% and memory_guard.memory_limit_bytes ~80% of it"
	fi
}

# count_cpu_list "0-3,8" -> 5
count_cpu_list() {
	local n=0 part lo hi
	local -a parts
	IFS=, read -r -a parts <<<"$1"
	for part in "${parts[@]}"; do
		[[ -z $part ]] && continue
		lo=${part%-*} hi=${part#*-}
		n=$((n + hi - lo + 1))
	done
	echo "$n"
}

# cpu_quota -> whole CPUs allowed by a cgroup CPU quota (rounded up), or "".
cpu_quota() {
	local p f quota period min=""
	if [[ -r $sys/fs/cgroup/cgroup.controllers ]]; then
		while IFS= read -r p; do
			f=$sys/fs/cgroup$p/cpu.max
			[[ -r $f ]] || continue
			read -r quota period <"$f"
			[[ $quota == max ]] && continue
			quota=$(((quota + period - 1) / period))
			if [[ -z $min ]] || ((quota < min)); then min=$quota; fi
		done < <(cgroup_paths v2)
	else
		while IFS= read -r p; do
			for f in "$sys/fs/cgroup/cpu$p" "$sys/fs/cgroup/cpu,cpuacct$p"; do
				[[ -r $f/cpu.cfs_quota_us && -r $f/cpu.cfs_period_us ]] || continue
				quota=$(<"$f/cpu.cfs_quota_us") period=$(<"$f/cpu.cfs_period_us")
				((quota > 0 && period > 0)) || continue
				quota=$(((quota + period - 1) / period))
				if [[ -z $min ]] || ((quota < min)); then min=$quota; fi
			done
		done < <(cgroup_paths cpu)
	fi
	echo "$min"
}

check_cpu() {
	local list cpus quota eff how gmp=${GOMAXPROCS:-}
	list=$(awk '$1 == "Cpus_allowed_list:" {print $2}' "$proc/self/status" 2>/dev/null) || true
	if [[ -n $list ]]; then
		cpus=$(count_cpu_list "$list") how="Cpus_allowed_list $list"
	else
		cpus=$(grep -c '^processor' "$proc/cpuinfo" 2>/dev/null) || cpus=0
		how="$proc/cpuinfo"
	fi
	quota=$(cpu_quota)
	eff=$cpus
	# Go (>= 1.25) takes the smallest of CPUs and quota, but never below 2
	# because of a quota alone.
	if [[ -n $quota ]] && ((quota < eff)); then
		eff=$(max "$quota" $((cpus < 2 ? cpus : 2))) how="$how, cgroup CPU quota $quota"
	fi
	if ((eff == 0)); then
		record WARN cpu.gomaxprocs "" "" "cannot count CPUs from $proc; skipped"
	elif [[ -n $gmp && ! $gmp =~ ^[1-9][0-9]*$ ]]; then
		record WARN cpu.gomaxprocs "$gmp" "$eff" "GOMAXPROCS='$gmp' is not a positive number; Go ignores it" "unset GOMAXPROCS"
	elif [[ -n $gmp ]] && ((gmp > eff)); then
		record WARN cpu.gomaxprocs "$gmp" "$eff" "GOMAXPROCS=$gmp > $eff usable CPUs ($how): threads contend for cores" "unset GOMAXPROCS (Go picks $eff), or set GOMAXPROCS=$eff in /opt/erlmcp/etc/erlmcp.env"
	elif [[ -n $gmp ]] && ((gmp < eff)); then
		record WARN cpu.gomaxprocs "$gmp" "$eff" "GOMAXPROCS=$gmp leaves $((eff - gmp)) of $eff usable CPUs idle ($how); fine only if deliberate" "unset GOMAXPROCS (Go picks $eff)"
	elif ((eff < 2)); then
		record WARN cpu.gomaxprocs "$eff" 2 "$eff usable CPU ($how): pollers and workers share one core" "give the box/container >= 2 CPUs"
	else
		record PASS cpu.gomaxprocs "${gmp:-$eff}" "$eff" "$eff usable CPUs ($how); GOMAXPROCS ${gmp:+= $gmp}${gmp:-unset, Go picks $eff}"
	fi
}

check_thp() {
	local f=$sys/kernel/mm/transparent_hugepage/enabled v
	if [[ ! -r $f ]]; then
		record PASS thp "" madvise "transparent hugepages not available; nothing to check"
		return
	fi
	v=$(<"$f")
	v=${v#*[} v=${v%%]*}
	if [[ $v == always ]]; then
		record WARN thp "$v" madvise "transparent_hugepage = always: khugepaged compaction stalls and RSS bloat on a sparse Go heap" "echo madvise | sudo tee $f   # persist: transparent_hugepage=madvise on the kernel command line"
	else
		record PASS thp "$v" madvise "transparent_hugepage = $v"
	fi
}

# port_listeners PORT -> one line per listener on PORT, "" when free.
# Exit 3 when no method is available.
port_listeners() {
	local port=$1 hex
	if [[ $proc == /proc ]] && command -v ss >/dev/null 2>&1; then
		ss -ltn | awk -v p=":$port" 'NR > 1 && substr($4, length($4) - length(p) + 1) == p'
		return 0
	fi
	if [[ -r $proc/net/tcp || -r $proc/net/tcp6 ]]; then
		printf -v hex '%04X' "$port"
		# st 0A = LISTEN; local_address is ADDR:PORT in hex.
		cat "$proc/net/tcp" "$proc/net/tcp6" 2>/dev/null |
			awk -v h="$hex" '$4 == "0A" { n = split($2, a, ":"); if (a[n] == h) print "LISTEN " $2 }'
		return 0
	fi
	return 3
}

check_ports() {
	local port out
	for port in $ports; do
		if ! out=$(port_listeners "$port"); then
			record WARN "port.$port" "" free "ss not found and $proc/net/tcp unreadable; skipped"
		elif [[ -z $out ]]; then
			record PASS "port.$port" free free "port $port is free"
		else
			record FAIL "port.$port" "in use" free "port $port already has a listener: $(head -n1 <<<"$out" | tr -s ' ')" "sudo ss -ltnp 'sport = :$port'   # find the owner; stop it, or move erlmcp (transports / observability ports in erlmcp.yaml)"
		fi
	done
}

check_shipped_files() {
	# The files in tuning/ are sized for 100,000; say so when N outgrows them.
	if ((need_nofile > shipped_nofile)); then
		record WARN files.sizing "$shipped_nofile" "$need_nofile" "tuning/limits.d and erlmcp.service set nofile $shipped_nofile < $need_nofile needed for $target sessions" "edit nofile in $here/limits.d/99-erlmcp.conf and LimitNOFILE in $here/systemd/erlmcp.service to $need_nofile before --apply"
	fi
}

run_checks() {
	if ((json == 0)); then
		printf 'erlmcp preflight: sizing for %s connections (proc=%s sys=%s)\n' "$target" "$proc" "$sys"
	fi
	check_nofile
	check_nproc
	check_memory
	check_overcommit
	check_sysctl_min sysctl.somaxconn net.core.somaxconn "$need_somaxconn" "listen backlog for reconnect storms" 65535
	check_sysctl_min sysctl.syn_backlog net.ipv4.tcp_max_syn_backlog "$need_somaxconn" "half-open handshake queue; SYN cookies cover overflow" 65535 WARN
	check_port_range
	check_sysctl_min sysctl.file_max fs.file-max "$need_file_max" "system-wide open files" "$(max 2097152 "$need_file_max")"
	check_sysctl_min sysctl.nr_open fs.nr_open "$need_nr_open" "per-process cap on LimitNOFILE" "$(max 1048576 "$need_nr_open")"
	check_conntrack
	check_cgroup_memory
	check_cpu
	check_thp
	check_ports
	check_shipped_files
}

json_str() {
	local s=$1
	s=${s//\\/\\\\}
	s=${s//\"/\\\"}
	s=${s//$'\t'/\\t}
	s=${s//$'\n'/\\n}
	s=${s//$'\r'/\\r}
	printf '"%s"' "$s"
}

print_json() {
	local i overall=PASS sep=""
	((n_warn > 0)) && overall=WARN
	((n_fail > 0)) && overall=FAIL
	printf '{"target_connections":%s,"status":"%s","pass":%s,"warn":%s,"fail":%s,"checks":[' "$target" "$overall" "$n_pass" "$n_warn" "$n_fail"
	for i in "${!r_id[@]}"; do
		printf '%s{"id":%s,"status":%s,"value":%s,"want":%s,"message":%s,"fix":%s}' "$sep" \
			"$(json_str "${r_id[i]}")" "$(json_str "${r_status[i]}")" "$(json_str "${r_value[i]}")" \
			"$(json_str "${r_want[i]}")" "$(json_str "${r_msg[i]}")" "$(json_str "${r_fix[i]}")"
		sep=,
	done
	printf ']}\n'
}

# install_if_changed SRC DST: idempotent copy, reports what it did on stderr.
install_if_changed() {
	local src=$1 dst=$2
	if cmp -s "$src" "$dst"; then
		printf 'apply: unchanged %s\n' "$dst" >&2
	else
		mkdir -p -- "$(dirname -- "$dst")"
		install -m 0644 -- "$src" "$dst"
		printf 'apply: installed %s\n' "$dst" >&2
	fi
}

do_apply() {
	if [[ $euid != 0 ]]; then
		cat >&2 <<EOF
$prog: --apply writes /etc/sysctl.d and /etc/security/limits.d and changes
kernel settings, so it needs root. Nothing was changed. Run it as:
  sudo $here/preflight.sh --apply
or install by hand:
  sudo install -m 0644 $here/sysctl.d/99-erlmcp.conf /etc/sysctl.d/
  sudo install -m 0644 $here/limits.d/99-erlmcp.conf /etc/security/limits.d/
  sudo sysctl --system
EOF
		exit 2
	fi
	install_if_changed "$here/sysctl.d/99-erlmcp.conf" "$etc_root/etc/sysctl.d/99-erlmcp.conf"
	install_if_changed "$here/limits.d/99-erlmcp.conf" "$etc_root/etc/security/limits.d/99-erlmcp.conf"
	if [[ -n $etc_root ]]; then
		printf 'apply: ERLMCP_ETC_ROOT is set; not running sysctl --system\n' >&2
	else
		# A read-only /proc/sys (containers) makes some keys fail; report, go on.
		if ! sysctl --system >/dev/null; then
			printf 'apply: sysctl --system reported errors (above); in a container set sysctls on the host or with --sysctl\n' >&2
		fi
	fi
	printf 'apply: limits.d takes effect at the next login; the systemd unit sets its own limits\n' >&2
}

((apply == 1)) && do_apply
run_checks
if ((json == 1)); then
	print_json
else
	printf 'result: %s FAIL, %s WARN, %s PASS\n' "$n_fail" "$n_warn" "$n_pass"
fi
((n_fail == 0)) || exit 1
