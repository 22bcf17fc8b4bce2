//! The DNS hot path without sockets: `wire::parse` + `Responder::answer`
//! against the zone of a 20,000-task state, the way
//! `dns::server::Handler::handle` drives them (one `Scratch` and one reused
//! out buffer per worker). One iteration = one query, so criterion's time
//! is nanoseconds per query.
//!
//! Run: `cargo bench --bench wire` (see bench/README.md).

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failure should panic

mod common;

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use hickory_proto::op::{Edns, Message, Query, ResponseCode};
use hickory_proto::rr::{Name, RecordType};

use mesos_dns::dns::wire::{self, Disposition, Responder, Scratch, Settings};
use mesos_dns::generate::{StaticResolver, generate};
use mesos_dns::records::RecordSet;
use mesos_dns::state::State;
use mesos_dns::zone::{Zone, ZoneView};

const TASKS: usize = 20_000;

/// The query packet for `name`/`rtype`, RD set, with an OPT record
/// advertising `edns` bytes if given.
fn packet(name: &str, rtype: RecordType, edns: Option<u16>, id: u16) -> Vec<u8> {
    let mut m = Message::query();
    m.metadata.id = id;
    m.metadata.recursion_desired = true;
    m.add_query(Query::query(Name::from_ascii(name).unwrap(), rtype));
    if let Some(size) = edns {
        let mut e = Edns::new();
        e.set_max_payload(size);
        m.set_edns(e);
    }
    m.to_vec().unwrap()
}

/// One case: the query and what its answer must look like.
struct Case {
    id: &'static str,
    packet: Vec<u8>,
    rcode: ResponseCode,
    /// Exact counts; `None` for a truncated answer (only some, no check).
    answers: Option<usize>,
    additionals: Option<usize>,
    truncated: bool,
}

struct Server {
    responder: Responder,
    zone: Zone,
    scratch: Scratch,
    out: Vec<u8>,
}

impl Server {
    /// What `Handler::handle` does for a UDP packet, minus the socket.
    #[inline]
    fn handle(&mut self, packet: &[u8]) -> Disposition {
        let q = match wire::parse(packet) {
            Ok(q) => q,
            Err(e) => {
                return wire::error_response(&mut self.out, packet, None, e);
            }
        };
        self.responder.answer(
            &mut self.out,
            packet,
            &q,
            Some(ZoneView::new(&self.zone, None)),
            true,
            &mut self.scratch,
        )
    }

    /// Answer `case` once and check the reply with hickory's decoder.
    fn check(&mut self, case: &Case) {
        let d = self.handle(&case.packet);
        assert!(matches!(d, Disposition::Answered { .. }), "{}: {d:?}", case.id);
        let m = Message::from_vec(&self.out).unwrap();
        let additionals = m.additionals.len();
        assert_eq!(m.metadata.response_code, case.rcode, "{}", case.id);
        if let Some(n) = case.answers {
            assert_eq!(m.answers.len(), n, "{}", case.id);
        } else {
            assert!(!m.answers.is_empty(), "{}", case.id);
        }
        if let Some(n) = case.additionals {
            assert_eq!(additionals, n, "{}", case.id);
        }
        assert_eq!(m.metadata.truncation, case.truncated, "{}", case.id);
        eprintln!(
            "wire: {:<12} {:>5} bytes, {:?}, {} answers, {} additional{}",
            case.id,
            self.out.len(),
            case.rcode,
            m.answers.len(),
            additionals,
            if case.truncated { ", TC" } else { "" }
        );
    }
}

/// Names (without the final dot) that hold A records, sorted.
fn a_names(records: &RecordSet) -> Vec<String> {
    let mut names: Vec<String> = records
        .iter()
        .filter(|(_, set)| !set.a.is_empty())
        .map(|(name, _)| name.trim_end_matches('.').to_owned())
        .collect();
    names.sort();
    names
}

fn hot_path(c: &mut Criterion) {
    let config = common::config();
    let state = State::from_slice(common::state_json(TASKS)).unwrap();
    let records =
        generate(&state, &config, &config.masters, &StaticResolver::localhost_only()).unwrap();
    let zone = Zone::compile(&records, &config, 1);
    let settings = Settings {
        recurse_on: config.recurse_on,
        set_truncate_bit: config.set_truncate_bit,
        ..Settings::default()
    };
    let mut server = Server {
        responder: Responder::new(&config.domain, settings),
        zone,
        scratch: Scratch::new(0x5eed),
        out: Vec::with_capacity(65535),
    };

    // app-1 has 10 tasks with 2 host ports each, on 10 agents.
    let app = records.get("app-1.marathon.mesos.").expect("app-1 exists");
    let srv = records.get("_app-1._tcp.marathon.mesos.").expect("_app-1._tcp exists");
    assert!(app.aaaa.is_empty(), "gen-state.py makes no IPv6 addresses");
    let targets = {
        let mut t: Vec<&str> = srv.srv.iter().map(|s| s.target.as_str()).collect();
        t.sort_unstable();
        t.dedup();
        t.len()
    };
    let cases = [
        Case {
            id: "a",
            packet: packet("app-1.marathon.mesos.", RecordType::A, None, 1),
            rcode: ResponseCode::NoError,
            answers: Some(app.a.len()),
            additionals: Some(0),
            truncated: false,
        },
        Case {
            // 20 SRV + 10 glue A: ~1.3 KB, fits the advertised 4096.
            id: "srv_glue",
            packet: packet("_app-1._tcp.marathon.mesos.", RecordType::SRV, Some(4096), 2),
            rcode: ResponseCode::NoError,
            answers: Some(srv.srv.len()),
            additionals: Some(targets), // (hickory keeps our OPT apart, in `edns`)
            truncated: false,
        },
        Case {
            // The same without EDNS: cut to 512 bytes, TC set.
            id: "srv_512_tc",
            packet: packet("_app-1._tcp.marathon.mesos.", RecordType::SRV, None, 3),
            rcode: ResponseCode::NoError,
            answers: None,
            additionals: None,
            truncated: true,
        },
        Case {
            id: "aaaa_nodata",
            packet: packet("app-1.marathon.mesos.", RecordType::AAAA, None, 4),
            rcode: ResponseCode::NoError,
            answers: Some(0),
            additionals: Some(0),
            truncated: false,
        },
        Case {
            id: "nxdomain",
            packet: packet("no-such-app.marathon.mesos.", RecordType::A, None, 5),
            rcode: ResponseCode::NXDomain,
            answers: Some(0),
            additionals: Some(0),
            truncated: false,
        },
    ];
    for case in &cases {
        server.check(case);
    }

    let mut g = c.benchmark_group("wire");
    g.throughput(Throughput::Elements(1));
    for case in &cases {
        g.bench_function(case.id, |b| {
            b.iter(|| server.handle(black_box(&case.packet)));
        });
    }

    // A queries for 4096 different names in turn (every task, canonical
    // and agent name alike): the zone's hash table out of the CPU caches.
    let names = a_names(&records);
    let step = (names.len() / 4096).max(1);
    let mixed: Vec<Vec<u8>> = names
        .iter()
        .step_by(step)
        .take(4096)
        .enumerate()
        .map(|(i, n)| packet(n, RecordType::A, None, i as u16))
        .collect();
    assert_eq!(mixed.len(), 4096, "{} A names", names.len());
    for p in &mixed {
        assert!(matches!(server.handle(p), Disposition::Answered { rcode: 0, truncated: false }));
    }
    let mut i = 0usize;
    g.bench_function("a_4096_names", |b| {
        b.iter(|| {
            let p = &mixed[i & 4095];
            i = i.wrapping_add(1);
            server.handle(black_box(p))
        });
    });
    g.finish();
}

criterion_group!(benches, hot_path);
criterion_main!(benches);
