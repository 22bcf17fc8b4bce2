#!/usr/bin/env python3
"""Generate a realistic Mesos /master/state document.

Usage: gen-state.py TASKS [AGENTS] > state.json

Tasks are spread over Marathon apps (10 instances each), every task with two
host ports and a container IP; one app in ten has DiscoveryInfo with named
ports. Deterministic: the same arguments give the same document.
"""
import json
import sys


def main():
    tasks = int(sys.argv[1]) if len(sys.argv) > 1 else 20000
    agents = int(sys.argv[2]) if len(sys.argv) > 2 else max(1, tasks // 20)
    fw_id = "20261122-000000-1-5050-0000"
    slaves = []
    for a in range(agents):
        ip = f"10.{(a >> 16) & 255}.{(a >> 8) & 255}.{a & 255 or 1}"
        slaves.append({
            "id": f"{fw_id}-S{a}",
            "hostname": f"agent-{a}.cluster.example",
            "pid": f"slave(1)@{ip}:5051",
            "active": True,
        })
    out_tasks = []
    for t in range(tasks):
        app = t // 10
        a = t % agents
        port = 31000 + (t // agents) % 30000
        container_ip = f"172.{16 + (t >> 16) % 16}.{(t >> 8) & 255}.{t & 255}"
        task = {
            "id": f"app-{app}.{t:08x}-0000-11e6-8000-0242ac110002",
            "name": f"app-{app}",
            "framework_id": fw_id + "-0001",
            "slave_id": slaves[a]["id"],
            "state": "TASK_RUNNING",
            "resources": {"cpus": 0.1, "mem": 32, "ports": f"[{port}-{port + 1}]"},
            "statuses": [{
                "state": "TASK_RUNNING",
                "timestamp": 1795000000.0 + t,
                "container_status": {"network_infos": [{"ip_addresses": [{"ip_address": container_ip}]}]},
            }],
        }
        if app % 10 == 0:
            task["discovery"] = {
                "visibility": "FRAMEWORK",
                "name": f"svc-{app}",
                "ports": {"ports": [
                    {"number": 8080, "name": "http", "protocol": "tcp"},
                    {"number": 9090, "name": "metrics", "protocol": "tcp"},
                ]},
            }
        out_tasks.append(task)
    state = {
        "version": "1.8.0",
        "leader": "master@127.0.0.1:5050",
        "frameworks": [{
            "id": fw_id + "-0001",
            "name": "marathon",
            "pid": "scheduler-1@127.0.0.1:15101",
            "hostname": "master-1.cluster.example",
            "tasks": out_tasks,
        }],
        "slaves": slaves,
    }
    json.dump(state, sys.stdout, separators=(",", ":"))


if __name__ == "__main__":
    main()
