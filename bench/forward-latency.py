#!/usr/bin/env python3
"""Latency added by forwarding: the same queries asked of NSD directly and
through mesos-dns (which forwards them to that NSD), one at a time over UDP
on 127.0.0.1, paced at a fixed rate. Prints median, p90, p99 and max of each
and the difference.

Usage: forward-latency.py DIRECT_PORT THROUGH_PORT [COUNT] [RATE]
"""
import socket
import statistics
import struct
import sys
import time


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
    names = ["www.example.org", "ns1.example.org", "nope.example.org"]
    for i in range(count):
        packet = query(names[i % len(names)], i & 0xFFFF)
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


def summary(samples):
    s = sorted(samples)
    pick = lambda q: s[min(len(s) - 1, int(q * len(s)))]
    return statistics.median(s), pick(0.90), pick(0.99), s[-1]


def main():
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
