//! Property tests of the hand-written DNS fast path (`dns::wire`) against
//! an independent decoder (hickory-proto) and an oracle computed from the
//! record set: random queries for names in (and near, and outside) real
//! zones, and random or mutated packets that must never panic.

use std::collections::{HashMap, HashSet};
use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::LazyLock;

use hickory_proto::op::{Edns, Message, MessageType, OpCode, Query, ResponseCode};
use hickory_proto::rr::{DNSClass, Name, RData, RecordType};
use mesos_dns::config::Config;
use mesos_dns::dns::wire::{self, Disposition, Responder, Scratch, Settings};
use mesos_dns::generate::{StaticResolver, generate};
use mesos_dns::records::RrSet;
use mesos_dns::state::State;
use mesos_dns::zone::{Zone, ZoneView};
use proptest::prelude::*;
use proptest::sample::Index;

use crate::harness::fixture;

/// A name as lower-case labels, without the root.
type Labels = Vec<Vec<u8>>;

fn labels_of_str(name: &str) -> Labels {
    let name = name.strip_suffix('.').unwrap_or(name);
    if name.is_empty() {
        return Vec::new();
    }
    name.split('.').map(|l| l.as_bytes().to_ascii_lowercase()).collect()
}

fn labels_of(name: &Name) -> Labels {
    name.iter().map(|l| l.to_ascii_lowercase()).collect()
}

fn wire_len(labels: &[Vec<u8>]) -> usize {
    labels.iter().map(|l| l.len() + 1).sum::<usize>() + 1
}

/// A compiled zone and the oracle's view of the same record set.
struct World {
    config: Config,
    zone: Zone,
    responder: Responder,
    apex: Labels,
    mname: Labels,
    /// Every name with records (lower-case labels) and its records.
    records: HashMap<Labels, RrSet>,
    /// Names that exist: record names, their ancestors below the apex, and
    /// the apex.
    existing: HashSet<Labels>,
    /// Query name pools.
    names: Vec<Labels>,
    /// The names with the most records (for truncation).
    big: Vec<Labels>,
    ancestors: Vec<Labels>,
    outside: Vec<Labels>,
}

const SERIAL: u32 = 1_234_567;

/// One app of `n` instances, each with its own IPv4 and IPv6 container
/// addresses and two host ports: TCP answers far past the 16 KiB that
/// compression pointers can reach.
fn big_app_state(n: usize) -> Vec<u8> {
    let tasks: Vec<_> = (0..n)
        .map(|i| {
            serde_json::json!({
                "id": format!("big.{i:05}"), "name": "big", "slave_id": format!("S-{}", i % 7),
                "state": "TASK_RUNNING",
                "resources": {"ports": format!("[{p}-{q}]", p = 31000 + 2 * i, q = 31001 + 2 * i)},
                "statuses": [{"state": "TASK_RUNNING", "timestamp": 1.0,
                  "container_status": {"network_infos": [{"ip_addresses": [
                    {"ip_address": format!("10.1.{}.{}", i / 250, i % 250 + 1)},
                    {"ip_address": format!("fd00::{i:x}")}]}]}}]
            })
        })
        .collect();
    let slaves: Vec<_> = (0..7)
        .map(|i| serde_json::json!({"id": format!("S-{i}"), "pid": format!("slave(1)@10.0.0.{}:5051", i + 2)}))
        .collect();
    serde_json::to_vec(&serde_json::json!({
        "leader": "master@127.0.0.1:5050",
        "frameworks": [{"name": "marathon", "pid": "scheduler@10.0.0.1:8080", "tasks": tasks}],
        "slaves": slaves,
    }))
    .unwrap()
}

fn world(state: &[u8], config: serde_json::Value) -> World {
    let config = Config::from_json(&config.to_string(), PathBuf::from("prop.json")).unwrap();
    let state = State::from_slice(state).unwrap();
    let rs = generate(&state, &config, &config.masters, &StaticResolver::localhost_only()).unwrap();
    let zone = Zone::compile(&rs, &config, SERIAL);
    let responder = Responder::new(
        &config.domain,
        Settings { recurse_on: true, set_truncate_bit: true, ..Settings::default() },
    );
    let apex = labels_of_str(&config.domain);
    let mut records = HashMap::new();
    for (name, set) in rs.iter() {
        let prev = records.insert(labels_of_str(name), set.clone());
        assert!(prev.is_none(), "{name} differs from another name only in case");
    }
    let mut existing: HashSet<Labels> = records.keys().cloned().collect();
    let mut ancestors = HashSet::new();
    for name in records.keys() {
        for skip in 1..=name.len() {
            let a = name[skip..].to_vec();
            if a.len() > apex.len() && a.ends_with(&apex) {
                existing.insert(a.clone());
            }
            ancestors.insert(a);
        }
    }
    existing.insert(apex.clone());
    ancestors.insert(apex.clone());
    let mut outside: Vec<Labels> =
        ["example.com.", "com.", "."].iter().map(|n| labels_of_str(n)).collect();
    // Near misses: the apex with a changed last label, a longer label, a
    // suffix of it.
    let mut longer = apex.clone();
    longer[0].insert(0, b'x');
    outside.push(longer);
    let mut other_tld = apex.clone();
    other_tld.push(b"com".to_vec());
    outside.push(other_tld);
    outside.push(apex[1..].to_vec());
    let mut names: Vec<Labels> = records.keys().cloned().collect();
    names.sort();
    let mut by_size = names.clone();
    by_size.sort_by_key(|n| {
        let set = &records[n];
        std::cmp::Reverse(set.a.len() + set.aaaa.len() + set.srv.len())
    });
    let big = by_size.into_iter().take(8).collect();
    let mut ancestors: Vec<Labels> = ancestors.into_iter().collect();
    ancestors.sort();
    World {
        mname: labels_of_str(&config.soa_mname),
        config,
        zone,
        responder,
        apex,
        records,
        existing,
        names,
        big,
        ancestors,
        outside,
    }
}

static WORLDS: LazyLock<Vec<World>> = LazyLock::new(|| {
    vec![
        world(
            &fixture("mesos-dns-fake.json"),
            serde_json::json!({
                "masters": ["127.0.0.1:5050"],
                "listener": "127.0.0.1",
            }),
        ),
        // Another domain of two labels, other TTLs and weight, a big SRV set.
        world(
            &fixture("minuteman-0.27.0-gaal-large.json"),
            serde_json::json!({
                "masters": ["127.0.0.1:5050", "10.0.0.9:5050"],
                "listener": "127.0.0.1",
                "domain": "DC1.Example",
                "SOAMname": "ns1.dc1.example",
                "SOARname": "admin.dc1.example",
                "ttl": 45,
                "SOAMinttl": 30,
                "SRVRecordDefaultWeight": 7,
            }),
        ),
        world(
            &big_app_state(400),
            serde_json::json!({"masters": ["127.0.0.1:5050"], "listener": "127.0.0.1"}),
        ),
    ]
});

const QTYPES: [RecordType; 8] = [
    RecordType::A,
    RecordType::AAAA,
    RecordType::SRV,
    RecordType::SOA,
    RecordType::NS,
    RecordType::ANY,
    RecordType::TXT,
    RecordType::MX,
];

/// A random query, resolved against a world in the test body.
#[derive(Debug, Clone)]
struct Spec {
    world: Index,
    /// 0..5 a record name, 5..7 an ancestor (or the apex), 7 outside, 8
    /// the apex, 9..11 one of the biggest RRsets.
    kind: u8,
    pick: Index,
    junk: Vec<Vec<u8>>,
    wildcard: Option<(Index, Vec<u8>)>,
    case: [u64; 4],
    /// A type from [`QTYPES`], or (`None`) one the name holds.
    qtype: Option<Index>,
    edns: Option<u16>,
    udp: bool,
    rd: bool,
    id: u16,
    seed: u64,
}

fn junk_label() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        8 => "[a-z0-9_-]{1,12}".prop_map(String::into_bytes),
        2 => prop::sample::select(vec!["marathon", "slave", "_tcp", "_udp", "leader", "mesos", "dc1"])
            .prop_map(|s| s.as_bytes().to_vec()),
        1 => prop::collection::vec(any::<u8>(), 1..=63),
    ]
}

fn spec() -> impl Strategy<Value = Spec> {
    (
        any::<Index>(),
        0u8..11,
        any::<Index>(),
        prop_oneof![
            3 => Just(Vec::new()),
            1 => prop::collection::vec(junk_label(), 1..=3),
        ],
        prop_oneof![
            15 => Just(None),
            1 => (any::<Index>(), prop_oneof![Just(b"*".to_vec()), "\\*[a-z]{0,3}".prop_map(String::into_bytes)])
                .prop_map(Some),
        ],
        prop_oneof![Just([0; 4]), any::<[u64; 4]>()],
        prop::option::of(any::<Index>()),
        prop_oneof![1 => Just(None), 2 => (512u16..=4096).prop_map(Some)],
        any::<bool>(),
        (any::<bool>(), any::<u16>(), any::<u64>()),
    )
        .prop_map(|(world, kind, pick, junk, wildcard, case, qtype, edns, udp, (rd, id, seed))| Spec {
            world,
            kind,
            pick,
            junk,
            wildcard,
            case,
            qtype,
            edns,
            udp,
            rd,
            id,
            seed,
        })
}

fn base_name<'w>(w: &'w World, s: &Spec) -> &'w Labels {
    match s.kind {
        0..5 => s.pick.get(&w.names),
        5..7 => s.pick.get(&w.ancestors),
        7 => s.pick.get(&w.outside),
        8 => &w.apex,
        _ => s.pick.get(&w.big),
    }
}

/// The query type of a spec: a random one, or one the base name holds.
fn query_type(w: &World, s: &Spec) -> RecordType {
    let held = w.records.get(base_name(w, s)).map(|set| {
        let mut held = Vec::new();
        for (has, t) in [
            (!set.a.is_empty(), RecordType::A),
            (!set.aaaa.is_empty(), RecordType::AAAA),
            (!set.srv.is_empty(), RecordType::SRV),
        ] {
            if has {
                held.push(t);
            }
        }
        held
    });
    match (&s.qtype, held) {
        (Some(i), _) => *i.get(&QTYPES),
        (None, Some(held)) if !held.is_empty() => *s.pick.get(&held),
        (None, _) => RecordType::ANY,
    }
}

/// The query name (case as sent) from a spec; `None` if it cannot be a name.
fn query_labels(w: &World, s: &Spec) -> Option<Vec<Vec<u8>>> {
    let base = base_name(w, s);
    let mut labels: Vec<Vec<u8>> = s.junk.iter().cloned().chain(base.iter().cloned()).collect();
    if let Some((at, label)) = &s.wildcard {
        // Not first: only later labels are stripped.
        let pos = 1 + at.index(labels.len().max(1));
        labels.insert(pos.min(labels.len()), label.clone());
    }
    while wire_len(&labels) > 255 && !labels.is_empty() {
        labels.remove(0);
    }
    // Random case flips.
    let mut bit = 0usize;
    for l in &mut labels {
        for b in l.iter_mut() {
            if s.case[(bit / 64) % 4] >> (bit % 64) & 1 == 1 {
                *b = b.to_ascii_uppercase();
            }
            bit += 1;
        }
    }
    Some(labels)
}

/// The name the zone is searched for: the original's `.*` stripping (a
/// label other than the first that starts with `*` goes with its dot,
/// textually), or the name itself.
fn effective_name(lower: &Labels) -> Option<Labels> {
    if !lower.iter().skip(1).any(|l| l.first() == Some(&b'*')) {
        return Some(lower.clone());
    }
    let text: Vec<String> = lower.iter().map(|l| String::from_utf8_lossy(l).into_owned()).collect();
    let cleaned = text.join(".").replace(".*", "");
    let labels = labels_of_str(&cleaned);
    let ok = labels.iter().all(|l| (1..=63).contains(&l.len())) && wire_len(&labels) <= 255;
    ok.then_some(labels)
}

fn query_bytes(qname: &Name, s: &Spec, qtype: RecordType) -> Vec<u8> {
    let mut m = Message::query();
    m.metadata.id = s.id;
    m.metadata.recursion_desired = s.rd;
    m.add_query(Query::query(qname.clone(), qtype));
    if let Some(size) = s.edns {
        let mut e = Edns::new();
        e.set_max_payload(size);
        m.set_edns(e);
    }
    m.to_vec().unwrap()
}

/// What a record looks like to the oracle.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
enum Value {
    Ip(IpAddr),
    Srv(u16, u16, u16, Labels),
    Soa,
    Ns(Labels),
}

/// Check one query; returns tags naming what it exercised.
/// The size of an answer RR whose owner is a compression pointer.
fn answer_size(w: &World, v: &Value) -> usize {
    2 + 10
        + match v {
            Value::Ip(IpAddr::V4(_)) => 4,
            Value::Ip(IpAddr::V6(_)) => 16,
            Value::Srv(_, _, _, target) => 6 + wire_len(target),
            Value::Soa => wire_len(&w.mname) + wire_len(&labels_of_str(&w.config.soa_rname)) + 20,
            Value::Ns(target) => wire_len(target),
        }
}

fn check_query(s: &Spec) -> Result<Vec<&'static str>, TestCaseError> {
    let w = s.world.get(&WORLDS);
    let qtype = query_type(w, s);
    let mut tags = Vec::new();
    let Some(labels) = query_labels(w, s) else {
        return Ok(vec!["no name"]);
    };
    let Ok(qname) = Name::from_labels(labels.clone()) else {
        return Ok(vec!["no name"]);
    };
    let packet = query_bytes(&qname, s, qtype);
    let lower: Labels = labels.iter().map(|l| l.to_ascii_lowercase()).collect();

    let q = wire::parse(&packet).map_err(|e| TestCaseError::fail(format!("parse: {e:?}")))?;
    prop_assert_eq!(q.id, s.id);
    prop_assert_eq!(q.qtype, u16::from(qtype));
    let mut out = Vec::new();
    let mut scratch = Scratch::new(s.seed);
    let d = w.responder.answer(
        &mut out,
        &packet,
        &q,
        Some(ZoneView::new(&w.zone, None)),
        s.udp,
        &mut scratch,
    );

    let in_domain = lower.ends_with(&w.apex);
    if !in_domain {
        prop_assert_eq!(d, Disposition::Outside, "{} is outside", qname);
        return Ok(vec!["outside"]);
    }
    let Disposition::Answered { rcode, truncated } = d else {
        return Err(TestCaseError::fail(format!("{qname}: {d:?}")));
    };
    let m = Message::from_vec(&out)
        .map_err(|e| TestCaseError::fail(format!("{qname} {qtype}: undecodable: {e}")))?;

    // Header and question.
    let md = &m.metadata;
    prop_assert_eq!(md.id, s.id);
    prop_assert_eq!(md.message_type, MessageType::Response);
    prop_assert_eq!(md.op_code, OpCode::Query);
    prop_assert!(md.authoritative);
    prop_assert!(md.recursion_available);
    prop_assert_eq!(md.recursion_desired, s.rd);
    prop_assert_eq!(md.truncation, truncated);
    prop_assert_eq!(m.queries.len(), 1);
    prop_assert!(
        m.queries[0].name().eq_case(&qname),
        "question {} != {}",
        m.queries[0].name(),
        qname
    );
    prop_assert_eq!(m.queries[0].query_type(), qtype);
    prop_assert_eq!(m.queries[0].query_class(), DNSClass::IN);
    if s.udp {
        let limit = usize::from(s.edns.unwrap_or(512).max(512));
        prop_assert!(out.len() <= limit, "{} bytes > {}", out.len(), limit);
    } else {
        prop_assert!(!truncated);
    }
    match s.edns {
        Some(_) => {
            let e = m.edns.as_ref().expect("OPT in the response");
            prop_assert_eq!(e.max_payload(), wire::OUR_UDP_SIZE);
            prop_assert_eq!(e.version(), 0);
        }
        None => prop_assert!(m.edns.is_none()),
    }

    // The oracle.
    let effective = effective_name(&lower);
    let exists = effective.as_ref().is_some_and(|e| w.existing.contains(e));
    let expected_rcode = if exists { ResponseCode::NoError } else { ResponseCode::NXDomain };
    prop_assert_eq!(md.response_code, expected_rcode, "{} {}", qname, qtype);
    prop_assert_eq!(u16::from(rcode), u16::from(expected_rcode));
    let empty = RrSet::default();
    let set = effective.as_ref().and_then(|e| w.records.get(e)).unwrap_or(&empty);
    let at_apex = lower == w.apex;
    let any = qtype == RecordType::ANY;
    let ttl = w.config.ttl;
    let mut expected: Vec<Value> = Vec::new();
    if exists {
        if any || qtype == RecordType::A {
            expected.extend(set.a.iter().map(|ip| Value::Ip(IpAddr::V4(*ip))));
        }
        if any || qtype == RecordType::AAAA {
            expected.extend(set.aaaa.iter().map(|ip| Value::Ip(IpAddr::V6(*ip))));
        }
        if any || qtype == RecordType::SRV {
            let weight = w.config.srv_record_default_weight;
            expected.extend(
                set.srv.iter().map(|t| Value::Srv(0, weight, t.port, labels_of_str(&t.target))),
            );
        }
        if at_apex && (any || qtype == RecordType::SOA) {
            expected.push(Value::Soa);
        }
        if at_apex && (any || qtype == RecordType::NS) {
            expected.push(Value::Ns(w.mname.clone()));
        }
    }
    expected.sort();

    let mut got: Vec<Value> = Vec::new();
    for r in &m.answers {
        prop_assert_eq!(labels_of(&r.name), lower.clone(), "answer owner");
        prop_assert_eq!(r.ttl, ttl, "answer TTL");
        prop_assert_eq!(r.dns_class, DNSClass::IN);
        got.push(match &r.data {
            RData::A(a) => Value::Ip(IpAddr::V4(a.0)),
            RData::AAAA(a) => Value::Ip(IpAddr::V6(a.0)),
            RData::SRV(srv) => {
                Value::Srv(srv.priority, srv.weight, srv.port, labels_of(&srv.target))
            }
            RData::SOA(soa) => {
                prop_assert_eq!(soa.serial, SERIAL);
                prop_assert_eq!(soa.minimum, w.config.soa_minttl);
                prop_assert_eq!(labels_of(&soa.mname), w.mname.clone());
                Value::Soa
            }
            RData::NS(ns) => Value::Ns(labels_of(&ns.0)),
            other => return Err(TestCaseError::fail(format!("unexpected answer {other:?}"))),
        });
    }
    got.sort();
    let mut dedup = got.clone();
    dedup.dedup();
    prop_assert_eq!(dedup.len(), got.len(), "duplicate answers: {:?}", got);
    // The most a response may hold over UDP.
    let udp_limit = usize::from(s.edns.unwrap_or(512).max(512));
    if truncated {
        prop_assert!(s.udp);
        prop_assert!(got.len() < expected.len(), "TC with every answer");
        for v in &got {
            prop_assert!(expected.contains(v), "{:?} not expected", v);
        }
        // An answer was left out because it did not fit (answers only
        // grow the message, so it still does not).
        let mut missing = expected.clone();
        for v in &got {
            if let Some(i) = missing.iter().position(|m| m == v) {
                missing.remove(i);
            }
        }
        prop_assert!(
            missing.iter().any(|v| out.len() + answer_size(w, v) > udp_limit),
            "TC set, but {:?} would fit in {} of {} bytes",
            missing,
            out.len(),
            udp_limit
        );
    } else {
        prop_assert_eq!(&got, &expected, "{} {}", qname, qtype);
    }

    // Additional: the SRV targets' and name server's addresses, from the
    // record set; all of them over TCP, a subset over UDP.
    let mut glue_expected: HashSet<(Labels, IpAddr)> = HashSet::new();
    for v in &got {
        let target = match v {
            Value::Srv(_, _, _, t) | Value::Ns(t) => t,
            _ => continue,
        };
        if let Some(tset) = w.records.get(target) {
            glue_expected.extend(tset.a.iter().map(|ip| (target.clone(), IpAddr::V4(*ip))));
            glue_expected.extend(tset.aaaa.iter().map(|ip| (target.clone(), IpAddr::V6(*ip))));
        }
    }
    let mut glue = HashSet::new();
    for r in &m.additionals {
        prop_assert_eq!(r.ttl, ttl, "glue TTL");
        let ip = match &r.data {
            RData::A(a) => IpAddr::V4(a.0),
            RData::AAAA(a) => IpAddr::V6(a.0),
            other => return Err(TestCaseError::fail(format!("unexpected additional {other:?}"))),
        };
        let fresh = glue.insert((labels_of(&r.name), ip));
        prop_assert!(fresh, "duplicate glue {} {}", r.name, ip);
    }
    prop_assert!(glue.is_subset(&glue_expected), "glue {:?} not in {:?}", glue, glue_expected);
    if !s.udp {
        prop_assert_eq!(&glue, &glue_expected);
    }
    // Glue is left out only when it does not fit.
    for (name, ip) in glue_expected.difference(&glue) {
        let size = 2 + if ip.is_ipv4() { 14 } else { 26 };
        prop_assert!(
            out.len() + size > udp_limit,
            "glue {:?} {} dropped with {} of {} bytes used",
            name,
            ip,
            out.len(),
            udp_limit
        );
    }

    // Authority: the apex SOA on negative answers, nothing otherwise.
    let negative = md.response_code == ResponseCode::NXDomain || (got.is_empty() && !truncated);
    if negative {
        prop_assert!(got.is_empty());
        prop_assert_eq!(m.authorities.len(), 1, "one SOA in authority");
        let r = &m.authorities[0];
        prop_assert_eq!(labels_of(&r.name), w.apex.clone(), "SOA owner");
        prop_assert_eq!(r.ttl, ttl.min(w.config.soa_minttl));
        let RData::SOA(soa) = &r.data else {
            return Err(TestCaseError::fail(format!("authority {r:?}")));
        };
        prop_assert_eq!(soa.minimum, w.config.soa_minttl);
        prop_assert_eq!(soa.serial, SERIAL);
    } else {
        prop_assert!(m.authorities.is_empty());
    }

    tags.push(match (md.response_code, negative) {
        (ResponseCode::NXDomain, _) => "nxdomain",
        (_, true) => "nodata",
        _ => "answer",
    });
    if truncated {
        tags.push("truncated");
    }
    if effective.as_ref() != Some(&lower) {
        tags.push("wildcard");
    }
    if at_apex && !got.is_empty() {
        tags.push("apex answer");
    }
    if !glue.is_empty() {
        tags.push(if s.udp { "glue udp" } else { "glue tcp" });
    }
    if glue.len() < glue_expected.len() {
        tags.push("glue dropped");
    }
    if got.iter().any(|v| matches!(v, Value::Ip(IpAddr::V6(_)))) {
        tags.push("aaaa");
    }
    if got.iter().any(|v| matches!(v, Value::Srv(..))) {
        tags.push("srv");
    }
    if labels.iter().zip(&lower).any(|(a, b)| a != b) && !got.is_empty() {
        tags.push("mixed case answer");
    }
    if s.world.index(WORLDS.len()) == 1 && !got.is_empty() {
        tags.push("second domain answer");
    }
    if out.len() > 0x4000 {
        tags.push("over 16 KiB");
    }
    Ok(tags)
}

/// Run `check` on `cases` values of `strategy` (no regression files), then
/// require every tag in `required` to have been seen: the generators must
/// keep reaching each kind of answer.
fn run_property<S: Strategy>(
    cases: u32,
    strategy: S,
    required: &[&str],
    check: impl Fn(S::Value) -> Result<Vec<&'static str>, TestCaseError>,
) where
    S::Value: std::fmt::Debug,
{
    let config = ProptestConfig { cases, failure_persistence: None, ..ProptestConfig::default() };
    let mut runner = proptest::test_runner::TestRunner::new(config);
    let seen = std::cell::RefCell::new(HashMap::<&'static str, usize>::new());
    let result = runner.run(&strategy, |v| {
        for tag in check(v)? {
            *seen.borrow_mut().entry(tag).or_default() += 1;
        }
        Ok(())
    });
    if let Err(e) = result {
        panic!("{e}");
    }
    let seen = seen.into_inner();
    let mut counts: Vec<_> = seen.iter().collect();
    counts.sort();
    eprintln!("coverage: {counts:?}");
    for tag in required {
        assert!(seen.contains_key(tag), "no case reached {tag:?}: {counts:?}");
    }
}

#[test]
fn answers_match_the_record_set() {
    let _pass = crate::harness::exclusive::load(); // thousands of cases, CPU-bound
    run_property(
        2000,
        spec(),
        &[
            "outside",
            "nxdomain",
            "nodata",
            "answer",
            "truncated",
            "wildcard",
            "apex answer",
            "glue udp",
            "glue tcp",
            "aaaa",
            "srv",
            "mixed case answer",
            "second domain answer",
            "over 16 KiB",
            "glue dropped",
        ],
        |s| check_query(&s),
    );
}

/// How to damage a valid query.
#[derive(Debug, Clone)]
enum Mutation {
    Set(Index, u8),
    Truncate(Index),
    Insert(Index, Vec<u8>),
    /// Overwrite a header count (0 = QD .. 3 = AR).
    Count(u8, u16),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        4 => (any::<Index>(), any::<u8>()).prop_map(|(i, b)| Mutation::Set(i, b)),
        1 => any::<Index>().prop_map(Mutation::Truncate),
        1 => (any::<Index>(), prop::collection::vec(any::<u8>(), 1..40)).prop_map(|(i, v)| Mutation::Insert(i, v)),
        2 => (0u8..4, prop_oneof![0u16..4, any::<u16>()]).prop_map(|(c, v)| Mutation::Count(c, v)),
    ]
}

fn mutate(mut p: Vec<u8>, ms: &[Mutation]) -> Vec<u8> {
    for m in ms {
        match m {
            Mutation::Set(i, b) if !p.is_empty() => {
                let at = i.index(p.len());
                p[at] = *b;
            }
            Mutation::Truncate(i) => p.truncate(i.index(p.len() + 1)),
            Mutation::Insert(i, v) => {
                let at = i.index(p.len() + 1);
                p.splice(at..at, v.iter().copied());
            }
            Mutation::Count(c, v) if p.len() >= 12 => {
                let at = 4 + 2 * usize::from(*c);
                p[at..at + 2].copy_from_slice(&v.to_be_bytes());
            }
            _ => {}
        }
    }
    p
}

/// Any packet: no panic; a response (when one is sent) that hickory
/// decodes, echoes the id and fits the transport.
fn check_packet(
    w: &World,
    packet: &[u8],
    udp: bool,
    loaded: bool,
    seed: u64,
) -> Result<Vec<&'static str>, TestCaseError> {
    let mut out = Vec::new();
    let mut scratch = Scratch::new(seed);
    let (d, edns) = match wire::parse(packet) {
        Ok(q) => {
            let zone = loaded.then(|| ZoneView::new(&w.zone, None));
            let d = w.responder.answer(&mut out, packet, &q, zone, udp, &mut scratch);
            let d = if d == Disposition::Outside {
                let refused = wire::ParseError::Reply {
                    id: q.id,
                    flags: q.flags,
                    rcode: wire::rcode::REFUSED,
                };
                wire::error_response(&mut out, packet, Some(&q), refused)
            } else {
                d
            };
            (d, q.edns)
        }
        Err(e) => (wire::error_response(&mut out, packet, None, e), None),
    };
    let droppable = packet.len() < 12 || packet[2] & 0x80 != 0;
    match d {
        Disposition::Dropped => {
            prop_assert!(droppable, "dropped a query");
            return Ok(vec!["dropped"]);
        }
        Disposition::Outside => return Err(TestCaseError::fail("Outside after refusal")),
        // Zone transfers are answered by dns::transfer (tests/it/transfer.rs).
        Disposition::Transfer => return Ok(vec!["transfer"]),
        Disposition::Answered { .. } => prop_assert!(!droppable, "answered a non-query"),
    }
    let m = Message::from_vec(&out).map_err(|e| {
        TestCaseError::fail(format!("undecodable response {e}: {out:02x?} to {packet:02x?}"))
    })?;
    prop_assert_eq!(m.metadata.id, u16::from_be_bytes([packet[0], packet[1]]));
    prop_assert_eq!(m.metadata.message_type, MessageType::Response);
    let limit = if udp {
        usize::from(edns.map_or(512, |e| e.udp_size).max(512))
    } else {
        usize::from(u16::MAX)
    };
    prop_assert!(out.len() <= limit, "{} bytes > {}", out.len(), limit);
    Ok(vec![match m.metadata.response_code {
        ResponseCode::NoError => "noerror",
        ResponseCode::FormErr => "formerr",
        ResponseCode::ServFail => "servfail",
        ResponseCode::NXDomain => "nxdomain",
        ResponseCode::NotImp => "notimp",
        ResponseCode::Refused => "refused",
        ResponseCode::BADVERS | ResponseCode::BADSIG => "badvers",
        _ => "other rcode",
    }])
}

fn damaged_query() -> impl Strategy<Value = Vec<u8>> {
    (spec(), prop::collection::vec(mutation(), 1..6)).prop_filter_map("no query", |(s, ms)| {
        let w = s.world.get(&WORLDS);
        let labels = query_labels(w, &s)?;
        let qname = Name::from_labels(labels).ok()?;
        let packet = query_bytes(&qname, &s, query_type(w, &s));
        Some(mutate(packet, &ms))
    })
}

#[test]
fn any_packet_is_handled_without_panic() {
    let _pass = crate::harness::exclusive::load(); // thousands of cases, CPU-bound
    let packets = (
        prop_oneof![
            1 => prop::collection::vec(any::<u8>(), 0..600),
            3 => damaged_query(),
        ],
        any::<Index>(),
        any::<bool>(),
        prop::bool::weighted(0.9),
        any::<u64>(),
    );
    run_property(
        5000,
        packets,
        &["dropped", "formerr", "noerror", "nxdomain", "servfail", "refused", "notimp"],
        |(packet, world, udp, loaded, seed)| {
            check_packet(world.get(&WORLDS), &packet, udp, loaded, seed)
        },
    );
}

/// Valid queries the property above only reaches by chance.
#[test]
fn edge_queries_decode() {
    let w = &WORLDS[0];
    let q = |name: &str, t: RecordType, edns: Option<u16>| {
        let mut m = Message::query();
        m.metadata.id = 7;
        m.add_query(Query::query(Name::from_ascii(name).unwrap(), t));
        if let Some(size) = edns {
            let mut e = Edns::new();
            e.set_max_payload(size);
            m.set_edns(e);
        }
        m.to_vec().unwrap()
    };
    for p in [
        q("mesos.", RecordType::ANY, None),
        q("mesos.", RecordType::NS, Some(512)),
        q("_slave._tcp.mesos.", RecordType::SRV, None),
        q(".", RecordType::A, None),
        q("MESOS.", RecordType::SOA, None),
    ] {
        for udp in [true, false] {
            check_packet(w, &p, udp, true, 1).unwrap();
        }
    }
}
