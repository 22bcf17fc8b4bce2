#!/usr/bin/env bash
# Zone transfers: AXFR and IXFR sizes and times, and how long real
# secondaries (NSD and Knot, told by NOTIFY) take to serve a task's start,
# for the release binary following a fake master's event stream
# (bench/transfer.py does one run; this runs the table).
#
#   bench/transfer.sh                 # 20k and 100k tasks
#   SIZES=20000 bench/transfer.sh
#
# Environment: SIZES (default "20000 100000"), EVENTS (50), INTERVAL (0.2),
# BURST (200; 0: none), REPEAT (5), KEEP=1, MESOS_DNS_BIN.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=bench/lib.sh
. bench/lib.sh

SIZES=${SIZES:-20000 100000}
had_knot=$(command -v knotd || true)
install_missing kdig:knot-dnsutils dig:bind9-dnsutils nsd:nsd knotd:knot
# The knot package's own service is not ours either (lib.sh stops nsd's).
if [ -z "$had_knot" ] && command -v systemctl >/dev/null && [ -d /run/systemd/system ]; then
    sudo=; [ "$(id -u)" -eq 0 ] || sudo=sudo
    $sudo systemctl disable --now knot >/dev/null 2>&1 || true
fi
bin=$(release_binary)
for n in $SIZES; do
    python3 bench/transfer.py "$bin" "$n"
done
