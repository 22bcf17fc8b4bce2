//! Real secondaries of the running server: NSD and Knot, each started on a
//! loopback port with our server as primary, transfer the zone and answer
//! every name and type as we do; a task started through the fake master's
//! event stream reaches both through NOTIFY and IXFR within two seconds;
//! with TSIG, secondaries with the right key follow and one with a wrong
//! key gets nothing.

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use hickory_proto::rr::RecordType;
use serde_json::{Value, json};

use crate::harness::operator::{self, framework_id};
use crate::harness::secondary::{Kind, Secondary, TsigKey};
use crate::harness::*;
use crate::stream::{document, running_task};
use crate::transfer::{request, transfer, zone_of};

/// Every record at `name` of each type, as `addr` answers over TCP.
fn answers(addr: SocketAddr, name: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for rtype in [RecordType::A, RecordType::AAAA, RecordType::SRV] {
        let m = tcp(addr, name, rtype);
        out.extend(m.answers.iter().map(|r| format!("{} {}", r.record_type(), r.data)));
    }
    out
}

/// The server following `master`'s stream on a port chosen here, its
/// secondaries told by NOTIFY; the secondaries are started first (they
/// retry every second until it answers).
async fn primary_with(
    master: &FakeMaster,
    secondaries: &[(Kind, Option<&TsigKey>)],
    extra: Value,
) -> (Running, Vec<Secondary>) {
    let port = free_port();
    let primary = SocketAddr::from(([127, 0, 0, 1], port));
    let started: Vec<Secondary> = secondaries
        .iter()
        .map(|(kind, key)| Secondary::start(*kind, primary, "mesos", *key))
        .collect();
    let notify: Vec<String> = started
        .iter()
        .zip(secondaries)
        .map(|(s, (_, key))| match key {
            Some(k) => format!("{} {}", s.addr, k.name),
            None => s.addr.to_string(),
        })
        .collect();
    let config = merged(merged(with_http(), &json!({"port": port, "notify": notify})), &extra);
    let running = start_with_masters(test_config(&[master.addr], config)).await;
    wait_loaded(&running).await;
    (running, started)
}

/// Wait, off the async threads, until `s` serves `serial`; how long it took.
async fn reaches(s: Arc<Secondary>, serial: u32) -> Duration {
    tokio::task::spawn_blocking(move || s.wait_for_serial(serial, Duration::from_secs(5)))
        .await
        .unwrap()
}

fn serial(r: &Running) -> u32 {
    r.current.load_full().unwrap().serial()
}

#[tokio::test(flavor = "multi_thread")]
async fn nsd_and_knot_follow_the_zone_through_notify_and_ixfr() {
    let _pass = exclusive::timing();
    let master = FakeMaster::start(Behaviour::Status(503)).await;
    let doc = document(FIXTURE, &master);
    master.state().set_document(&doc);
    master.state().set_api(Api::stream(15.0));
    let allow = json!({"allowTransferFrom": ["127.0.0.1"]});
    let (running, secondaries) =
        primary_with(&master, &[(Kind::Nsd, None), (Kind::Knot, None)], allow).await;
    let secondaries: Vec<Arc<Secondary>> = secondaries.into_iter().map(Arc::new).collect();
    let dns = running.dns_addr.unwrap();
    for s in &secondaries {
        reaches(Arc::clone(s), serial(&running)).await;
    }

    // Every name, every type, the same answers.
    let (_, records) = transfer(dns, &request("mesos.", None)).await;
    let zone = zone_of(&records);
    assert!(zone.len() > 10);
    let names: Vec<String> = zone.keys().cloned().collect();
    let compare = {
        let secondaries = secondaries.clone();
        move || {
            for name in &names {
                let ours = answers(dns, name);
                for s in &secondaries {
                    assert_eq!(answers(s.addr, name), ours, "{:?} at {name}", s.kind);
                }
            }
        }
    };
    tokio::task::spawn_blocking(compare).await.unwrap();

    // A task starts: both serve it within two seconds of its event.
    let before = serial(&running);
    let agent = doc["slaves"][0]["id"].as_str().unwrap();
    let task = running_task("web.1", "newweb", agent, 31777);
    let sent = Instant::now();
    master.state().send(&operator::task_added(&task, &framework_id(&doc, 0)));
    wait_for(5, "the new version", || serial(&running) != before).await;
    let after = serial(&running);
    let (_, records) = transfer(dns, &request("mesos.", None)).await;
    let new: Vec<String> =
        zone_of(&records).into_keys().filter(|n| !zone.contains_key(n)).collect();
    assert!(!new.is_empty(), "no new names");
    for s in &secondaries {
        let took = reaches(Arc::clone(s), after).await;
        let total = sent.elapsed();
        eprintln!("{:?}: serial {after} {took:?} after ours, {total:?} after the event", s.kind);
        assert!(total < Duration::from_secs(2), "{:?} took {total:?}\n{}", s.kind, s.log());
        for name in &new {
            assert_eq!(answers(s.addr, name), answers(dns, name), "{:?} {name}", s.kind);
        }
    }
    // They took the change as an increment.
    let knot = secondaries.iter().find(|s| s.kind == Kind::Knot).unwrap();
    assert!(knot.log().contains("IXFR, incoming"), "{}", knot.log());
    let text = metrics(&running).await;
    assert!(text.contains("mesos_dns_notify_total{secondary="), "{text}");
    running.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn secondaries_with_the_key_follow_and_one_with_a_wrong_key_does_not() {
    let master = FakeMaster::start(Behaviour::Status(503)).await;
    let doc = document(FIXTURE, &master);
    master.state().set_document(&doc);
    master.state().set_api(Api::stream(15.0));
    let key = TsigKey::random("xfr-key");
    let wrong = TsigKey::random("xfr-key");
    let config = json!({
        "allowTransferFrom": ["127.0.0.1 xfr-key"],
        "tsigKeys": {"xfr-key": key.secret},
    });
    let (running, secondaries) = primary_with(
        &master,
        &[(Kind::Nsd, Some(&key)), (Kind::Knot, Some(&key)), (Kind::Knot, Some(&wrong))],
        config,
    )
    .await;
    let mut secondaries: Vec<Arc<Secondary>> = secondaries.into_iter().map(Arc::new).collect();
    let forged = secondaries.pop().unwrap();
    for s in &secondaries {
        reaches(Arc::clone(s), serial(&running)).await;
    }
    let before = serial(&running);
    let agent = doc["slaves"][0]["id"].as_str().unwrap();
    let task = running_task("web.2", "signed", agent, 31778);
    master.state().send(&operator::task_added(&task, &framework_id(&doc, 0)));
    wait_for(5, "the new version", || serial(&running) != before).await;
    for s in &secondaries {
        reaches(Arc::clone(s), serial(&running)).await;
    }
    assert_eq!(forged.serial(), None, "a wrong key got the zone:\n{}", forged.log());
    let text = metrics(&running).await;
    let notauth = text
        .lines()
        .find(|l| l.contains("outcome=\"notauth\""))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|n| n.parse::<u64>().ok())
        .unwrap_or(0);
    assert!(notauth > 0, "refusals of the wrong key counted:\n{text}");
    running.shutdown().await;
}

/// What a fake secondary saw: each NOTIFY's arrival and serial.
type Seen = Arc<std::sync::Mutex<Vec<(Instant, u32)>>>;

/// A fake secondary on a UDP socket: answers the SOA query a server asks
/// at start with serial `held`, and NOTIFY (after ignoring the first
/// `ignore` of them), recording each NOTIFY.
fn fake_secondary(held: u32, ignore: usize) -> (SocketAddr, Seen) {
    use hickory_proto::op::{Message, MessageType, OpCode};
    use hickory_proto::rr::rdata::SOA;
    use hickory_proto::rr::{Name, RData, Record};
    let socket = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let addr = socket.local_addr().unwrap();
    let seen: Seen = Arc::default();
    let log = Arc::clone(&seen);
    std::thread::spawn(move || {
        let mut buf = [0u8; 4096];
        let mut ignored = 0;
        while let Ok((n, from)) = socket.recv_from(&mut buf) {
            let Ok(q) = Message::from_vec(&buf[..n]) else { continue };
            let mut reply = Message::new(q.metadata.id, MessageType::Response, q.metadata.op_code);
            reply.add_queries(q.queries.clone());
            if q.metadata.op_code == OpCode::Notify {
                let serial = q.answers.iter().find_map(|r| match &r.data {
                    RData::SOA(soa) => Some(soa.serial),
                    _ => None,
                });
                log.lock().unwrap().push((Instant::now(), serial.unwrap_or(0)));
                if ignored < ignore {
                    ignored += 1;
                    continue;
                }
            } else {
                let apex = Name::from_ascii("mesos.").unwrap();
                let soa = SOA::new(apex.clone(), apex.clone(), held, 60, 60, 60, 60);
                reply.add_answer(Record::from_rdata(apex, 60, RData::SOA(soa)));
            }
            let _ = socket.send_to(&reply.to_vec().unwrap(), from);
        }
    });
    (addr, seen)
}

/// NOTIFY: a restart numbers its versions after the serial the secondary
/// holds (ahead of the clock); a NOTIFY not answered is sent again after
/// 1 s, then 2 s; while changes keep coming, at most one a second goes
/// out, carrying the newest serial.
#[tokio::test(flavor = "multi_thread")]
async fn notify_resumes_above_the_secondary_is_retried_and_paced() {
    let _pass = exclusive::timing();
    let now = u32::try_from(
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs(),
    )
    .unwrap();
    let held = now + 100_000;
    let (secondary, seen) = fake_secondary(held, 2);
    let master = FakeMaster::start(Behaviour::Status(503)).await;
    let doc = document(FIXTURE, &master);
    master.state().set_document(&doc);
    master.state().set_api(Api::stream(15.0));
    let config = merged(
        with_http(),
        &json!({"allowTransferFrom": ["127.0.0.1"], "notify": [secondary.to_string()]}),
    );
    let running = start_with_masters(test_config(&[master.addr], config)).await;
    wait_loaded(&running).await;
    let first = serial(&running);
    assert_eq!(first, held + 1, "numbered after the secondary's serial");

    // Ignored twice: sent again 1 s, then 2 s later; the third answered.
    wait_for(6, "three NOTIFY", || seen.lock().unwrap().len() >= 3).await;
    let notified = seen.lock().unwrap().clone();
    assert!(notified.iter().take(3).all(|&(_, s)| s == first), "{notified:?}");
    let gaps: Vec<Duration> = notified.windows(2).map(|w| w[1].0 - w[0].0).take(2).collect();
    assert!(gaps[0] >= Duration::from_millis(900) && gaps[0] < Duration::from_millis(1500));
    assert!(gaps[1] >= Duration::from_millis(1900) && gaps[1] < Duration::from_millis(2600));

    // A burst of changes: paced at one a second, the last one sent.
    seen.lock().unwrap().clear();
    let agent = doc["slaves"][0]["id"].as_str().unwrap();
    let started = Instant::now();
    for i in 0..20 {
        let task = running_task(&format!("burst.{i}"), &format!("burst{i}"), agent, 31100 + i);
        master.state().send(&operator::task_added(&task, &framework_id(&doc, 0)));
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let last = serial(&running);
    assert!(last >= first + 20, "one version per event: {first} -> {last}");
    wait_for(4, "the newest serial announced", || {
        seen.lock().unwrap().last().is_some_and(|&(_, s)| s == serial(&running))
    })
    .await;
    let notified = seen.lock().unwrap().clone();
    let span = started.elapsed();
    assert!(notified.len() <= span.as_secs() as usize + 2, "{} NOTIFY in {span:?}", notified.len());
    for w in notified.windows(2) {
        assert!(w[1].0 - w[0].0 >= Duration::from_millis(950), "paced: {notified:?}");
    }
    let text = metrics(&running).await;
    let sent = format!("mesos_dns_notify_total{{secondary=\"{secondary}\",outcome=\"failed\"}} 2");
    assert!(text.contains(&sent), "{text}");
    running.shutdown().await;
}
