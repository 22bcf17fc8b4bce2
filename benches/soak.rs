//! Soak: the real release binary under mixed UDP, TCP and
//! HTTP load for `SOAK_SECONDS` (default 600) while the masters alternate
//! between two states, the leading master goes down and comes back,
//! ZooKeeper is killed and restarted, and leadership moves from one master
//! to the other. Every answer is checked against what
//! `mesos_dns::generate::generate` makes of the states; the server's RSS and
//! open file descriptors are sampled every 10 s.
//!
//! A benchmark of its own (`harness = false`), built with the release
//! profile: `cargo bench` skips it unless given `--soak`; run it with
//! `bench/soak` (which installs ZooKeeper and runs `cargo bench --bench soak
//! -- --soak`). It uses the integration tests' harness (`tests/it/harness`).
//! All traffic stays on 127.0.0.1.
//!
//! The cast:
//! - ZooKeeper: the `harness::zk` server. The masters' `json.info_` members
//!   are persistent sequential nodes, so they survive ZooKeeper restarts
//!   (the test plays the masters and does not re-register them).
//! - Masters A and B: `harness::FakeMaster`s, each behind a TCP proxy
//!   (`harness::zk::FlakyProxy`) on a fixed port, which is the address the server,
//!   ZooKeeper and the states know. Each names itself the leader in its
//!   state (so a fallback to the other master is visible in the records).
//!   An outage of the leading master is either a real stop (the proxy
//!   refuses connections and cuts open ones) or the master answering
//!   500, in turn.
//! - States: S1 is the fixture `mesos-dns-fake.json`; S2 is S1 without the
//!   `car.store` task and with a new task `soak-newcomer` (on the IPv6
//!   agent). In both, framework and agent `hostname`s that are not IP
//!   literals become 127.0.0.1, so that the binary (system resolver) and
//!   the oracle (`StaticResolver::localhost_only()`) agree.
//!
//! The oracle: for each state, each possible leader (A or B) and each
//! possible ZooKeeper member list ([A], [B], [A, B]) the expected answer of
//! every probe. An answer is right if it equals the answer of some variant;
//! it is stale if it is right only for the state not in force, more than
//! [`STALE_AFTER`] after the switch.

// Test code: a failure should panic.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[allow(dead_code)]
#[path = "../tests/it/harness/mod.rs"]
mod harness;

use std::collections::{BTreeSet, HashSet};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream, UdpSocket};
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use hickory_proto::op::{Message, MessageType, ResponseCode};
use hickory_proto::rr::{Name, RData, Record, RecordType};
use serde_json::Value;

use harness::zk::{
    FlakyProxy, Link, ZkServer, add_member_with, client, master_info, open, persistent_seq,
};
use harness::{Behaviour, FIXTURE, FakeMaster, Server, fixture, query_msg, tcp_exchange};
use mesos_dns::config::Config;
use mesos_dns::generate::{StaticResolver, generate};
use mesos_dns::records::RecordSet;
use mesos_dns::state::State;

// ------------------------------------------------------------ settings

/// The config's `refreshSeconds`.
const REFRESH_SECONDS: u64 = 2;
/// Chaos: switch the states every this many seconds of load.
const SWITCH_EVERY: u64 = 20;
/// Chaos: the leading master is out at 30 s, 90 s, 150 s, ... for 15 s.
const OUTAGE_FIRST: u64 = 30;
const OUTAGE_EVERY: u64 = 60;
const OUTAGE_FOR: u64 = 15;
/// Chaos: ZooKeeper is killed at 45 s, 135 s, 225 s, ... and started again
/// (same port and data) after 5 s, longer than any session's timeout.
const ZK_RESTART_FIRST: u64 = 45;
const ZK_RESTART_EVERY: u64 = 90;
const ZK_DOWN_FOR: Duration = Duration::from_secs(5);
/// RSS and FD samples.
const SAMPLE_EVERY: Duration = Duration::from_secs(10);
/// An answer of the state not in force this long after a switch is stale.
const STALE_AFTER: Duration = Duration::from_secs(10);
/// A UDP query without a reply within this is a timeout.
const UDP_TIMEOUT: Duration = Duration::from_secs(1);
/// TCP and HTTP connect, read and write timeouts.
const IO_TIMEOUT: Duration = Duration::from_secs(5);
/// Load: queries per second per thread (2 UDP threads, 1 TCP, 1 HTTP).
const UDP_RATE: u32 = 500;
const TCP_RATE: u32 = 250;
const HTTP_RATE: u32 = 50;
/// TCP queries per connection before it is closed and a new one opened.
const TCP_QUERIES_PER_CONNECTION: u32 = 100;
/// The ZooKeeper path of the masters.
const ZK_PATH: &str = "/soak/mesos";

// ------------------------------------------------------------ states

/// The fixture with host names that are not IP literals set to 127.0.0.1.
fn state_one() -> Value {
    let mut v: Value = serde_json::from_slice(&fixture(FIXTURE)).unwrap();
    for list in ["frameworks", "slaves"] {
        for item in v[list].as_array_mut().unwrap() {
            let literal =
                item["hostname"].as_str().is_none_or(|h| h.parse::<std::net::IpAddr>().is_ok());
            if !literal {
                item["hostname"] = "127.0.0.1".into();
            }
        }
    }
    v
}

/// S1 without `car.store`, with `soak-newcomer` on the IPv6 agent.
fn state_two(one: &Value) -> Value {
    let mut v = one.clone();
    let marathon = v["frameworks"]
        .as_array_mut()
        .unwrap()
        .iter_mut()
        .find(|f| f["name"] == "marathon")
        .expect("the fixture has marathon");
    let tasks = marathon["tasks"].as_array_mut().unwrap();
    let before = tasks.len();
    tasks.retain(|t| t["name"] != "car.store");
    assert_eq!(tasks.len() + 1, before, "the fixture has one car.store task");
    let mut added = tasks.iter().find(|t| t["name"] == "reviewbot").expect("reviewbot").clone();
    added["name"] = "soak-newcomer".into();
    added["id"] = "soak-newcomer.00000000-0000-4000-8000-000000000001".into();
    added["slave_id"] = "20140803-194712-3041283216-5050-2116-3".into();
    added["resources"]["ports"] = "[31900-31901]".into();
    tasks.push(added);
    v
}

/// A state document naming `leader` as the leading master.
fn with_leader(state: &Value, leader: SocketAddr) -> Vec<u8> {
    let mut v = state.clone();
    v["leader"] = format!("master@{leader}").into();
    serde_json::to_vec(&v).unwrap()
}

// ------------------------------------------------------------ oracle

/// What is asked.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum Ask {
    Dns(RecordType),
    Hosts,
    Services,
}

/// An answer reduced to what is checked, in a canonical (sorted) form.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
struct Answer {
    /// The rcode (DNS) or status (HTTP), with flags that are wrong.
    code: String,
    /// Answer RRs (`owner ttl TYPE data`) or the JSON records.
    records: Vec<String>,
    /// Additional RRs (SRV glue).
    extra: Vec<String>,
}

impl Answer {
    /// Whether `got` (a truncated answer) holds only records of `self`.
    fn covers(&self, got: &Answer) -> bool {
        let subset = |mine: &[String], theirs: &[String]| {
            let set: HashSet<&String> = theirs.iter().collect();
            set.len() == theirs.len() && theirs.iter().all(|r| mine.contains(r))
        };
        self.code == got.code
            && subset(&self.records, &got.records)
            && subset(&self.extra, &got.extra)
    }
}

/// The load mix: what kind of probe, for the report.
const DNS_KINDS: [&str; 4] = ["A", "AAAA", "SRV", "NXDOMAIN"];
const HTTP_KINDS: [&str; 4] = ["hosts", "services", "unknown name", "-"];

/// One thing the load asks, with every right answer.
struct Probe {
    ask: Ask,
    /// Fully qualified, lower case, with the final dot.
    name: String,
    /// Index into `DNS_KINDS` / `HTTP_KINDS`.
    kind: usize,
    /// Each right answer and the states it is right in (bit 0: S1, bit 1: S2).
    answers: Vec<(Answer, u8)>,
}

impl Probe {
    /// The states in which `got` is right (0: wrong).
    fn states(&self, got: &Answer, truncated: bool) -> u8 {
        self.answers
            .iter()
            .filter(|(a, _)| if truncated { a.covers(got) } else { a == got })
            .fold(0, |m, (_, s)| m | s)
    }

    /// The path of an HTTP probe (the name without its final dot).
    fn path(&self) -> String {
        let bare = self.name.trim_end_matches('.');
        match self.ask {
            Ask::Hosts => format!("/v1/hosts/{bare}"),
            _ => format!("/v1/services/{bare}"),
        }
    }
}

/// Names of every ancestor of the record names (empty non-terminals, and
/// the apex) under `domain`.
fn ancestors(rs: &RecordSet, domain: &str) -> HashSet<String> {
    let apex = format!("{domain}.");
    let mut out = HashSet::new();
    for (name, _) in rs.iter() {
        let mut rest = name;
        while let Some((_, parent)) = rest.split_once('.') {
            if parent.is_empty() || !parent.ends_with(&apex) {
                break;
            }
            out.insert(parent.to_owned());
            rest = parent;
        }
    }
    out
}

/// The DNS answer the records give.
fn dns_expected(
    rs: &RecordSet,
    ents: &HashSet<String>,
    name: &str,
    qtype: RecordType,
    c: &Config,
) -> Answer {
    let ttl = c.ttl;
    let Some(set) = rs.get(name) else {
        let code = if ents.contains(name) { ResponseCode::NoError } else { ResponseCode::NXDomain };
        return Answer { code: format!("{code:?}"), records: Vec::new(), extra: Vec::new() };
    };
    let mut records = Vec::new();
    let mut extra = Vec::new();
    match qtype {
        RecordType::A => records.extend(set.a.iter().map(|ip| format!("{name} {ttl} A {ip}"))),
        RecordType::AAAA => {
            records.extend(set.aaaa.iter().map(|ip| format!("{name} {ttl} AAAA {ip}")));
        }
        RecordType::SRV => {
            let weight = c.srv_record_default_weight;
            let mut targets = BTreeSet::new();
            for srv in &set.srv {
                records.push(format!("{name} {ttl} SRV 0 {weight} {} {}", srv.port, srv.target));
                targets.insert(srv.target.as_str());
            }
            for target in targets {
                if let Some(t) = rs.get(target) {
                    extra.extend(t.a.iter().map(|ip| format!("{target} {ttl} A {ip}")));
                    extra.extend(t.aaaa.iter().map(|ip| format!("{target} {ttl} AAAA {ip}")));
                }
            }
        }
        other => panic!("no oracle for {other}"),
    }
    records.sort();
    extra.sort();
    Answer { code: format!("{:?}", ResponseCode::NoError), records, extra }
}

/// `/v1/hosts/{name}`: `host|ip` per address; one empty record if none.
fn hosts_expected(rs: &RecordSet, name: &str) -> Answer {
    let mut records: Vec<String> = rs.get(name).map_or_else(Vec::new, |set| {
        let v4 = set.a.iter().map(ToString::to_string);
        let v6 = set.aaaa.iter().map(ToString::to_string);
        v4.chain(v6).map(|ip| format!("{name}|{ip}")).collect()
    });
    if records.is_empty() {
        records.push("|".to_owned());
    }
    records.sort();
    Answer { code: "200".to_owned(), records, extra: Vec::new() }
}

/// `/v1/services/{name}`: `service|host|ip|port` per SRV and the target's
/// first IPv4 and first IPv6 address; one empty record if none.
fn services_expected(rs: &RecordSet, name: &str, service: &str) -> Answer {
    let mut records = Vec::new();
    for srv in rs.get(name).map(|s| s.srv).unwrap_or_default() {
        let target = rs.get(&srv.target).unwrap_or_default();
        let v4 = target.a.first().map(ToString::to_string);
        let v6 = target.aaaa.first().map(ToString::to_string);
        for ip in v4.into_iter().chain(v6) {
            records.push(format!("{service}|{}|{ip}|{}", srv.target, srv.port));
        }
    }
    if records.is_empty() {
        records.push("|||".to_owned());
    }
    records.sort();
    Answer { code: "200".to_owned(), records, extra: Vec::new() }
}

/// One way the records can be: a state, a leader, a member list.
struct Variant {
    /// Bit 0: S1, bit 1: S2.
    state: u8,
    records: RecordSet,
    ents: HashSet<String>,
}

/// Every variant, and the probes with their right answers.
fn oracle(
    config: &Config,
    states: [&Value; 2],
    a: SocketAddr,
    b: SocketAddr,
) -> (Vec<Variant>, Vec<Probe>) {
    let resolver = StaticResolver::localhost_only();
    let member_lists = [vec![a], vec![b], vec![a, b]];
    let mut variants = Vec::new();
    for (i, state) in states.iter().enumerate() {
        for leader in [a, b] {
            for members in &member_lists {
                let parsed = State::from_slice(&with_leader(state, leader)).unwrap();
                let masters: Vec<String> = members.iter().map(ToString::to_string).collect();
                let records = generate(&parsed, config, &masters, &resolver).unwrap();
                let ents = ancestors(&records, &config.domain);
                variants.push(Variant { state: 1 << i, records, ents });
            }
        }
    }
    let domain = &config.domain;
    let mut names: BTreeSet<String> = BTreeSet::new();
    for v in &variants {
        names.extend(v.records.iter().map(|(n, _)| n.to_owned()));
        names.extend(v.ents.iter().filter(|n| **n != format!("{domain}.")).cloned());
    }
    let unknown: BTreeSet<String> = [
        "nx-soak-0.marathon",
        "nx-soak-1.marathon.slave",
        "_nx-soak._tcp.marathon",
        "_nx-soak._udp.marathon.slave",
        "car-store.nx-soak",
        "nx-soak",
        "master9",
        "nx.soak-newcomer.marathon",
    ]
    .iter()
    .map(|n| format!("{n}.{domain}."))
    .collect();
    assert!(unknown.is_disjoint(&names));

    let mut probes = Vec::new();
    let mut add = |ask: Ask, name: &str, kind: usize| {
        let mut answers: Vec<(Answer, u8)> = Vec::new();
        for v in &variants {
            let answer = match ask {
                Ask::Dns(t) => dns_expected(&v.records, &v.ents, name, t, config),
                Ask::Hosts => hosts_expected(&v.records, name),
                Ask::Services => services_expected(&v.records, name, name.trim_end_matches('.')),
            };
            match answers.iter_mut().find(|(a, _)| *a == answer) {
                Some((_, states)) => *states |= v.state,
                None => answers.push((answer, v.state)),
            }
        }
        probes.push(Probe { ask, name: name.to_owned(), kind, answers });
    };
    for name in &names {
        for (kind, t) in [RecordType::A, RecordType::AAAA, RecordType::SRV].into_iter().enumerate()
        {
            add(Ask::Dns(t), name, kind);
        }
        let has = |f: fn(&mesos_dns::records::RrSet) -> bool| {
            variants.iter().any(|v| v.records.get(name).is_some_and(|s| f(&s)))
        };
        if has(|s| !s.a.is_empty() || !s.aaaa.is_empty()) {
            add(Ask::Hosts, name, 0);
        }
        if has(|s| !s.srv.is_empty()) {
            add(Ask::Services, name, 1);
        }
    }
    for name in &unknown {
        for t in [RecordType::A, RecordType::AAAA, RecordType::SRV] {
            add(Ask::Dns(t), name, 3);
        }
        add(Ask::Hosts, name, 2);
        add(Ask::Services, name, 2);
    }
    (variants, probes)
}

// ------------------------------------------------------------ clients

fn fqdn(name: &Name) -> String {
    let mut s = name.to_ascii().to_ascii_lowercase();
    if !s.ends_with('.') {
        s.push('.');
    }
    s
}

fn rr_string(r: &Record) -> String {
    let owner = fqdn(&r.name);
    let ttl = r.ttl;
    match &r.data {
        RData::A(a) => format!("{owner} {ttl} A {}", a.0),
        RData::AAAA(a) => format!("{owner} {ttl} AAAA {}", a.0),
        RData::SRV(s) => {
            format!("{owner} {ttl} SRV {} {} {} {}", s.priority, s.weight, s.port, fqdn(&s.target))
        }
        other => format!("{owner} {ttl} {other:?}"),
    }
}

/// A DNS reply in canonical form; the flag `truncated`.
fn dns_answer(m: &Message, qname: &str) -> (Answer, bool) {
    let md = &m.metadata;
    let mut code = format!("{:?}", md.response_code);
    if md.message_type != MessageType::Response {
        code.push_str(" not-a-response");
    }
    if !md.authoritative {
        code.push_str(" not-authoritative");
    }
    if m.queries.len() != 1 || fqdn(m.queries[0].name()) != qname {
        code.push_str(" question-not-echoed");
    }
    let mut records: Vec<String> = m.answers.iter().map(rr_string).collect();
    let mut extra: Vec<String> = m.additionals.iter().map(rr_string).collect();
    records.sort();
    extra.sort();
    (Answer { code, records, extra }, md.truncation)
}

/// An HTTP reply in canonical form.
fn http_answer(ask: Ask, status: u16, body: &[u8]) -> Answer {
    let mut records = Vec::new();
    let fields: &[&str] = match ask {
        Ask::Hosts => &["host", "ip"],
        _ => &["service", "host", "ip", "port"],
    };
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Array(items)) => {
            for item in items {
                let values: Vec<&str> =
                    fields.iter().map(|f| item[*f].as_str().unwrap_or("<missing>")).collect();
                records.push(values.join("|"));
            }
        }
        _ => records.push(format!("unparseable: {}", String::from_utf8_lossy(body))),
    }
    records.sort();
    Answer { code: status.to_string(), records, extra: Vec::new() }
}

/// A small HTTP/1.1 GET over a fresh connection (`Connection: close`).
fn http_get(addr: SocketAddr, path: &str) -> std::io::Result<(u16, Vec<u8>)> {
    let mut s = TcpStream::connect_timeout(&addr, IO_TIMEOUT)?;
    s.set_read_timeout(Some(IO_TIMEOUT))?;
    s.set_write_timeout(Some(IO_TIMEOUT))?;
    write!(s, "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n")?;
    let mut raw = Vec::new();
    s.read_to_end(&mut raw)?;
    parse_http(&raw).ok_or_else(|| {
        std::io::Error::new(std::io::ErrorKind::InvalidData, "malformed HTTP response")
    })
}

fn parse_http(raw: &[u8]) -> Option<(u16, Vec<u8>)> {
    let end = raw.windows(4).position(|w| w == b"\r\n\r\n")?;
    let head = std::str::from_utf8(&raw[..end]).ok()?;
    let mut lines = head.split("\r\n");
    let status = lines.next()?.split(' ').nth(1)?.parse().ok()?;
    let (mut chunked, mut length) = (false, None);
    for line in lines {
        let (k, v) = line.split_once(':')?;
        match k.trim().to_ascii_lowercase().as_str() {
            "content-length" => length = v.trim().parse::<usize>().ok(),
            "transfer-encoding" => chunked = v.to_ascii_lowercase().contains("chunked"),
            _ => {}
        }
    }
    let body = &raw[end + 4..];
    let body = match (chunked, length) {
        (true, _) => dechunk(body)?,
        (false, Some(n)) if body.len() == n => body.to_vec(),
        (false, Some(_)) => return None,
        (false, None) => body.to_vec(),
    };
    Some((status, body))
}

fn dechunk(mut b: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    loop {
        let eol = b.windows(2).position(|w| w == b"\r\n")?;
        let size = std::str::from_utf8(&b[..eol]).ok()?.split(';').next()?.trim();
        let size = usize::from_str_radix(size, 16).ok()?;
        b = &b[eol + 2..];
        if size == 0 {
            return Some(out);
        }
        out.extend_from_slice(b.get(..size)?);
        b = b.get(size + 2..)?;
    }
}

// ------------------------------------------------------------ load

/// Counters shared by the load threads.
#[derive(Default)]
struct Counters {
    /// Replies received, by transport (udp, tcp, http) and kind.
    answered: [[AtomicU64; 4]; 3],
    wrong: AtomicU64,
    stale: AtomicU64,
    /// UDP queries without a reply within [`UDP_TIMEOUT`].
    timeouts: AtomicU64,
    /// UDP replies that came after their query had timed out.
    late: AtomicU64,
    /// Truncated UDP replies (checked as subsets).
    truncated: AtomicU64,
    /// TCP and HTTP exchanges that failed (connect, reset, timeout).
    tcp_errors: AtomicU64,
    http_errors: AtomicU64,
    /// Right answers that are right only in S1, only in S2: both states
    /// were seen.
    only: [AtomicU64; 2],
}

/// What the load threads share.
struct Load<'a> {
    probes: &'a [Probe],
    dns_probes: Vec<usize>,
    http_probes: Vec<usize>,
    dns: SocketAddr,
    http: SocketAddr,
    t0: Instant,
    stop: AtomicBool,
    /// Switches so far: the state in force is S1 when even, S2 when odd.
    epoch: AtomicU64,
    /// When the last switch happened (ms since `t0`).
    switched_ms: AtomicU64,
    n: Counters,
    /// The first wrong and stale answers, for the report.
    faults: Mutex<Vec<String>>,
}

/// The transports, as indices into `Counters::answered`.
const UDP: usize = 0;
const TCP: usize = 1;
const HTTP: usize = 2;

impl Load<'_> {
    fn running(&self) -> bool {
        !self.stop.load(Ordering::Relaxed)
    }

    fn since(&self) -> Duration {
        self.t0.elapsed()
    }

    /// Checks one answer to `probe`, asked when the switch count was `epoch`.
    fn check(&self, transport: usize, probe: &Probe, got: &Answer, truncated: bool, epoch: u64) {
        self.n.answered[transport][probe.kind].fetch_add(1, Ordering::Relaxed);
        let states = probe.states(got, truncated);
        let what = || {
            let via = ["udp", "tcp", "http"][transport];
            format!(
                "t={:.1}s {via} {:?} {}{}: got {got:?}; right: {:?}",
                self.since().as_secs_f64(),
                probe.ask,
                probe.name,
                if truncated { " (TC)" } else { "" },
                probe.answers
            )
        };
        if states == 0 {
            self.n.wrong.fetch_add(1, Ordering::Relaxed);
            self.fault(format!("WRONG {}", what()));
            return;
        }
        if states != 3 {
            self.n.only[usize::from(states >> 1)].fetch_add(1, Ordering::Relaxed);
        }
        // Stale: right only in the state not in force, well after the switch.
        let now_epoch = self.epoch.load(Ordering::SeqCst);
        let switched = Duration::from_millis(self.switched_ms.load(Ordering::SeqCst));
        let in_force = 1u8 << (now_epoch % 2);
        if now_epoch == epoch && states & in_force == 0 && self.since() > switched + STALE_AFTER {
            self.n.stale.fetch_add(1, Ordering::Relaxed);
            self.fault(format!("STALE {}", what()));
        }
    }

    fn fault(&self, line: String) {
        let mut faults = self.faults.lock().unwrap();
        if faults.len() < 20 {
            eprintln!("soak: {line}");
            faults.push(line);
        }
    }
}

/// A small xorshift generator: reproducible, no dependencies.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[(self.next() % items.len() as u64) as usize]
    }
}

/// Sleeps so that a loop runs `rate` times per second (no catching up
/// after a stall of more than a second).
struct Pace {
    next: Instant,
    every: Duration,
}

impl Pace {
    fn new(rate: u32) -> Pace {
        Pace { next: Instant::now(), every: Duration::from_secs(1) / rate }
    }

    fn wait(&mut self) {
        self.next += self.every;
        let now = Instant::now();
        if self.next > now {
            std::thread::sleep(self.next - now);
        } else if now - self.next > Duration::from_secs(1) {
            self.next = now;
        }
    }
}

fn udp_load(load: &Load<'_>, seed: u64) {
    let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
    sock.set_read_timeout(Some(Duration::from_millis(50))).unwrap();
    let mut rng = Rng(seed);
    let mut buf = vec![0u8; 65535];
    let mut pace = Pace::new(UDP_RATE);
    while load.running() {
        let probe = &load.probes[*rng.pick(&load.dns_probes)];
        let Ask::Dns(qtype) = probe.ask else { unreachable!() };
        let edns = if rng.next().is_multiple_of(2) { Some(1232) } else { None };
        let q = query_msg(&probe.name, qtype, edns);
        let epoch = load.epoch.load(Ordering::SeqCst);
        if sock.send_to(&q.to_vec().unwrap(), load.dns).is_err() {
            load.n.timeouts.fetch_add(1, Ordering::Relaxed);
            pace.wait();
            continue;
        }
        let deadline = Instant::now() + UDP_TIMEOUT;
        let reply = loop {
            match sock.recv_from(&mut buf) {
                Ok((n, from)) if from == load.dns => match Message::from_vec(&buf[..n]) {
                    Ok(m) if m.metadata.id == q.metadata.id => break Some(Ok(m)),
                    Ok(_) => {
                        load.n.late.fetch_add(1, Ordering::Relaxed);
                    }
                    Err(e) => break Some(Err(e)),
                },
                Ok(_) => {}
                Err(_) if Instant::now() >= deadline => break None,
                Err(_) => {}
            }
        };
        match reply {
            Some(Ok(m)) => {
                let (got, truncated) = dns_answer(&m, &probe.name);
                if truncated {
                    load.n.truncated.fetch_add(1, Ordering::Relaxed);
                }
                load.check(UDP, probe, &got, truncated, epoch);
            }
            Some(Err(e)) => {
                let got =
                    Answer { code: format!("undecodable: {e}"), records: vec![], extra: vec![] };
                load.check(UDP, probe, &got, false, epoch);
            }
            None => {
                load.n.timeouts.fetch_add(1, Ordering::Relaxed);
            }
        }
        pace.wait();
    }
}

fn tcp_load(load: &Load<'_>, seed: u64) {
    let mut rng = Rng(seed);
    let mut pace = Pace::new(TCP_RATE);
    let mut conn: Option<(TcpStream, u32)> = None;
    while load.running() {
        if conn.is_none() {
            match TcpStream::connect_timeout(&load.dns, IO_TIMEOUT) {
                Ok(s) => {
                    s.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
                    s.set_write_timeout(Some(IO_TIMEOUT)).unwrap();
                    conn = Some((s, 0));
                }
                Err(_) => {
                    load.n.tcp_errors.fetch_add(1, Ordering::Relaxed);
                    pace.wait();
                    continue;
                }
            }
        }
        let Some((stream, used)) = conn.as_mut() else { continue };
        let probe = &load.probes[*rng.pick(&load.dns_probes)];
        let Ask::Dns(qtype) = probe.ask else { unreachable!() };
        let q = query_msg(&probe.name, qtype, None);
        let epoch = load.epoch.load(Ordering::SeqCst);
        match tcp_exchange(stream, &q.to_vec().unwrap()) {
            Ok(reply) => {
                let got = match Message::from_vec(&reply) {
                    Ok(m) if m.metadata.id == q.metadata.id => dns_answer(&m, &probe.name).0,
                    Ok(m) => Answer {
                        code: format!("id {} for {}", m.metadata.id, q.metadata.id),
                        records: vec![],
                        extra: vec![],
                    },
                    Err(e) => {
                        Answer { code: format!("undecodable: {e}"), records: vec![], extra: vec![] }
                    }
                };
                load.check(TCP, probe, &got, false, epoch);
                *used += 1;
                if *used >= TCP_QUERIES_PER_CONNECTION {
                    conn = None;
                }
            }
            Err(_) => {
                load.n.tcp_errors.fetch_add(1, Ordering::Relaxed);
                conn = None;
            }
        }
        pace.wait();
    }
}

fn http_load(load: &Load<'_>, seed: u64) {
    let mut rng = Rng(seed);
    let mut pace = Pace::new(HTTP_RATE);
    while load.running() {
        let probe = &load.probes[*rng.pick(&load.http_probes)];
        let epoch = load.epoch.load(Ordering::SeqCst);
        match http_get(load.http, &probe.path()) {
            Ok((status, body)) => {
                load.check(HTTP, probe, &http_answer(probe.ask, status, &body), false, epoch);
            }
            Err(_) => {
                load.n.http_errors.fetch_add(1, Ordering::Relaxed);
            }
        }
        pace.wait();
    }
}

// ------------------------------------------------------------ health, RSS, FDs

/// `/health` once a second: how long the server was unhealthy.
#[derive(Default, Debug)]
struct Health {
    checks: u64,
    unhealthy: u64,
    longest: Duration,
    /// When the leader it reports changed, and to what.
    leaders: Vec<(Duration, String)>,
}

fn watch_health(load: &Load<'_>) -> Health {
    let mut h = Health::default();
    let mut since: Option<Instant> = None;
    while load.running() {
        let reply = http_get(load.http, "/health");
        let ok = matches!(reply, Ok((200, _)));
        let leader = reply
            .ok()
            .and_then(|(_, body)| serde_json::from_slice::<Value>(&body).ok())
            .and_then(|v| v["leader"].as_str().map(str::to_owned));
        if let Some(leader) = leader
            && h.leaders.last().is_none_or(|(_, l)| *l != leader)
        {
            h.leaders.push((load.since(), leader));
        }
        h.checks += 1;
        if ok {
            since = None;
        } else {
            h.unhealthy += 1;
            let start = *since.get_or_insert_with(Instant::now);
            h.longest = h.longest.max(start.elapsed());
        }
        std::thread::sleep(Duration::from_secs(1));
    }
    h
}

/// One sample of the server process.
#[derive(Clone, Copy, Debug)]
struct Sample {
    at: Duration,
    rss_kb: u64,
    fds: u64,
}

fn sample(pid: u32, at: Duration) -> Option<Sample> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let rss_kb = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))?
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()?;
    let fds = std::fs::read_dir(format!("/proc/{pid}/fd")).ok()?.count() as u64;
    Some(Sample { at, rss_kb, fds })
}

fn sampler(load: &Load<'_>, pid: u32) -> Vec<Sample> {
    let mut samples = Vec::new();
    let mut next = SAMPLE_EVERY;
    while load.running() {
        let at = load.since();
        if at >= next {
            if let Some(s) = sample(pid, at) {
                let answered: u64 =
                    load.n.answered.iter().flatten().map(|c| c.load(Ordering::Relaxed)).sum();
                println!(
                    "soak: t={:>4}s rss={:.1} MB fds={} answered={answered} wrong={} timeouts={}",
                    at.as_secs(),
                    s.rss_kb as f64 / 1024.0,
                    s.fds,
                    load.n.wrong.load(Ordering::Relaxed),
                    load.n.timeouts.load(Ordering::Relaxed),
                );
                samples.push(s);
            }
            next += SAMPLE_EVERY;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    samples
}

// ------------------------------------------------------------ masters

/// A master: the fake behind its proxy (whose address is the master's),
/// and what it serves.
struct Master {
    label: &'static str,
    fake: FakeMaster,
    proxy: FlakyProxy,
    /// The proxy's address.
    addr: SocketAddr,
    /// The state documents (S1, S2) naming this master the leader.
    docs: [Vec<u8>; 2],
    failing: bool,
}

impl Master {
    fn apply(&self, state: usize) {
        if self.failing {
            self.fake.set(Behaviour::Status(500));
        } else {
            self.fake.set(Behaviour::Serve(self.docs[state].clone()));
        }
    }
}

/// The last `lines` lines of the server's stderr.
fn log_tail(server: &Server, lines: usize) -> String {
    let text = server.log();
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

/// Waits until the server's `/v1/axfr` serves exactly `want` as its
/// records.
fn wait_serving(server: &Server, http: SocketAddr, want: &Value) {
    let ready_by = Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(status) = server.proc.try_wait() {
            panic!("mesos-dns exited ({status}):\n{}", log_tail(server, 50));
        }
        let served = http_get(http, "/v1/axfr")
            .ok()
            .and_then(|(_, body)| serde_json::from_slice::<Value>(&body).ok());
        if served.as_ref().is_some_and(|v| v["Records"] == *want) {
            return;
        }
        assert!(
            Instant::now() < ready_by,
            "the server never served S1 as generate() makes it; serving {:?}\n{}",
            served.map(|v| v["Records"].clone()),
            log_tail(server, 50)
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Sets the load's stop flag when dropped (also when the test panics), so
/// the scoped threads end.
struct StopOnDrop<'a>(&'a AtomicBool);

impl Drop for StopOnDrop<'_> {
    fn drop(&mut self) {
        self.0.store(true, Ordering::SeqCst);
    }
}

/// What the chaos does, at seconds of load.
#[derive(Clone, Copy, Debug)]
enum Event {
    Switch,
    OutageStart(u64),
    OutageEnd(u64),
    ZkRestart,
    MoveLeader,
}

fn schedule(seconds: u64) -> Vec<(u64, Event)> {
    let mut events: Vec<(u64, Event)> = (1..)
        .map(|k| k * SWITCH_EVERY)
        .take_while(|&t| t < seconds)
        .map(|t| (t, Event::Switch))
        .collect();
    let outages = (0..)
        .map(|k| OUTAGE_FIRST + k * OUTAGE_EVERY)
        .take_while(|&t| t + OUTAGE_FOR + 5 < seconds);
    for (n, t) in (0u64..).zip(outages) {
        events.push((t, Event::OutageStart(n)));
        events.push((t + OUTAGE_FOR, Event::OutageEnd(n)));
    }
    events.extend(
        (0..)
            .map(|k| ZK_RESTART_FIRST + k * ZK_RESTART_EVERY)
            .take_while(|&t| t + 15 < seconds)
            .map(|t| (t, Event::ZkRestart)),
    );
    if seconds > 40 {
        events.push((seconds / 2 + 5, Event::MoveLeader));
    }
    // Stable: at equal times, switches first, then outages, restarts, the move.
    events.sort_by_key(|(t, _)| *t);
    events
}

/// The cluster around the server, and what the chaos did to it.
struct Chaos<'a> {
    rt: &'a tokio::runtime::Runtime,
    zk: &'a ZkServer,
    masters: [Master; 2],
    /// A's member node in ZooKeeper.
    node_a: String,
    http: SocketAddr,
    /// The master leading in ZooKeeper (0: A, 1: B), and the one out.
    leader: usize,
    outage_of: usize,
    events: Vec<String>,
    /// How long the server took to follow the leadership move.
    followed_move: Option<Result<Duration, String>>,
}

impl Chaos<'_> {
    fn note(&mut self, load: &Load<'_>, text: String) {
        let line = format!("t={:>6.1}s {text}", load.since().as_secs_f64());
        println!("soak: {line}");
        self.events.push(line);
    }

    fn state(load: &Load<'_>) -> usize {
        (load.epoch.load(Ordering::SeqCst) % 2) as usize
    }

    fn run(&mut self, event: Event, load: &Load<'_>) {
        match event {
            Event::Switch => {
                let epoch = load.epoch.load(Ordering::SeqCst) + 1;
                let state = (epoch % 2) as usize;
                for m in &self.masters {
                    m.apply(state);
                }
                load.switched_ms.store(load.since().as_millis() as u64, Ordering::SeqCst);
                load.epoch.store(epoch, Ordering::SeqCst);
                self.note(load, format!("masters switch to S{}", state + 1));
            }
            Event::OutageStart(n) => {
                self.outage_of = self.leader;
                let m = &mut self.masters[self.outage_of];
                let text = if n % 2 == 0 {
                    m.proxy.set(Link::Refused);
                    format!("leading master {} stopped (connections refused)", m.label)
                } else {
                    m.failing = true;
                    m.apply(Self::state(load));
                    format!("leading master {} answers 500", m.label)
                };
                self.note(load, text);
            }
            Event::OutageEnd(n) => {
                let m = &mut self.masters[self.outage_of];
                if n % 2 == 0 {
                    m.proxy.set(Link::Up);
                } else {
                    m.failing = false;
                    m.apply(Self::state(load));
                }
                let text = format!("master {} back", m.label);
                self.note(load, text);
            }
            Event::ZkRestart => {
                self.zk.stop();
                self.note(load, "ZooKeeper killed".to_owned());
                std::thread::sleep(ZK_DOWN_FOR);
                let took = Instant::now();
                self.zk.launch();
                let took = took.elapsed().as_secs_f64();
                self.note(load, format!("ZooKeeper restarted, same port and data ({took:.1} s)"));
            }
            Event::MoveLeader => {
                let addr_b = self.masters[1].addr;
                self.rt.block_on(async {
                    let c = client(self.zk).await;
                    let b = master_info("127.0.0.1", addr_b.port());
                    add_member_with(&c, ZK_PATH, &b, &persistent_seq()).await;
                    c.delete(&self.node_a, None).await.unwrap();
                });
                self.leader = 1;
                self.note(load, "ZooKeeper leadership moved from A to B".to_owned());
                // The server must follow (B is up: outages are not due now).
                let since = Instant::now();
                let want = addr_b.to_string();
                let result = loop {
                    if health_leader(self.http).as_deref() == Some(want.as_str()) {
                        break Ok(since.elapsed());
                    }
                    if since.elapsed() > Duration::from_secs(30) {
                        break Err(format!("still {:?} after 30 s", health_leader(self.http)));
                    }
                    std::thread::sleep(Duration::from_millis(100));
                };
                self.note(load, format!("server follows: {result:?}"));
                self.followed_move = Some(result);
            }
        }
    }
}

/// The leader `/health` reports, if it answers.
fn health_leader(http: SocketAddr) -> Option<String> {
    let (_, body) = http_get(http, "/health").ok()?;
    let v: Value = serde_json::from_slice(&body).ok()?;
    v["leader"].as_str().map(str::to_owned)
}

/// The figures of a run.
struct Figures {
    duration: Duration,
    /// Per transport: the total and `kind count, ...`.
    rows: [(u64, String); 3],
    total: u64,
    wrong: u64,
    stale: u64,
    failures: u64,
    rss_first: f64,
    rss_min: f64,
    rss_max: f64,
    fd_min: u64,
    fd_max: u64,
}

fn mb(s: &Sample) -> f64 {
    s.rss_kb as f64 / 1024.0
}

fn figures(load: &Load<'_>, samples: &[Sample]) -> Figures {
    let n = &load.n;
    let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
    let row = |t: usize, kinds: &[&str; 4]| -> (u64, String) {
        let counts: Vec<u64> = n.answered[t].iter().map(get).collect();
        let parts: Vec<String> = kinds
            .iter()
            .zip(&counts)
            .filter(|(k, _)| **k != "-")
            .map(|(k, c)| format!("{k} {c}"))
            .collect();
        (counts.iter().sum(), parts.join(", "))
    };
    let rows = [row(UDP, &DNS_KINDS), row(TCP, &DNS_KINDS), row(HTTP, &HTTP_KINDS)];
    Figures {
        duration: load.since(),
        total: rows.iter().map(|r| r.0).sum(),
        rows,
        wrong: get(&n.wrong),
        stale: get(&n.stale),
        failures: get(&n.timeouts) + get(&n.tcp_errors) + get(&n.http_errors),
        rss_first: samples.first().map_or(0.0, mb),
        rss_min: samples.iter().map(mb).fold(f64::INFINITY, f64::min),
        rss_max: samples.iter().map(mb).fold(0.0, f64::max),
        fd_min: samples.iter().map(|s| s.fds).min().unwrap_or(0),
        fd_max: samples.iter().map(|s| s.fds).max().unwrap_or(0),
    }
}

/// The report printed at the end.
fn report(
    f: &Figures,
    load: &Load<'_>,
    samples: &[Sample],
    health: &Health,
    chaos: &Chaos<'_>,
    seconds: u64,
) -> String {
    let n = &load.n;
    let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
    let secs = f.duration.as_secs_f64();
    let who = |l: &str| -> String {
        match chaos.masters.iter().find(|m| m.addr.to_string() == l) {
            Some(m) => m.label.to_owned(),
            None => l.to_owned(),
        }
    };
    let mut out = vec![
        "==================== soak report ====================".to_owned(),
        format!("duration            {secs:.1} s of load (SOAK_SECONDS={seconds})"),
        format!("queries answered    {} ({:.0}/s)", f.total, f.total as f64 / secs),
        format!("  udp               {}: {}", f.rows[UDP].0, f.rows[UDP].1),
        format!("  tcp               {}: {}", f.rows[TCP].0, f.rows[TCP].1),
        format!("  http              {}: {}", f.rows[HTTP].0, f.rows[HTTP].1),
        format!("wrong answers       {}", f.wrong),
        format!("stale answers       {} (other state, > {STALE_AFTER:?} after a switch)", f.stale),
        format!(
            "timeouts            {} udp (no reply in {UDP_TIMEOUT:?}; {} replies came late)",
            get(&n.timeouts),
            get(&n.late)
        ),
        format!("errors              tcp {}, http {}", get(&n.tcp_errors), get(&n.http_errors)),
        format!("truncated (udp)     {} (checked as subsets)", get(&n.truncated)),
        format!(
            "state-specific      {} answers right only in S1, {} only in S2",
            get(&n.only[0]),
            get(&n.only[1])
        ),
        format!(
            "RSS                 min {:.1} MB, max {:.1} MB (first sample {:.1} MB)",
            f.rss_min, f.rss_max, f.rss_first
        ),
        format!("open FDs            min {}, max {}", f.fd_min, f.fd_max),
        format!(
            "samples             {}",
            samples
                .iter()
                .map(|s| format!("{}s:{:.1}MB/{}fd", s.at.as_secs(), mb(s), s.fds))
                .collect::<Vec<_>>()
                .join(" ")
        ),
        format!(
            "health              {} checks, {} unhealthy, longest unhealthy stretch {:.1} s",
            health.checks,
            health.unhealthy,
            health.longest.as_secs_f64()
        ),
        format!(
            "leader (/health)    {}",
            health
                .leaders
                .iter()
                .map(|(at, l)| format!("{:.1}s:{}", at.as_secs_f64(), who(l)))
                .collect::<Vec<_>>()
                .join(" ")
        ),
        format!("chaos events        {}", chaos.events.len()),
    ];
    out.extend(chaos.events.iter().map(|e| format!("  {e}")));
    out.extend(load.faults.lock().unwrap().iter().map(|e| format!("fault: {e}")));
    out.push("=====================================================".to_owned());
    out.join("\n")
}

// ------------------------------------------------------------ the run

fn main() {
    // `cargo bench` runs every benchmark: this one only when asked.
    if !std::env::args().any(|a| a == "--soak") {
        eprintln!("soak: skipped (run it with bench/soak)");
        return;
    }
    soak();
}

fn soak() {
    let seconds: u64 =
        std::env::var("SOAK_SECONDS").ok().and_then(|s| s.parse().ok()).unwrap_or(600);
    let started = Instant::now();

    // Nothing outlives a hung run: after this the process exits (the server
    // and ZooKeeper die with it: parent-death signal).
    let server_pid = Arc::new(AtomicU32::new(0));
    let finished = Arc::new(AtomicBool::new(false));
    {
        let (pid, finished) = (Arc::clone(&server_pid), Arc::clone(&finished));
        let limit = Duration::from_secs(seconds + 300);
        std::thread::spawn(move || {
            std::thread::sleep(limit);
            if !finished.load(Ordering::SeqCst) {
                eprintln!("soak: still running after {limit:?}: giving up");
                let pid = pid.load(Ordering::SeqCst);
                if pid != 0 {
                    // SAFETY: kill(2) on our own child's pid.
                    unsafe { libc::kill(pid as libc::pid_t, libc::SIGKILL) };
                }
                std::process::exit(101);
            }
        });
    }

    let rt =
        tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();

    // ZooKeeper, from this thread (it dies with the thread that starts it).
    let zk = ZkServer::start();

    // Masters A and B behind their proxies, serving S1; A leads in ZooKeeper.
    let one = state_one();
    let two = state_two(&one);
    let master = |label: &'static str| {
        let fake = rt.block_on(FakeMaster::start(Behaviour::Status(503)));
        let proxy = rt.block_on(FlakyProxy::start(fake.addr));
        let addr = SocketAddr::from(([127, 0, 0, 1], proxy.port));
        let docs = [with_leader(&one, addr), with_leader(&two, addr)];
        let m = Master { label, fake, proxy, addr, docs, failing: false };
        m.apply(0);
        m
    };
    let masters = [master("A"), master("B")];
    let (addr_a, addr_b) = (masters[0].addr, masters[1].addr);
    let node_a = rt.block_on(async {
        let c = client(&zk).await;
        c.mkdir(ZK_PATH, &open()).await.unwrap();
        let a = master_info("127.0.0.1", addr_a.port());
        add_member_with(&c, ZK_PATH, &a, &persistent_seq()).await
    });

    // The server (with the caller's RUST_LOG, if any).
    let (dns_port, http_port) = (harness::free_port(), harness::free_port());
    let config_json = serde_json::json!({
        "zk": zk.url(ZK_PATH),
        "masters": [addr_a.to_string(), addr_b.to_string()],
        "refreshSeconds": REFRESH_SECONDS,
        "listener": "127.0.0.1", "port": dns_port,
        "httpListener": "127.0.0.1", "httpport": http_port,
        "externalon": false,
    });
    let rust_log = std::env::var("RUST_LOG").ok();
    let env: Vec<(&str, &str)> = rust_log.iter().map(|v| ("RUST_LOG", v.as_str())).collect();
    let server = Server::start(&config_json, &["-v=1"], &env);
    let config_path = server.dir.path().join("config.json");
    let config = Config::from_json(&config_json.to_string(), config_path).unwrap();
    let pid = server.proc.id();
    server_pid.store(pid, Ordering::SeqCst);
    let dns = SocketAddr::from(([127, 0, 0, 1], dns_port));
    let http = SocketAddr::from(([127, 0, 0, 1], http_port));

    // The oracle; ready when the server serves S1 with A leading and A the
    // only member, exactly as generate() makes it.
    let (variants, probes) = oracle(&config, [&one, &two], addr_a, addr_b);
    let differing = probes.iter().filter(|p| p.answers.iter().all(|(_, s)| *s != 3)).count();
    wait_serving(&server, http, &serde_json::to_value(variants[0].records.axfr_records()).unwrap());
    println!(
        "soak: {seconds} s; server pid {pid}, DNS {dns}, HTTP {http}; masters A {addr_a}, \
         B {addr_b}; ZooKeeper {}; {} probes ({differing} answered differently in S1 and S2); \
         ready after {:.1} s",
        zk.connect_string(),
        probes.len(),
        started.elapsed().as_secs_f64()
    );

    let is_dns = |i: &usize| matches!(probes[*i].ask, Ask::Dns(_));
    let load = Load {
        dns_probes: (0..probes.len()).filter(is_dns).collect(),
        http_probes: (0..probes.len()).filter(|i| !is_dns(i)).collect(),
        probes: &probes,
        dns,
        http,
        t0: Instant::now(),
        stop: AtomicBool::new(false),
        epoch: AtomicU64::new(0),
        switched_ms: AtomicU64::new(0),
        n: Counters::default(),
        faults: Mutex::new(Vec::new()),
    };
    let mut chaos = Chaos {
        rt: &rt,
        zk: &zk,
        masters,
        node_a,
        http,
        leader: 0,
        outage_of: 0,
        events: Vec::new(),
        followed_move: None,
    };
    let (samples, health) = std::thread::scope(|s| {
        let _stop = StopOnDrop(&load.stop);
        let load = &load;
        let mut workers = Vec::new();
        for seed in 1..=2u64 {
            workers.push(s.spawn(move || udp_load(load, seed.wrapping_mul(0x9E37_79B9_7F4A_7C15))));
        }
        workers.push(s.spawn(move || tcp_load(load, 0xD1B5_4A32_D192_ED03)));
        workers.push(s.spawn(move || http_load(load, 0x94D0_49BB_1331_11EB)));
        let health = s.spawn(move || watch_health(load));
        let sampler = s.spawn(move || sampler(load, pid));

        // The chaos, on this thread (ZooKeeper restarts must start from it).
        for (at, event) in schedule(seconds) {
            if let Some(wait) = Duration::from_secs(at).checked_sub(load.since()) {
                std::thread::sleep(wait);
            }
            if let Some(status) = server.proc.try_wait() {
                chaos.note(load, format!("mesos-dns EXITED ({status})"));
                break;
            }
            chaos.run(event, load);
        }
        if let Some(wait) = Duration::from_secs(seconds).checked_sub(load.since()) {
            std::thread::sleep(wait);
        }
        load.stop.store(true, Ordering::SeqCst);
        for w in workers {
            w.join().unwrap();
        }
        let mut samples = sampler.join().unwrap();
        samples.extend(sample(pid, load.since()));
        (samples, health.join().unwrap())
    });
    let still_running = server.proc.try_wait().is_none();

    let f = figures(&load, &samples);
    let report = report(&f, &load, &samples, &health, &chaos, seconds);
    println!("{report}");
    finished.store(true, Ordering::SeqCst);
    // Kept after the run: the report and the server's log.
    let keep = Path::new(env!("CARGO_TARGET_TMPDIR"));
    let _ = std::fs::write(keep.join("soak-report.txt"), format!("{report}\n"));
    let _ = std::fs::copy(server.log_path(), keep.join("soak-mesos-dns.log"));
    println!("soak: report and server log kept in {}/soak-*", keep.display());

    let context = || format!("{report}\nserver log (tail):\n{}", log_tail(&server, 40));
    assert!(still_running, "mesos-dns exited during the soak\n{}", context());
    assert_eq!(f.wrong, 0, "wrong answers\n{}", context());
    assert_eq!(f.stale, 0, "stale answers\n{}", context());
    assert!(f.rows.iter().all(|r| r.0 > 0), "a transport got no answers\n{}", context());
    assert!(f.failures * 100 <= f.total, "over 1% of the queries failed\n{}", context());
    assert!(samples.len() >= 2, "too few samples\n{}", context());
    assert!(f.fd_max - f.fd_min < 50, "open FDs grew\n{}", context());
    assert!(f.rss_max < 2.0 * f.rss_first, "RSS doubled\n{}", context());
    // An outage explains OUTAGE_FOR s plus the staleness limit
    // (healthStaleRefreshes × refreshSeconds); with the other master as a
    // fallback the server should not be unhealthy at all.
    let explained = Duration::from_secs(OUTAGE_FOR + 3 * REFRESH_SECONDS);
    assert!(health.longest <= explained, "unhealthy for too long\n{}", context());
    if let Some(result) = &chaos.followed_move {
        assert!(result.is_ok(), "the server did not follow the leader\n{}", context());
    }
}
