#!/usr/bin/env python3
"""Zone transfers: AXFR and IXFR sizes and times, and how long real
secondaries (NSD and Knot) take to serve a change after its event.

A fake Mesos master (bench/propagation.py's) streams a generated state of
TASKS tasks to the release binary (stateSource "auto"), which serves zone
transfers of `mesos.` to 127.0.0.1 (`allowTransferFrom`) and sends NOTIFY
to two secondaries started here first, on free loopback ports: Debian's
NSD (/usr/sbin/nsd) and Knot (/usr/sbin/knotd), each in a temporary
directory, asking us for the zone (they retry every second until we
answer, on the port chosen here in advance). Then:

1. AXFR of the whole zone with dig (records, messages, bytes, its query
   time), kdig (its time) and a client here that reads it without parsing
   the records (connect -> last byte), REPEAT times each: medians. Before
   that, the time from our first answer to each secondary serving our
   serial (its first full transfer and load).
2. IXFR of one change: a task starts (TASK_ADDED), our SOA serial changes
   (UDP SOA queries), then `dig +tcp IXFR=<old serial> mesos.`: records,
   messages, bytes, time; the same for a task that stops (TASK_KILLED).
3. With the secondaries up to date, EVENTS task starts (each a new name),
   one every INTERVAL s; each name is asked over UDP (A) of ours, NSD and
   Knot every millisecond until it resolves: event sent -> first answer,
   p50/p99/max per server. NOTIFYs sent and zone transfers served meanwhile
   (from /metrics).
4. A burst of BURST task starts as fast as they can be sent: the time from
   the last event to its name being served by each server, and the NOTIFYs
   and transfers meanwhile (NOTIFY goes at most once a second per
   secondary while changes keep coming).

Usage: bench/transfer.py BINARY [TASKS]
Environment: EVENTS (50), INTERVAL (0.2), BURST (200; 0: none), REPEAT (5),
SETTLE (seconds after the first records, default: 1 per 20,000 tasks, at
least 2), SERVER_ARGS, KEEP=1 (keep the work directory: configs and every
log).
Prints a few lines of results (and our RSS, and what the secondaries'
logs show: full transfers, errors), then one line of JSON with all of them.
"""
import json
import os
import random
import re
import select
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from propagation import FW, answers, query, rss_mib, start_master, v1_task  # noqa: E402

EVENTS = int(os.environ.get("EVENTS", "50"))
INTERVAL = float(os.environ.get("INTERVAL", "0.2"))
BURST = int(os.environ.get("BURST", "200"))
REPEAT = int(os.environ.get("REPEAT", "5"))
KEEP = os.environ.get("KEEP", "") not in ("", "0")
# The longest wait for one name to be served, or a secondary to catch up.
LIMIT = 30.0

# Response rate limiting off: every poll comes from one address.
NSD_CONF = """server:
    ip-address: 127.0.0.1
    port: {port}
    do-ip4: yes
    do-ip6: no
    username: ""
    chroot: ""
    zonesdir: "{d}"
    pidfile: "{d}/nsd.pid"
    database: ""
    xfrdfile: "{d}/xfrd.state"
    xfrdir: "{d}"
    zonelistfile: "{d}/zone.list"
    logfile: "{d}/nsd.log"
    server-count: 1
    verbosity: 2
    xfrd-reload-timeout: 0
    rrl-ratelimit: 0
    rrl-whitelist-ratelimit: 0
remote-control:
    control-enable: no
zone:
    name: "mesos"
    zonefile: "{d}/mesos.zone"
    request-xfr: {pip}@{pport} NOKEY
    allow-notify: {pip} NOKEY
    min-retry-time: 1
    max-retry-time: 1
"""

# block-notify-after-transfer: without it Knot plans a NOTIFY of its own 1 s
# after each transfer, and a NOTIFY from us arriving in that second waits
# for it (see tests/it/harness/secondary.rs). The journal keeps the whole
# zone (journal-content: all): room for 100,000 tasks and their changes.
KNOT_CONF = """server:
    listen: 127.0.0.1@{port}
    rundir: {d}
    udp-workers: 1
    tcp-workers: 1
    background-workers: 1
control:
    listen: {d}/knot.sock
database:
    storage: {d}
log:
  - target: {d}/knot.log
    any: info
remote:
  - id: primary
    address: {pip}@{pport}
    block-notify-after-transfer: on
acl:
  - id: notify_from_primary
    address: {pip}
    action: notify
zone:
  - domain: mesos
    storage: {d}
    file: mesos.zone
    master: primary
    acl: notify_from_primary
    zonefile-load: none
    zonefile-sync: -1
    journal-content: all
    journal-max-usage: 2G
    retry-max-interval: 1
"""


def free_port():
    """A port free for both UDP and TCP on 127.0.0.1 (DNS needs both)."""
    while True:
        t = socket.socket()
        t.bind(("127.0.0.1", 0))
        port = t.getsockname()[1]
        u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            u.bind(("127.0.0.1", port))
            return port
        except OSError:
            continue
        finally:
            t.close()
            u.close()


def skip_name(msg, i):
    while True:
        n = msg[i]
        if n == 0:
            return i + 1
        if n & 0xC0 == 0xC0:
            return i + 2
        i += n + 1


def soa_serial(addr, timeout=0.5):
    """The SOA serial of `mesos.` as `addr` answers over UDP; None if it has
    none (SERVFAIL, REFUSED) or does not answer in time."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        sock.settimeout(timeout)
        qid = random.randrange(65536)
        sock.sendto(struct.pack(">HHHHHH", qid, 0, 1, 0, 0, 0) + b"\x05mesos\x00" + struct.pack(">HH", 6, 1), addr)
        deadline = time.monotonic() + timeout
        while True:
            sock.settimeout(max(0.001, deadline - time.monotonic()))
            m = sock.recv(65535)
            if struct.unpack(">H", m[:2])[0] == qid:
                break
    except (socket.timeout, OSError):
        return None
    finally:
        sock.close()
    if len(m) < 12 or m[3] & 15 or struct.unpack(">H", m[6:8])[0] == 0:
        return None
    i = skip_name(m, 12) + 4
    for _ in range(struct.unpack(">H", m[6:8])[0]):
        i = skip_name(m, i)
        rtype, _, _, rdlen = struct.unpack(">HHIH", m[i:i + 10])
        i += 10
        if rtype == 6:
            j = skip_name(m, skip_name(m, i))
            return struct.unpack(">I", m[j:j + 4])[0]
        i += rdlen
    return None


def answers_at_all(addr):
    """Whether `addr` answers a DNS query (any rcode) within 0.1 s."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.settimeout(0.1)
    try:
        sock.sendto(query(sock, "mesos", 7), addr)
        return len(sock.recv(4096)) >= 12
    except OSError:
        return False
    finally:
        sock.close()


class Secondary:
    """NSD or Knot in the foreground, a secondary of `mesos` from `primary`."""

    def __init__(self, kind, work, primary):
        self.kind = kind
        self.dir = os.path.join(work, kind)
        os.mkdir(self.dir)
        self.port = free_port()
        self.addr = ("127.0.0.1", self.port)
        conf = os.path.join(self.dir, f"{kind}.conf")
        with open(conf, "w") as f:
            f.write((NSD_CONF if kind == "nsd" else KNOT_CONF).format(
                port=self.port, d=self.dir, pip=primary[0], pport=primary[1]))
        argv = ["/usr/sbin/nsd", "-d", "-c", conf] if kind == "nsd" else ["/usr/sbin/knotd", "-c", conf]
        self.out = open(os.path.join(self.dir, "stderr.log"), "w")
        self.proc = subprocess.Popen(argv, cwd=self.dir, stdin=subprocess.DEVNULL, stdout=self.out, stderr=self.out)
        deadline = time.monotonic() + 10
        while not answers_at_all(self.addr):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                sys.exit(f"{kind} did not start:\n{self.log()}")
            time.sleep(0.02)

    def log(self):
        text = ""
        for name in (f"{self.kind}.log", "stderr.log"):
            try:
                with open(os.path.join(self.dir, name)) as f:
                    text += f.read()
            except OSError:
                pass
        return text

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


class Poller:
    """One thread asking one server, every millisecond, an A query for each
    name not yet served: event sent -> first answer (None: not in LIMIT s).
    A qid is the name's index, so late answers to earlier queries count."""

    def __init__(self, addr):
        self.addr = addr
        self.names, self.sent, self.took = [], [], []
        self.pending = set()
        self.lock = threading.Lock()
        self.stopped = False
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.setblocking(False)
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def add(self, name, sent):
        with self.lock:
            self.names.append(name)
            self.sent.append(sent)
            self.took.append(None)
            self.pending.add(len(self.names) - 1)
            return len(self.names) - 1

    def run(self):
        while not self.stopped:
            with self.lock:
                pending = sorted(self.pending)
            now = time.monotonic()
            for i in pending:
                if now - self.sent[i] > LIMIT:
                    with self.lock:
                        self.pending.discard(i)
                    continue
                try:
                    self.sock.sendto(query(None, self.names[i], i), self.addr)
                except OSError:
                    pass
            wake = time.monotonic() + 0.001
            while True:
                left = wake - time.monotonic()
                if left <= 0 or not select.select([self.sock], [], [], left)[0]:
                    break
                try:
                    resp = self.sock.recv(4096)
                except OSError:
                    continue
                now = time.monotonic()
                i = struct.unpack(">H", resp[:2])[0]
                with self.lock:
                    if i in self.pending and answers(resp):
                        self.took[i] = now - self.sent[i]
                        self.pending.discard(i)

    def wait(self, indexes):
        """Until every name of `indexes` is served or given up."""
        while True:
            with self.lock:
                if not self.pending.intersection(indexes):
                    return [self.took[i] for i in indexes]
            time.sleep(0.01)

    def stop(self):
        self.stopped = True
        self.thread.join()
        self.sock.close()


def stats(times):
    """p50/p99/max in ms of the served, and how many were not."""
    got = sorted(t for t in times if t is not None)
    pct = lambda p: round(got[min(len(got) - 1, int(p * len(got)))] * 1000, 1) if got else None
    return {"p50_ms": pct(0.5), "p99_ms": pct(0.99), "max_ms": round(got[-1] * 1000, 1) if got else None,
            "lost": len(times) - len(got)}


def metrics(hport):
    """The counters we report, from /metrics: {(name, labels): value}."""
    text = urllib.request.urlopen(f"http://127.0.0.1:{hport}/metrics", timeout=10).read().decode()
    out = {}
    for line in text.splitlines():
        m = re.match(r"(mesos_dns_(?:notify|zone_transfers)_total)\{(.*)\} (\S+)", line)
        if m:
            labels = tuple(sorted(re.findall(r'(\w+)="([^"]*)"', m.group(2))))
            out[(m.group(1), labels)] = float(m.group(3))
    return out


def counted(before, after, names):
    """The counters' growth between two scrapes, by secondary (its name in
    `names`, by address) and outcome, and by transfer type and outcome."""
    notify, xfr = {}, {}
    for key, v in after.items():
        d = int(v - before.get(key, 0))
        labels = dict(key[1])
        if key[0] == "mesos_dns_notify_total":
            notify.setdefault(names.get(labels["secondary"], labels["secondary"]), {})[labels["outcome"]] = d
        elif d:
            xfr[f"{labels['type'] or '-'}/{labels['outcome']}"] = d
    return {"notify": notify, "transfers": xfr}


def xfr(tool, port, qtype):
    """One transfer of `mesos.` from ours: {records, messages, bytes, ms
    (the tool's own time), wall_ms}. dig: `;; XFR size: N records
    (messages M, bytes B)`, `;; Query time: T msec`; kdig: `;; Received B B
    (M messages, N records)`, `;; ... in T ms`."""
    if tool == "dig":
        argv = ["dig", "@127.0.0.1", "-p", str(port), "+tcp", "+noall", "+stats", qtype, "mesos."]
    else:
        argv = ["kdig", "@127.0.0.1", "-p", str(port), "+tcp", "+noall", "+stats", qtype, "mesos."]
    t = time.monotonic()
    out = subprocess.run(argv, capture_output=True, text=True, timeout=300).stdout
    wall = time.monotonic() - t
    r = {"wall_ms": round(wall * 1000, 1)}
    if tool == "dig":
        m = re.search(r"XFR size: (\d+) records \(messages (\d+), bytes (\d+)\)", out)
        q = re.search(r"Query time: (\d+) msec", out)
    else:
        m = re.search(r"Received (\d+) B \((\d+) messages?, (\d+) records?\)", out)
        if m:
            m = [None, m.group(3), m.group(2), m.group(1)]
        q = re.search(r" in ([\d.]+) ms", out)
    if not m or not q:
        sys.exit(f"{' '.join(argv)}: no transfer in its output:\n{out}")
    r.update(records=int(m[1]), messages=int(m[2]), bytes=int(m[3]), ms=float(q[1]))
    return r


def axfr_raw(port):
    """One AXFR of `mesos.` read without parsing the records, to time the
    transfer alone: (seconds from connect to its last byte, to its first
    message, message bytes, messages). The last message is the one that
    ends with the SOA record that starts the first."""
    q = struct.pack(">HHHHHH", 1, 0, 1, 0, 0, 0) + b"\x05mesos\x00" + struct.pack(">HH", 252, 1)
    t = time.monotonic()
    sock = socket.create_connection(("127.0.0.1", port), timeout=60)
    try:
        sock.sendall(struct.pack(">H", len(q)) + q)
        buf, pos, total, count, soa, first = bytearray(), 0, 0, 0, None, None
        while True:
            data = sock.recv(1 << 20)
            if not data:
                sys.exit(f"AXFR: connection closed after {count} messages")
            buf += data
            while len(buf) - pos >= 2:
                n = struct.unpack(">H", buf[pos:pos + 2])[0]
                if len(buf) - pos - 2 < n:
                    break
                m = bytes(buf[pos + 2:pos + 2 + n])
                pos += 2 + n
                total += n
                count += 1
                if m[3] & 15:
                    sys.exit(f"AXFR: rcode {m[3] & 15}")
                if soa is None:
                    first = time.monotonic() - t
                    i = skip_name(m, skip_name(m, 12) + 4)
                    rdlen = struct.unpack(">H", m[i + 8:i + 10])[0]
                    soa = m[i + 10 + rdlen - 20:i + 10 + rdlen]
                    if struct.unpack(">H", m[6:8])[0] < 2:
                        continue
                if m.endswith(soa):
                    return time.monotonic() - t, first, total, count
            del buf[:pos]
            pos = 0
    finally:
        sock.close()


def median(xs):
    xs = sorted(xs)
    return xs[len(xs) // 2]


def task_added(name, agent, port):
    task = {"id": f"{name}.1", "name": name, "slave_id": agent["id"], "state": "TASK_RUNNING",
            "resources": {"ports": f"[{port}-{port}]"},
            "statuses": [{"state": "TASK_RUNNING", "timestamp": time.time()}]}
    return {"type": "TASK_ADDED", "task_added": {"task": v1_task(task)}}


def task_killed(tid):
    return {"type": "TASK_UPDATED", "task_updated": {
        "framework_id": {"value": FW}, "state": "TASK_KILLED",
        "status": {"task_id": {"value": tid}, "state": "TASK_KILLED", "timestamp": time.time()}}}


def wait_serial(addr, serial, limit=LIMIT):
    """Until `addr` serves `serial` (or another: a newer one); seconds taken,
    or None after `limit`."""
    t = time.monotonic()
    while time.monotonic() - t < limit:
        if soa_serial(addr) == serial:
            return time.monotonic() - t
        time.sleep(0.005)
    return None


def new_serial(addr, old, limit=LIMIT):
    """Until `addr` serves a serial other than `old`: it."""
    t = time.monotonic()
    while time.monotonic() - t < limit:
        s = soa_serial(addr)
        if s is not None and s != old:
            return s
        time.sleep(0.001)
    sys.exit(f"our serial still {old} after {limit} s")


def log_summary(sec, whole):
    """Transfers and problems in a secondary's log: (counts, lines worth
    showing). A transfer of at least half the AXFR's `whole` bytes counts
    as a full one (NSD's log does not say which kind it asked for). Errors
    before its first load are those of asking before we answered."""
    lines = sec.log().splitlines()
    if sec.kind == "knot":
        done = [l for l in lines if "XFR, incoming" in l and "finished" in l]
        full = [l for l in done if "AXFR, incoming" in l]
        # Our answer to its IXFR was the whole zone.
        extra = [l for l in lines if "AXFR-style IXFR" in l]
    else:
        done = [l for l in lines if "received update to serial" in l and " bytes in " in l]
        full = [l for l in done if int(re.search(r"of (\d+) bytes", l)[1]) >= whole / 2]
        extra = []
    after = lines[lines.index(done[0]) + 1:] if done else lines
    bad = [l for l in after if re.search(r"error|warning|fail|refus|denied|ratelimit", l, re.I)
           and "signal received" not in l]
    counts = {"transfers": len(done), "full": len(full), "problems": len(bad)}
    if sec.kind == "knot":
        counts["axfr_style_ixfr"] = len(extra)
    return counts, full[:5] + extra[:5] + bad[:10]


def main():
    # Ctrl-C (even if started with SIGINT ignored) and SIGTERM stop
    # everything started here (the `finally` below).
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    binary = sys.argv[1]
    tasks = int(sys.argv[2]) if len(sys.argv) > 2 else 20000
    state, master, mport = start_master(tasks)
    agents = state["slaves"]
    work = tempfile.mkdtemp(prefix="transfer-")
    dport, hport = free_port(), free_port()
    dns = ("127.0.0.1", dport)
    started, pollers, proc = [], {}, None
    try:
        # The secondaries first: they ask for the zone every second until we answer.
        for kind in ("nsd", "knot"):
            started.append(Secondary(kind, work, dns))
        nsd, knot = started
        names = {f"127.0.0.1:{s.port}": s.kind for s in started}
        config = os.path.join(work, "config.json")
        with open(config, "w") as f:
            json.dump({"masters": [f"127.0.0.1:{mport}"], "listener": "127.0.0.1", "port": dport,
                       "httpon": True, "httpport": hport, "httpListener": "127.0.0.1",
                       "externalon": False, "refreshSeconds": 60, "stateTimeoutSeconds": 60,
                       "allowTransferFrom": ["127.0.0.1"], "notify": list(names)}, f)
        log = open(os.path.join(work, "server.log"), "w")
        t0 = time.monotonic()
        proc = subprocess.Popen([binary, "-config", config] + os.environ.get("SERVER_ARGS", "").split(),
                                stdout=log, stderr=log)
        while (serial := soa_serial(dns, 0.02)) is None:
            if proc.poll() is not None or time.monotonic() - t0 > 300:
                sys.exit(f"the server did not load its first records (log: {log.name})")
            time.sleep(0.002)
        first = time.monotonic()
        # Each secondary's first transfer (AXFR) and load, polled together.
        loaded, waiting = {}, {s.kind: s for s in started}
        while waiting:
            for kind, s in list(waiting.items()):
                if soa_serial(s.addr, 0.05) == serial:
                    loaded[kind] = round(time.monotonic() - first, 3)
                    del waiting[kind]
            if time.monotonic() - first > 300:
                sys.exit(f"{', '.join(waiting)} did not load serial {serial} in 300 s")
            time.sleep(0.002)
        time.sleep(float(os.environ.get("SETTLE", max(2, tasks // 20000 + 1))))
        rss = {"loaded": round(rss_mib(proc.pid))}
        print(f"tasks={tasks}: our first records {first - t0:.2f} s after start; the secondaries serve them "
              f"(first AXFR and load) after: " + " ".join(f"{k} +{v * 1000:.0f} ms" for k, v in loaded.items()))

        # 1. AXFR.
        runs = {tool: [xfr(tool, dport, "AXFR") for _ in range(REPEAT)] for tool in ("dig", "kdig")}
        raw = [axfr_raw(dport) for _ in range(REPEAT)]
        rss["after_axfr"] = round(rss_mib(proc.pid))
        d = runs["dig"]
        axfr = {"records": d[0]["records"], "messages": d[0]["messages"], "bytes": d[0]["bytes"],
                "raw_ms": round(median([r[0] for r in raw]) * 1000, 1),
                "raw_first_ms": round(median([r[1] for r in raw]) * 1000, 1), "raw_bytes": raw[0][2],
                "dig_ms": median([r["ms"] for r in d]), "dig_wall_ms": median([r["wall_ms"] for r in d]),
                "kdig_ms": median([r["ms"] for r in runs["kdig"]]),
                "kdig_wall_ms": median([r["wall_ms"] for r in runs["kdig"]]),
                "kdig_bytes": runs["kdig"][0]["bytes"]}
        print(f"AXFR: {axfr['records']} records, {axfr['messages']} messages, {axfr['bytes'] / 1e6:.2f} MB; "
              f"median of {REPEAT}: {axfr['raw_ms']:.0f} ms to the last byte ({axfr['raw_first_ms']:.1f} ms to "
              f"the first message), dig {axfr['dig_ms']:.0f} ms (process {axfr['dig_wall_ms']:.0f} ms), "
              f"kdig {axfr['kdig_ms']:.0f} ms (process {axfr['kdig_wall_ms']:.0f} ms)")

        # 2. IXFR of one change.
        ixfr = {}
        for what in ("start", "stop"):
            old = soa_serial(dns)
            sent = time.monotonic()
            if what == "start":
                master.send(task_added("ixfr-probe", agents[0], 39999))
            else:
                master.send(task_killed(state["frameworks"][0]["tasks"][0]["id"]))
            new = new_serial(dns, old)
            seen = time.monotonic() - sent
            r = xfr("dig", dport, f"IXFR={old}")
            k = xfr("kdig", dport, f"IXFR={old}")
            ixfr[what] = {"records": r["records"], "messages": r["messages"], "bytes": r["bytes"],
                          "dig_ms": r["ms"], "kdig_ms": k["ms"], "dig_wall_ms": r["wall_ms"],
                          "serial_ms": round(seen * 1000, 1)}
            print(f"IXFR of one task {what} (our serial {old} -> {new} {seen * 1000:.1f} ms after the event): "
                  f"{r['records']} records, {r['messages']} message(s), {r['bytes']} bytes; "
                  f"dig {r['ms']:.0f} ms, kdig {k['ms']:.1f} ms (process {r['wall_ms']:.0f} ms)")

        # 3. Event -> answer on each server, one event every INTERVAL s.
        ours = soa_serial(dns)
        for s in started:
            if wait_serial(s.addr, ours) is None:
                sys.exit(f"{s.kind} not at serial {ours} after {LIMIT} s:\n{s.log()[-3000:]}")
        servers = {"ours": dns, "nsd": nsd.addr, "knot": knot.addr}
        pollers = {k: Poller(a) for k, a in servers.items()}
        before = metrics(hport)
        t = time.monotonic()
        for i in range(EVENTS):
            delay = t + i * INTERVAL - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            name = f"xfr-probe-{i}"
            sent = time.monotonic()
            master.send(task_added(name, agents[i % len(agents)], 40000 + i))
            for p in pollers.values():
                p.add(f"{name}.marathon.mesos", sent)
        took = {k: p.wait(range(EVENTS)) for k, p in pollers.items()}
        # Let the last NOTIFYs be answered before counting.
        time.sleep(1.5)
        steady = {k: stats(v) for k, v in took.items()}
        steady.update(counted(before, metrics(hport), names))
        steady["events"] = EVENTS
        print(f"event -> answer, {EVENTS} task starts {INTERVAL * 1000:.0f} ms apart: " + "; ".join(
            f"{k} p50={v['p50_ms']}ms p99={v['p99_ms']}ms max={v['max_ms']}ms lost={v['lost']}"
            for k, v in steady.items() if k in servers))
        print("  NOTIFY: " + "; ".join(f"{k} " + " ".join(f"{o}={n}" for o, n in v.items())
                                       for k, v in steady["notify"].items())
              + "  transfers served: " + " ".join(f"{k}={v}" for k, v in steady["transfers"].items()))

        # 4. A burst.
        burst = None
        if BURST:
            ours = soa_serial(dns)
            for s in started:
                wait_serial(s.addr, ours)
            before = metrics(hport)
            start = time.monotonic()
            for i in range(BURST):
                name = f"xfr-burst-{i}"
                sent = time.monotonic()
                master.send(task_added(name, agents[i % len(agents)], 41000 + i % 1000))
            sending = sent - start
            last = {k: p.add(f"{name}.marathon.mesos", sent) for k, p in pollers.items()}
            burst = {k: pollers[k].wait([i])[0] for k, i in last.items()}
            burst = {k: (round(v * 1000, 1) if v is not None else None) for k, v in burst.items()}
            time.sleep(1.5)
            burst.update(counted(before, metrics(hport), names))
            burst.update(events=BURST, send_ms=round(sending * 1000, 1))
            print(f"burst of {BURST} task starts (sent in {sending * 1000:.0f} ms), last event -> its answer: "
                  + " ".join(f"{k}={burst[k]}ms" for k in servers))
            print("  NOTIFY: " + "; ".join(f"{k} " + " ".join(f"{o}={n}" for o, n in v.items())
                                           for k, v in burst["notify"].items())
                  + "  transfers served: " + " ".join(f"{k}={v}" for k, v in burst["transfers"].items()))

        rss["end"] = round(rss_mib(proc.pid))
        print("our RSS: " + " ".join(f"{k}={v}MiB" for k, v in rss.items()))
        logs = {}
        for s in started:
            counts, lines = log_summary(s, axfr["bytes"])
            logs[s.kind] = counts
            print(f"{s.kind} log: " + " ".join(f"{k}={v}" for k, v in counts.items()))
            for l in lines:
                print(f"  {l}")
        print(json.dumps({"tasks": tasks, "first_load_s": round(first - t0, 2), "secondary_loaded_s": loaded,
                          "axfr": axfr, "ixfr": ixfr, "steady": steady, "burst": burst,
                          "secondary_logs": logs, "rss_mib": rss},
                         separators=(",", ":")))
    finally:
        for p in pollers.values():
            p.stop()
        if proc is not None:
            proc.terminate()
            proc.wait()
        for s in started:
            s.stop()
        if KEEP:
            print(f"work directory (configs, logs): {work}", file=sys.stderr)
        else:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
