#!/usr/bin/env bash
# Live records: how long a task's start takes to reach DNS answers, and what
# the churn costs, for the release binary following a fake master's event
# stream (bench/propagation.py does one run; this runs the table).
#
#   bench/propagation.sh                       # 20k and 100k tasks, 10 and 200 events/s
#   SIZES=20000 RATES=200 bench/propagation.sh
#
# Environment: SIZES (default "20000 100000"), RATES (default "10 200"),
# DURATION seconds per run (default 20), DNSPERF_RATE queries/s from
# dnsperf meanwhile (default 20000; 0: none), MESOS_DNS_BIN.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=bench/lib.sh
. bench/lib.sh

SIZES=${SIZES:-20000 100000}
RATES=${RATES:-10 200}
DURATION=${DURATION:-20}
export DNSPERF_RATE=${DNSPERF_RATE:-20000}
[ "$DNSPERF_RATE" = 0 ] || install_missing dnsperf:dnsperf
bin=$(release_binary)
for n in $SIZES; do
    for r in $RATES; do
        python3 bench/propagation.py "$bin" "$n" "$r" "$DURATION"
    done
done
