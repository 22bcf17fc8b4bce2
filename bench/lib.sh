# Shared by the bench/ scripts: source it after `cd` to the repository root.
# shellcheck shell=bash

PATH=$PATH:/usr/sbin:/sbin

say() { printf '== %s\n' "$*" >&2; }
die() { printf '%s: %s\n' "${0##*/}" "$*" >&2; exit 1; }
# Whether $1 is a positive integer.
is_count() { [[ $1 =~ ^[1-9][0-9]*$ ]]; }

# install_missing COMMAND:PACKAGE...: apt-get install the packages whose
# command is missing (with sudo when not root).
install_missing() {
    local pair missing=() sudo=
    for pair in "$@"; do
        command -v "${pair%%:*}" >/dev/null || missing+=("${pair#*:}")
    done
    ((${#missing[@]})) || return 0
    say "installing ${missing[*]}"
    [ "$(id -u)" -eq 0 ] || sudo=sudo
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
    # The nsd package's own service is not ours: stop it if it started.
    if [[ " ${missing[*]} " == *" nsd "* ]] && command -v systemctl >/dev/null &&
        [ -d /run/systemd/system ]; then
        $sudo systemctl disable --now nsd >/dev/null 2>&1 || true
    fi
}

# The server binary: MESOS_DNS_BIN, or target/release/mesos-dns built now.
release_binary() {
    local bin
    if [ -n "${MESOS_DNS_BIN:-}" ]; then
        bin=$MESOS_DNS_BIN
    else
        say "building the release binary"
        cargo build --release --quiet
        bin=${CARGO_TARGET_DIR:-$PWD/target}/release/mesos-dns
    fi
    [ -x "$bin" ] || die "no binary at $bin"
    printf '%s\n' "$bin"
}

# Stop a process (if running): TERM, up to 5 s, then KILL; reap it.
stop_pid() {
    local pid=$1
    [ -n "$pid" ] || return 0
    if kill -0 "$pid" 2>/dev/null; then
        kill "$pid" 2>/dev/null || true
        for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        kill -9 "$pid" 2>/dev/null || true
    fi
    wait "$pid" 2>/dev/null || true
}

# A port free for both UDP and TCP on 127.0.0.1.
free_port() {
    python3 - <<'PY'
import socket
while True:
    t = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    t.bind(("127.0.0.1", 0))
    port = t.getsockname()[1]
    u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        u.bind(("127.0.0.1", port))
    except OSError:
        continue
    print(port)
    break
PY
}

# proc_kb PID FIELD: a /proc/PID/status field (VmRSS, VmHWM) in kB.
proc_kb() {
    local v
    v=$(awk -v k="$2:" '$1 == k { print $2 }' "/proc/$1/status" 2>/dev/null) || true
    [ -n "$v" ] || die "cannot read $2 of process $1"
    printf '%s\n' "$v"
}

# state_file N: the generated state of N tasks, cached under STATE_DIR
# (keyed by the generator's content, so a changed generator makes new
# files). Prints its path.
state_file() {
    local n=$1 f key
    key=$(cksum <bench/gen-state.py | cut -d' ' -f1)
    f="$STATE_DIR/state-$n-$key.json"
    if [ ! -s "$f" ]; then
        say "generating a $n-task state"
        python3 bench/gen-state.py "$n" >"$f.tmp"
        mv "$f.tmp" "$f"
    fi
    printf '%s\n' "$f"
}
