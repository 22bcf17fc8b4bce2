//! Truncation, EDNS, TCP framing and malformed input, over
//! real sockets.

use std::io::Write;
use std::net::SocketAddr;
use std::time::Duration;

use crate::harness::*;
use hickory_proto::op::Message;
use hickory_proto::rr::RecordType;
use serde_json::json;

/// A state with one app of `n` instances, each with its own container IP
/// and one host port.
fn big_app_state(n: usize) -> Vec<u8> {
    let tasks: Vec<_> = (0..n)
        .map(|i| {
            json!({
                "id": format!("big.{i:05}"), "name": "big", "slave_id": "S-1", "state": "TASK_RUNNING",
                "resources": {"ports": format!("[{p}-{p}]", p = 31000 + i)},
                "statuses": [{"state": "TASK_RUNNING", "timestamp": 1.0,
                  "container_status": {"network_infos": [{"ip_addresses": [
                    {"ip_address": format!("10.1.{}.{}", i / 250, i % 250 + 1)}]}]}}]
            })
        })
        .collect();
    serde_json::to_vec(&json!({
        "leader": "master@127.0.0.1:5050",
        "frameworks": [{"name": "marathon", "pid": "scheduler@10.0.0.1:8080", "tasks": tasks}],
        "slaves": [{"id": "S-1", "pid": "slave(1)@10.0.0.2:5051"}],
    }))
    .unwrap()
}

async fn big_server(extra: serde_json::Value) -> (tempfile::TempDir, Running, SocketAddr) {
    serve_state_file(&big_app_state(300), test_config(&[], extra)).await
}

#[tokio::test(flavor = "multi_thread")]
async fn big_answers_truncate_to_the_transport() {
    let (_d, running, addr) = big_server(json!({"masters": ["127.0.0.1:5050"]})).await;
    let name = "big.marathon.mesos.";
    // Plain UDP: at most 512 bytes, TC set, as many whole answers as fit.
    let q = query_msg(name, RecordType::A, None);
    let raw = udp_raw(addr, &q.to_vec().unwrap()).unwrap();
    assert!(raw.len() <= 512, "{} bytes", raw.len());
    let m = Message::from_vec(&raw).unwrap();
    assert!(m.metadata.truncation);
    assert!(m.answers.len() > 20 && m.answers.len() < 300, "{}", m.answers.len());
    // EDNS 1232: bigger, still truncated, with our OPT.
    let q = query_msg(name, RecordType::A, Some(1232));
    let raw = udp_raw(addr, &q.to_vec().unwrap()).unwrap();
    assert!(raw.len() <= 1232 && raw.len() > 512, "{} bytes", raw.len());
    let m = Message::from_vec(&raw).unwrap();
    assert!(m.metadata.truncation);
    assert!(m.edns.is_some());
    // A client offering less than 512 still gets 512.
    let q = query_msg(name, RecordType::A, Some(100));
    let raw = udp_raw(addr, &q.to_vec().unwrap()).unwrap();
    assert!(raw.len() > 400 && raw.len() <= 512);
    // TCP: everything.
    let m = tcp(addr, name, RecordType::A);
    assert!(!m.metadata.truncation);
    assert_eq!(m.answers.len(), 300);
    // SRV over TCP: 300 answers and 300 glue records.
    let m = tcp(addr, "_big._tcp.marathon.mesos.", RecordType::SRV);
    assert_eq!(m.answers.len(), 300);
    assert_eq!(m.additionals.len(), 300);
    // SRV over UDP: glue is dropped before answers.
    let m = udp(addr, "_big._tcp.marathon.mesos.", RecordType::SRV, Some(1232));
    assert!(m.metadata.truncation);
    assert!(m.additionals.is_empty() || m.additionals.len() <= m.answers.len());
    running.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn truncate_bit_can_be_turned_off() {
    let (_d, running, addr) =
        big_server(json!({"masters": ["127.0.0.1:5050"], "SetTruncateBit": false})).await;
    let q = query_msg("big.marathon.mesos.", RecordType::A, None);
    let raw = udp_raw(addr, &q.to_vec().unwrap()).unwrap();
    assert!(raw.len() <= 512);
    let m = Message::from_vec(&raw).unwrap();
    assert!(!m.metadata.truncation);
    assert!(!m.answers.is_empty());
    running.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn tcp_serves_many_pipelined_queries_per_connection() {
    let (_d, running, addr) = big_server(json!({"masters": ["127.0.0.1:5050"]})).await;
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(std::time::Duration::from_secs(5))).unwrap();
    // 200 queries written at once (Go Mesos-DNS closes after 128).
    let mut ids = Vec::new();
    let mut batch = Vec::new();
    for i in 0..200 {
        let mut q = query_msg("leader.mesos.", RecordType::A, None);
        q.metadata.id = i;
        ids.push(i);
        batch.extend_from_slice(&tcp_framed(&q.to_vec().unwrap()));
    }
    s.write_all(&batch).unwrap();
    for id in ids {
        let m = Message::from_vec(&read_tcp_reply(&mut s).unwrap()).unwrap();
        assert_eq!(m.metadata.id, id, "answered in order");
        assert_eq!(a_answers(&m), vec!["127.0.0.1"]);
    }
    running.shutdown().await;
}

const LEADER_A: &[u8] = b"\x06leader\x05mesos\x00\x00\x01\x00\x01";

fn rcode_of(raw: &[u8]) -> u8 {
    raw[3] & 0x0F
}

#[tokio::test(flavor = "multi_thread")]
async fn malformed_queries_never_crash_the_server() {
    let (_d, running, addr) = big_server(json!({"masters": ["127.0.0.1:5050"]})).await;
    // Fewer than 12 bytes: dropped.
    assert_eq!(udp_raw(addr, b"\x12\x34\x01"), None);
    assert_eq!(udp_raw(addr, b""), None);
    // QR set (a response): dropped.
    assert_eq!(udp_raw(addr, &raw_query(1, 0x8000, [1, 0, 0, 0], LEADER_A)), None);
    // QDCOUNT 0 or 2: FORMERR.
    for qd in [0, 2] {
        let r = udp_raw(addr, &raw_query(7, 0x0100, [qd, 0, 0, 0], LEADER_A)).unwrap();
        assert_eq!((r[0], r[1], rcode_of(&r)), (0, 7, 1), "qdcount {qd}");
        assert_eq!(r[2] & 0x80, 0x80, "QR set");
    }
    // A truncated question, a label over 63, a compression pointer in the
    // question, an RR count pointing past the end: FORMERR.
    let long_label = [&[64u8][..], &[b'a'; 64], b"\x00\x00\x01\x00\x01"].concat();
    for body in [
        &b"\x06leader\x05mes"[..],
        b"\x06leader\x05mesos\x00\x00",
        &long_label,
        b"\xc0\x0c\x00\x01\x00\x01",
    ] {
        let r = udp_raw(addr, &raw_query(9, 0, [1, 0, 0, 0], body)).unwrap();
        assert_eq!(rcode_of(&r), 1, "{body:?}");
    }
    let r = udp_raw(addr, &raw_query(9, 0, [1, 0, 0, 1], LEADER_A)).unwrap();
    assert_eq!(rcode_of(&r), 1, "additional count past the end");
    // Opcode STATUS (2) and UPDATE (5): NOTIMP.
    for opcode in [2u16, 5] {
        let r = udp_raw(addr, &raw_query(3, opcode << 11, [1, 0, 0, 0], LEADER_A)).unwrap();
        assert_eq!(rcode_of(&r), 4);
        assert_eq!((r[2] >> 3) & 0xF, opcode as u8, "opcode echoed");
    }
    // Class CHAOS: REFUSED.
    let r =
        udp_raw(addr, &raw_query(4, 0, [1, 0, 0, 0], b"\x06leader\x05mesos\x00\x00\x01\x00\x03"))
            .unwrap();
    assert_eq!(rcode_of(&r), 5);
    // EDNS version 1: BADVERS (extended rcode 16 = OPT high bits 1, header 0).
    let opt_v1 = b"\x00\x00\x29\x04\xd0\x00\x01\x00\x00\x00\x00";
    let r = udp_raw(addr, &raw_query(5, 0, [1, 0, 0, 1], &[LEADER_A, opt_v1].concat())).unwrap();
    let m = Message::from_vec(&r).unwrap();
    assert_eq!(u16::from(m.metadata.response_code), 16, "BADVERS");
    // Two OPT records: FORMERR.
    let opt = b"\x00\x00\x29\x04\xd0\x00\x00\x00\x00\x00\x00";
    let r = udp_raw(addr, &raw_query(6, 0, [1, 0, 0, 2], &[LEADER_A, opt, opt].concat())).unwrap();
    assert_eq!(rcode_of(&r), 1);
    // Random garbage: whatever comes back is a well-formed response.
    let mut seed = 0x1234_5678_u64;
    for _ in 0..300 {
        let len = (seed % 80) as usize;
        let mut p = Vec::with_capacity(len);
        for _ in 0..len {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            p.push(seed as u8);
        }
        // A short wait: most garbage gets no reply.
        if let Some(r) = udp_raw_within(addr, &p, Duration::from_millis(20)) {
            assert!(r.len() >= 12);
        }
    }
    // Over TCP too, and the server still answers afterwards.
    let r = tcp_raw(addr, &raw_query(8, 0, [2, 0, 0, 0], LEADER_A));
    assert_eq!(rcode_of(&r), 1);
    let m = udp(addr, "leader.mesos.", RecordType::A, None);
    assert_eq!(a_answers(&m), vec!["127.0.0.1"]);
    running.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_garbage_flood_does_not_stop_valid_queries() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
    let _pass = exclusive::load();
    let (_d, running, addr) = big_server(json!({"masters": ["127.0.0.1:5050"]})).await;
    let stop = Arc::new(AtomicBool::new(false));
    let sent = Arc::new(AtomicU64::new(0));
    let flood = {
        let (stop, sent) = (Arc::clone(&stop), Arc::clone(&sent));
        std::thread::spawn(move || {
            let sock = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
            let mut x = 0x9e37_79b9_7f4a_7c15_u64;
            while !stop.load(Ordering::Relaxed) {
                let mut p = [0u8; 40];
                for b in &mut p {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    *b = x as u8;
                }
                let _ = sock.send_to(&p[..(x % 40) as usize], addr);
                sent.fetch_add(1, Ordering::Relaxed);
            }
        })
    };
    // The queries go out while the flood runs, not before it starts.
    let started = std::time::Instant::now();
    while sent.load(Ordering::Relaxed) < 1000 {
        assert!(started.elapsed() < Duration::from_secs(30), "the flood did not start");
        std::thread::sleep(Duration::from_millis(1));
    }
    for _ in 0..50 {
        let m = udp(addr, "leader.mesos.", RecordType::A, None);
        assert_eq!(a_answers(&m), vec!["127.0.0.1"]);
    }
    stop.store(true, Ordering::Relaxed);
    flood.join().unwrap();
    running.shutdown().await;
}
