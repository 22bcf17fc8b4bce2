//! Fault injection: a master sending more than the size cap,
//! invalid UTF-8, deeply nested JSON; a TCP client that stalls mid-query;
//! ANY over plain UDP. In every case the last good records stay in service
//! and nothing grows without bound.

use std::io::{Read, Write};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::harness::*;
use hickory_proto::op::Message;
use hickory_proto::rr::RecordType;
use serde_json::json;

/// After `bad` is served for a few refreshes, the same snapshot is in
/// service and still answers.
async fn survives(master: &FakeMaster, running: &Running, bad: Behaviour) {
    let before = running.current.load_full().unwrap();
    let hits = master.hits.load(std::sync::atomic::Ordering::SeqCst);
    master.set(bad);
    for _ in 0..3 {
        running.trigger.notify_one();
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    assert!(master.hits.load(std::sync::atomic::Ordering::SeqCst) > hits, "not asked again");
    assert!(Arc::ptr_eq(&before, &running.current.load_full().unwrap()), "records replaced");
    let m = udp(running.dns_addr.unwrap(), "liquor-store.marathon.mesos.", RecordType::A, None);
    assert_eq!(a_answers(&m), vec!["1.2.3.11", "1.2.3.12"]);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_state_over_the_size_cap_is_abandoned() {
    // 1 MiB cap; the master sends 8 MiB of valid JSON.
    let Cluster { master, running, addr: _ } = cluster(json!({"stateMaxMegabytes": 1})).await;
    let mut big: serde_json::Value =
        serde_json::from_slice(&state_with_leader(FIXTURE, master.addr)).unwrap();
    big["padding"] = json!("x".repeat(8 << 20));
    survives(&master, &running, Behaviour::Serve(serde_json::to_vec(&big).unwrap())).await;
    running.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn invalid_utf8_and_deeply_nested_json_are_rejected() {
    let Cluster { master, running, addr: _ } = cluster(json!({})).await;
    let mut utf8 = state_with_leader(FIXTURE, master.addr);
    let at = utf8.windows(8).position(|w| w == b"\"name\":\"").unwrap() + 8;
    utf8[at] = 0xFF;
    survives(&master, &running, Behaviour::Serve(utf8)).await;
    let nested = [vec![b'['; 200_000], vec![b']'; 200_000]].concat();
    survives(&master, &running, Behaviour::Serve(nested)).await;
    let nested_objects =
        format!("{{\"frameworks\":{}{}}}", "[{\"tasks\":".repeat(50_000), "}]".repeat(50_000));
    survives(&master, &running, Behaviour::Serve(nested_objects.into_bytes())).await;
    running.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_tcp_client_stalling_mid_query_is_cut_off() {
    let _pass = exclusive::timing();
    let Cluster { master: _m, running, addr } = cluster(json!({})).await;
    // Half a length prefix, then nothing (slow loris).
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    s.write_all(&[0]).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    let started = Instant::now();
    let mut buf = [0u8; 16];
    let n = s.read(&mut buf).unwrap_or(0);
    assert_eq!(n, 0, "closed without an answer");
    let took = started.elapsed();
    assert!(took >= Duration::from_secs(9) && took < Duration::from_secs(15), "{took:?}");
    // Meanwhile others were answered.
    let m = tcp(addr, "leader.mesos.", RecordType::A);
    assert_eq!(m.answers.len(), 1);
    running.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn any_over_plain_udp_stays_within_512_bytes() {
    let Cluster { master: _m, running, addr } = cluster(json!({})).await;
    for name in ["slave.mesos.", "mesos.", "_liquor-store._tcp.marathon.slave.mesos."] {
        let q = query_msg(name, RecordType::ANY, None);
        let raw = udp_raw(addr, &q.to_vec().unwrap()).unwrap();
        assert!(raw.len() <= 512, "{name}: {} bytes", raw.len());
        Message::from_vec(&raw).unwrap();
    }
    running.shutdown().await;
}
