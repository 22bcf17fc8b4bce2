//! End-to-end DNS serving over real UDP and TCP sockets on
//! 127.0.0.1, with a fake master serving the fixtures.

use crate::harness::*;
use hickory_proto::op::{Message, ResponseCode};
use hickory_proto::rr::{RData, RecordType};
use serde_json::json;

fn rcode(m: &Message) -> ResponseCode {
    m.metadata.response_code
}

fn soa_minimum(m: &Message) -> Option<u32> {
    m.authorities.iter().find_map(|r| match &r.data {
        RData::SOA(soa) => Some(soa.minimum),
        _ => None,
    })
}

#[tokio::test(flavor = "multi_thread")]
async fn a_aaaa_srv_with_glue_over_udp_and_tcp() {
    let Cluster { master: _m, running, addr } = cluster(json!({})).await;
    for m in [
        udp(addr, "liquor-store.marathon.mesos.", RecordType::A, None),
        tcp(addr, "liquor-store.marathon.mesos.", RecordType::A),
    ] {
        assert_eq!(rcode(&m), ResponseCode::NoError);
        assert!(m.metadata.authoritative);
        assert!(m.metadata.recursion_available);
        assert_eq!(a_answers(&m), vec!["1.2.3.11", "1.2.3.12"]);
        assert!(m.answers.iter().all(|r| r.ttl == 60));
    }
    let m = udp(addr, "toy-store.ipv6-framework.mesos.", RecordType::AAAA, None);
    assert_eq!(a_answers(&m), vec!["fd01:b::1:8000:2"]);

    let m = udp(addr, "_liquor-store._tcp.marathon.slave.mesos.", RecordType::SRV, Some(1232));
    let mut srvs: Vec<String> = m
        .answers
        .iter()
        .map(|r| match &r.data {
            RData::SRV(s) => format!("{} {} {} {}", s.priority, s.weight, s.port, s.target),
            other => panic!("not SRV: {other:?}"),
        })
        .collect();
    srvs.sort();
    assert_eq!(
        srvs,
        vec![
            "0 1 31354 liquor-store-4dfjd-0.marathon.slave.mesos.",
            "0 1 31355 liquor-store-4dfjd-0.marathon.slave.mesos.",
            "0 1 31737 liquor-store-zasmd-1.marathon.slave.mesos.",
            "0 1 31738 liquor-store-zasmd-1.marathon.slave.mesos.",
        ]
    );
    // Glue: each target's address once.
    let mut glue: Vec<String> =
        m.additionals.iter().map(|r| format!("{} {}", r.name, r.data)).collect();
    glue.sort();
    assert_eq!(
        glue,
        vec![
            "liquor-store-4dfjd-0.marathon.slave.mesos. 1.2.3.11",
            "liquor-store-zasmd-1.marathon.slave.mesos. 1.2.3.12",
        ]
    );
    assert_eq!(m.edns.as_ref().map(|e| e.max_payload()), Some(1232));
    running.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn names_match_case_insensitively() {
    let Cluster { master: _m, running, addr } = cluster(json!({})).await;
    let m = udp(addr, "LiQuOr-StOrE.MaRaThOn.MeSoS.", RecordType::A, None);
    assert_eq!(a_answers(&m), vec!["1.2.3.11", "1.2.3.12"]);
    // The question comes back as asked.
    assert_eq!(m.queries[0].name().to_string(), "LiQuOr-StOrE.MaRaThOn.MeSoS.");
    running.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn soa_and_ns_at_the_apex_are_answers() {
    let Cluster { master: _m, running, addr } = cluster(json!({})).await;
    let m = udp(addr, "mesos.", RecordType::SOA, None);
    assert_eq!(m.answers.len(), 1);
    let RData::SOA(soa) = &m.answers[0].data else { panic!("{m:?}") };
    assert_eq!(soa.mname.to_string(), "ns1.mesos.");
    assert_eq!(soa.rname.to_string(), "root.ns1.mesos.");
    assert_eq!((soa.refresh, soa.retry, soa.expire, soa.minimum), (60, 600, 86400, 30));

    let m = tcp(addr, "mesos.", RecordType::NS);
    assert_eq!(m.answers.len(), 1);
    assert_eq!(m.answers[0].data.to_string(), "ns1.mesos.");
    // The name server's address rides along.
    assert_eq!(m.additionals.len(), 1);
    assert_eq!(m.additionals[0].data.to_string(), "127.0.0.1");

    let m = udp(addr, "mesos.", RecordType::ANY, None);
    let mut types: Vec<RecordType> = m.answers.iter().map(|r| r.record_type()).collect();
    types.sort_by_key(|t| u16::from(*t));
    assert_eq!(types, vec![RecordType::NS, RecordType::SOA]);
    running.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn any_returns_every_type_at_a_name() {
    let Cluster { master: _m, running, addr } = cluster(json!({})).await;
    let m = udp(addr, "toy-store.ipv6-framework.mesos.", RecordType::ANY, Some(4096));
    assert_eq!(a_answers(&m), vec!["12.0.1.2", "12.0.1.3", "fd01:b::1:8000:2"]);
    running.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn nxdomain_nodata_and_empty_non_terminals() {
    let Cluster { master: _m, running, addr } = cluster(json!({})).await;
    // Nothing at or below: NXDOMAIN with the SOA (minimum = SOAMinttl).
    let m = udp(addr, "no-such-app.marathon.mesos.", RecordType::A, None);
    assert_eq!(rcode(&m), ResponseCode::NXDomain);
    assert!(m.answers.is_empty());
    assert_eq!(soa_minimum(&m), Some(30));
    assert_eq!(m.authorities[0].name.to_string(), "mesos.");
    // A name with other types: NODATA.
    let m = udp(addr, "liquor-store.marathon.mesos.", RecordType::AAAA, None);
    assert_eq!(rcode(&m), ResponseCode::NoError);
    assert!(m.answers.is_empty());
    assert_eq!(soa_minimum(&m), Some(30));
    // Empty non-terminals: NODATA, not NXDOMAIN.
    for ent in
        ["marathon.slave.mesos.", "_tcp.marathon.mesos.", "_liquor-store._tcp.marathon.mesos.x."]
    {
        let m = udp(addr, ent, RecordType::A, None);
        if ent.ends_with(".x.") {
            assert_eq!(rcode(&m), ResponseCode::Refused, "{ent} is outside the domain");
        } else {
            assert_eq!(rcode(&m), ResponseCode::NoError, "{ent}");
            assert!(m.answers.is_empty());
            assert_eq!(soa_minimum(&m), Some(30));
        }
    }
    // SRV at a name with only A records: NODATA; a TXT query: NODATA.
    let m = udp(addr, "slave.mesos.", RecordType::TXT, None);
    assert_eq!(rcode(&m), ResponseCode::NoError);
    assert!(m.answers.is_empty());
    running.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn outside_the_domain_is_refused_without_forwarding() {
    let Cluster { master: _m, running, addr } = cluster(json!({})).await;
    let m = udp(addr, "example.com.", RecordType::A, Some(1232));
    assert_eq!(rcode(&m), ResponseCode::Refused);
    assert!(!m.metadata.recursion_available, "RA on a refusal");
    assert!(m.edns.is_some());
    // Answers from the zone keep RA (recurseon, as the original).
    let m = udp(addr, "leader.mesos.", RecordType::A, None);
    assert!(m.metadata.recursion_available, "no RA on an answer from the zone");
    // "notmesos." is not below "mesos.".
    assert_eq!(rcode(&udp(addr, "notmesos.", RecordType::A, None)), ResponseCode::Refused);
    running.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn wildcard_labels_are_stripped_like_the_original() {
    let Cluster { master: _m, running, addr } = cluster(json!({})).await;
    let m = udp(addr, "liquor-store.*.marathon.mesos.", RecordType::A, None);
    assert_eq!(a_answers(&m), vec!["1.2.3.11", "1.2.3.12"]);
    running.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn before_the_first_load_the_domain_gets_servfail() {
    let master = FakeMaster::start(Behaviour::Status(500)).await;
    let running = start_with_masters(test_config(&[master.addr], json!({}))).await;
    let addr = running.dns_addr.unwrap();
    let m = udp(addr, "leader.mesos.", RecordType::A, None);
    assert_eq!(rcode(&m), ResponseCode::ServFail);
    master.set(Behaviour::Serve(state_with_leader(FIXTURE, master.addr)));
    running.trigger.notify_one();
    wait_loaded(&running).await;
    let m = udp(addr, "leader.mesos.", RecordType::A, None);
    assert_eq!(a_answers(&m), vec![master.addr.ip().to_string()]);
    running.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn answers_are_shuffled() {
    let Cluster { master: _m, running, addr } = cluster(json!({})).await;
    let mut firsts = std::collections::HashSet::new();
    for _ in 0..64 {
        let m = udp(addr, "slave.mesos.", RecordType::A, None);
        firsts.insert(m.answers[0].data.to_string());
    }
    assert!(firsts.len() > 1, "always the same first answer: {firsts:?}");
    running.shutdown().await;
}

/// `answerLimit`: at most N records of each type per answer, over UDP and
/// TCP, a random N (every record comes up over many queries); SRV glue only
/// for the targets sent.
#[tokio::test(flavor = "multi_thread")]
async fn answer_limit_sends_a_random_few_of_each_type() {
    let Cluster { master: _m, running, addr } = cluster(json!({"answerLimit": 1})).await;
    let mut seen_a = std::collections::BTreeSet::new();
    let mut seen_srv = std::collections::BTreeSet::new();
    for i in 0..60 {
        let m = if i % 2 == 0 {
            udp(addr, "liquor-store.marathon.mesos.", RecordType::A, None)
        } else {
            tcp(addr, "liquor-store.marathon.mesos.", RecordType::A)
        };
        let a = a_answers(&m);
        assert_eq!(a.len(), 1, "{a:?}");
        seen_a.extend(a);
        let m = if i % 2 == 0 {
            udp(addr, "_liquor-store._tcp.marathon.slave.mesos.", RecordType::SRV, Some(1232))
        } else {
            tcp(addr, "_liquor-store._tcp.marathon.slave.mesos.", RecordType::SRV)
        };
        assert_eq!(m.answers.len(), 1);
        assert!(!m.metadata.truncation, "a limit is not a truncation");
        let RData::SRV(srv) = &m.answers[0].data else { panic!("{m:?}") };
        let glue: Vec<String> = m.additionals.iter().map(|r| r.name.to_string()).collect();
        assert_eq!(glue, vec![srv.target.to_string()], "glue of the one target sent");
        seen_srv.insert(srv.port);
    }
    assert_eq!(seen_a.len(), 2, "both addresses come up: {seen_a:?}");
    assert_eq!(seen_srv.len(), 4, "every SRV comes up: {seen_srv:?}");
    running.shutdown().await;
}
