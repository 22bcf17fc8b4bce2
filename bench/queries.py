#!/usr/bin/env python3
"""The dnsperf query file (and optionally an NSD zone file) from a
`mesos-dns -dump`: 50 % A of task names, 10 % AAAA (real AAAA names if any,
else NODATA on task names), 20 % SRV, 20 % NXDOMAIN, shuffled. Deterministic.

    bench/queries.py DUMP QUERIES_OUT COUNT [ZONE_OUT]
"""
import json
import random
import sys

dump, out, nq = sys.argv[1], sys.argv[2], int(sys.argv[3])
zone_out = sys.argv[4] if len(sys.argv) > 4 else None
d = json.load(open(dump))
r, domain, ttl = d["Records"], d["Domain"].strip("."), d["TTL"]
apex = domain + "."
rnd = random.Random(42)


def depth(n):  # labels below the apex
    return n[: -len(apex)].rstrip(".").count(".") + 1


# Task names: x.framework.domain (the task and its canonical name).
tasks = sorted(n for n in r["As"] if n.endswith("." + apex) and depth(n) == 2
               and not n.startswith("_"))
srvs = sorted(n for n in r["SRVs"] if depth(n) == 3 and n.split(".")[1] == "_tcp")
v6 = sorted(r["AAAAs"])
if not tasks or not srvs:
    sys.exit("dump has no task A or SRV names")
mix = [("A", 50), ("AAAA", 10), ("SRV", 20), ("NX", 20)]
lines = []
for kind, pct in mix:
    for i in range(nq * pct // 100):
        if kind == "A":
            lines.append(f"{rnd.choice(tasks)} A")
        elif kind == "AAAA":
            lines.append(f"{rnd.choice(v6 or tasks)} AAAA")
        elif kind == "SRV":
            lines.append(f"{rnd.choice(srvs)} SRV")
        else:
            fw = rnd.choice(tasks).split(".")[1]
            lines.append(f"nx-{i}-{rnd.randrange(1 << 30):x}.{fw}.{apex} A")
rnd.shuffle(lines)
with open(out, "w") as f:
    f.write("\n".join(lines) + "\n")

if zone_out:
    mname, rname = d["Mname"], d["Rname"]
    with open(zone_out, "w") as z:
        z.write(f"$TTL {ttl}\n")
        z.write(f"{apex} IN SOA {mname} {rname} {d['Serial']} 60 600 86400 60\n")
        z.write(f"{apex} IN NS {mname}\n")
        for n in sorted(r["As"]):
            for ip in r["As"][n]:
                z.write(f"{n} {ttl} IN A {ip}\n")
        for n in sorted(r["AAAAs"]):
            for ip in r["AAAAs"][n]:
                z.write(f"{n} {ttl} IN AAAA {ip}\n")
        for n in sorted(r["SRVs"]):
            for v in r["SRVs"][n]:
                target, port = v.rsplit(":", 1)
                z.write(f"{n} {ttl} IN SRV 0 1 {port} {target}\n")
print(f"{len(tasks)} task names, {len(srvs)} SRV names, {len(v6)} AAAA names; "
      f"{len(lines)} queries (A 50%, AAAA 10%, SRV 20%, NXDOMAIN 20%)", file=sys.stderr)
