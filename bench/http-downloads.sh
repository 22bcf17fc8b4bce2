#!/usr/bin/env bash
# What big HTTP downloads (/v1/enumerate, /v1/axfr) cost the server: DNS over
# TCP latency and peak resident memory while clients download in a loop, all
# on 127.0.0.1. See bench/README.md.
#
#   bench/http-downloads.sh
#   MESOS_DNS_BIN=/path/to/other/mesos-dns bench/http-downloads.sh   # compare builds
#
# Environment:
#   TASKS        tasks in the generated state (default 20000)
#   DOWNLOAD     the path downloaded in a loop (default /v1/enumerate)
#   DOWNLOADERS  clients downloading at once (default 2)
#   RATE         dnsperf -m tcp queries/s (default 5000)
#   DURATION     seconds per run (default 10)
#   STATE_DIR    where generated states are cached (default: the work directory)
#   MESOS_DNS_BIN use this binary instead of building target/release/mesos-dns
#
# Exit status: 0 when the benchmark ran, non-zero on errors.
set -euo pipefail

TASKS=${TASKS:-20000}
DOWNLOAD=${DOWNLOAD:-/v1/enumerate}
DOWNLOADERS=${DOWNLOADERS:-2}
RATE=${RATE:-5000}
DURATION=${DURATION:-10}

cd "$(dirname "$0")/.."
# shellcheck source=bench/lib.sh
. bench/lib.sh

for v in TASKS DOWNLOADERS RATE DURATION; do
    is_count "${!v}" || die "$v must be a positive integer (is '${!v}')"
done
[[ $DOWNLOAD == /* ]] || die "DOWNLOAD must be a path (is '$DOWNLOAD')"

install_missing python3:python3 dnsperf:dnsperf curl:curl
BIN=$(release_binary)
WORK=$(mktemp -d "${TMPDIR:-/tmp}/mesos-dns-http.XXXXXX")
STATE_DIR=${STATE_DIR:-$WORK}
SERVER_PID=
cleanup() {
    stop_pid "$SERVER_PID"
    rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

mkdir -p "$STATE_DIR"
STATE=$(state_file "$TASKS")
DNS_PORT=$(free_port)
HTTP_PORT=$(free_port)
cat >"$WORK/config.json" <<EOF
{"listener":"127.0.0.1","port":$DNS_PORT,"httpon":true,"httpListener":"127.0.0.1",
 "httpport":$HTTP_PORT,"externalon":false,"masters":["127.0.0.1:5050"],"refreshSeconds":86400}
EOF
"$BIN" -config="$WORK/config.json" -state-file="$STATE" -dump >"$WORK/dump.json"
python3 bench/queries.py "$WORK/dump.json" "$WORK/queries.txt" 20000 >/dev/null

# One run on a fresh server (so its VmHWM is this run's peak), with
# $1 clients downloading in a loop meanwhile. Prints a result row.
run() {
    local downloaders=$1 url="http://127.0.0.1:$HTTP_PORT$DOWNLOAD"
    "$BIN" -config="$WORK/config.json" -state-file="$STATE" >"$WORK/server.log" 2>&1 &
    SERVER_PID=$!
    local deadline=$((SECONDS + 60))
    until curl -sf "http://127.0.0.1:$HTTP_PORT/health" >/dev/null; do
        kill -0 "$SERVER_PID" 2>/dev/null || { tail "$WORK/server.log" >&2; die "mesos-dns exited"; }
        [ "$SECONDS" -lt "$deadline" ] || die "mesos-dns did not load the state"
        sleep 0.1
    done
    local loaded_kb end=$((SECONDS + DURATION)) pids=() i
    loaded_kb=$(proc_kb "$SERVER_PID" VmRSS)
    for ((i = 0; i < downloaders; i++)); do
        (
            n=0
            while [ "$SECONDS" -lt "$end" ]; do
                curl -sf -o /dev/null "$url" || { echo "download failed" >&2; exit 1; }
                n=$((n + 1))
            done
            echo "$n" >"$WORK/downloads-$i"
        ) &
        pids+=($!)
    done
    dnsperf -m tcp -s 127.0.0.1 -p "$DNS_PORT" -d "$WORK/queries.txt" -Q "$RATE" \
        -l "$DURATION" -c 4 -q 100 >"$WORK/dnsperf.txt" 2>&1 || die "dnsperf failed"
    for p in "${pids[@]}"; do wait "$p" || die "a downloader failed"; done
    local downloads=0 peak_kb
    for ((i = 0; i < downloaders; i++)); do downloads=$((downloads + $(cat "$WORK/downloads-$i"))); done
    peak_kb=$(proc_kb "$SERVER_PID" VmHWM)
    stop_pid "$SERVER_PID"
    SERVER_PID=
    awk -v d="$downloaders" -v n="$downloads" -v loaded="$loaded_kb" -v peak="$peak_kb" '
        /Queries lost:/ { lost = $3 }
        /Queries per second:/ { qps = $4 }
        /Average Latency/ && !avg { avg = $4; max = $8; sub(/\)/, "", max) }
        END { printf "%-12d %9d %8.0f %6d %9.3f %9.3f %11.1f %9.1f\n",
              d, n, qps, lost, avg * 1000, max * 1000, loaded / 1024, peak / 1024 }
    ' "$WORK/dnsperf.txt"
}

say "$TASKS tasks; DNS over TCP at $RATE q/s for ${DURATION}s; downloading $DOWNLOAD"
printf '%-12s %9s %8s %6s %9s %9s %11s %9s\n' downloaders downloads 'tcp q/s' lost \
    'avg ms' 'max ms' 'loaded MiB' 'peak MiB'
run 0
run "$DOWNLOADERS"
