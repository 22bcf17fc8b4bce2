#!/usr/bin/env python3
"""Propagation of live records: event sent -> first DNS answer that shows it.

A fake Mesos master on 127.0.0.1 serves a generated state (bench/gen-state.py)
as /master/state and as the operator API's event stream (POST /api/v1
SUBSCRIBE: chunked RecordIO, SUBSCRIBED then events). The server under test
follows it (stateSource "auto"). Then tasks start and stop at RATE events/s
for DURATION seconds; one event in ten starts a probe task whose name is
asked over UDP every millisecond until it resolves: the time from sending
its TASK_ADDED to that answer is its propagation time.

Usage: bench/propagation.py BINARY [TASKS] [RATE] [DURATION]
Environment: SETTLE, seconds between the first records and the first event
(default: 1 per 20,000 tasks, at least 2); ENUMERATE=1 also fetches
/v1/enumerate every 2 s meanwhile and times it (each asks for a full compile).
Prints one line of results: propagation p50/p99/max, server CPU per event,
RSS, and probes that never resolved (lost).
"""
import json
import os
import random
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

HERE = os.path.dirname(os.path.abspath(__file__))
FW = "20261122-000000-1-5050-0000-0001"
ENUMERATE = os.environ.get("ENUMERATE", "") not in ("", "0")


def v1_task(t):
    ports = t["resources"]["ports"].strip("[]").split("-")
    statuses = []
    for s in t["statuses"]:
        s = dict(s)
        s["task_id"] = {"value": t["id"]}
        statuses.append(s)
    v = {
        "name": t["name"], "task_id": {"value": t["id"]}, "framework_id": {"value": FW},
        "agent_id": {"value": t["slave_id"]}, "state": t["state"], "statuses": statuses,
        "resources": [{"name": "ports", "type": "RANGES",
                       "ranges": {"range": [{"begin": int(ports[0]), "end": int(ports[1])}]}}],
    }
    if "discovery" in t:
        v["discovery"] = t["discovery"]
    return v


def record(obj):
    body = json.dumps(obj, separators=(",", ":")).encode()
    return str(len(body)).encode() + b"\n" + body


class Master:
    def __init__(self, state):
        self.state = state
        self.streams = []
        self.lock = threading.Lock()

    def subscribed(self):
        fw = self.state["frameworks"][0]
        return record({"type": "SUBSCRIBED", "subscribed": {
            "heartbeat_interval_seconds": 15,
            "get_state": {
                "get_frameworks": {"frameworks": [{"framework_info": {
                    "id": {"value": FW}, "name": fw["name"], "hostname": fw["hostname"]}}]},
                "get_agents": {"agents": [{"agent_info": {"id": {"value": a["id"]}, "hostname": a["hostname"]},
                                           "pid": a["pid"]} for a in self.state["slaves"]]},
                "get_tasks": {"tasks": [v1_task(t) for t in fw["tasks"]]},
            }}})

    def send(self, event):
        data = record(event)
        chunk = b"%x\r\n%s\r\n" % (len(data), data)
        with self.lock:
            for s in list(self.streams):
                try:
                    s.write(chunk)
                    s.flush()
                except OSError:
                    self.streams.remove(s)


def handler(master):
    class H(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args):
            pass

        def do_GET(self):
            body = json.dumps(master.state).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_POST(self):
            call = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))) or b"{}")
            if call.get("type") == "GET_MASTER":
                body = json.dumps({"type": "GET_MASTER", "get_master": {"master_info": {
                    "pid": master.state["leader"], "version": "1.8.0"}}}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
                return
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            first = master.subscribed()
            self.wfile.write(b"%x\r\n%s\r\n" % (len(first), first))
            self.wfile.flush()
            with master.lock:
                master.streams.append(self.wfile)
            while True:
                time.sleep(3600)
    return H


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def query(sock, name, qid):
    q = struct.pack(">HHHHHH", qid, 0x0100, 1, 0, 0, 0)
    for label in name.rstrip(".").split("."):
        q += bytes([len(label)]) + label.encode()
    return q + b"\x00" + struct.pack(">HH", 1, 1)


def answers(resp):
    return len(resp) >= 12 and (resp[3] & 15) == 0 and struct.unpack(">H", resp[6:8])[0] > 0


def resolved_after(dns, name, sent, deadline):
    """Ask `name` every millisecond until it resolves; the time since `sent`."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.settimeout(0.05)
    qid = random.randrange(65536)
    while time.monotonic() < deadline:
        sock.sendto(query(sock, name, qid), dns)
        try:
            if answers(sock.recv(4096)):
                return time.monotonic() - sent
        except socket.timeout:
            pass
        time.sleep(0.001)
    return None


def cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss_mib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def start_master(tasks):
    """A fake master on a free loopback port serving a generated state of
    `tasks` tasks: (state, master, its port)."""
    state = json.loads(subprocess.check_output([sys.executable, os.path.join(HERE, "gen-state.py"), str(tasks)]))
    mport = free_port()
    state["leader"] = f"master@127.0.0.1:{mport}"
    master = Master(state)
    server = ThreadingHTTPServer(("127.0.0.1", mport), handler(master))
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return state, master, mport


def main():
    binary = sys.argv[1]
    tasks = int(sys.argv[2]) if len(sys.argv) > 2 else 20000
    rate = float(sys.argv[3]) if len(sys.argv) > 3 else 10
    duration = float(sys.argv[4]) if len(sys.argv) > 4 else 20
    state, master, mport = start_master(tasks)

    dport = free_port()
    work = tempfile.mkdtemp(prefix="propagation-")
    config = os.path.join(work, "config.json")
    with open(config, "w") as f:
        hport = free_port()
        json.dump({"masters": [f"127.0.0.1:{mport}"], "listener": "127.0.0.1", "port": dport,
                   "httpon": bool(ENUMERATE), "httpport": hport, "httpListener": "127.0.0.1",
                   "externalon": False, "refreshSeconds": 60, "stateTimeoutSeconds": 60}, f)
    log = open(os.path.join(work, "server.log"), "w")
    proc = subprocess.Popen([binary, "-config", config] + os.environ.get("SERVER_ARGS", "").split(),
                            stdout=log, stderr=log)
    dns = ("127.0.0.1", dport)
    try:
        if resolved_after(dns, "leader.mesos", time.monotonic(), time.monotonic() + 120) is None:
            sys.exit("the server did not load its first records in 120 s")
        # Let the server index the records by part (about 1.5 s at 100,000
        # tasks): until then a change waits for it.
        time.sleep(float(os.environ.get("SETTLE", max(2, tasks // 20000 + 1))))
        agents = state["slaves"]
        running = [t["id"] for t in state["frameworks"][0]["tasks"]]
        # Queries for the names in service, from dnsperf, meanwhile (when
        # DNSPERF_RATE is set): every answer must come.
        perf = None
        qps = int(os.environ.get("DNSPERF_RATE", "0"))
        if qps:
            qfile = os.path.join(work, "queries.txt")
            with open(qfile, "w") as f:
                for app in range(0, tasks // 10, max(1, tasks // 10000)):
                    f.write(f"app-{app}.marathon.mesos A\n_app-{app}._tcp.marathon.mesos SRV\n")
            perf = subprocess.Popen(["dnsperf", "-s", "127.0.0.1", "-p", str(dport), "-d", qfile,
                                     "-l", str(int(duration)), "-Q", str(qps), "-c", "2", "-q", "200"],
                                    stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        # With ENUMERATE=1, /v1/enumerate is fetched every 2 s meanwhile
        # (each asks for a full compile): request → whole body.
        fetches, done = [], threading.Event()
        def enumerate_meanwhile():
            while not done.wait(2):
                asked = time.monotonic()
                urllib.request.urlopen(f"http://127.0.0.1:{hport}/v1/enumerate", timeout=60).read()
                fetches.append(time.monotonic() - asked)
        if ENUMERATE:
            threading.Thread(target=enumerate_meanwhile, daemon=True).start()
        cpu0, t0 = cpu_seconds(proc.pid), time.monotonic()
        times, lost, events, n = [], 0, 0, 0
        slow = []
        probes = []
        while time.monotonic() - t0 < duration:
            due = t0 + events / rate
            delay = due - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            n += 1
            if n % 2:
                # A task starts; one in five of them is a probe, timed.
                agent = agents[n % len(agents)]
                tid = f"probe-{n}.{n:08x}"
                name = f"probe-{n}"
                task = {"id": tid, "name": name, "slave_id": agent["id"], "state": "TASK_RUNNING",
                        "resources": {"ports": f"[{40000 + n % 20000}-{40000 + n % 20000}]"},
                        "statuses": [{"state": "TASK_RUNNING", "timestamp": time.time()}]}
                sent = time.monotonic()
                master.send({"type": "TASK_ADDED", "task_added": {"task": v1_task(task)}})
                running.append(tid)
                if n % 10 == 1:
                    probes.append((f"{name}.marathon.mesos", sent))
            else:
                # A task stops.
                tid = running.pop(random.randrange(len(running)))
                master.send({"type": "TASK_UPDATED", "task_updated": {
                    "framework_id": {"value": FW}, "state": "TASK_KILLED",
                    "status": {"task_id": {"value": tid}, "state": "TASK_KILLED", "timestamp": time.time()}}})
            events += 1
            # Time the probes sent so far (while later events keep coming).
            while probes and len(probes) > 0:
                name, sent = probes.pop(0)
                took = resolved_after(dns, name, sent, sent + 5)
                if took is None:
                    lost += 1
                else:
                    times.append(took)
                    if took > 0.1:
                        slow.append(f"{sent - t0:.1f}s:{took * 1000:.0f}ms")
        elapsed = time.monotonic() - t0
        cpu = cpu_seconds(proc.pid) - cpu0
        done.set()
        if fetches:
            fetches.sort()
            enumerated = f" enumerate(n={len(fetches)} p50={fetches[len(fetches) // 2] * 1000:.0f}ms max={fetches[-1] * 1000:.0f}ms)"
        else:
            enumerated = ""
        dns_lost = ""
        if perf:
            out = perf.communicate()[0]
            sent = [l for l in out.splitlines() if "Queries sent" in l or "Queries lost" in l]
            dns_lost = " dnsperf(" + "; ".join(l.strip() for l in sent) + ")"
        times.sort()
        pct = lambda p: times[min(len(times) - 1, int(p * len(times)))] * 1000 if times else float("nan")
        print(f"tasks={tasks} rate={rate:g}/s events={events} probes={len(times) + lost} "
              f"p50={pct(0.5):.1f}ms p99={pct(0.99):.1f}ms max={(times[-1] * 1000 if times else float('nan')):.1f}ms "
              f"cpu_per_event={cpu / max(events, 1) * 1000:.2f}ms cpu_cores={cpu / elapsed:.3f} "
              f"rss={rss_mib(proc.pid):.0f}MiB lost={lost}"
              + dns_lost + enumerated + (f" slow(at:took)={','.join(slow)}" if slow else ""))
    finally:
        proc.terminate()
        proc.wait()
        if os.environ.get("KEEP"):
            print(f"server log: {log.name}", file=sys.stderr)


if __name__ == "__main__":
    main()
