#!/usr/bin/env bash
# Latency added by forwarding names outside the domain: NSD serving a small
# zone on 127.0.0.1, asked directly and through mesos-dns (the release
# binary on the demo state, forwarding to that NSD); then, when dnsperf is
# installed, both at full speed for FULL_SECONDS (default 5; 0 skips it).
#
#   bench/forward-latency.sh [COUNT] [RATE]      # default 5000 at 1000 q/s
#   DEAD_FIRST=1 bench/forward-latency.sh [COUNT] [RATE]   # 2000 at 200 q/s
#
# DEAD_FIRST=1: the first resolver is dead (a bound UDP socket that never
# answers, not even with ICMP), NSD the second. Three queries at once
# first (they may wait out the dead one's timeout), then COUNT queries
# sent at RATE without waiting for answers; each one's round trip, and
# lost = no answer within TIMEOUT + 2 s. Through us only, and dnsperf
# through us with the dead resolver still first.
#
# Environment: TIMEOUT (mesos-dns `timeout`, seconds; default 2, or 5 —
# the original's — with DEAD_FIRST), FULL_SECONDS, MESOS_DNS_BIN (a
# binary to run instead of building target/release/mesos-dns: another
# build to compare).
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=bench/lib.sh
. bench/lib.sh

DEAD_FIRST=${DEAD_FIRST:-0}
if [ "$DEAD_FIRST" = 1 ]; then
    COUNT=${1:-2000} RATE=${2:-200} TIMEOUT=${TIMEOUT:-5}
else
    COUNT=${1:-5000} RATE=${2:-1000} TIMEOUT=${TIMEOUT:-2}
fi
for v in COUNT RATE TIMEOUT; do
    is_count "${!v}" || die "$v must be a positive integer (is '${!v}')"
done
install_missing nsd:nsd python3:python3
bin=$(release_binary)
work=$(mktemp -d "${TMPDIR:-/tmp}/mesos-dns-forward.XXXXXX")
pids=()
# shellcheck disable=SC2317  # called by the EXIT trap
cleanup() {
    for p in "${pids[@]}"; do stop_pid "$p"; done
    rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

nsd_port=$(free_port)
our_port=$(free_port)
cat >"$work/example.org.zone" <<ZONE
\$ORIGIN example.org.
\$TTL 300
@ IN SOA ns1 admin 1 3600 600 86400 300
@ IN NS ns1
ns1 IN A 127.0.0.1
www IN A 198.51.100.7
ZONE
cat >"$work/nsd.conf" <<CONF
server:
  ip-address: 127.0.0.1@$nsd_port
  port: $nsd_port
  username: ""
  zonesdir: "$work"
  pidfile: "$work/nsd.pid"
  database: ""
  xfrdfile: "$work/xfrd.state"
  zonelistfile: "$work/zone.list"
  chroot: ""
  server-count: 1
  verbosity: 0
  rrl-ratelimit: 0
remote-control:
  control-enable: no
zone:
  name: example.org
  zonefile: example.org.zone
CONF
nsd -d -c "$work/nsd.conf" >/dev/null 2>&1 &
pids+=($!)

resolvers="\"127.0.0.1:$nsd_port\""
if [ "$DEAD_FIRST" = 1 ]; then
    # The dead resolver: a socket bound on a port of its own, never read.
    python3 bench/forward-latency.py blackhole >"$work/dead.port" &
    pids+=($!)
    for _ in $(seq 50); do [ -s "$work/dead.port" ] && break; sleep 0.1; done
    dead_port=$(cat "$work/dead.port")
    is_count "$dead_port" || die "the dead resolver did not start"
    resolvers="\"127.0.0.1:$dead_port\", $resolvers"
fi
cat >"$work/config.json" <<CONF
{"masters": ["127.0.0.1:5050"], "listener": "127.0.0.1", "port": $our_port,
 "httpon": false, "externalon": true, "resolvers": [$resolvers], "timeout": $TIMEOUT}
CONF
"$bin" -config="$work/config.json" -state-file=demo/state.json >"$work/mesos-dns.log" 2>&1 &
pids+=($!)
sleep 1
if [ "$DEAD_FIRST" = 1 ]; then
    echo "$bin; resolvers: 127.0.0.1:$dead_port (dead), 127.0.0.1:$nsd_port (NSD); timeout $TIMEOUT s"
    python3 bench/forward-latency.py dead-first "$our_port" "$COUNT" "$RATE" $((TIMEOUT + 2))
else
    python3 bench/forward-latency.py "$nsd_port" "$our_port" "$COUNT" "$RATE"
fi

full=${FULL_SECONDS:-5}
if [ "$full" != 0 ] && command -v dnsperf >/dev/null; then
    printf 'www.example.org A\nnx.example.org A\n' >"$work/queries.txt"
    runs=("NSD directly:$nsd_port" "through us:$our_port")
    [ "$DEAD_FIRST" = 1 ] && runs=("through us:$our_port")
    echo
    echo "full speed, ${full} s each (dnsperf -c 4 -q 200; one name that exists, one NXDOMAIN)"
    printf '%-14s %10s %8s\n' path 'q/s' lost
    for run in "${runs[@]}"; do
        dnsperf -s 127.0.0.1 -p "${run##*:}" -d "$work/queries.txt" -l "$full" -c 4 -q 200 2>&1 |
            awk -v path="${run%%:*}" '/Queries lost:/ { lost = $3 } /Queries per second:/ { qps = $4 }
            END { printf "%-14s %10.0f %8d\n", path, qps, lost }'
    done
fi
