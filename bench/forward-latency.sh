#!/usr/bin/env bash
# Latency added by forwarding names outside the domain: NSD serving a small
# zone on 127.0.0.1, asked directly and through mesos-dns (the release
# binary on the demo state, forwarding to that NSD); then, when dnsperf is
# installed, both at full speed for FULL_SECONDS (default 5; 0 skips it).
#   bench/forward-latency.sh [COUNT] [RATE]
set -euo pipefail
cd "$(dirname "$0")/.."
PATH=$PATH:/usr/sbin:/sbin
missing=()
command -v nsd >/dev/null || missing+=(nsd)
command -v python3 >/dev/null || missing+=(python3)
if ((${#missing[@]})); then
  SUDO=; [ "$(id -u)" -eq 0 ] || SUDO=sudo
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
fi
cargo build --release --quiet
work=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$work"; }
trap cleanup EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
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
cat >"$work/config.json" <<CONF
{"masters": ["127.0.0.1:5050"], "listener": "127.0.0.1", "port": $our_port,
 "httpon": false, "externalon": true, "resolvers": ["127.0.0.1:$nsd_port"], "timeout": 2}
CONF
target/release/mesos-dns -config="$work/config.json" -state-file=demo/state.json >/dev/null 2>&1 &
pids+=($!)
sleep 1
python3 bench/forward-latency.py "$nsd_port" "$our_port" "${1:-5000}" "${2:-1000}"

full=${FULL_SECONDS:-5}
if [ "$full" != 0 ] && command -v dnsperf >/dev/null; then
  printf 'www.example.org A\nnx.example.org A\n' >"$work/queries.txt"
  echo
  echo "full speed, ${full} s each (dnsperf -c 4 -q 200; one name that exists, one NXDOMAIN)"
  printf '%-14s %10s %8s\n' path 'q/s' lost
  for run in "NSD directly:$nsd_port" "through us:$our_port"; do
    dnsperf -s 127.0.0.1 -p "${run##*:}" -d "$work/queries.txt" -l "$full" -c 4 -q 200 2>&1 |
      awk -v path="${run%%:*}" '/Queries lost:/ { lost = $3 } /Queries per second:/ { qps = $4 }
        END { printf "%-14s %10.0f %8d\n", path, qps, lost }'
  done
fi
