#!/usr/bin/env python3
"""Blocking queries at scale: 10,000 held lookups while the cluster churns.

A fake Mesos master (bench/propagation.py's) streams a generated state of
TASKS tasks to the release binary (stateSource "auto", HTTP on). Tasks
start and stop elsewhere at RATE events/s throughout. Three phases of
DURATION seconds each:

1. churn alone: the server's CPU (cores) and RSS;
2. the same with WATCHES held lookups on distinct names that do not change
   (`/v1/hosts/watch-N.marathon.mesos?index=…`): CPU, RSS, and how many of
   them returned (none should);
3. the same, while every 0.2 s a probe task starts whose name a held lookup
   waits on: the time from its TASK_ADDED to that lookup's answer.

The held lookups are those of one `mesos-dns watch` whose template asks for
each name (all on one HTTP/2 connection); with HTTP1=1, one HTTP/1.1
connection per lookup instead.

Usage: bench/watch.py BINARY [TASKS] [WATCHES] [RATE] [DURATION]
Prints one line: CPU and RSS per phase, early returns, probe p50/p99/max.
"""
import asyncio
import json
import os
import resource
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from propagation import FW, cpu_seconds, free_port, rss_mib, start_master, v1_task  # noqa: E402

HTTP1 = os.environ.get("HTTP1", "") not in ("", "0")


async def get(port, path):
    """One HTTP/1.1 GET on its own connection: (status, index header, body)."""
    r, w = await asyncio.open_connection("127.0.0.1", port)
    try:
        w.write(f"GET {path} HTTP/1.1\r\nHost: bench\r\n\r\n".encode())
        await w.drain()
        head = (await r.readuntil(b"\r\n\r\n")).decode()
        lines = head.split("\r\n")
        headers = {k.lower(): v for k, v in (l.split(": ", 1) for l in lines[1:] if ": " in l)}
        body = await r.readexactly(int(headers.get("content-length", "0")))
        return int(lines[0].split()[1]), int(headers.get("x-mesos-dns-index", "0")), body
    finally:
        w.close()


def changes_logged(work):
    """How many changed answers the watch command has logged."""
    try:
        with open(os.path.join(work, "watch.log")) as f:
            return sum(1 for line in f if " changed:" in line)
    except OSError:
        return 0


def task_event(name, agent):
    """TASK_ADDED for a running task `name` (its id: `name.1`)."""
    task = {"id": f"{name}.1", "name": name, "slave_id": agent["id"], "state": "TASK_RUNNING",
            "resources": {"ports": "[40000-40000]"},
            "statuses": [{"state": "TASK_RUNNING", "timestamp": time.time()}]}
    return {"type": "TASK_ADDED", "task_added": {"task": v1_task(task)}}


def kill_event(tid):
    return {"type": "TASK_UPDATED", "task_updated": {
        "framework_id": {"value": FW}, "state": "TASK_KILLED",
        "status": {"task_id": {"value": tid}, "state": "TASK_KILLED", "timestamp": time.time()}}}


async def main():
    binary = sys.argv[1]
    tasks = int(sys.argv[2]) if len(sys.argv) > 2 else 20000
    watches = int(sys.argv[3]) if len(sys.argv) > 3 else 10000
    rate = float(sys.argv[4]) if len(sys.argv) > 4 else 100
    duration = float(sys.argv[5]) if len(sys.argv) > 5 else 20
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))

    state, master, mport = start_master(tasks)

    hport = free_port()
    work = tempfile.mkdtemp(prefix="watch-bench-")
    config = os.path.join(work, "config.json")
    with open(config, "w") as f:
        json.dump({"masters": [f"127.0.0.1:{mport}"], "listener": "127.0.0.1", "port": free_port(),
                   "httpon": True, "httpport": hport, "httpListener": "127.0.0.1",
                   "externalon": False, "refreshSeconds": 60, "stateTimeoutSeconds": 60}, f)
    log = open(os.path.join(work, "server.log"), "w")
    proc = subprocess.Popen([binary, "-config", config], stdout=log, stderr=log)
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                status, _, body = await get(hport, "/v1/hosts/leader.mesos")
                if status == 200 and b'"ip":""' not in body:
                    break
            except OSError:
                pass
            if time.monotonic() > deadline:
                sys.exit("the server did not load its first records in 120 s")
            await asyncio.sleep(0.1)
        await asyncio.sleep(max(2, tasks // 20000 + 1))  # the per-part index

        agents = state["slaves"]
        running = []
        stop = asyncio.Event()

        async def churn():
            n = 0
            t0 = time.monotonic()
            while not stop.is_set():
                n += 1
                due = t0 + n / rate
                await asyncio.sleep(max(0, due - time.monotonic()))
                if n % 2 or not running:
                    name = f"churn-{n}"
                    master.send(task_event(name, agents[n % len(agents)]))
                    running.append(f"{name}.1")
                else:
                    master.send(kill_event(running.pop(0)))

        async def measure(what):
            cpu0, t0 = cpu_seconds(proc.pid), time.monotonic()
            await asyncio.sleep(duration)
            cores = (cpu_seconds(proc.pid) - cpu0) / (time.monotonic() - t0)
            return f"{what}: cores={cores:.3f} rss={rss_mib(proc.pid):.0f}MiB"

        churner = asyncio.create_task(churn())
        results = [await measure("churn")]
        rss_before = rss_mib(proc.pid)

        # Held lookups on names that do not change.
        async def index_of(path):
            return (await get(hport, path))[1]

        paths = [f"/v1/hosts/watch-{i}.marathon.mesos" for i in range(watches)]
        indexes = []
        for k in range(0, watches, 500):
            indexes += await asyncio.gather(*(index_of(p) for p in paths[k:k + 500]))
        held = []
        watcher = None
        if HTTP1:
            # One HTTP/1.1 connection per held lookup.
            for k in range(0, watches, 500):
                for p, i in zip(paths[k:k + 500], indexes[k:k + 500]):
                    held.append(asyncio.create_task(get(hport, f"{p}?index={i}&wait=10m")))
                await asyncio.sleep(0.05)
        else:
            # `mesos-dns watch` holding them all on one HTTP/2 connection.
            tmpl = os.path.join(work, "watch.tmpl")
            with open(tmpl, "w") as f:
                for i in range(watches):
                    f.write(f'{{{{ hosts("watch-{i}.marathon.mesos") | length }}}}\n')
            out = os.path.join(work, "watch.out")
            wlog = open(os.path.join(work, "watch.log"), "w")
            watcher = subprocess.Popen([binary, "watch", "--api", f"http://127.0.0.1:{hport}",
                                        "--template", tmpl, "--out", out], stdout=wlog, stderr=wlog)
        while True:
            status, _, body = await get(hport, "/metrics")
            line = next((l for l in body.decode().splitlines() if l.startswith("mesos_dns_watched_names ")), "")
            if line and float(line.split()[1]) >= watches:
                break
            await asyncio.sleep(0.2)
        held_rss = rss_mib(proc.pid)
        changes_before = changes_logged(work)
        results.append(await measure(f"{watches} held") + f" (+{held_rss - rss_before:.0f}MiB held)")
        early = sum(1 for h in held if h.done())
        if watcher:
            early = changes_logged(work) - changes_before

        # Probes: a held lookup on a name, then its task starts.
        times = []
        lost = 0

        async def probe(k):
            nonlocal lost
            name = f"probe-{k}"
            path = f"/v1/hosts/{name}.marathon.mesos"
            index = await index_of(path)
            waiter = asyncio.create_task(get(hport, f"{path}?index={index}&wait=10m"))
            await asyncio.sleep(0.05)
            sent = time.monotonic()
            master.send(task_event(name, agents[k % len(agents)]))
            try:
                await asyncio.wait_for(waiter, 5)
                times.append(time.monotonic() - sent)
            except asyncio.TimeoutError:
                lost += 1

        cpu0, t0 = cpu_seconds(proc.pid), time.monotonic()
        probes = []
        k = 0
        while time.monotonic() - t0 < duration:
            probes.append(asyncio.create_task(probe(k)))
            k += 1
            await asyncio.sleep(0.2)
        await asyncio.gather(*probes)
        cores = (cpu_seconds(proc.pid) - cpu0) / (time.monotonic() - t0)
        stop.set()
        await churner
        times.sort()
        pct = lambda p: times[min(len(times) - 1, int(p * len(times)))] * 1000 if times else float("nan")
        results.append(f"probes: cores={cores:.3f} n={len(times)} lost={lost} "
                       f"p50={pct(0.5):.1f}ms p99={pct(0.99):.1f}ms max={(times[-1] * 1000 if times else float('nan')):.1f}ms")
        print(f"tasks={tasks} watches={watches} ({'HTTP/1.1' if HTTP1 else 'HTTP/2, one watch command'}) rate={rate:g}/s early_returns={early} | " + " | ".join(results))
        for h in held:
            h.cancel()
        if watcher:
            watcher.terminate()
    finally:
        proc.terminate()
        proc.wait()


if __name__ == "__main__":
    asyncio.run(main())
