//! `ptrOn`: reverse lookups for the addresses the zone hands out: a task's
//! own address names the task (`c.f.D.`; an agent's address that several
//! host-networked tasks share names each of them), a master's names
//! `masterN.D.`, ours names `SOAMname`; IPv4 and IPv6; the same polled and
//! streamed. Other reverse names, and everything with the key off, are
//! forwarded (here: refused, no forwarder).

use std::collections::BTreeSet;
use std::net::{IpAddr, SocketAddr};

use hickory_proto::op::ResponseCode;
use hickory_proto::rr::{RData, RecordType};
use serde_json::json;

use crate::harness::operator::{self, framework_id};
use crate::harness::*;
use crate::stream::{following, running_task};
use crate::transfer::{request, transfer};

/// The names a reverse lookup of `ip` gives (and the rcode).
fn ptr(addr: SocketAddr, ip: &str) -> (ResponseCode, BTreeSet<String>) {
    let ip: IpAddr = ip.parse().unwrap();
    let name = mesos_dns::proto::reverse_name(ip);
    let m = udp(addr, &name, RecordType::PTR, Some(4096));
    let names = m
        .answers
        .iter()
        .filter_map(|r| match &r.data {
            RData::PTR(p) => Some(p.0.to_ascii()),
            _ => None,
        })
        .collect();
    (m.metadata.response_code, names)
}

fn set(names: &[&str]) -> BTreeSet<String> {
    names.iter().map(|n| (*n).to_owned()).collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn reverse_lookups_name_tasks_masters_and_us() {
    let config = json!({"ptrOn": true, "allowTransferFrom": ["127.0.0.1"]});
    let Cluster { master: _m, running, addr } = cluster(config).await;
    // A task's own (container) address, IPv4 and IPv6.
    assert_eq!(
        ptr(addr, "10.3.0.3"),
        (ResponseCode::NoError, set(&["nginx-6ud99-0.marathon.mesos."]))
    );
    let toy = set(&["toy-store-go588-3.ipv6-framework.mesos."]);
    assert_eq!(ptr(addr, "12.0.1.2").1, toy);
    assert_eq!(ptr(addr, "fd01:b::1:8000:2").1, toy);
    // An agent's address shared by host-networked tasks: one PTR each.
    let shared = ptr(addr, "1.2.3.11").1;
    for task in ["big-dog-4dfjd-0.marathon.mesos.", "liquor-store-4dfjd-0.marathon.mesos."] {
        assert!(shared.contains(task), "{task} in {shared:?}");
    }
    assert!(shared.iter().all(|n| !n.contains(".slave.")), "{shared:?}");
    assert!(!shared.contains("big.dog-4dfjd-0.marathon.mesos."), "no legacy raw name");
    // The master (the fake one, on 127.0.0.1, leading), and us (the SOA's
    // name server) on the listener.
    assert_eq!(ptr(addr, "127.0.0.1").1, set(&["master0.mesos.", "ns1.mesos."]));
    // An address only an agent has, or none: not ours to answer.
    assert_eq!(ptr(addr, "1.2.3.10").0, ResponseCode::Refused);
    assert_eq!(ptr(addr, "192.0.2.1").0, ResponseCode::Refused);
    // dig -x reads it.
    let out = std::process::Command::new("dig")
        .args([
            &format!("@{}", addr.ip()),
            "-p",
            &addr.port().to_string(),
            "-x",
            "10.3.0.3",
            "+short",
        ])
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "nginx-6ud99-0.marathon.mesos.");
    // Reverse names are not part of the zone's transfers nor `/v1/axfr`.
    let s = running.current.load_full().unwrap();
    let axfr = serde_json::to_string(&s.axfr_records()).unwrap();
    assert!(!axfr.contains("arpa"), "{axfr}");
    let (_, records) = transfer(addr, &request("mesos.", None)).await;
    assert!(records.len() > 10 && records.iter().all(|r| !r.name.to_ascii().contains("arpa")));
    running.shutdown().await;

    // With the key off (the default): forwarded as before.
    let Cluster { master: _m, running, addr } = cluster(json!({})).await;
    assert_eq!(ptr(addr, "10.3.0.3").0, ResponseCode::Refused);
    running.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn reverse_lookups_follow_the_stream() {
    let (master, running, doc) =
        following(FIXTURE, Api::stream(15.0), json!({"ptrOn": true})).await;
    let addr = running.dns_addr.unwrap();
    let agent = doc["slaves"][0]["id"].as_str().unwrap();
    let mut task = running_task("ptr.1", "ptrweb", agent, 31900);
    task["statuses"][0]["container_status"] =
        json!({"network_infos": [{"ip_addresses": [{"ip_address": "10.77.0.5"}]}]});
    master.state().send(&operator::task_added(&task, &framework_id(&doc, 0)));
    wait_for(5, "the new task's PTR", || ptr(addr, "10.77.0.5").0 == ResponseCode::NoError).await;
    let (_, names) = ptr(addr, "10.77.0.5");
    assert_eq!(names.len(), 1, "{names:?}");
    assert!(names.iter().all(|n| n.starts_with("ptrweb-")), "{names:?}");
    master.state().send(&operator::task_updated(
        &framework_id(&doc, 0),
        "ptr.1",
        agent,
        "TASK_KILLED",
    ));
    wait_for(5, "the PTR gone", || ptr(addr, "10.77.0.5").0 == ResponseCode::Refused).await;
    running.shutdown().await;
}
