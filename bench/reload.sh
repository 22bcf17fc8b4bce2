#!/usr/bin/env bash
# Reload cost and memory of the real server, from 1k to 100k tasks, and DNS
# latency while it reloads, all on 127.0.0.1. See bench/README.md for what
# the numbers mean.
#
#   bench/reload.sh                          # 1k..100k tasks, then 20k under load
#   SIZES="1000 5000" LATENCY_TASKS=5000 RATE=5000 bench/reload.sh   # a quick one
#
# Environment:
#   SIZES          task counts of the scaling table (default "1000 5000 20000 50000 100000")
#   RELOADS        SIGUSR1 reloads per size, one after the other (default 7)
#   LATENCY_TASKS  tasks of the latency runs, and the size the targets are
#                  checked at (default 20000)
#   RATE           dnsperf queries/s of the latency runs (default 20000)
#   DURATION       seconds per dnsperf run (default 10)
#   INTERVAL       seconds between reloads during the second run (default 1)
#   CLIENTS        dnsperf -c (default 4); OUTSTANDING: dnsperf -q (default 500)
#   QUERIES        lines in the query file (default 20000; dnsperf loops over it)
#   DNSPERF_ARGS   extra dnsperf arguments
#   SKIP_LATENCY=1 only the scaling table
#   SETTLE         seconds to wait before sampling RSS (default 1)
#   RELOAD_TIMEOUT seconds one load may take before it counts as hung (default 300)
#   STATE_DIR      where generated states are cached (default: the work directory)
#   MESOS_DNS_BIN  use this binary instead of building target/release/mesos-dns
#   KEEP=1         keep the work directory (states, logs, dnsperf outputs)
#
# Exit status: 0 when the benchmark ran (whether or not the targets are met),
# non-zero on errors.
set -euo pipefail

SIZES=${SIZES:-1000 5000 20000 50000 100000}
RELOADS=${RELOADS:-7}
LATENCY_TASKS=${LATENCY_TASKS:-20000}
RATE=${RATE:-20000}
DURATION=${DURATION:-10}
INTERVAL=${INTERVAL:-1}
CLIENTS=${CLIENTS:-4}
OUTSTANDING=${OUTSTANDING:-500}
QUERIES=${QUERIES:-20000}
DNSPERF_ARGS=${DNSPERF_ARGS:-}
SKIP_LATENCY=${SKIP_LATENCY:-0}
SETTLE=${SETTLE:-1}
RELOAD_TIMEOUT=${RELOAD_TIMEOUT:-300}
KEEP=${KEEP:-0}

# The targets (performance issue), checked at LATENCY_TASKS tasks.
TARGET_RELOAD_MS=100
TARGET_PEAK_MIB=80
TARGET_MAX_LATENCY_MS=10

cd "$(dirname "$0")/.."

# shellcheck source=bench/lib.sh
. bench/lib.sh

for n in $SIZES; do is_count "$n" || die "SIZES: not a task count: $n"; done
[ -n "${SIZES// /}" ] || die "SIZES is empty"
for v in RELOADS LATENCY_TASKS RATE DURATION CLIENTS OUTSTANDING QUERIES RELOAD_TIMEOUT; do
    is_count "${!v}" || die "$v must be a positive integer (is '${!v}')"
done
[[ $INTERVAL =~ ^[0-9]+(\.[0-9]+)?$ ]] || die "INTERVAL must be a number of seconds"
[[ $SETTLE =~ ^[0-9]+(\.[0-9]+)?$ ]] || die "SETTLE must be a number of seconds"

# --- prerequisites ---------------------------------------------------------
needs=(python3:python3)
[ "$SKIP_LATENCY" = 1 ] || needs+=(dnsperf:dnsperf)
install_missing "${needs[@]}"
BIN=$(release_binary)

WORK=$(mktemp -d "${TMPDIR:-/tmp}/mesos-dns-reload.XXXXXX")
STATE_DIR=${STATE_DIR:-$WORK}
mkdir -p "$STATE_DIR"
SERVER_PID=
LOOP_PID=
DNSPERF_PID=
# shellcheck disable=SC2317  # called by the EXIT trap
cleanup() {
    stop_pid "$LOOP_PID"
    stop_pid "$DNSPERF_PID"
    stop_pid "$SERVER_PID"
    if [ "$KEEP" = 1 ]; then say "kept $WORK"; else rm -rf "$WORK"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# A config for the server on a fresh free port: DNS only, no forwarding,
# no periodic refresh (only SIGUSR1 reloads). Prints the port.
write_config() {
    local conf=$1 port
    port=$(free_port)
    cat >"$conf" <<EOF
{"listener":"127.0.0.1","port":$port,"httpon":false,"externalon":false,
 "masters":["127.0.0.1:5050"],"refreshSeconds":86400}
EOF
    printf '%s\n' "$port"
}

# Counts of refresh outcomes in a server log.
refreshed() { grep -c 'records refreshed' "$1" || true; }
failed() { grep -c 'refresh failed' "$1" || true; }

# Wait until LOG has more than N "records refreshed" lines. Any "refresh
# failed", the server's exit or RELOAD_TIMEOUT is an error.
wait_refreshed() {
    local log=$1 pid=$2 n=$3 deadline
    deadline=$((SECONDS + RELOAD_TIMEOUT))
    while :; do
        [ "$(refreshed "$log")" -gt "$n" ] && return 0
        if [ "$(failed "$log")" -gt 0 ]; then
            tail -n 20 "$log" >&2
            die "a refresh failed (log above)"
        fi
        if ! kill -0 "$pid" 2>/dev/null; then
            tail -n 20 "$log" >&2
            die "mesos-dns exited (log above)"
        fi
        [ "$SECONDS" -lt "$deadline" ] || die "no refresh within ${RELOAD_TIMEOUT}s ($log)"
        sleep 0.05
    done
}

# True once the process catches SIGUSR1 (bit 10 of SigCgt): before its
# handler is installed the signal would kill it.
usr1_caught() {
    local mask
    mask=$(awk '/^SigCgt:/ { print $2 }' "/proc/$1/status" 2>/dev/null) || return 1
    [ -n "$mask" ] && (( (16#$mask >> 9) & 1 ))
}

# One reload: SIGUSR1, then wait for its "records refreshed" line. The
# previous reload must be finished (so one signal is one reload).
reload() {
    local log=$1 pid=$2 n
    n=$(refreshed "$log")
    kill -USR1 "$pid"
    wait_refreshed "$log" "$pid" "$n"
}

# start_server STATE CONF LOG: starts the server, waits for its first load
# and for its SIGUSR1 handler. Sets SERVER_PID.
start_server() {
    local state=$1 conf=$2 log=$3
    : >"$log"   # exists before the background job opens it
    RUST_LOG=info "$BIN" -config="$conf" -state-file="$state" -v=1 >"$log" 2>&1 &
    SERVER_PID=$!
    wait_refreshed "$log" "$SERVER_PID" 0
    local deadline=$((SECONDS + 10))
    until usr1_caught "$SERVER_PID"; do
        kill -0 "$SERVER_PID" 2>/dev/null || { tail -n 20 "$log" >&2; die "mesos-dns exited"; }
        [ "$SECONDS" -lt "$deadline" ] || die "mesos-dns does not catch SIGUSR1"
        sleep 0.05
    done
}

stop_server() {
    local pid=$SERVER_PID
    SERVER_PID=
    stop_pid "$pid"
}

# Statistics of the "records refreshed" lines FROM..TO (1-based, inclusive)
# of a log: names records parse_med parse_min gen_med gen_min compile_med
# compile_min reload_med reload_min reload_max total_med total_min total_max
# count.
refresh_stats() {
    python3 - "$@" <<'EOF'
import statistics, sys
log, lo, hi = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
rows = []
for line in open(log, errors="replace"):
    if "records refreshed" not in line:
        continue
    f = dict(w.split("=", 1) for w in line.split() if "=" in w)
    rows.append(f)
rows = rows[lo - 1:hi]
if not rows:
    sys.exit(f"{log}: no refresh lines {lo}..{hi}")
def col(k):
    try:
        return [float(r[k]) for r in rows]
    except KeyError:
        sys.exit(f"{log}: the refresh line has no {k}= (an older binary?)")
last = rows[-1]
records = sum(int(last[k]) for k in ("a", "aaaa", "srv"))
out = [last["names"], str(records)]
for k in ("parse_ms", "generate_ms", "compile_ms"):
    v = col(k)
    out += [f"{statistics.median(v):.1f}", f"{min(v):.1f}"]
for k in ("reload_ms", "ms"):
    v = col(k)
    out += [f"{statistics.median(v):.1f}", f"{min(v):.1f}", f"{max(v):.1f}"]
out.append(str(len(rows)))
print(" ".join(out))
EOF
}

mib() { awk -v k="$1" 'BEGIN { printf "%.1f", k / 1024 }'; }

# --- 1. reload cost and memory by size -----------------------------------------------
# Row: tasks stateMB names records parse gen compile reload total first loadedMiB afterMiB
# peakMiB us/task (parse..total: "median/min" ms over the reloads).
ROWS=()
declare -A RELOAD_MED PEAK_KB
print_header() {
    printf '%8s %8s %8s %8s %12s %12s %12s %12s %12s %8s %9s %9s %9s %8s\n' \
        tasks 'state MB' names records 'parse ms' 'generate ms' 'compile ms' 'reload ms' \
        'total ms' 'first ms' 'loaded' 'after' 'peak' 'us/task'
}
print_row() {
    printf '%8s %8s %8s %8s %12s %12s %12s %12s %12s %8s %9s %9s %9s %8s\n' "$@"
}

measure_size() {
    local n=$1 state conf log bytes
    state=$(state_file "$n")
    conf="$WORK/config-$n.json"
    log="$WORK/mesos-dns-$n.log"
    write_config "$conf" >/dev/null
    bytes=$(wc -c <"$state")
    say "$n tasks: first load, then $RELOADS reloads"
    start_server "$state" "$conf" "$log"
    sleep "$SETTLE"
    local loaded_kb after_kb peak_kb first
    loaded_kb=$(proc_kb "$SERVER_PID" VmRSS)
    for _ in $(seq "$RELOADS"); do
        reload "$log" "$SERVER_PID"
    done
    sleep "$SETTLE"
    after_kb=$(proc_kb "$SERVER_PID" VmRSS)
    peak_kb=$(proc_kb "$SERVER_PID" VmHWM)
    stop_server
    local stats names records pm pn gm gn cm cn rl rn tm tn count
    stats=$(refresh_stats "$log" 1 1)
    read -r _ _ _ _ _ _ _ _ first _ _ _ _ _ _ <<<"$stats"
    stats=$(refresh_stats "$log" 2 $((RELOADS + 1)))
    read -r names records pm pn gm gn cm cn rl rn _ tm tn _ count <<<"$stats"
    [ "$count" -eq "$RELOADS" ] || die "$n tasks: $count reload lines, expected $RELOADS"
    [ "$names" -gt 0 ] || die "$n tasks: no names loaded"
    RELOAD_MED[$n]=$rl
    PEAK_KB[$n]=$peak_kb
    local row
    row=$(printf '%s %s %s %s %s/%s %s/%s %s/%s %s/%s %s/%s %s %s %s %s %s' \
        "$n" "$(awk -v b="$bytes" 'BEGIN { printf "%.1f", b / 1e6 }')" "$names" "$records" \
        "$pm" "$pn" "$gm" "$gn" "$cm" "$cn" "$rl" "$rn" "$tm" "$tn" "$first" \
        "$(mib "$loaded_kb")" "$(mib "$after_kb")" "$(mib "$peak_kb")" \
        "$(awk -v t="$rl" -v n="$n" 'BEGIN { printf "%.2f", t * 1000 / n }')")
    ROWS+=("$row")
    # shellcheck disable=SC2086
    print_row $row
}

# All states first, so that generating them does not interleave with the table.
for n in $SIZES; do state_file "$n" >/dev/null; done
[ "$SKIP_LATENCY" = 1 ] || state_file "$LATENCY_TASKS" >/dev/null

say "reload cost: sizes $SIZES, $RELOADS reloads each (SIGUSR1, one after the other)"
print_header
for n in $SIZES; do
    measure_size "$n"
done

# --- 2. DNS latency while reloading ------------------------------------------------------
LAT_ROWS=()   # "run qps lost other_rcodes avg_ms max_ms reloads reload_med/max peak_MiB"
LAT_PEAK_KB=
print_lat_header() {
    printf '%-10s %9s %7s %9s %9s %9s %8s %18s %9s\n' \
        run 'q/s' lost 'other rc' 'avg ms' 'max ms' reloads 'reload ms med/max' 'peak MiB'
}
print_lat_row() {
    printf '%-10s %9s %7s %9s %9s %9s %8s %18s %9s\n' "$@"
}

# reload_loop LOG PID STOPFILE: one reload every INTERVAL seconds (back to
# back when a reload takes longer) until STOPFILE exists.
reload_loop() {
    local log=$1 pid=$2 stop=$3 start elapsed_ms rest_ms interval_ms
    interval_ms=$(awk -v s="$INTERVAL" 'BEGIN { printf "%d", s * 1000 }')
    sleep 0.5
    while [ ! -e "$stop" ]; do
        start=$(date +%s%N)
        reload "$log" "$pid"
        elapsed_ms=$((($(date +%s%N) - start) / 1000000))
        rest_ms=$((interval_ms - elapsed_ms))
        if [ "$rest_ms" -gt 0 ]; then
            sleep "$((rest_ms / 1000)).$(printf '%03d' $((rest_ms % 1000)))"
        fi
    done
}

# lat_run NAME WITH_RELOADS(0|1)
lat_run() {
    local name=$1 with_reloads=$2 before after
    local out="$WORK/dnsperf-$name.txt" stop="$WORK/stop-$name"
    rm -f "$stop"
    before=$(refreshed "$LAT_LOG")
    # shellcheck disable=SC2086
    dnsperf -s 127.0.0.1 -p "$LAT_PORT" -d "$WORK/queries.txt" -l "$DURATION" \
        -c "$CLIENTS" -q "$OUTSTANDING" -Q "$RATE" $DNSPERF_ARGS >"$out" 2>&1 &
    DNSPERF_PID=$!
    if [ "$with_reloads" = 1 ]; then
        reload_loop "$LAT_LOG" "$SERVER_PID" "$stop" &
        LOOP_PID=$!
    fi
    local rc=0
    wait "$DNSPERF_PID" || rc=$?
    DNSPERF_PID=
    if [ -n "$LOOP_PID" ]; then
        touch "$stop"
        local lrc=0
        wait "$LOOP_PID" || lrc=$?
        LOOP_PID=
        [ "$lrc" -eq 0 ] || die "the reload loop failed during the $name run"
    fi
    [ "$rc" -eq 0 ] || { cat "$out" >&2; die "dnsperf failed ($name)"; }
    kill -0 "$SERVER_PID" 2>/dev/null || die "mesos-dns died during the $name run"
    after=$(refreshed "$LAT_LOG")
    local reloads=$((after - before)) stats="- -"
    if [ "$reloads" -gt 0 ]; then
        local s
        s=$(refresh_stats "$LAT_LOG" $((before + 1)) "$after")
        read -r _ _ _ _ _ _ _ _ rl _ rx _ _ _ _ <<<"$s"
        stats="$rl $rx"
    fi
    [ "$with_reloads" = 0 ] || [ "$reloads" -gt 0 ] || die "no reload during the $name run"
    local peak_kb
    peak_kb=$(proc_kb "$SERVER_PID" VmHWM)
    LAT_PEAK_KB=$peak_kb
    local row
    row=$(awk -v name="$name" -v reloads="$reloads" -v stats="$stats" -v peak="$(mib "$peak_kb")" '
        /Queries lost:/ { lost = $3 }
        /Response codes:/ {  # "NOERROR 39996 (79.99%), NXDOMAIN 10004 (20.01%)"
            for (i = 3; i < NF; i++)
                if ($i ~ /^[A-Z]+$/ && $i != "NOERROR" && $i != "NXDOMAIN") other += $(i + 1)
        }
        /Queries per second:/ { qps = $4 }
        /Average Latency/ { avg = $4; max = $8; sub(/\)/, "", max) }
        END {
            if (qps == "") exit 1
            split(stats, s, " ")
            rl = s[1] == "-" ? "-" : s[1] "/" s[2]
            printf "%s %.0f %d %d %.3f %.3f %d %s %s\n", name, qps, lost, other, avg * 1000, max * 1000, reloads, rl, peak
        }' "$out") || { cat "$out" >&2; die "cannot read dnsperf's output ($name)"; }
    LAT_ROWS+=("$row")
    # shellcheck disable=SC2086
    print_lat_row $row
}

if [ "$SKIP_LATENCY" != 1 ]; then
    LAT_STATE=$(state_file "$LATENCY_TASKS")
    LAT_CONF="$WORK/config-latency.json"
    LAT_LOG="$WORK/mesos-dns-latency.log"
    LAT_PORT=$(write_config "$LAT_CONF")
    "$BIN" -config="$LAT_CONF" -state-file="$LAT_STATE" -dump >"$WORK/dump.json"

    # The query file (dnsperf format: "name type"), as bench/dnsperf.sh makes it.
    python3 bench/queries.py "$WORK/dump.json" "$WORK/queries.txt" "$QUERIES"

    echo
    say "latency: $LATENCY_TASKS tasks, dnsperf -Q $RATE -l $DURATION -c $CLIENTS -q $OUTSTANDING $DNSPERF_ARGS"
    start_server "$LAT_STATE" "$LAT_CONF" "$LAT_LOG"
    sleep "$SETTLE"
    print_lat_header
    lat_run quiet 0
    lat_run reloading 1
    stop_server
fi

# --- 3. summary -------------------------------------------------------------------------------
echo
echo "Reload cost by size ($RELOADS SIGUSR1 reloads each; ms: median/min as logged by the server;"
echo "reload: state bytes in hand to new zone published; total: with the file read before it;"
echo "first: reload of the initial load; loaded/after/peak: MiB, VmRSS after the first load and"
echo "after the reloads, VmHWM over the whole run; us/task: median reload per task)"
print_header
for row in "${ROWS[@]}"; do
    # shellcheck disable=SC2086
    print_row $row
done
if ((${#ROWS[@]} > 1)); then
    read -r n1 _ _ _ _ _ _ t1 _ _ l1 _ p1 _ <<<"${ROWS[0]}"
    read -r n2 _ _ _ _ _ _ t2 _ _ l2 _ p2 _ <<<"${ROWS[${#ROWS[@]} - 1]}"
    awk -v n1="$n1" -v n2="$n2" -v t1="${t1%%/*}" -v t2="${t2%%/*}" \
        -v l1="$l1" -v l2="$l2" -v p1="$p1" -v p2="$p2" 'BEGIN {
        printf "growth %d -> %d tasks: tasks x%.1f, reload ms x%.1f, loaded RSS x%.1f, peak RSS x%.1f\n",
            n1, n2, n2 / n1, (t1 > 0 ? t2 / t1 : 0), (l1 > 0 ? l2 / l1 : 0), (p1 > 0 ? p2 / p1 : 0) }'
fi

if [ "$SKIP_LATENCY" != 1 ]; then
    echo
    echo "DNS latency at $RATE q/s, $LATENCY_TASKS tasks, $DURATION s per run (reloading: one SIGUSR1 reload every ${INTERVAL}s)"
    print_lat_header
    for row in "${LAT_ROWS[@]}"; do
        # shellcheck disable=SC2086
        print_lat_row $row
    done
fi

# The targets, at LATENCY_TASKS tasks.
echo
if [ "$LATENCY_TASKS" = 20000 ]; then
    echo "Targets at 20000 tasks (performance issue):"
else
    echo "Targets at $LATENCY_TASKS tasks (the performance issue sets them for 20000):"
fi
check() {  # description value verdict
    printf '  %-48s %14s  %s\n' "$1" "$2" "$3"
}
n=$LATENCY_TASKS
if [ -n "${RELOAD_MED[$n]:-}" ]; then
    rl=${RELOAD_MED[$n]}
    check "reload (median) < $TARGET_RELOAD_MS ms" "$rl ms" \
        "$(awk -v v="$rl" -v t="$TARGET_RELOAD_MS" 'BEGIN { print (v < t ? "PASS" : "FAIL") }')"
else
    check "reload (median) < $TARGET_RELOAD_MS ms" "-" "SKIP ($n not in SIZES)"
fi
peak_kb=${PEAK_KB[$n]:-}
if [ -n "$LAT_PEAK_KB" ] && { [ -z "$peak_kb" ] || [ "$LAT_PEAK_KB" -gt "$peak_kb" ]; }; then
    peak_kb=$LAT_PEAK_KB
fi
if [ -n "$peak_kb" ]; then
    check "peak RSS < $TARGET_PEAK_MIB MiB" "$(mib "$peak_kb") MiB" \
        "$( ((peak_kb < TARGET_PEAK_MIB * 1024)) && echo PASS || echo FAIL)"
else
    check "peak RSS < $TARGET_PEAK_MIB MiB" "-" "SKIP ($n not in SIZES)"
fi
if [ "$SKIP_LATENCY" != 1 ]; then
    read -r _ _ lost other _ max _ <<<"${LAT_ROWS[1]}"
    check "max latency during reloads <= $TARGET_MAX_LATENCY_MS ms" "$max ms" \
        "$(awk -v v="$max" -v t="$TARGET_MAX_LATENCY_MS" 'BEGIN { print (v <= t ? "PASS" : "FAIL") }')"
    check "queries lost during reloads = 0" "$lost" "$( ((lost == 0)) && echo PASS || echo FAIL)"
    check "answers not NOERROR/NXDOMAIN during reloads = 0" "$other" \
        "$( ((other == 0)) && echo PASS || echo FAIL)"
else
    check "max latency during reloads <= $TARGET_MAX_LATENCY_MS ms" "-" "SKIP (SKIP_LATENCY=1)"
    check "queries lost during reloads = 0" "-" "SKIP (SKIP_LATENCY=1)"
    check "answers not NOERROR/NXDOMAIN during reloads = 0" "-" "SKIP (SKIP_LATENCY=1)"
fi
exit 0
