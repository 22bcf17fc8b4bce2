#!/usr/bin/env bash
# Load-test our DNS server and NSD serving the same records, with dnsperf,
# all on 127.0.0.1. See bench/README.md for what the numbers mean.
#
#   bench/dnsperf.sh                 # 20,000 tasks, 10 s per run, 3 rounds
#   TASKS=100000 DURATION=5 ROUNDS=1 bench/dnsperf.sh
#
# The three servers run side by side, idle but for the one under load, and
# each round runs ours, the floor and NSD one after the other: this
# machine's speed drifts over minutes, so the ratios come from runs seconds
# apart, and the summary gives each ratio's median over the rounds.
#
# Environment:
#   TASKS      tasks in the generated state (default 20000)
#   DURATION   seconds per dnsperf run (default 10)
#   ROUNDS     rounds of all the runs (default 3)
#   RATE       queries/s of the fixed-rate run (default 20000)
#   CLIENTS    dnsperf -c (default 4); OUTSTANDING: dnsperf -q (default 500)
#   QUERIES    lines in the query file (default 20000; dnsperf loops over it)
#   EDNS=1     queries carry EDNS0 (dnsperf -e, 4096-byte buffer); default: none
#   DNSPERF_ARGS  extra dnsperf arguments for every run
#   MESOS_DNS_BIN  use this binary instead of building target/release/mesos-dns
#   BASELINE_BIN   another mesos-dns binary (say, the build before a change) to
#                  run side by side with ours in every round: rows "baseline",
#                  and the ratios ours/baseline in the summary
#   OURS_CONFIG    config keys for our server only, not the baseline (JSON
#                  members, '"rateLimit":1000000'); with BASELINE_BIN set to
#                  the same binary, the rows compare a setting on and off
#   NSD_SERVERS  NSD's server-count (default 2, one per core like our UDP workers)
#   SKIP_NSD=1 only our server;  SKIP_FLOOR=1 no floor rows;  KEEP=1 keep the work directory
#
# The "floor" rows are examples/udp_floor.rs: our UDP socket loop echoing
# each query back (QR set) without looking anything up, the kernel's and
# the loop's share of our CPU per query.
set -euo pipefail

TASKS=${TASKS:-20000}
DURATION=${DURATION:-10}
ROUNDS=${ROUNDS:-3}
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
for v in TASKS DURATION ROUNDS RATE CLIENTS OUTSTANDING QUERIES NSD_SERVERS; do
    is_count "${!v}" || die "$v must be a positive integer (is '${!v}')"
done

# --- prerequisites ---------------------------------------------------------
install_missing dnsperf:dnsperf nsd:nsd dig:bind9-dnsutils python3:python3
BIN=$(release_binary)

WORK=$(mktemp -d "${TMPDIR:-/tmp}/mesos-dns-bench.XXXXXX")
OURS_PID=
NSD_PID=
FLOOR_PID=
BASELINE_PID=
cleanup() {
    local pid
    stop_pid "$OURS_PID"
    stop_pid "$BASELINE_PID"
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
# config_json PORT [EXTRA]: a server's config (EXTRA: more JSON members).
config_json() {
    cat <<EOF
{"listener":"127.0.0.1","port":$1,"httpon":false,"externalon":false,
 "masters":["127.0.0.1:5050"],"refreshSeconds":86400${2:+,$2}}
EOF
}
config_json "$PORT" "${OURS_CONFIG:-}" >"$WORK/config.json"
"$BIN" -config="$WORK/config.json" -state-file="$WORK/state.json" -dump >"$WORK/dump.json"

# The query file (dnsperf format: "name type") and NSD's zone file, both
# from the dump.
python3 bench/queries.py "$WORK/dump.json" "$WORK/queries.txt" "$QUERIES" "$WORK/zone"
DOMAIN=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["Domain"])' "$WORK/dump.json")
PROBE=$(awk '$2 == "A" { print $1; exit }' "$WORK/queries.txt")

# --- running dnsperf -------------------------------------------------------------
HZ=$(getconf CLK_TCK)
ROWS=()   # "server mode round qps lost avg_ms max_ms us_per_query resp_bytes"

# run SERVER PID PORT MODE [dnsperf args...]
run() {
    local server=$1 pid=$2 port=$3 mode=$4
    shift 4
    local out="$WORK/dnsperf-$server-$mode-$ROUND.txt" before after
    before=$(cpu_ticks "$pid")
    # shellcheck disable=SC2086
    dnsperf -s 127.0.0.1 -p "$port" -d "$WORK/queries.txt" -l "$DURATION" \
        -c "$CLIENTS" -q "$OUTSTANDING" $DNSPERF_ARGS "$@" >"$out" 2>&1 ||
        { cat "$out" >&2; die "dnsperf failed ($server $mode)"; }
    after=$(cpu_ticks "$pid")
    kill -0 "$pid" 2>/dev/null || die "$server died during the $mode run"
    local row
    row=$(awk -v server="$server" -v mode="$mode" -v round="$ROUND" -v ticks=$((after - before)) -v hz="$HZ" '
        /Queries completed:/ { done = $3 }
        /Queries lost:/ { lost = $3 }
        /Queries per second:/ { qps = $4 }
        /Average Latency/ { avg = $4; max = $8; sub(/\)/, "", max) }
        /Average packet size:/ { resp = $NF }
        END {
            us = done > 0 ? ticks * 1e6 / hz / done : 0
            printf "%s %s %d %.0f %d %.3f %.3f %.2f %s\n", server, mode, round, qps, lost, avg * 1000, max * 1000, us, resp
        }' "$out")
    ROWS+=("$row")
    print_row $row
}

print_header() {
    printf '%-9s %-10s %5s %10s %8s %9s %9s %11s %9s\n' \
        server run round 'q/s' lost 'avg ms' 'max ms' 'CPU us/q' 'resp B'
}
print_row() {
    printf '%-9s %-10s %5s %10s %8s %9s %9s %11s %9s\n' "$@"
}

runs() {
    local server=$1 pid=$2 port=$3
    run "$server" "$pid" "$port" "udp-${RATE}" -Q "$RATE"
    run "$server" "$pid" "$port" udp-max
    run "$server" "$pid" "$port" tcp-max -m tcp
}

say "dnsperf: $DURATION s per run, $ROUNDS rounds, -c $CLIENTS -q $OUTSTANDING $DNSPERF_ARGS"

# --- our server ------------------------------------------------------------------
say "starting mesos-dns on 127.0.0.1:$PORT"
"$BIN" -config="$WORK/config.json" -state-file="$WORK/state.json" >"$WORK/mesos-dns.log" 2>&1 &
OURS_PID=$!
wait_ready "$PORT" "$PROBE" "$OURS_PID" || { cat "$WORK/mesos-dns.log" >&2; die "mesos-dns did not answer"; }

# --- the build to compare with ----------------------------------------------------
if [ -n "${BASELINE_BIN:-}" ]; then
    [ -x "$BASELINE_BIN" ] || die "BASELINE_BIN $BASELINE_BIN is not an executable"
    PORT4=$(free_port)
    config_json "$PORT4" >"$WORK/baseline.json"
    say "starting the baseline $BASELINE_BIN on 127.0.0.1:$PORT4"
    "$BASELINE_BIN" -config="$WORK/baseline.json" -state-file="$WORK/state.json" >"$WORK/baseline.log" 2>&1 &
    BASELINE_PID=$!
    wait_ready "$PORT4" "$PROBE" "$BASELINE_PID" ||
        { cat "$WORK/baseline.log" >&2; die "the baseline did not answer"; }
fi

# --- the floor: our socket loop, no answers to build ---------------------------
if [ "$SKIP_FLOOR" != 1 ]; then
    say "building examples/udp_floor.rs"
    cargo build --release --quiet --example udp_floor
    PORT3=$(free_port)
    "${CARGO_TARGET_DIR:-$PWD/target}/release/examples/udp_floor" "$PORT3" >"$WORK/floor.log" 2>&1 &
    FLOOR_PID=$!
    wait_ready "$PORT3" "$PROBE" "$FLOOR_PID" || { cat "$WORK/floor.log" >&2; die "udp_floor did not answer"; }
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
fi

# --- the rounds ------------------------------------------------------------------
print_header
for ROUND in $(seq "$ROUNDS"); do
    runs ours "$OURS_PID" "$PORT"
    [ -z "$BASELINE_PID" ] || runs baseline "$BASELINE_PID" "$PORT4"
    if [ "$SKIP_FLOOR" != 1 ]; then
        run floor "$FLOOR_PID" "$PORT3" "udp-${RATE}" -Q "$RATE"
        run floor "$FLOOR_PID" "$PORT3" udp-max
    fi
    [ "$SKIP_NSD" = 1 ] || runs nsd "$NSD_PID" "$PORT2"
done

# --- summary -------------------------------------------------------------------
echo
echo "mesos-dns vs NSD, $TASKS tasks, $DURATION s per run (CPU us/q: server CPU per answered query)"
print_header
for row in "${ROWS[@]}"; do
    # shellcheck disable=SC2086
    print_row $row
done
if [ "$SKIP_NSD" != 1 ] || [ -n "$BASELINE_PID" ]; then
    echo
    # Ratios of runs of the same round (seconds apart), then each ratio's
    # median and range over the rounds.
    printf '%s\n' "${ROWS[@]}" >"$WORK/rows.txt"
    python3 - "$WORK/rows.txt" <<'EOF'
import statistics, sys
rows = {}
for line in open(sys.argv[1]):
    server, mode, rnd, qps, _, _, _, us, _ = line.split()
    rows[server, mode, rnd] = (float(qps), float(us))
def ratio(a, b, i):
    return a[i] / b[i] if a and b and b[i] > 0 else None
def cell(x):
    return "-" if x is None else "%.2f" % x
# (heading, numerator, denominator, 0: q/s or 1: CPU per query)
columns = [
    ("q/s ours/nsd", "ours", "nsd", 0),
    ("CPU/q ours/nsd", "ours", "nsd", 1),
    ("CPU/q floor/nsd", "floor", "nsd", 1),
    ("q/s ours/base", "ours", "baseline", 0),
    ("CPU/q ours/base", "ours", "baseline", 1),
]
servers = {s for (s, _, _) in rows}
columns = [c for c in columns if c[1] in servers and c[2] in servers]
line = "%-10s %6s" + " %16s" * len(columns)
print(line % ("run", "round", *(c[0] for c in columns)))
for mode in dict.fromkeys(m for (s, m, _) in rows if s == "ours"):
    per_round = []
    for (s, m, rnd) in rows:
        if s != "ours" or m != mode:
            continue
        r = [ratio(rows.get((a, mode, rnd)), rows.get((b, mode, rnd)), i) for (_, a, b, i) in columns]
        per_round.append(r)
        print(line % (mode, rnd, *(cell(x) for x in r)))
    if len(per_round) > 1:
        cols = [[r[i] for r in per_round if r[i] is not None] for i in range(len(columns))]
        print(line % (mode, "median", *(cell(statistics.median(c)) if c else "-" for c in cols)))
        print(line % (mode, "range", *("%.2f-%.2f" % (min(c), max(c)) if c else "-" for c in cols)))
EOF
fi
