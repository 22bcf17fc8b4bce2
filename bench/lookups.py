#!/usr/bin/env python3
"""HTTP lookups, one after another on one keep-alive connection.

Starts BINARY on the bundled demo state (HTTP on a free loopback port),
then asks /v1/hosts/web.marathon.mesos and /v1/services/_web._tcp.marathon.mesos
N times (with ApacheBench, `ab`, when installed: 4 keep-alive connections;
otherwise alternately on one connection from Python) and prints the
requests per second and the server's
CPU per request (the figure to compare: the client here is slower than the
server). Meant to be paired against another build: farm-bench --vs.

Usage: bench/lookups.py BINARY [N]
"""
import http.client
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "bench"))
from propagation import cpu_seconds, free_port  # noqa: E402


def main():
    binary, n = sys.argv[1], int(sys.argv[2]) if len(sys.argv) > 2 else 20000
    port = free_port()
    work = tempfile.mkdtemp(prefix="lookups-")
    config = os.path.join(work, "config.json")
    with open(config, "w") as f:
        json.dump({"masters": ["127.0.0.1:5050"], "httpon": True, "httpport": port,
                   "httpListener": "127.0.0.1", "listener": "127.0.0.1", "port": free_port(),
                   "refreshSeconds": 60}, f)
    proc = subprocess.Popen([binary, "-config", config, "-state-file", os.path.join(ROOT, "demo/state.json")],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        conn = None
        deadline = time.monotonic() + 30
        while True:
            try:
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
                conn.request("GET", "/v1/hosts/web.marathon.mesos")
                if b'"ip":""' not in conn.getresponse().read():
                    break
            except OSError:
                pass
            if time.monotonic() > deadline:
                sys.exit("the server did not serve the demo in 30 s")
            time.sleep(0.05)
        paths = ["/v1/hosts/web.marathon.mesos", "/v1/services/_web._tcp.marathon.mesos"]
        cpu0 = cpu_seconds(proc.pid)
        started = time.monotonic()
        if shutil.which("ab"):
            # ApacheBench (apache2-utils): keep-alive, 4 connections, half
            # the lookups on each path.
            for path in paths:
                subprocess.run(["ab", "-q", "-k", "-c", "4", "-n", str(n // 2), f"http://127.0.0.1:{port}{path}"],
                               check=True, stdout=subprocess.DEVNULL)
        else:
            for i in range(n):
                conn.request("GET", paths[i % 2])
                r = conn.getresponse()
                r.read()
                if r.status != 200:
                    sys.exit(f"HTTP {r.status}")
        took = time.monotonic() - started
        cpu = cpu_seconds(proc.pid) - cpu0
        print(f"{n / took:.0f} lookups/s, server CPU {cpu / n * 1e6:.1f} us per lookup")
    finally:
        proc.terminate()
        proc.wait()


if __name__ == "__main__":
    main()
