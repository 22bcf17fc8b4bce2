#!/usr/bin/env bash
# Blocking queries at scale: 10,000 held lookups while tasks start and stop
# elsewhere, for the release binary following a fake master's event stream
# (bench/watch.py does one run; this runs both ways of holding them: one
# `mesos-dns watch` on one HTTP/2 connection, and one HTTP/1.1 connection
# per lookup).
#
#   bench/watch.sh
#   TASKS=100000 WATCHES=10000 bench/watch.sh
#
# Environment: TASKS (default 20000), WATCHES (default 10000), RATE events/s
# elsewhere (default 100), DURATION seconds per phase (default 20),
# MESOS_DNS_BIN.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=bench/lib.sh
. bench/lib.sh

bin=$(release_binary)
for http1 in 0 1; do
    HTTP1=$http1 python3 bench/watch.py "$bin" "${TASKS:-20000}" "${WATCHES:-10000}" "${RATE:-100}" "${DURATION:-20}"
done
