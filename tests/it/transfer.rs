//! Zone transfers against the running server following a fake master's
//! event stream: AXFR gives every record the zone serves (SOA first and
//! last, the serial in service); IXFR gives the changes since a serial,
//! which applied to that version's zone give the current one; who may
//! transfer (`allowTransferFrom`); AXFR/IXFR over UDP; `dig` and `kdig`
//! parse both.

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::time::Duration;

use hickory_proto::op::{Message, MessageType, OpCode, Query};
use hickory_proto::rr::rdata::SOA;
use hickory_proto::rr::{Name, RData, Record, RecordType};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::harness::operator::{self, framework_id};
use crate::harness::*;
use crate::stream::{following, running_task, served};

/// The names and records of a zone, as the tests compare them: by name,
/// each record as text (address, or `target:port`), SOA and NS left out.
pub(crate) type Records = BTreeMap<String, BTreeSet<String>>;

/// A transfer request for `domain`: AXFR, or IXFR from `serial`.
pub(crate) fn request(domain: &str, ixfr_from: Option<u32>) -> Message {
    let name = Name::from_ascii(domain).unwrap();
    let rtype = if ixfr_from.is_some() { RecordType::IXFR } else { RecordType::AXFR };
    let mut m = Message::new(rand::random(), MessageType::Query, OpCode::Query);
    m.add_query(Query::query(name.clone(), rtype));
    if let Some(serial) = ixfr_from {
        let soa = SOA::new(name.clone(), name.clone(), serial, 0, 0, 0, 0);
        m.add_authority(Record::from_rdata(name, 0, RData::SOA(soa)));
    }
    m
}

/// The serial of an SOA record.
fn serial_of(r: &Record) -> Option<u32> {
    match &r.data {
        RData::SOA(soa) => Some(soa.serial),
        _ => None,
    }
}

/// Send `request` over TCP and read the answer's records, message after
/// message, until the transfer is complete: one SOA alone, a whole zone
/// (two SOAs), or one condensed difference (three SOAs of the new
/// serial). The rcode of the first message too.
pub(crate) async fn transfer(addr: SocketAddr, request: &Message) -> (u16, Vec<Record>) {
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let bytes = request.to_vec().unwrap();
    stream.write_all(&tcp_framed(&bytes)).await.unwrap();
    let mut records: Vec<Record> = Vec::new();
    let mut rcode = None;
    loop {
        let len = tokio::time::timeout(Duration::from_secs(10), stream.read_u16())
            .await
            .expect("transfer stalled")
            .unwrap();
        let mut buf = vec![0; usize::from(len)];
        stream.read_exact(&mut buf).await.unwrap();
        let m = Message::from_vec(&buf).unwrap();
        assert_eq!(m.metadata.id, request.metadata.id);
        let first = rcode.is_none();
        rcode.get_or_insert(u16::from(m.metadata.response_code));
        if m.metadata.response_code != hickory_proto::op::ResponseCode::NoError {
            return (u16::from(m.metadata.response_code), records);
        }
        records.extend(m.answers.iter().cloned());
        let newest = records.first().and_then(serial_of);
        let soas = records.iter().filter(|r| serial_of(r).is_some() && serial_of(r) == newest);
        let soas = soas.count();
        let incremental = records.get(1).is_some_and(|r| serial_of(r).is_some());
        let done = (first && records.len() == 1)
            || (!incremental && soas == 2)
            || (incremental && soas == 3);
        if done {
            return (rcode.unwrap(), records);
        }
    }
}

/// A record as the tests compare it.
fn value(r: &Record) -> Option<String> {
    match &r.data {
        RData::A(a) => Some(a.to_string()),
        RData::AAAA(a) => Some(a.to_string()),
        RData::SRV(srv) => Some(format!("{}:{}", srv.target.to_ascii(), srv.port)),
        _ => None,
    }
}

/// The records of a whole-zone transfer (SOA and NS left out).
pub(crate) fn zone_of(records: &[Record]) -> Records {
    let mut zone = Records::new();
    for r in records {
        if let Some(v) = value(r) {
            zone.entry(r.name.to_ascii().to_lowercase()).or_default().insert(v);
        }
    }
    zone
}

/// `zone` with a condensed IXFR difference applied.
pub(crate) fn apply(mut zone: Records, ixfr: &[Record]) -> Records {
    // New SOA, old SOA, deletions, new SOA, additions, new SOA.
    let middle = ixfr.iter().skip(2).position(|r| serial_of(r).is_some()).unwrap() + 2;
    for r in &ixfr[2..middle] {
        let name = r.name.to_ascii().to_lowercase();
        let values = zone.get_mut(&name).unwrap_or_else(|| panic!("deleting from {name}"));
        assert!(values.remove(&value(r).unwrap()), "{name}: deleting {r} it does not hold");
        if values.is_empty() {
            zone.remove(&name);
        }
    }
    for r in &ixfr[middle + 1..ixfr.len() - 1] {
        let added = zone.entry(r.name.to_ascii().to_lowercase()).or_default();
        assert!(added.insert(value(r).unwrap()), "adding {r} twice");
    }
    zone
}

fn serial(r: &Running) -> u32 {
    r.current.load_full().unwrap().serial()
}

/// A started task of framework 0 on agent 0, as an event.
fn started(doc: &Value, id: &str, port: u16) -> Value {
    let agent = doc["slaves"][0]["id"].as_str().unwrap();
    operator::task_added(&running_task(id, "web", agent, port), &framework_id(doc, 0))
}

/// Wait until the serial in service is newer than `than`.
async fn until_newer(r: &Running, than: u32) -> u32 {
    wait_for(5, "a new version", || serial(r) != than).await;
    serial(r)
}

#[tokio::test(flavor = "multi_thread")]
async fn axfr_gives_every_record_the_zone_serves() {
    let allow = json!({"allowTransferFrom": ["127.0.0.1"]});
    let (_master, running, _doc) = following(FIXTURE, Api::stream(15.0), allow).await;
    let dns = running.dns_addr.unwrap();
    let (rcode, records) = transfer(dns, &request("mesos.", None)).await;
    assert_eq!(rcode, 0);
    let soa_serial = serial_of(&records[0]).expect("SOA first");
    assert_eq!(soa_serial, serial(&running));
    assert_eq!(serial_of(records.last().unwrap()), Some(soa_serial), "SOA last");
    assert_eq!(records[1].record_type(), RecordType::NS);
    let zone = zone_of(&records);
    assert!(zone.len() > 10, "{} names", zone.len());
    assert_eq!(zone, served(&running), "the records in service");
    // Each name's records are those DNS answers.
    for (name, values) in zone.iter().take(50) {
        let answer = tcp(dns, name, RecordType::ANY);
        let answered: BTreeSet<String> = answer.answers.iter().filter_map(value).collect();
        assert_eq!(&answered, values, "{name}");
    }
    running.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn ixfr_gives_the_changes_since_a_serial() {
    let allow = json!({"allowTransferFrom": ["127.0.0.0/8"]});
    let (master, running, doc) = following(FIXTURE, Api::stream(15.0), allow).await;
    let dns = running.dns_addr.unwrap();
    let (_, before) = transfer(dns, &request("mesos.", None)).await;
    let first = serial_of(&before[0]).unwrap();

    // Up to date: the SOA alone.
    let (_, same) = transfer(dns, &request("mesos.", Some(first))).await;
    assert_eq!((same.len(), serial_of(&same[0])), (1, Some(first)));

    // Two versions later, one difference that takes the zone from the
    // first to the newest.
    master.state().send(&started(&doc, "web.1", 31001));
    let second = until_newer(&running, first).await;
    master.state().send(&started(&doc, "web.2", 31002));
    let third = until_newer(&running, second).await;
    // The history has it once the version is remembered.
    let mut ixfr = Vec::new();
    for _ in 0..100 {
        ixfr = transfer(dns, &request("mesos.", Some(first))).await.1;
        if ixfr.get(1).is_some_and(|r| serial_of(r).is_some()) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(serial_of(&ixfr[0]), Some(third));
    assert_eq!(serial_of(&ixfr[1]), Some(first), "the client's version");
    let (_, after) = transfer(dns, &request("mesos.", None)).await;
    assert_eq!(apply(zone_of(&before), &ixfr), zone_of(&after));
    assert!(ixfr.len() < 20, "a difference, not the zone: {} records", ixfr.len());

    // A serial never served: the whole zone.
    let (_, whole) = transfer(dns, &request("mesos.", Some(first.wrapping_sub(1000)))).await;
    assert_eq!(zone_of(&whole), zone_of(&after));
    assert_eq!(whole[1].record_type(), RecordType::NS);

    // Over UDP: the SOA alone (come over TCP).
    let m = Message::from_vec(
        &udp_raw(dns, &request("mesos.", Some(first)).to_vec().unwrap()).unwrap(),
    )
    .unwrap();
    assert_eq!(m.answers.len(), 1);
    assert_eq!(serial_of(&m.answers[0]), Some(third));
    let text = metrics(&running).await;
    assert!(text.contains("mesos_dns_zone_transfers_total{type=\"IXFR\",outcome=\"answered\"}"));
    running.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn only_allowed_clients_transfer() {
    // By default, nobody.
    let (_m1, default, _) = following(FIXTURE, Api::stream(15.0), json!({})).await;
    let (rcode, _) = transfer(default.dns_addr.unwrap(), &request("mesos.", None)).await;
    assert_eq!(rcode, 5, "REFUSED");
    default.shutdown().await;

    let elsewhere = json!({"allowTransferFrom": ["10.0.0.0/8"]});
    let (_m2, running, _) = following(FIXTURE, Api::stream(15.0), elsewhere).await;
    let dns = running.dns_addr.unwrap();
    assert_eq!(transfer(dns, &request("mesos.", None)).await.0, 5, "REFUSED");
    assert_eq!(transfer(dns, &request("mesos.", Some(1))).await.0, 5, "REFUSED");
    // Ordinary queries are answered as before.
    assert!(!udp(dns, "leader.mesos.", RecordType::A, None).answers.is_empty());
    running.shutdown().await;

    // Allowed, but over UDP: AXFR is FORMERR.
    let allow = json!({"allowTransferFrom": ["127.0.0.1"]});
    let (_m3, running, _) = following(FIXTURE, Api::stream(15.0), allow).await;
    let reply = udp_raw(running.dns_addr.unwrap(), &request("mesos.", None).to_vec().unwrap());
    let m = Message::from_vec(&reply.unwrap()).unwrap();
    assert_eq!(u16::from(m.metadata.response_code), 1, "FORMERR");
    running.shutdown().await;
}

/// `dig` and `kdig` transfer the zone from the binary and parse every
/// message: AXFR, then IXFR from the serial AXFR showed.
#[test]
fn dig_and_kdig_transfer_the_zone() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let config = dir.path().join("config.json");
    let demo = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("demo");
    let mut doc: Value =
        serde_json::from_str(&std::fs::read_to_string(demo.join("config.json")).unwrap()).unwrap();
    doc["port"] = port.into();
    doc["httpon"] = false.into();
    doc["listener"] = "127.0.0.1".into();
    doc["allowTransferFrom"] = json!(["127.0.0.1"]);
    std::fs::write(&config, doc.to_string()).unwrap();
    let _server = Proc::spawn(&mut command(&[
        "-config",
        config.to_str().unwrap(),
        "-state-file",
        demo.join("state.json").to_str().unwrap(),
    ]));
    let addr: SocketAddr = ([127, 0, 0, 1], port).into();
    let at = format!("@{}", addr.ip());
    let port = port.to_string();
    let run = |tool: &str, args: &[&str]| {
        let out = std::process::Command::new(tool).args(args).output().unwrap();
        (String::from_utf8_lossy(&out.stdout).into_owned(), out.status.success())
    };
    let mut axfr = String::new();
    for _ in 0..100 {
        axfr = run("dig", &[&at, "-p", &port, "AXFR", "mesos.", "+nocookie"]).0;
        if axfr.contains("XFR size") {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(axfr.contains("XFR size"), "dig AXFR:\n{axfr}");
    assert!(!axfr.contains("failed"), "dig AXFR:\n{axfr}");
    let soa = axfr.lines().find(|l| l.contains("\tSOA\t")).expect("an SOA line");
    let serial = soa.split_whitespace().nth(6).unwrap().to_owned();
    let ixfr = run("dig", &[&at, "-p", &port, &format!("IXFR={serial}"), "mesos.", "+nocookie"]).0;
    assert!(ixfr.contains("\tSOA\t") && !ixfr.contains("failed"), "dig IXFR:\n{ixfr}");
    let (kaxfr, ok) = run("kdig", &[&at, "-p", &port, "AXFR", "mesos."]);
    assert!(ok && kaxfr.contains(";; Received") && !kaxfr.contains("failed"), "kdig:\n{kaxfr}");
    let records =
        |text: &str| text.lines().filter(|l| !l.starts_with(';') && !l.trim().is_empty()).count();
    assert_eq!(records(&kaxfr), records(&axfr), "kdig and dig see the same records");
    let (kixfr, ok) = run("kdig", &[&at, "-p", &port, &format!("IXFR={serial}"), "mesos."]);
    assert!(ok && !kixfr.contains("failed"), "kdig IXFR:\n{kixfr}");
}

/// `kdig` signing with TSIG: the right key transfers, a wrong or missing
/// one is NOTAUTH (and counted); a signed query's answer is signed.
#[tokio::test(flavor = "multi_thread")]
async fn tsig_signed_transfers() {
    let secret = "ZmFrZS1zZWNyZXQtZm9yLXRlc3RzLW9ubHktMDEyMzQ1Njc=";
    let wrong = "d3Jvbmctc2VjcmV0LWZvci10ZXN0cy1vbmx5LTAxMjM0NTY=";
    let config = json!({
        "allowTransferFrom": ["127.0.0.1 xfr"],
        "tsigKeys": {"xfr": secret},
    });
    let (_master, running, _) = following(FIXTURE, Api::stream(15.0), config).await;
    let dns = running.dns_addr.unwrap();
    let kdig = |args: Vec<String>| async move {
        let mut cmd = tokio::process::Command::new("kdig");
        cmd.args([format!("@{}", dns.ip()), "-p".into(), dns.port().to_string()]).args(args);
        let out = cmd.output().await.unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr)
    };
    let key = |s: &str| format!("-y hmac-sha256:xfr:{s}");
    let args = |key: Option<String>, what: &str| {
        let mut v: Vec<String> = key.into_iter().collect();
        v.extend([what.to_owned(), "mesos.".to_owned()]);
        v
    };
    let signed = kdig(args(Some(key(secret)), "AXFR")).await;
    assert!(signed.contains("leader.mesos.") && !signed.contains("failed"), "{signed}");
    let (_, unsigned_records) = transfer(dns, &request("mesos.", None)).await;
    assert!(unsigned_records.is_empty());
    let unsigned = kdig(args(None, "AXFR")).await;
    assert!(unsigned.contains("NOTAUTH"), "no key: {unsigned}");
    let forged = kdig(args(Some(key(wrong)), "AXFR")).await;
    assert!(forged.contains("BADSIG") || forged.contains("NOTAUTH"), "wrong key: {forged}");
    let soa = kdig(args(Some(key(secret)), "SOA")).await;
    assert!(soa.contains("NOERROR") && soa.contains("TSIG PSEUDOSECTION"), "{soa}");
    assert!(!soa.contains("failed"), "{soa}");
    let text = metrics(&running).await;
    assert!(
        text.contains("mesos_dns_zone_transfers_total{type=\"\",outcome=\"notauth\"} 3"),
        "{text}"
    );
    running.shutdown().await;
}
