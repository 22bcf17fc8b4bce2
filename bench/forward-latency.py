#!/usr/bin/env python3
"""Latency added by forwarding, over UDP on 127.0.0.1.

  forward-latency.py DIRECT_PORT THROUGH_PORT [COUNT] [RATE]
      The same queries asked of NSD directly and through mesos-dns (which
      forwards them to that NSD), one at a time, paced at a fixed rate.
      Prints median, p90, p99 and max of each and the difference.
  forward-latency.py dead-first THROUGH_PORT COUNT RATE WAIT
      mesos-dns whose first resolver is dead: three queries at once, then
      COUNT queries sent at RATE without waiting for answers (open loop,
      so a query that waits out a timeout holds up no other). Prints each
      part's median, p90, p99, max and lost (no answer within WAIT s).
  forward-latency.py blackhole
      A dead resolver: binds a UDP socket on 127.0.0.1, prints its port,
      and never reads it (no answer, no ICMP) until killed.
"""
import socket
import statistics
import struct
import sys
import threading
import time

NAMES = ["www.example.org", "ns1.example.org", "nope.example.org"]


def query(name, qid):
    packet = struct.pack(">HHHHHH", qid, 0x0100, 1, 0, 0, 0)
    for label in name.strip(".").split("."):
        packet += bytes([len(label)]) + label.encode()
    return packet + b"\x00" + struct.pack(">HH", 1, 1)


def measure(port, count, rate):
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.settimeout(2.0)
    sock.connect(("127.0.0.1", port))
    samples, lost = [], 0
    interval = 1.0 / rate
    for i in range(count):
        packet = query(NAMES[i % len(NAMES)], i & 0xFFFF)
        start = time.perf_counter()
        sock.send(packet)
        try:
            while True:
                data = sock.recv(4096)
                if data[:2] == packet[:2]:
                    break
            samples.append((time.perf_counter() - start) * 1e6)
        except socket.timeout:
            lost += 1
        spare = interval - (time.perf_counter() - start)
        if spare > 0:
            time.sleep(spare)
    return samples, lost


def measure_open(port, count, rate, wait):
    """COUNT queries (ids 0..COUNT-1) sent at RATE whatever the answers;
    the round trips (us) of those answered within WAIT s, and how many
    were not."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
    sock.settimeout(0.1)
    sock.connect(("127.0.0.1", port))
    sent, took = [None] * count, [None] * count
    answered = threading.Event()
    done = [0]

    def receive():
        while not answered.is_set():
            try:
                data = sock.recv(4096)
            except socket.timeout:
                continue
            at = time.perf_counter()
            (qid,) = struct.unpack(">H", data[:2])
            if qid < count and sent[qid] is not None and took[qid] is None:
                took[qid] = (at - sent[qid]) * 1e6
                done[0] += 1
                if done[0] == count:
                    answered.set()

    receiver = threading.Thread(target=receive, daemon=True)
    receiver.start()
    interval, start = 1.0 / rate, time.perf_counter()
    for i in range(count):
        spare = start + i * interval - time.perf_counter()
        if spare > 0:
            time.sleep(spare)
        sent[i] = time.perf_counter()
        sock.send(query(NAMES[i % len(NAMES)], i))
    answered.wait(wait)
    answered.set()
    receiver.join()
    samples = [t for t in took if t is not None]
    return samples, count - len(samples)


def summary(samples):
    s = sorted(samples)
    pick = lambda q: s[min(len(s) - 1, int(q * len(s)))]
    return statistics.median(s), pick(0.90), pick(0.99), s[-1]


def ms_row(label, samples, lost):
    if not samples:
        print(f"{label:28} no answer  lost {lost}")
        return
    m, p90, p99, top = (v / 1000 for v in summary(samples))
    print(f"{label:28} median {m:8.2f} ms  p90 {p90:8.2f} ms  p99 {p99:8.2f} ms  "
          f"max {top:8.2f} ms  lost {lost}")


def dead_first(through, count, rate, wait):
    if count > 65536:
        sys.exit("dead-first: COUNT is at most 65536 (one message id each)")
    samples, lost = measure_open(through, 3, 1000, wait)
    ms_row("first 3 queries, at once", samples, lost)
    samples, lost = measure_open(through, count, rate, wait)
    ms_row(f"then {count} at {rate:g} q/s", samples, lost)


def blackhole():
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    print(sock.getsockname()[1], flush=True)
    while True:
        time.sleep(3600)


def main():
    if sys.argv[1:2] == ["blackhole"]:
        return blackhole()
    if sys.argv[1:2] == ["dead-first"]:
        through, count, rate, wait = sys.argv[2:6]
        return dead_first(int(through), int(count), float(rate), float(wait))
    direct, through = int(sys.argv[1]), int(sys.argv[2])
    count = int(sys.argv[3]) if len(sys.argv) > 3 else 5000
    rate = float(sys.argv[4]) if len(sys.argv) > 4 else 1000
    measure(through, 200, rate)  # warm up (TCP pools, caches)
    rows = {}
    for label, port in (("direct to NSD", direct), ("through mesos-dns", through)):
        samples, lost = measure(port, count, rate)
        rows[label] = summary(samples)
        print(f"{label:18} median {rows[label][0]:7.1f} us  p90 {rows[label][1]:7.1f} us  "
              f"p99 {rows[label][2]:7.1f} us  max {rows[label][3]:8.1f} us  lost {lost}")
    d, t = rows["direct to NSD"], rows["through mesos-dns"]
    print(f"{'added by forwarding':18} median {t[0] - d[0]:7.1f} us  p90 {t[1] - d[1]:7.1f} us  "
          f"p99 {t[2] - d[2]:7.1f} us")


if __name__ == "__main__":
    main()
