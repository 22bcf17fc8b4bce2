#!/usr/bin/env bash
# Load-test our DNS server, then NSD serving the same records, with dnsperf,
# all on 127.0.0.1. See bench/README.md for what the numbers mean.
#
#   bench/dnsperf.sh                 # 20,000 tasks, 10 s per run
#   TASKS=100000 DURATION=5 bench/dnsperf.sh
#
# Environment:
#   TASKS      tasks in the generated state (default 20000)
#   DURATION   seconds per dnsperf run (default 10)
#   RATE       queries/s of the fixed-rate run (default 20000)
#   CLIENTS    dnsperf -c (default 4); OUTSTANDING: dnsperf -q (default 500)
#   QUERIES    lines in the query file (default 20000; dnsperf loops over it)
#   EDNS=1     queries carry EDNS0 (dnsperf -e, 4096-byte buffer); default: none
#   DNSPERF_ARGS  extra dnsperf arguments for every run
#   MESOS_DNS_BIN  use this binary instead of building target/release/mesos-dns
#   NSD_SERVERS  NSD's server-count (default 2, one per core like our UDP workers)
#   SKIP_NSD=1 only our server;  SKIP_FLOOR=1 no floor rows;  KEEP=1 keep the work directory
#
# The "floor" rows are examples/udp_floor.rs: our UDP socket loop echoing
# each query back (QR set) without looking anything up, the kernel's and
# the loop's share of our CPU per query.
set -euo pipefail

TASKS=${TASKS:-20000}
DURATION=${DURATION:-10}
RATE=${RATE:-20000}
CLIENTS=${CLIENTS:-4}
OUTSTANDING=${OUTSTANDING:-500}
QUERIES=${QUERIES:-20000}
DNSPERF_ARGS=${DNSPERF_ARGS:-}
[ "${EDNS:-0}" = 1 ] && DNSPERF_ARGS="-e $DNSPERF_ARGS"
SKIP_NSD=${SKIP_NSD:-0}
NSD_SERVERS=${NSD_SERVERS:-2}
SKIP_FLOOR=${SKIP_FLOOR:-0}
KEEP=${KEEP:-0}

cd "$(dirname "$0")/.."

# shellcheck source=bench/lib.sh
. bench/lib.sh

# --- prerequisites ---------------------------------------------------------
install_missing dnsperf:dnsperf nsd:nsd dig:bind9-dnsutils python3:python3
BIN=$(release_binary)

WORK=$(mktemp -d "${TMPDIR:-/tmp}/mesos-dns-bench.XXXXXX")
OURS_PID=
NSD_PID=
FLOOR_PID=
cleanup() {
    local pid
    stop_pid "$OURS_PID"
    stop_pid "$NSD_PID"
    stop_pid "$FLOOR_PID"
    if [ "$KEEP" = 1 ]; then say "kept $WORK"; else rm -rf "$WORK"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# utime+stime, in clock ticks, of a process and all its descendants
# (NSD forks its server processes; our server is one process).
cpu_ticks() {
    python3 - "$1" <<'EOF'
import os, sys
root = int(sys.argv[1])
procs = {}
for d in os.listdir("/proc"):
    if not d.isdigit():
        continue
    try:
        with open(f"/proc/{d}/stat") as f:
            s = f.read()
    except OSError:
        continue
    # Fields after "(comm)": state=3 ppid=4 ... utime=14 stime=15.
    rest = s[s.rindex(")") + 2:].split()
    procs[int(d)] = (int(rest[1]), int(rest[11]) + int(rest[12]))
total, todo = 0, [root]
while todo:
    p = todo.pop()
    if p in procs:
        total += procs[p][1]
        todo.extend(c for c, (pp, _) in procs.items() if pp == p)
print(total)
EOF
}

# Wait until the server on $1 answers $2 (type A) with NOERROR.
wait_ready() {
    local port=$1 name=$2 pid=$3
    for _ in $(seq 150); do
        kill -0 "$pid" 2>/dev/null || return 1
        if dig @127.0.0.1 -p "$port" "$name" A +time=1 +tries=1 2>/dev/null |
            grep -q 'status: NOERROR'; then
            return 0
        fi
        sleep 0.2
    done
    return 1
}

# --- the records -------------------------------------------------------------
say "generating a $TASKS-task state"
python3 bench/gen-state.py "$TASKS" >"$WORK/state.json"
PORT=$(free_port)
cat >"$WORK/config.json" <<EOF
{"listener":"127.0.0.1","port":$PORT,"httpon":false,"externalon":false,
 "masters":["127.0.0.1:5050"],"refreshSeconds":86400}
EOF
"$BIN" -config="$WORK/config.json" -state-file="$WORK/state.json" -dump >"$WORK/dump.json"

# The query file (dnsperf format: "name type") and NSD's zone file, both
# from the dump.
python3 bench/queries.py "$WORK/dump.json" "$WORK/queries.txt" "$QUERIES" "$WORK/zone"
DOMAIN=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["Domain"])' "$WORK/dump.json")
PROBE=$(awk '$2 == "A" { print $1; exit }' "$WORK/queries.txt")

# --- running dnsperf -------------------------------------------------------------
HZ=$(getconf CLK_TCK)
ROWS=()   # "server mode qps lost avg_ms max_ms us_per_query resp_bytes"

# run SERVER PID PORT MODE [dnsperf args...]
run() {
    local server=$1 pid=$2 port=$3 mode=$4
    shift 4
    local out="$WORK/dnsperf-$server-$mode.txt" before after
    before=$(cpu_ticks "$pid")
    # shellcheck disable=SC2086
    dnsperf -s 127.0.0.1 -p "$port" -d "$WORK/queries.txt" -l "$DURATION" \
        -c "$CLIENTS" -q "$OUTSTANDING" $DNSPERF_ARGS "$@" >"$out" 2>&1 ||
        { cat "$out" >&2; die "dnsperf failed ($server $mode)"; }
    after=$(cpu_ticks "$pid")
    kill -0 "$pid" 2>/dev/null || die "$server died during the $mode run"
    local row
    row=$(awk -v server="$server" -v mode="$mode" -v ticks=$((after - before)) -v hz="$HZ" '
        /Queries completed:/ { done = $3 }
        /Queries lost:/ { lost = $3 }
        /Queries per second:/ { qps = $4 }
        /Average Latency/ { avg = $4; max = $8; sub(/\)/, "", max) }
        /Average packet size:/ { resp = $NF }
        END {
            us = done > 0 ? ticks * 1e6 / hz / done : 0
            printf "%s %s %.0f %d %.3f %.3f %.2f %s\n", server, mode, qps, lost, avg * 1000, max * 1000, us, resp
        }' "$out")
    ROWS+=("$row")
    print_row $row
}

print_header() {
    printf '%-9s %-10s %10s %8s %9s %9s %11s %9s\n' \
        server run 'q/s' lost 'avg ms' 'max ms' 'CPU us/q' 'resp B'
}
print_row() {
    printf '%-9s %-10s %10s %8s %9s %9s %11s %9s\n' "$@"
}

runs() {
    local server=$1 pid=$2 port=$3
    run "$server" "$pid" "$port" "udp-${RATE}" -Q "$RATE"
    run "$server" "$pid" "$port" udp-max
    run "$server" "$pid" "$port" tcp-max -m tcp
}

say "dnsperf: $DURATION s per run, -c $CLIENTS -q $OUTSTANDING $DNSPERF_ARGS"

# --- our server ------------------------------------------------------------------
say "starting mesos-dns on 127.0.0.1:$PORT"
"$BIN" -config="$WORK/config.json" -state-file="$WORK/state.json" >"$WORK/mesos-dns.log" 2>&1 &
OURS_PID=$!
wait_ready "$PORT" "$PROBE" "$OURS_PID" || { cat "$WORK/mesos-dns.log" >&2; die "mesos-dns did not answer"; }
print_header
runs ours "$OURS_PID" "$PORT"
kill "$OURS_PID"
wait "$OURS_PID" 2>/dev/null || true
OURS_PID=

# --- the floor: our socket loop, no answers to build ---------------------------
if [ "$SKIP_FLOOR" != 1 ]; then
    say "building examples/udp_floor.rs"
    cargo build --release --quiet --example udp_floor
    PORT3=$(free_port)
    "${CARGO_TARGET_DIR:-$PWD/target}/release/examples/udp_floor" "$PORT3" >"$WORK/floor.log" 2>&1 &
    FLOOR_PID=$!
    wait_ready "$PORT3" "$PROBE" "$FLOOR_PID" || { cat "$WORK/floor.log" >&2; die "udp_floor did not answer"; }
    run floor "$FLOOR_PID" "$PORT3" "udp-${RATE}" -Q "$RATE"
    run floor "$FLOOR_PID" "$PORT3" udp-max
    stop_pid "$FLOOR_PID"
    FLOOR_PID=
fi

# --- NSD -----------------------------------------------------------------------
if [ "$SKIP_NSD" != 1 ]; then
    PORT2=$(free_port)
    cat >"$WORK/nsd.conf" <<EOF
server:
    ip-address: 127.0.0.1@$PORT2
    port: $PORT2
    username: ""
    chroot: ""
    zonesdir: "$WORK"
    pidfile: "$WORK/nsd.pid"
    database: ""
    zonelistfile: "$WORK/zone.list"
    xfrdfile: "$WORK/xfrd.state"
    xfrdir: "$WORK"
    logfile: "$WORK/nsd.log"
    server-count: $NSD_SERVERS
    verbosity: 0
    hide-version: yes
    # No response rate limiting: all queries come from one address.
    rrl-ratelimit: 0
    rrl-whitelist-ratelimit: 0
remote-control:
    control-enable: no
zone:
    name: "$DOMAIN"
    zonefile: "$WORK/zone"
EOF
    nsd-checkconf "$WORK/nsd.conf" || die "bad nsd.conf"
    say "starting nsd on 127.0.0.1:$PORT2"
    nsd -c "$WORK/nsd.conf" -d >"$WORK/nsd.out" 2>&1 &
    NSD_PID=$!
    wait_ready "$PORT2" "$PROBE" "$NSD_PID" ||
        { cat "$WORK/nsd.out" "$WORK/nsd.log" >&2 2>/dev/null; die "nsd did not answer"; }
    runs nsd "$NSD_PID" "$PORT2"
fi

# --- summary -------------------------------------------------------------------
echo
echo "mesos-dns vs NSD, $TASKS tasks, $DURATION s per run (CPU us/q: server CPU per answered query)"
print_header
for row in "${ROWS[@]}"; do
    # shellcheck disable=SC2086
    print_row $row
done
if [ "$SKIP_NSD" != 1 ]; then
    echo
    printf '%-10s %14s %16s %17s\n' run 'q/s ours/nsd' 'CPU/q ours/nsd' 'CPU/q floor/nsd'
    for row in "${ROWS[@]}"; do
        read -r s mode qps _ _ _ us _ <<<"$row"
        [ "$s" = ours ] || continue
        nsd_qps=0 nsd_us=0 floor_us=0
        for other in "${ROWS[@]}"; do
            read -r s2 mode2 qps2 _ _ _ us2 _ <<<"$other"
            [ "$mode2" = "$mode" ] || continue
            case $s2 in
                nsd) nsd_qps=$qps2 nsd_us=$us2 ;;
                floor) floor_us=$us2 ;;
            esac
        done
        awk -v m="$mode" -v a="$qps" -v b="$nsd_qps" -v c="$us" -v d="$nsd_us" -v f="$floor_us" 'BEGIN {
            printf "%-10s %14s %16s %17s\n", m,
                (b > 0 ? sprintf("%.2f", a / b) : "-"), (d > 0 ? sprintf("%.2f", c / d) : "-"),
                (d > 0 && f > 0 ? sprintf("%.2f", f / d) : "-") }'
    done
fi
