//! The refresh loop against real (fake) masters over HTTP:
//! the last good records stay in service through every kind of master
//! failure, failover along the `masters` list, following the leader a
//! state names, old masters' `/master/state.json`, and `-state-file` mode.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::harness::*;
use hickory_proto::op::{Message, ResponseCode};
use hickory_proto::rr::RecordType;
use mesos_dns::snapshot::Snapshot;
use serde_json::{Value, json};

/// Names asked before, during and after a failure.
const PROBES: &[(&str, RecordType)] = &[
    ("liquor-store.marathon.mesos.", RecordType::A),
    ("nginx.marathon.mesos.", RecordType::A),
    ("toy-store.ipv6-framework.mesos.", RecordType::AAAA),
    ("_car-store._tcp.marathon.mesos.", RecordType::SRV),
    ("leader.mesos.", RecordType::A),
    ("slave.mesos.", RecordType::A),
    ("nothing.marathon.mesos.", RecordType::A),
];

/// One probe's outcome: the rcode and the sorted answer data.
type Answers = Vec<(ResponseCode, Vec<String>)>;

/// A DNS query over UDP, off the async workers.
async fn ask(addr: SocketAddr, name: &'static str, rtype: RecordType) -> Message {
    udp_async(addr, name, rtype, Some(4096)).await
}

async fn probe(addr: SocketAddr) -> Answers {
    let mut out = Vec::new();
    for &(name, rtype) in PROBES {
        let m = ask(addr, name, rtype).await;
        let mut data: Vec<String> = m.answers.iter().map(|r| r.data.to_string()).collect();
        data.sort();
        out.push((m.metadata.response_code, data));
    }
    out
}

/// The A/AAAA answers for `name`, or the rcode if not NOERROR.
async fn addresses(addr: SocketAddr, name: &'static str) -> Result<Vec<String>, ResponseCode> {
    let m = ask(addr, name, RecordType::A).await;
    match m.metadata.response_code {
        ResponseCode::NoError => Ok(a_answers(&m)),
        other => Err(other),
    }
}

fn snapshot(r: &Running) -> Arc<Snapshot> {
    r.current.load_full().expect("records loaded")
}

/// A fixture as JSON with its leader set.
fn fixture_doc(fixture: &str, leader: SocketAddr) -> Value {
    serde_json::from_slice(&state_with_leader(fixture, leader)).unwrap()
}

/// The fixture without the marathon task named `task`.
fn without_task(leader: SocketAddr, task: &str) -> Vec<u8> {
    let mut doc = fixture_doc(FIXTURE, leader);
    let mut removed = 0;
    for fw in doc["frameworks"].as_array_mut().unwrap() {
        if let Some(tasks) = fw["tasks"].as_array_mut() {
            let before = tasks.len();
            tasks.retain(|t| t["name"] != task);
            removed += before - tasks.len();
        }
    }
    assert_eq!(removed, 1, "fixture has one {task} task");
    serde_json::to_vec(&doc).unwrap()
}

/// A minimal state: one framework with one running task `task` at `ip`.
fn one_task_state(leader: SocketAddr, task: &str, ip: &str) -> Vec<u8> {
    serde_json::to_vec(&json!({
        "leader": format!("master@{leader}"),
        "frameworks": [{
            "name": "marathon",
            "pid": "scheduler-1@10.0.0.1:8080",
            "tasks": [{
                "id": format!("{task}.1"), "name": task, "slave_id": "S1",
                "state": "TASK_RUNNING",
                "statuses": [{"state": "TASK_RUNNING", "timestamp": 1.0,
                    "container_status": {"network_infos": [{"ip_addresses": [{"ip_address": ip}]}]}}]
            }]
        }],
        "slaves": [{"id": "S1", "hostname": "10.0.0.2", "pid": "slave(1)@10.0.0.2:5051"}],
    }))
    .unwrap()
}

/// Checks, for at least `min_time` and until `hits` has grown by
/// `attempts` (refreshes that reached the master), that the snapshot in
/// service is still `before` and the answers are still `expected`.
/// `nudge` also triggers refreshes, for more attempts in the time.
async fn assert_stays(
    r: &Running,
    before: &Arc<Snapshot>,
    expected: &Answers,
    hits: Option<(&AtomicUsize, usize)>,
    min_time: Duration,
    nudge: bool,
    what: &str,
) {
    let started = Instant::now();
    let hits_at_start = hits.map(|(h, _)| h.load(Ordering::SeqCst));
    let addr = r.dns_addr.unwrap();
    loop {
        let now = snapshot(r);
        assert!(
            Arc::ptr_eq(&now, before),
            "{what}: the snapshot was replaced (serial {} -> {})",
            before.zone.serial,
            now.zone.serial
        );
        assert_eq!(now.loaded_at, before.loaded_at, "{what}");
        assert_eq!(&probe(addr).await, expected, "{what}: answers changed");
        let enough_hits = match (hits, hits_at_start) {
            (Some((h, n)), Some(start)) => h.load(Ordering::SeqCst) >= start + n,
            _ => true,
        };
        if enough_hits && started.elapsed() >= min_time {
            return;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "{what}: too few refresh attempts reached the master"
        );
        if nudge {
            r.trigger.notify_one();
        }
        tokio::time::sleep(Duration::from_millis(150)).await;
    }
}

/// After the master is healthy again with the fixture minus `nginx`: the
/// new records must be in service within about one refresh (1 s period,
/// plus at most one state timeout of an attempt already under way).
async fn assert_recovers(r: &Running, before: &Arc<Snapshot>, limit: Duration, what: &str) {
    let addr = r.dns_addr.unwrap();
    let started = Instant::now();
    loop {
        if addresses(addr, "nginx.marathon.mesos.").await == Err(ResponseCode::NXDomain) {
            break;
        }
        assert!(
            started.elapsed() < limit,
            "{what}: new state not served after {:?}",
            started.elapsed()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let now = snapshot(r);
    assert!(!Arc::ptr_eq(&now, before), "{what}");
    assert!(now.loaded_at > before.loaded_at, "{what}");
    assert!(now.zone.serial >= before.zone.serial, "{what}");
    // The rest of the records are still there.
    assert_eq!(
        addresses(addr, "liquor-store.marathon.mesos.").await,
        Ok(vec!["1.2.3.11".to_owned(), "1.2.3.12".to_owned()]),
        "{what}"
    );
    assert_eq!(
        addresses(addr, "nginx.marathon.slave.mesos.").await,
        Err(ResponseCode::NXDomain),
        "{what}"
    );
}

const RECOVER: Duration = Duration::from_millis(3500);

/// The fixture's answers, checked once so the stale checks compare
/// against something meaningful.
async fn loaded_answers(addr: SocketAddr) -> Answers {
    let answers = probe(addr).await;
    assert_eq!(
        answers[0],
        (ResponseCode::NoError, vec!["1.2.3.11".to_owned(), "1.2.3.12".to_owned()])
    );
    assert_eq!(answers[1], (ResponseCode::NoError, vec!["10.3.0.3".to_owned()]));
    assert_eq!(answers[6].0, ResponseCode::NXDomain);
    answers
}

#[tokio::test(flavor = "multi_thread")]
async fn stale_records_on_http_500() {
    let _pass = exclusive::timing();
    let c = cluster(json!({})).await;
    let before = snapshot(&c.running);
    let expected = loaded_answers(c.addr).await;
    // Several periods of 500, then other statuses with forced refreshes.
    for (i, status) in [500, 503, 401, 302].into_iter().enumerate() {
        c.master.set(Behaviour::Status(status));
        let (attempts, time) = if i == 0 { (3, 2500) } else { (2, 300) };
        assert_stays(
            &c.running,
            &before,
            &expected,
            Some((&c.master.hits, attempts)),
            Duration::from_millis(time),
            i > 0,
            &format!("HTTP {status}"),
        )
        .await;
    }
    c.master.set(Behaviour::Serve(without_task(c.master.addr, "nginx")));
    assert_recovers(&c.running, &before, RECOVER, "after 500").await;
    c.running.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn stale_records_when_the_master_hangs_past_the_state_timeout() {
    let _pass = exclusive::timing();
    let c = cluster(json!({"stateTimeoutSeconds": 1})).await;
    let before = snapshot(&c.running);
    let expected = loaded_answers(c.addr).await;
    c.master.set(Behaviour::Hang);
    // Three attempts, each abandoned after 1 s.
    assert_stays(
        &c.running,
        &before,
        &expected,
        Some((&c.master.hits, 3)),
        Duration::from_secs(3),
        false,
        "hang",
    )
    .await;
    c.master.set(Behaviour::Serve(without_task(c.master.addr, "nginx")));
    assert_recovers(&c.running, &before, RECOVER, "after hang").await;
    c.running.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn stale_records_on_truncated_json() {
    let _pass = exclusive::timing();
    let c = cluster(json!({})).await;
    let before = snapshot(&c.running);
    let expected = loaded_answers(c.addr).await;
    let body = state_with_leader(FIXTURE, c.master.addr);
    for (i, cut) in [body.len() / 2, body.len() - 1, 1].into_iter().enumerate() {
        c.master.set(Behaviour::Serve(body[..cut].to_vec()));
        let (attempts, time) = if i == 0 { (3, 2500) } else { (2, 300) };
        assert_stays(
            &c.running,
            &before,
            &expected,
            Some((&c.master.hits, attempts)),
            Duration::from_millis(time),
            i > 0,
            &format!("first {cut} of {} bytes", body.len()),
        )
        .await;
    }
    c.master.set(Behaviour::Serve(without_task(c.master.addr, "nginx")));
    assert_recovers(&c.running, &before, RECOVER, "after truncation").await;
    c.running.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn stale_records_on_documents_that_are_not_a_state_with_a_leader() {
    let _pass = exclusive::timing();
    let c = cluster(json!({})).await;
    let before = snapshot(&c.running);
    let expected = loaded_answers(c.addr).await;
    let bodies: Vec<Vec<u8>> = vec![
        b"[]".to_vec(),
        b"[{\"leader\": \"master@127.0.0.1:5050\"}]".to_vec(),
        b"{}".to_vec(),
        b"null".to_vec(),
        b"\"state\"".to_vec(),
        b"".to_vec(),
        b"<html><body>Service Unavailable</body></html>".to_vec(),
        // A state without a leader, or one that cannot be an address.
        {
            let mut doc = fixture_doc(FIXTURE, c.master.addr);
            doc.as_object_mut().unwrap().remove("leader");
            serde_json::to_vec(&doc).unwrap()
        },
        {
            let mut doc = fixture_doc(FIXTURE, c.master.addr);
            doc["leader"] = "".into();
            serde_json::to_vec(&doc).unwrap()
        },
        {
            let mut doc = fixture_doc(FIXTURE, c.master.addr);
            doc["leader"] = "no-at-sign".into();
            serde_json::to_vec(&doc).unwrap()
        },
    ];
    for body in bodies {
        let what = String::from_utf8_lossy(&body[..body.len().min(60)]).into_owned();
        c.master.set(Behaviour::Serve(body));
        assert_stays(
            &c.running,
            &before,
            &expected,
            Some((&c.master.hits, 2)),
            Duration::from_millis(300),
            true,
            &what,
        )
        .await;
    }
    // And several real refresh periods with no leader at all.
    c.master.set(Behaviour::Serve(b"{}".to_vec()));
    assert_stays(
        &c.running,
        &before,
        &expected,
        Some((&c.master.hits, 2)),
        Duration::from_millis(2500),
        false,
        "{} for 2.5 s",
    )
    .await;
    c.master.set(Behaviour::Serve(without_task(c.master.addr, "nginx")));
    assert_recovers(&c.running, &before, RECOVER, "after bad documents").await;
    c.running.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn stale_records_while_the_master_is_down() {
    let _pass = exclusive::timing();
    let mut master = FakeMaster::leading(FIXTURE).await;
    let running = start_with_masters(test_config(&[master.addr], json!({}))).await;
    wait_loaded(&running).await;
    let addr = running.dns_addr.unwrap();
    let before = snapshot(&running);
    let expected = loaded_answers(addr).await;

    master.stop();
    let hits = master.hits.load(Ordering::SeqCst);
    // Connection refused, several periods (no hits can be counted).
    assert_stays(
        &running,
        &before,
        &expected,
        None,
        Duration::from_millis(3200),
        false,
        "master down",
    )
    .await;
    assert_eq!(master.hits.load(Ordering::SeqCst), hits);

    master.set(Behaviour::Serve(without_task(master.addr, "nginx")));
    master.restart().await;
    assert_recovers(&running, &before, RECOVER, "master back").await;
    running.shutdown().await;
    master.stop();
}

#[tokio::test(flavor = "multi_thread")]
async fn failover_past_a_dead_master() {
    let _pass = exclusive::timing();
    let good = FakeMaster::leading(FIXTURE).await;
    let dead = dead_addr();
    let running = start_with_masters(test_config(&[dead, good.addr], json!({}))).await;
    wait_loaded(&running).await;
    let addr = running.dns_addr.unwrap();
    loaded_answers(addr).await;
    assert!(good.hits.load(Ordering::SeqCst) >= 1);
    assert_eq!(snapshot(&running).leader.as_deref(), Some(good.addr.to_string().as_str()));
    // Updates keep coming from it.
    good.set(Behaviour::Serve(without_task(good.addr, "nginx")));
    running.trigger.notify_one();
    wait_for(5, "the update", || snapshot(&running).records.get("nginx.marathon.mesos.").is_none())
        .await;
    running.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn failover_past_failing_masters() {
    let _pass = exclusive::timing();
    let good = FakeMaster::leading(FIXTURE).await;
    let erroring = FakeMaster::start(Behaviour::Status(500)).await;
    let hanging = FakeMaster::start(Behaviour::Hang).await;
    let not_a_state = FakeMaster::start(Behaviour::Serve(b"[]".to_vec())).await;
    let running = start_with_masters(test_config(
        &[erroring.addr, not_a_state.addr, hanging.addr, good.addr],
        json!({"stateTimeoutSeconds": 1}),
    ))
    .await;
    let started = Instant::now();
    wait_loaded(&running).await;
    // One state timeout for the hanging one, not more.
    assert!(started.elapsed() < Duration::from_secs(4));
    loaded_answers(running.dns_addr.unwrap()).await;
    for m in [&erroring, &not_a_state, &hanging, &good] {
        assert!(m.hits.load(Ordering::SeqCst) >= 1, "{} not asked", m.addr);
    }
    running.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn leader_failover_between_configured_masters() {
    let _pass = exclusive::timing();
    // A leads; B's state names A too, as a standby's would.
    let a = FakeMaster::start(Behaviour::Status(503)).await;
    let b = FakeMaster::start(Behaviour::Status(503)).await;
    a.set(Behaviour::Serve(state_with_leader(FIXTURE, a.addr)));
    b.set(Behaviour::Serve(state_with_leader(FIXTURE, a.addr)));
    let running = start_with_masters(test_config(&[a.addr, b.addr], json!({}))).await;
    wait_loaded(&running).await;
    let before = snapshot(&running);
    assert_eq!(before.leader, Some(a.addr.to_string()));
    // A fails; B takes over with a new state.
    a.set(Behaviour::Status(500));
    b.set(Behaviour::Serve(without_task(b.addr, "nginx")));
    assert_recovers(&running, &before, RECOVER, "B took over").await;
    assert_eq!(snapshot(&running).leader, Some(b.addr.to_string()));
    running.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_leader_named_by_a_state_is_asked() {
    let a = FakeMaster::start(Behaviour::Status(503)).await;
    let b = FakeMaster::start(Behaviour::Status(503)).await;
    // A is not the leader: its state names B, and has a task of its own.
    a.set(Behaviour::Serve(one_task_state(b.addr, "only-on-a", "10.9.9.1")));
    b.set(Behaviour::Serve(one_task_state(b.addr, "only-on-b", "10.9.9.2")));
    // Only A is configured.
    let running = start_with_masters(test_config(&[a.addr], json!({}))).await;
    wait_loaded(&running).await;
    let addr = running.dns_addr.unwrap();
    assert!(b.hits.load(Ordering::SeqCst) >= 1);
    assert_eq!(addresses(addr, "only-on-b.marathon.mesos.").await, Ok(vec!["10.9.9.2".to_owned()]));
    assert_eq!(addresses(addr, "only-on-a.marathon.mesos.").await, Err(ResponseCode::NXDomain));
    assert_eq!(snapshot(&running).leader, Some(b.addr.to_string()));
    // The known leader is asked first from now on: A is left alone.
    let a_hits = a.hits.load(Ordering::SeqCst);
    let b_hits = b.hits.load(Ordering::SeqCst);
    let first = snapshot(&running);
    for _ in 0..3 {
        running.trigger.notify_one();
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    wait_for(5, "refreshes from B", || b.hits.load(Ordering::SeqCst) >= b_hits + 2).await;
    assert_eq!(a.hits.load(Ordering::SeqCst), a_hits);
    assert!(!Arc::ptr_eq(&snapshot(&running), &first));
    assert_eq!(addresses(addr, "only-on-b.marathon.mesos.").await, Ok(vec!["10.9.9.2".to_owned()]));
    running.shutdown().await;
}

/// A state polled again with nothing changed keeps the zone's serial (the
/// same zone: secondaries have nothing to fetch); a change moves it on.
#[tokio::test(flavor = "multi_thread")]
async fn the_serial_moves_only_when_the_records_change() {
    let master = FakeMaster::start(Behaviour::Status(503)).await;
    master.set(Behaviour::Serve(one_task_state(master.addr, "web", "10.9.9.1")));
    let running = start_with_masters(test_config(&[master.addr], json!({}))).await;
    wait_loaded(&running).await;
    let addr = running.dns_addr.unwrap();
    let first = snapshot(&running);
    let soa_serial = || async {
        let m = ask(addr, "mesos.", RecordType::SOA).await;
        match m.answers.first().map(|r| &r.data) {
            Some(hickory_proto::rr::RData::SOA(soa)) => soa.serial,
            other => panic!("no SOA: {other:?}"),
        }
    };
    assert_eq!(soa_serial().await, first.zone.serial);

    let hits = master.hits.load(Ordering::SeqCst);
    for _ in 0..3 {
        running.trigger.notify_one();
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    wait_for(5, "refreshes", || master.hits.load(Ordering::SeqCst) >= hits + 2).await;
    wait_for(5, "a new snapshot", || !Arc::ptr_eq(&snapshot(&running), &first)).await;
    assert_eq!(snapshot(&running).zone.serial, first.zone.serial, "same records");
    assert_eq!(soa_serial().await, first.zone.serial);

    master.set(Behaviour::Serve(one_task_state(master.addr, "web", "10.9.9.2")));
    running.trigger.notify_one();
    let started = Instant::now();
    while addresses(addr, "web.marathon.mesos.").await != Ok(vec!["10.9.9.2".to_owned()]) {
        assert!(started.elapsed() < Duration::from_secs(5), "the change is not served");
        running.trigger.notify_one();
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let changed = snapshot(&running).zone.serial;
    assert!(changed > first.zone.serial, "{changed} after {}", first.zone.serial);
    assert_eq!(soa_serial().await, changed);
    running.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn old_masters_serve_state_json() {
    let master = FakeMaster::start(Behaviour::Status(503)).await;
    master.set(Behaviour::OldMaster(state_with_leader(FIXTURE, master.addr)));
    let running = start_with_masters(test_config(&[master.addr], json!({}))).await;
    wait_loaded(&running).await;
    loaded_answers(running.dns_addr.unwrap()).await;
    // Two requests per refresh: /master/state (404), /master/state.json.
    assert!(master.hits.load(Ordering::SeqCst) >= 2);
    running.shutdown().await;
}

/// Replace a file's content at once (no reader sees half of it).
fn replace(path: &std::path::Path, content: &[u8]) {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, content).unwrap();
    std::fs::rename(&tmp, path).unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn state_file_mode_follows_the_file_and_survives_garbage() {
    let _pass = exclusive::timing();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.json");
    let leader: SocketAddr = "1.2.3.4:5050".parse().unwrap();
    replace(&path, &state_with_leader(FIXTURE, leader));
    let config = test_config(&[], json!({"masters": ["127.0.0.1:5050"]}));
    let running = start_with_file(config, &path).await;
    wait_loaded(&running).await;
    let addr = running.dns_addr.unwrap();
    let expected = loaded_answers(addr).await;
    assert_eq!(addresses(addr, "leader.mesos.").await, Ok(vec!["1.2.3.4".to_owned()]));

    // An edit is picked up.
    let before = snapshot(&running);
    replace(&path, &without_task(leader, "nginx"));
    assert_recovers(&running, &before, Duration::from_millis(2500), "file edit").await;

    // Garbage, a non-state, no leader, a missing file: the records stay.
    let before = snapshot(&running);
    let edited = probe(addr).await;
    assert_ne!(edited, expected);
    let half = {
        let full = state_with_leader(FIXTURE, leader);
        full[..full.len() / 2].to_vec()
    };
    for (i, (what, content)) in [
        ("garbage", Some(b"\x00\xffgarbage".to_vec())),
        ("half a state", Some(half)),
        ("an array", Some(b"[]".to_vec())),
        ("no leader", Some(b"{}".to_vec())),
        ("empty", Some(Vec::new())),
        ("missing", None),
    ]
    .into_iter()
    .enumerate()
    {
        match content {
            Some(c) => replace(&path, &c),
            None => std::fs::remove_file(&path).unwrap(),
        }
        // Several periods of garbage; the others with forced refreshes.
        let time = if i == 0 { 2500 } else { 500 };
        assert_stays(&running, &before, &edited, None, Duration::from_millis(time), i > 0, what)
            .await;
    }
    // The original state back: its answers are back.
    replace(&path, &state_with_leader(FIXTURE, leader));
    running.trigger.notify_one();
    let started = Instant::now();
    while probe(addr).await != expected {
        assert!(started.elapsed() < Duration::from_millis(2500));
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    running.shutdown().await;
}

/// How a [`RawMaster`] answers: plain HTTP/1.1 written by hand, one
/// request per connection.
#[derive(Clone)]
enum Raw {
    /// The whole body.
    Full(Vec<u8>),
    /// `Content-Length` of the whole body, half of it, then the connection
    /// closes.
    HalfThenClose(Vec<u8>),
    /// The headers at once, then the body one byte every 100 ms.
    Trickle(Vec<u8>),
}

struct RawMaster {
    addr: SocketAddr,
    mode: Arc<Mutex<Raw>>,
    hits: Arc<AtomicUsize>,
    task: tokio::task::JoinHandle<()>,
}

impl RawMaster {
    async fn start() -> RawMaster {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let mode = Arc::new(Mutex::new(Raw::Full(Vec::new())));
        let hits = Arc::new(AtomicUsize::new(0));
        let (m, h) = (Arc::clone(&mode), Arc::clone(&hits));
        let task = tokio::spawn(async move {
            loop {
                let Ok((mut conn, _)) = listener.accept().await else { return };
                let (m, h) = (Arc::clone(&m), Arc::clone(&h));
                tokio::spawn(async move {
                    // Read the request head.
                    let mut head = Vec::new();
                    let mut buf = [0u8; 1024];
                    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                        match conn.read(&mut buf).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => head.extend_from_slice(&buf[..n]),
                        }
                    }
                    h.fetch_add(1, Ordering::SeqCst);
                    let mode = m.lock().unwrap().clone();
                    let (Raw::Full(body) | Raw::HalfThenClose(body) | Raw::Trickle(body)) = &mode;
                    let header = format!(
                        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n\
                         Content-Length: {}\r\nConnection: close\r\n\r\n",
                        body.len()
                    );
                    if conn.write_all(header.as_bytes()).await.is_err() {
                        return;
                    }
                    match &mode {
                        Raw::Full(body) => {
                            let _ = conn.write_all(body).await;
                        }
                        Raw::HalfThenClose(body) => {
                            let _ = conn.write_all(&body[..body.len() / 2]).await;
                        }
                        Raw::Trickle(body) => {
                            for b in body {
                                if conn.write_all(&[*b]).await.is_err() {
                                    return;
                                }
                                tokio::time::sleep(Duration::from_millis(100)).await;
                            }
                        }
                    }
                    let _ = conn.shutdown().await;
                });
            }
        });
        RawMaster { addr, mode, hits, task }
    }

    fn set(&self, mode: Raw) {
        *self.mode.lock().unwrap() = mode;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn stale_records_when_the_body_breaks_off_or_trickles() {
    let _pass = exclusive::timing();
    let master = RawMaster::start().await;
    master.set(Raw::Full(state_with_leader(FIXTURE, master.addr)));
    let running =
        start_with_masters(test_config(&[master.addr], json!({"stateTimeoutSeconds": 1}))).await;
    wait_loaded(&running).await;
    let before = snapshot(&running);
    let expected = loaded_answers(running.dns_addr.unwrap()).await;
    let body = state_with_leader(FIXTURE, master.addr);
    // The connection closes before Content-Length bytes came.
    master.set(Raw::HalfThenClose(body.clone()));
    assert_stays(
        &running,
        &before,
        &expected,
        Some((&master.hits, 3)),
        Duration::from_millis(300),
        true,
        "body cut off",
    )
    .await;
    // The headers come at once but the body never finishes in time: the
    // state timeout covers the whole body.
    master.set(Raw::Trickle(body));
    assert_stays(
        &running,
        &before,
        &expected,
        Some((&master.hits, 2)),
        Duration::from_millis(2500),
        false,
        "body trickles",
    )
    .await;
    master.set(Raw::Full(without_task(master.addr, "nginx")));
    assert_recovers(&running, &before, RECOVER, "after a broken body").await;
    running.shutdown().await;
    master.task.abort();
}
