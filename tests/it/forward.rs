//! Forwarding of names outside the domain: real upstreams on
//! 127.0.0.1 — in-process fakes for the fault cases, and NSD. Upstreams
//! that are dead, refusing or slow are marked down and skipped.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::harness::*;
use hickory_proto::op::{Message, ResponseCode};
use hickory_proto::rr::RecordType;
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// How a fake upstream answers.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Upstream {
    /// Never answers.
    Silent,
    /// Header-only answer with this rcode.
    Rcode(u8),
    /// A full answer (A 192.0.2.<tag>, an unknown type, EDNS OPT with an
    /// option) after this delay.
    Answer { tag: u8, delay_ms: u64 },
    /// Over UDP a TC answer with no records; over TCP the full answer.
    TruncatedUdp { tag: u8 },
    /// Answers with a wrong id first, then from a wrong port, then right.
    Spoofed { tag: u8 },
}

/// The answer a fake upstream gives to `query`: deterministic, so tests can
/// compute what the client must receive.
fn full_answer(query: &[u8], tag: u8) -> Vec<u8> {
    let q = mesos_dns::dns::wire::parse(query).unwrap();
    let mut out = query[..q.question_end].to_vec();
    out[2] |= 0x84; // QR, AA
    out[3] = 0x80; // RA
    out[6..12].copy_from_slice(&[0, 2, 0, 0, 0, 1]);
    out.extend_from_slice(&[0xC0, 0x0C, 0, 1, 0, 1, 0, 0, 0, 30, 0, 4, 192, 0, 2, tag]);
    // TYPE65280, an unknown type, with opaque rdata.
    out.extend_from_slice(&[0xC0, 0x0C, 0xFF, 0x00, 0, 1, 0, 0, 0, 30, 0, 3, b'x', b'y', b'z']);
    // OPT: size 4096, NSID option (3) "test".
    out.extend_from_slice(&[
        0, 0, 41, 0x10, 0, 0, 0, 0, 0, 0, 8, 0, 3, 0, 4, b't', b'e', b's', b't',
    ]);
    out
}

fn header_answer(query: &[u8], rcode: u8, tc: bool) -> Vec<u8> {
    let q = mesos_dns::dns::wire::parse(query).unwrap();
    let mut out = query[..q.question_end].to_vec();
    out[2] |= 0x80 | if tc { 0x02 } else { 0 };
    out[3] = 0x80 | rcode;
    out[6..12].fill(0);
    out
}

struct FakeUpstream {
    addr: SocketAddr,
    hits: Arc<AtomicUsize>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Drop for FakeUpstream {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

impl FakeUpstream {
    async fn start(behaviour: Upstream) -> FakeUpstream {
        // UDP and TCP on the same port: retry if the TCP side is taken.
        let (udp, tcp) = loop {
            let sock = roomy_udp_socket();
            sock.set_nonblocking(true).unwrap();
            let udp = tokio::net::UdpSocket::from_std(sock).unwrap();
            if let Ok(tcp) = tokio::net::TcpListener::bind(udp.local_addr().unwrap()).await {
                break (Arc::new(udp), tcp);
            }
        };
        let addr = udp.local_addr().unwrap();
        let hits = Arc::new(AtomicUsize::new(0));
        let h = Arc::clone(&hits);
        let udp_task = tokio::spawn(async move {
            let mut buf = vec![0u8; 65535];
            loop {
                let Ok((n, peer)) = udp.recv_from(&mut buf).await else { return };
                h.fetch_add(1, Ordering::SeqCst);
                let query = buf[..n].to_vec();
                let udp = Arc::clone(&udp);
                tokio::spawn(async move {
                    let answer = match behaviour {
                        Upstream::Silent => return,
                        Upstream::Rcode(r) => header_answer(&query, r, false),
                        Upstream::Answer { tag, delay_ms } => {
                            tokio::time::sleep(Duration::from_millis(delay_ms)).await;
                            full_answer(&query, tag)
                        }
                        Upstream::TruncatedUdp { .. } => header_answer(&query, 0, true),
                        Upstream::Spoofed { tag } => {
                            let mut wrong = full_answer(&query, 66);
                            wrong[0] ^= 0xFF;
                            let _ = udp.send_to(&wrong, peer).await;
                            let other = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
                            let _ = other.send_to(&full_answer(&query, 77), peer).await;
                            tokio::time::sleep(Duration::from_millis(50)).await;
                            full_answer(&query, tag)
                        }
                    };
                    let _ = udp.send_to(&answer, peer).await;
                });
            }
        });
        let h = Arc::clone(&hits);
        let tcp_task = tokio::spawn(async move {
            loop {
                let Ok((mut s, _)) = tcp.accept().await else { return };
                let h = Arc::clone(&h);
                tokio::spawn(async move {
                    loop {
                        let Ok(len) = s.read_u16().await else { return };
                        let mut query = vec![0u8; len as usize];
                        if s.read_exact(&mut query).await.is_err() {
                            return;
                        }
                        h.fetch_add(1, Ordering::SeqCst);
                        let answer = match behaviour {
                            Upstream::Silent => {
                                tokio::time::sleep(Duration::from_secs(3600)).await;
                                return;
                            }
                            Upstream::Rcode(r) => header_answer(&query, r, false),
                            Upstream::Answer { tag, .. }
                            | Upstream::TruncatedUdp { tag }
                            | Upstream::Spoofed { tag } => full_answer(&query, tag),
                        };
                        let mut framed = (answer.len() as u16).to_be_bytes().to_vec();
                        framed.extend_from_slice(&answer);
                        if s.write_all(&framed).await.is_err() {
                            return;
                        }
                    }
                });
            }
        });
        FakeUpstream { addr, hits, tasks: vec![udp_task, tcp_task] }
    }
}

/// A UDP socket on 127.0.0.1 with a big receive buffer: a burst of
/// hundreds of queries must not overflow the default one (~208 KB) while
/// the test machine is busy, or lost queries turn into timeouts.
fn roomy_udp_socket() -> std::net::UdpSocket {
    let sock = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::DGRAM, None).unwrap();
    sock.set_recv_buffer_size(4 << 20).unwrap();
    sock.bind(&"127.0.0.1:0".parse::<SocketAddr>().unwrap().into()).unwrap();
    sock.into()
}

async fn server(extra: serde_json::Value) -> (tempfile::TempDir, Running, SocketAddr) {
    let master: SocketAddr = "127.0.0.1:5050".parse().unwrap();
    let cfg = merged(json!({"externalon": true, "timeout": 1}), &extra);
    serve_state_file(&state_with_leader(FIXTURE, master), test_config(&[master], cfg)).await
}

/// Query bytes for `name` with EDNS, and the id used.
fn query_bytes(name: &str, rtype: RecordType, id: u16) -> Vec<u8> {
    let mut m = query_msg(name, rtype, Some(1232));
    m.metadata.id = id;
    m.to_vec().unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn answers_pass_through_unchanged_but_the_id() {
    let up = FakeUpstream::start(Upstream::Answer { tag: 1, delay_ms: 0 }).await;
    let (_d, running, addr) = server(json!({"resolvers": [up.addr.to_string()]})).await;
    for udp_transport in [true, false] {
        let q = query_bytes("www.example.com.", RecordType::A, 0x4242);
        let got = if udp_transport { udp_raw(addr, &q).unwrap() } else { tcp_raw(addr, &q) };
        let want = full_answer(&q, 1);
        assert_eq!(
            got, want,
            "udp={udp_transport}: unchanged, unknown type and EDNS option included"
        );
        let m = Message::from_vec(&got).unwrap();
        assert_eq!(m.metadata.id, 0x4242);
    }
    running.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn upstream_errors_pass_through_and_total_failure_is_servfail() {
    for (rcode, want) in
        [(5u8, ResponseCode::Refused), (2, ResponseCode::ServFail), (3, ResponseCode::NXDomain)]
    {
        let up = FakeUpstream::start(Upstream::Rcode(rcode)).await;
        let (_d, running, addr) = server(json!({"resolvers": [up.addr.to_string()]})).await;
        let m = udp(addr, "www.example.com.", RecordType::A, None);
        assert_eq!(m.metadata.response_code, want);
        running.shutdown().await;
    }
    // Every upstream silent: SERVFAIL within timeout × upstreams.
    let a = FakeUpstream::start(Upstream::Silent).await;
    let b = FakeUpstream::start(Upstream::Silent).await;
    let (_d, running, addr) =
        server(json!({"resolvers": [a.addr.to_string(), b.addr.to_string()]})).await;
    let started = Instant::now();
    let m = udp_wait(addr, "www.example.com.", 5);
    assert_eq!(m.metadata.response_code, ResponseCode::ServFail);
    assert!(!m.metadata.recursion_available, "a failed forward offers no recursion (RA)");
    let took = started.elapsed();
    assert!(took >= Duration::from_millis(1900) && took < Duration::from_secs(6), "{took:?}");
    assert_eq!((a.hits.load(Ordering::SeqCst), b.hits.load(Ordering::SeqCst)), (1, 1));
    running.shutdown().await;
}

/// A UDP query that may take up to `secs` to be answered.
fn udp_wait(addr: SocketAddr, name: &str, secs: u64) -> Message {
    udp_within(addr, name, RecordType::A, None, Duration::from_secs(secs))
}

#[tokio::test(flavor = "multi_thread")]
async fn failover_to_the_second_upstream_after_one_timeout() {
    let _pass = exclusive::timing();
    let silent = FakeUpstream::start(Upstream::Silent).await;
    let good = FakeUpstream::start(Upstream::Answer { tag: 2, delay_ms: 0 }).await;
    let (_d, running, addr) =
        server(json!({"resolvers": [silent.addr.to_string(), good.addr.to_string()]})).await;
    let started = Instant::now();
    let m = udp_wait(addr, "www.example.com.", 5);
    let took = started.elapsed();
    assert_eq!(a_answers(&m), vec!["192.0.2.2"]);
    assert!(took >= Duration::from_millis(900) && took < Duration::from_millis(3500), "{took:?}");
    running.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn truncated_udp_answers_pass_and_tcp_retries_are_forwarded_over_tcp() {
    let up = FakeUpstream::start(Upstream::TruncatedUdp { tag: 3 }).await;
    let (_d, running, addr) = server(json!({"resolvers": [up.addr.to_string()]})).await;
    let m = udp(addr, "big.example.com.", RecordType::A, None);
    assert!(m.metadata.truncation);
    assert!(m.answers.is_empty());
    let m = tcp(addr, "big.example.com.", RecordType::A);
    assert_eq!(a_answers(&m), vec!["192.0.2.3"]);
    // TCP connections to the upstream are reused.
    for _ in 0..5 {
        let m = tcp(addr, "big.example.com.", RecordType::A);
        assert_eq!(a_answers(&m), vec!["192.0.2.3"]);
    }
    running.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn answers_with_wrong_ids_or_from_wrong_ports_are_ignored() {
    let up = FakeUpstream::start(Upstream::Spoofed { tag: 4 }).await;
    let (_d, running, addr) = server(json!({"resolvers": [up.addr.to_string()]})).await;
    let m = udp(addr, "www.example.com.", RecordType::A, None);
    assert_eq!(a_answers(&m), vec!["192.0.2.4"]);
    running.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_longest_zone_wins_and_the_mesos_domain_is_never_forwarded() {
    let zone = FakeUpstream::start(Upstream::Answer { tag: 10, delay_ms: 0 }).await;
    let sub = FakeUpstream::start(Upstream::Answer { tag: 11, delay_ms: 0 }).await;
    let default = FakeUpstream::start(Upstream::Answer { tag: 12, delay_ms: 0 }).await;
    let (_d, running, addr) = server(json!({
        "resolvers": [default.addr.to_string()],
        "zoneResolvers": {
            "example.com": [zone.addr.to_string()],
            "sub.example.com": [sub.addr.to_string()],
        }
    }))
    .await;
    let ask = |name: &str| a_answers(&udp(addr, name, RecordType::A, None));
    assert_eq!(ask("a.sub.example.com."), vec!["192.0.2.11"]);
    assert_eq!(ask("SUB.Example.COM."), vec!["192.0.2.11"]);
    assert_eq!(ask("a.example.com."), vec!["192.0.2.10"]);
    assert_eq!(ask("xsub.example.com."), vec!["192.0.2.10"], "label boundaries");
    assert_eq!(ask("example.org."), vec!["192.0.2.12"]);
    let before = [&zone, &sub, &default].map(|u| u.hits.load(Ordering::SeqCst));
    assert_eq!(ask("leader.mesos."), vec!["127.0.0.1"]);
    assert_eq!(rcode_of_udp(addr, "nothing.mesos."), ResponseCode::NXDomain);
    let after = [&zone, &sub, &default].map(|u| u.hits.load(Ordering::SeqCst));
    assert_eq!(before, after, "names in the Mesos domain never go upstream");
    running.shutdown().await;
}

fn rcode_of_udp(addr: SocketAddr, name: &str) -> ResponseCode {
    udp(addr, name, RecordType::A, None).metadata.response_code
}

#[tokio::test(flavor = "multi_thread")]
async fn external_off_is_refused() {
    let up = FakeUpstream::start(Upstream::Answer { tag: 1, delay_ms: 0 }).await;
    let (_d, running, addr) =
        server(json!({"externalon": false, "resolvers": [up.addr.to_string()]})).await;
    assert_eq!(rcode_of_udp(addr, "www.example.com."), ResponseCode::Refused);
    running.shutdown().await;
    // (An empty "resolvers" with externalon means /etc/resolv.conf's, as
    // in the original, so it is not a way to get REFUSED.)
    assert_eq!(up.hits.load(Ordering::SeqCst), 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_thousand_concurrent_queries_with_one_slow_upstream() {
    let _pass = exclusive::load();
    // The slow zone's upstream never answers: its queries end in SERVFAIL
    // after `timeout` (5 s). Every fast-zone answer must arrive before
    // that, whatever the machine's load: no head-of-line blocking.
    let slow = FakeUpstream::start(Upstream::Silent).await;
    let fast = FakeUpstream::start(Upstream::Answer { tag: 21, delay_ms: 0 }).await;
    let (_d, running, addr) = server(json!({
        "timeout": 5,
        "resolvers": [fast.addr.to_string()],
        "zoneResolvers": {"slow.test": [slow.addr.to_string()]},
    }))
    .await;
    let sock = roomy_udp_socket();
    sock.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    for i in 0..1000u16 {
        let name = if i % 2 == 0 { format!("n{i}.slow.test.") } else { format!("n{i}.fast.test.") };
        sock.send_to(&query_bytes(&name, RecordType::A, i), addr).unwrap();
    }
    let mut seen = vec![false; 1000];
    let mut buf = vec![0u8; 4096];
    let mut fast_left = 500;
    for _ in 0..1000 {
        let (n, _) = sock.recv_from(&mut buf).expect("every query answered");
        let m = Message::from_vec(&buf[..n]).unwrap();
        let id = m.metadata.id as usize;
        assert!(!seen[id], "duplicate answer");
        seen[id] = true;
        if id % 2 == 1 {
            assert_eq!(a_answers(&m), vec!["192.0.2.21"]);
            fast_left -= 1;
        } else {
            assert_eq!(m.metadata.response_code, ResponseCode::ServFail);
            assert_eq!(
                fast_left,
                0,
                "a slow query finished before the fast ones (the fast upstream saw {} of 500)",
                fast.hits.load(Ordering::SeqCst)
            );
        }
    }
    assert!(seen.iter().all(|&s| s), "none lost");
    running.shutdown().await;
}

/// NSD, a real authoritative server, as the upstream.
struct Nsd {
    _proc: Proc,
    addr: SocketAddr,
    _dir: tempfile::TempDir,
}

fn start_nsd() -> Nsd {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let d = dir.path().display();
    std::fs::write(
        dir.path().join("example.org.zone"),
        "$ORIGIN example.org.\n$TTL 300\n@ IN SOA ns1 admin 1 3600 600 86400 300\n@ IN NS ns1\n\
         ns1 IN A 127.0.0.1\nwww IN A 198.51.100.7\nwww IN AAAA 2001:db8::7\n\
         _http._tcp IN SRV 0 1 80 www\n",
    )
    .unwrap();
    std::fs::write(
        dir.path().join("nsd.conf"),
        format!(
            "server:\n  ip-address: 127.0.0.1@{port}\n  port: {port}\n  username: \"\"\n  \
             zonesdir: \"{d}\"\n  pidfile: \"{d}/nsd.pid\"\n  database: \"\"\n  \
             xfrdfile: \"{d}/xfrd.state\"\n  zonelistfile: \"{d}/zone.list\"\n  chroot: \"\"\n  \
             server-count: 1\n  verbosity: 0\n\nremote-control:\n  control-enable: no\n\n\
             zone:\n  name: example.org\n  zonefile: example.org.zone\n"
        ),
    )
    .unwrap();
    let proc = Proc::try_spawn(
        std::process::Command::new("nsd")
            .args(["-d", "-c"])
            .arg(dir.path().join("nsd.conf"))
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null()),
    )
    .expect("nsd is installed (scripts/test installs it)");
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let nsd = Nsd { _proc: proc, addr, _dir: dir };
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let q = query_msg("www.example.org.", RecordType::A, None);
        if udp_raw(addr, &q.to_vec().unwrap()).is_some() {
            return nsd;
        }
        assert!(Instant::now() < deadline, "nsd did not start");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn forwarding_to_nsd() {
    let nsd = start_nsd();
    let (_d, running, addr) = server(json!({"resolvers": [nsd.addr.to_string()]})).await;
    let m = udp(addr, "www.example.org.", RecordType::A, None);
    assert_eq!(a_answers(&m), vec!["198.51.100.7"]);
    assert!(m.metadata.authoritative, "NSD's AA flag comes through");
    let m = tcp(addr, "www.example.org.", RecordType::AAAA);
    assert_eq!(a_answers(&m), vec!["2001:db8::7"]);
    let m = udp(addr, "_http._tcp.example.org.", RecordType::SRV, Some(1232));
    assert_eq!(m.answers.len(), 1);
    let m = udp(addr, "nope.example.org.", RecordType::A, None);
    assert_eq!(m.metadata.response_code, ResponseCode::NXDomain);
    // Byte for byte what NSD says, apart from the id.
    let q = query_bytes("www.example.org.", RecordType::A, 0x0101);
    let direct = udp_raw(nsd.addr, &q).unwrap();
    let through = udp_raw(addr, &q).unwrap();
    assert_eq!(direct, through);
    running.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn allow_forward_from_keeps_it_from_being_an_open_resolver() {
    let up = FakeUpstream::start(Upstream::Answer { tag: 30, delay_ms: 0 }).await;
    let (_d, running, addr) = server(json!({
        "resolvers": [up.addr.to_string()],
        "allowForwardFrom": ["10.0.0.0/8", "192.168.1.1"],
    }))
    .await;
    // 127.0.0.1 is not allowed: refused over UDP and TCP, never sent
    // upstream, and without RA (no recursion for this client).
    let m = udp(addr, "www.example.com.", RecordType::A, None);
    assert_eq!(m.metadata.response_code, ResponseCode::Refused);
    assert!(!m.metadata.recursion_available, "RA on a refusal");
    let m = tcp(addr, "www.example.com.", RecordType::A);
    assert_eq!(m.metadata.response_code, ResponseCode::Refused);
    assert!(!m.metadata.recursion_available, "RA on a refusal");
    assert_eq!(up.hits.load(Ordering::SeqCst), 0);
    // The Mesos domain is answered for everyone.
    assert_eq!(a_answers(&udp(addr, "leader.mesos.", RecordType::A, None)), vec!["127.0.0.1"]);
    running.shutdown().await;

    let (_d, running, addr) = server(json!({
        "resolvers": [up.addr.to_string()],
        "allowForwardFrom": ["127.0.0.0/8"],
    }))
    .await;
    assert_eq!(a_answers(&udp(addr, "www.example.com.", RecordType::A, None)), vec!["192.0.2.30"]);
    running.shutdown().await;
}

/// A flood of idle TCP connections, more than the cap, keeps no real client
/// waiting: at the cap the connection idle longest makes room. A busy
/// connection's pipelined queries, and TCP queries forwarded upstream, are
/// all answered meanwhile.
#[tokio::test(flavor = "multi_thread")]
async fn a_flood_of_idle_tcp_connections_keeps_nobody_waiting() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    const FLOOD: usize = 1500;
    let up = FakeUpstream::start(Upstream::Answer { tag: 7, delay_ms: 0 }).await;
    let extra = merged(json!({"resolvers": [up.addr.to_string()]}), &with_http());
    let (_d, running, addr) = server(extra).await;
    // A busy client: five pipelined queries at a time, all along.
    let busy = tokio::spawn(async move {
        let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
        let mut answered = 0;
        for round in 0..40u16 {
            let mut burst = Vec::new();
            for i in 0..5 {
                let q = query_bytes("leader.mesos.", RecordType::A, round * 5 + i);
                burst.extend_from_slice(&tcp_framed(&q));
            }
            s.write_all(&burst).await.unwrap();
            for _ in 0..5 {
                let len = s.read_u16().await.unwrap();
                let mut reply = vec![0; usize::from(len)];
                s.read_exact(&mut reply).await.unwrap();
                answered += 1;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        answered
    });
    // The flood: connections that never send anything, as fast as we can.
    let mut idle = Vec::with_capacity(FLOOD);
    for _ in 0..FLOOD {
        idle.push(tokio::net::TcpStream::connect(addr).await.unwrap());
    }
    let mut took = Vec::new();
    for _ in 0..5 {
        let started = Instant::now();
        let m = tokio::task::spawn_blocking(move || tcp(addr, "leader.mesos.", RecordType::A))
            .await
            .unwrap();
        took.push(started.elapsed());
        assert_eq!(m.metadata.response_code, ResponseCode::NoError);
    }
    eprintln!("TCP queries during a flood of {FLOOD} idle connections answered in {took:?}");
    assert!(took.iter().all(|t| *t < Duration::from_secs(1)), "{took:?}");
    // Forwarded over TCP, during the flood.
    let m = tokio::task::spawn_blocking(move || tcp(addr, "www.example.com.", RecordType::A))
        .await
        .unwrap();
    assert_eq!(a_answers(&m), vec!["192.0.2.7"]);
    assert_eq!(busy.await.unwrap(), 200, "a busy connection lost answers");
    let text = metrics(&running).await;
    let evicted = text
        .lines()
        .find_map(|l| l.strip_prefix("mesos_dns_tcp_evictions_total "))
        .and_then(|v| v.parse::<f64>().ok())
        .unwrap_or(0.0);
    assert!(evicted >= (FLOOD - 1024) as f64, "{evicted} evictions:\n{text}");
    drop(idle);
    running.shutdown().await;
}

/// Health of upstreams: a UDP upstream on a plain socket, read by its own
/// thread, that answers nothing until revived, then answers each query
/// with A 192.0.2.<tag>. Every query but the probes (`. NS`) is logged, by
/// tag and name, in `log` (shared by several, to see the order).
struct Revivable {
    addr: SocketAddr,
    alive: Arc<AtomicBool>,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

type QueryLog = Arc<Mutex<Vec<(u8, String)>>>;

impl Revivable {
    fn start(tag: u8, log: &QueryLog) -> Revivable {
        let sock = roomy_udp_socket();
        sock.set_read_timeout(Some(Duration::from_millis(20))).unwrap();
        let addr = sock.local_addr().unwrap();
        let alive = Arc::new(AtomicBool::new(false));
        let stop = Arc::new(AtomicBool::new(false));
        let (a, s, log) = (Arc::clone(&alive), Arc::clone(&stop), Arc::clone(log));
        let thread = std::thread::spawn(move || {
            let mut buf = vec![0u8; 65535];
            while !s.load(Ordering::SeqCst) {
                let Ok((n, peer)) = sock.recv_from(&mut buf) else { continue };
                let query = &buf[..n];
                let name = Message::from_vec(query).unwrap().queries[0].name().to_string();
                if name != "." {
                    log.lock().unwrap().push((tag, name));
                }
                if a.load(Ordering::SeqCst) {
                    let _ = sock.send_to(&full_answer(query, tag), peer);
                }
            }
        });
        Revivable { addr, alive, stop, thread: Some(thread) }
    }

    fn revive(&self) {
        self.alive.store(true, Ordering::SeqCst);
    }
}

impl Drop for Revivable {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// A per-upstream metric's value, if exported.
async fn upstream_metric(running: &Running, name: &str, upstream: SocketAddr) -> Option<f64> {
    let text = metrics(running).await;
    let prefix = format!("{name}{{upstream=\"{upstream}\"}} ");
    text.lines().find_map(|l| l.strip_prefix(prefix.as_str())).and_then(|v| v.parse().ok())
}

/// Whether `upstream` is up, per the metrics.
async fn is_up(running: &Running, upstream: SocketAddr) -> bool {
    let up = upstream_metric(running, "mesos_dns_forward_upstream_up", upstream).await;
    up.expect("mesos_dns_forward_upstream_up is exported") == 1.0
}

/// (queries, failures) of `upstream`, per the metrics.
async fn tries(running: &Running, upstream: SocketAddr) -> (f64, f64) {
    let queries = upstream_metric(running, "mesos_dns_forward_upstream_queries_total", upstream);
    let failures = upstream_metric(running, "mesos_dns_forward_upstream_failures_total", upstream);
    (queries.await.unwrap(), failures.await.unwrap())
}

/// `n` UDP queries for `name` at once, each answered within `secs`: the
/// answers and how long each took.
async fn at_once(addr: SocketAddr, name: &str, n: usize, secs: u64) -> Vec<(Message, Duration)> {
    let asks = (0..n).map(|_| {
        let name = name.to_owned();
        tokio::task::spawn_blocking(move || {
            let started = Instant::now();
            let m = udp_within(addr, &name, RecordType::A, None, Duration::from_secs(secs));
            (m, started.elapsed())
        })
    });
    let mut out = Vec::new();
    for ask in asks.collect::<Vec<_>>() {
        out.push(ask.await.unwrap());
    }
    out
}

/// `total` queries for www.example.org in batches of `batch` sent at once
/// from one socket: each one's latency (answered by NSD), and how many
/// were lost (no answer within 2 s).
fn bursts(addr: SocketAddr, total: u16, batch: u16) -> (Vec<Duration>, usize) {
    let sock = roomy_udp_socket();
    let mut buf = vec![0u8; 4096];
    let (mut took, mut lost) = (Vec::new(), 0);
    for first in (0..total).step_by(usize::from(batch)) {
        let ids = first..(first + batch).min(total);
        let mut sent = std::collections::BTreeMap::new();
        for id in ids.clone() {
            sent.insert(id, Instant::now());
            sock.send_to(&query_bytes("www.example.org.", RecordType::A, id), addr).unwrap();
        }
        let deadline = Instant::now() + Duration::from_secs(2);
        while !sent.is_empty() {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            sock.set_read_timeout(Some(left)).unwrap();
            let Ok((n, _)) = sock.recv_from(&mut buf) else { break };
            let m = Message::from_vec(&buf[..n]).unwrap();
            if let Some(at) = sent.remove(&m.metadata.id) {
                assert_eq!(a_answers(&m), vec!["198.51.100.7"], "answered by NSD");
                took.push(at.elapsed());
            }
        }
        lost += sent.len();
    }
    took.sort();
    (took, lost)
}

/// The `q` quantile of sorted durations.
fn quantile(sorted: &[Duration], q: f64) -> Duration {
    sorted[((sorted.len() as f64 * q) as usize).min(sorted.len() - 1)]
}

#[tokio::test(flavor = "multi_thread")]
async fn a_dead_first_upstream_is_skipped_after_three_timeouts_and_used_again_when_it_answers() {
    let _pass = exclusive::timing();
    let nsd = start_nsd();
    let log = QueryLog::default();
    let dead = Revivable::start(41, &log);
    let extra = json!({"timeout": 1, "resolvers": [dead.addr.to_string(), nsd.addr.to_string()]});
    let (_d, running, addr) = server(merged(extra, &with_http())).await;
    // The first three wait out the dead one's timeout, then NSD answers.
    for (m, took) in at_once(addr, "www.example.org.", 3, 5).await {
        assert_eq!(a_answers(&m), vec!["198.51.100.7"]);
        assert!(took >= Duration::from_millis(900) && took < Duration::from_secs(3), "{took:?}");
    }
    assert!(!is_up(&running, dead.addr).await, "down after 3 timeouts");
    assert!(is_up(&running, nsd.addr).await);
    // From now on the dead one is skipped: none lost, none waits.
    let (took, lost) = tokio::task::spawn_blocking(move || bursts(addr, 200, 20)).await.unwrap();
    let (p50, p99, max) = (quantile(&took, 0.5), quantile(&took, 0.99), quantile(&took, 1.0));
    eprintln!("dead first upstream, 200 queries: p50 {p50:?} p99 {p99:?} max {max:?} lost {lost}");
    assert_eq!(lost, 0);
    assert!(p99 < Duration::from_millis(50), "p99 {p99:?}");
    assert_eq!(tries(&running, dead.addr).await, (3.0, 3.0), "skipped since it went down");
    // It comes back: a probe finds it, and it is asked first again.
    dead.revive();
    let revived = Instant::now();
    loop {
        let m = udp_wait(addr, "www.example.org.", 5);
        if a_answers(&m) == vec!["192.0.2.41"] {
            break;
        }
        assert_eq!(a_answers(&m), vec!["198.51.100.7"]);
        assert!(revived.elapsed() < Duration::from_secs(15), "still not used again");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    eprintln!("the revived upstream was used again after {:?}", revived.elapsed());
    assert!(is_up(&running, dead.addr).await);
    running.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_refusing_upstream_costs_no_wait_and_is_down_after_three() {
    let _pass = exclusive::timing();
    let nsd = start_nsd();
    // Nothing listens there: each try ends at once with ICMP port
    // unreachable (connection refused).
    let refusing = dead_addr();
    let extra = json!({"timeout": 5, "resolvers": [refusing.to_string(), nsd.addr.to_string()]});
    let (_d, running, addr) = server(merged(extra, &with_http())).await;
    for i in 0..23 {
        let started = Instant::now();
        let m = udp_wait(addr, "www.example.org.", 5);
        let took = started.elapsed();
        assert_eq!(a_answers(&m), vec!["198.51.100.7"]);
        assert!(took < Duration::from_millis(500), "query {i} took {took:?}");
        if i == 2 {
            assert!(!is_up(&running, refusing).await, "down after 3 refusals");
        }
    }
    assert_eq!(tries(&running, refusing).await, (3.0, 3.0), "not asked once down");
    assert!(!is_up(&running, refusing).await, "probes are refused too");
    running.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_slow_upstream_counts_as_failing_and_stays_down_while_slow() {
    let _pass = exclusive::timing();
    let nsd = start_nsd();
    // Answers after 2 s, with a timeout of 1 s: too late every time.
    let slow = FakeUpstream::start(Upstream::Answer { tag: 43, delay_ms: 2000 }).await;
    let extra = json!({"timeout": 1, "resolvers": [slow.addr.to_string(), nsd.addr.to_string()]});
    let (_d, running, addr) = server(merged(extra, &with_http())).await;
    for (m, took) in at_once(addr, "www.example.org.", 3, 5).await {
        assert_eq!(a_answers(&m), vec!["198.51.100.7"]);
        assert!(took >= Duration::from_millis(900), "{took:?}");
    }
    assert!(!is_up(&running, slow.addr).await, "down after 3 timeouts");
    assert_eq!(tries(&running, slow.addr).await, (3.0, 3.0));
    let (took, lost) = tokio::task::spawn_blocking(move || bursts(addr, 100, 20)).await.unwrap();
    assert_eq!(lost, 0);
    assert!(quantile(&took, 0.99) < Duration::from_millis(50), "{took:?}");
    // Its probes are answered too late as well (after a probe's 1 s).
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert!(slow.hits.load(Ordering::SeqCst) >= 4, "probed");
    assert!(!is_up(&running, slow.addr).await, "still down");
    assert_eq!(tries(&running, slow.addr).await, (3.0, 3.0));
    running.shutdown().await;
}

/// On the current thread, so that its logs are captured: every query
/// waits off the runtime.
#[tokio::test]
async fn with_every_upstream_down_all_are_tried_in_order_until_one_answers() {
    let _pass = exclusive::timing();
    let logs = logs::capture();
    let log = QueryLog::default();
    let first = Revivable::start(44, &log);
    let second = Revivable::start(45, &log);
    let extra =
        json!({"timeout": 1, "resolvers": [first.addr.to_string(), second.addr.to_string()]});
    let (_d, running, addr) = server(merged(extra, &with_http())).await;
    for (m, _) in at_once(addr, "www.example.org.", 3, 5).await {
        assert_eq!(m.metadata.response_code, ResponseCode::ServFail);
    }
    assert!(!is_up(&running, first.addr).await && !is_up(&running, second.addr).await);
    let text = logs.text();
    for u in [first.addr, second.addr] {
        assert!(
            text.contains(&format!("WARN mesos_dns::dns::forward: upstream {u} is down")),
            "{text}"
        );
    }
    // All down: tried as before, in order, each for the timeout.
    let asked_of = |name: &str| -> Vec<u8> {
        log.lock().unwrap().iter().filter(|(_, n)| n == name).map(|(tag, _)| *tag).collect()
    };
    let ask = |name: &'static str| async move {
        at_once(addr, name, 1, 5).await.pop().expect("one answer")
    };
    let (m, took) = ask("order.example.org.").await;
    assert_eq!(m.metadata.response_code, ResponseCode::ServFail);
    assert!(took >= Duration::from_millis(1900), "{took:?}");
    assert_eq!(asked_of("order.example.org."), vec![44, 45]);
    // The second comes back: the next query gets its answer.
    second.revive();
    let (m, _) = ask("back.example.org.").await;
    assert_eq!(a_answers(&m), vec!["192.0.2.45"]);
    assert!(is_up(&running, second.addr).await, "up: it answered");
    assert!(!is_up(&running, first.addr).await);
    let up_again = format!("INFO mesos_dns::dns::forward: upstream {} answered", second.addr);
    assert!(logs.text().contains(&up_again), "{}", logs.text());
    // Now only the one up is asked, at once.
    let (m, took) = ask("after.example.org.").await;
    assert_eq!(a_answers(&m), vec!["192.0.2.45"]);
    assert!(took < Duration::from_millis(500), "{took:?}");
    assert_eq!(asked_of("after.example.org."), vec![45]);
    running.shutdown().await;
}
