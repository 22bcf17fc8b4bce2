//! NOTIFY (RFC 1996): tells each `notify` secondary that the zone has a
//! new version, so it transfers the change at once instead of at its next
//! SOA refresh. Once when the first records are in service, then after
//! each version the [`History`] remembers (so the secondary's IXFR finds
//! it); at most once a second per secondary while changes keep coming
//! (the newest serial goes out then). A NOTIFY not answered is sent again
//! after 1 s, 2 s, 4 s... (at most a minute apart) until the secondary
//! answers or a newer version replaces it. Signed with the target's TSIG
//! key, if it has one; the answer's signature is checked.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use prometheus_client::encoding::DescriptorEncoder;
use tokio::net::UdpSocket;
use tokio::sync::watch;
use tokio::time::Instant;

use super::journal::History;
use crate::config::Config;
use crate::metrics::{Export, counter};
use crate::proto::rr::RDATA_OFFSET;
use crate::proto::tsig::{self, Key, Signer};
use crate::proto::{
    CLASS_IN, QUESTION_POINTER, header, opcode, rcode, rtype, serial_newer, skip_name,
    soa_serial_offset, u16_at, u32_at, wire_name,
};
use crate::snapshot::Current;

/// The least time between two NOTIFY to one secondary.
const MIN_INTERVAL: Duration = Duration::from_secs(1);
/// The first wait for an answer; it doubles with each retry.
const FIRST_WAIT: Duration = Duration::from_secs(1);
/// The longest wait between two tries.
const MAX_WAIT: Duration = Duration::from_secs(60);

/// The secondaries to tell, with their counters.
#[derive(Debug)]
pub struct Notifier {
    apex: Vec<u8>,
    /// Where to send from: the DNS listener's address (its family's
    /// unspecified address when it listens on all).
    source: IpAddr,
    targets: Vec<Target>,
}

#[derive(Debug)]
struct Target {
    addr: SocketAddr,
    key: Option<Arc<Key>>,
    sent: AtomicU64,
    answered: AtomicU64,
    /// Tries not answered in time, and answers with an error.
    failed: AtomicU64,
}

impl Notifier {
    /// The notifier `config` asks for; `None` without `notify`.
    pub fn new(config: &Config) -> Option<Notifier> {
        let p = &config.parsed;
        if p.notify.is_empty() {
            return None;
        }
        let key_named = |name: &Option<String>| {
            let name = name.as_ref()?;
            p.tsig_keys.iter().find(|k| &k.name_text() == name).cloned().map(Arc::new)
        };
        let targets = p
            .notify
            .iter()
            .map(|t| Target {
                addr: t.addr,
                key: key_named(&t.key),
                sent: AtomicU64::new(0),
                answered: AtomicU64::new(0),
                failed: AtomicU64::new(0),
            })
            .collect();
        Some(Notifier {
            apex: wire_name(&config.domain).unwrap_or_else(|| vec![0]),
            source: p.listener,
            targets,
        })
    }

    /// The newest zone serial the secondaries hold, asked of each (SOA
    /// over UDP, at most `limit`). A run whose versions came faster than
    /// one a second numbered them ahead of the clock; the next run starts
    /// above this, so the secondaries take its zone.
    pub async fn held_serial(&self, limit: Duration) -> Option<u32> {
        let asks = self.targets.iter().map(|t| async move {
            let socket = self.socket_to(t.addr).await.ok()?;
            let id = rand::random::<u16>();
            let query = self.soa_question(id, 0, 0);
            socket.send(&query).await.ok()?;
            let reply =
                tokio::time::timeout(limit, answer(&socket, id, opcode::QUERY)).await.ok()?;
            soa_serial(&reply)
        });
        let held = futures_util::future::join_all(asks).await;
        held.into_iter().flatten().reduce(|a, b| if serial_newer(b, a) { b } else { a })
    }

    /// A UDP socket connected to `target`, sent from the listener's
    /// address, or the unspecified address of the target's family.
    async fn socket_to(&self, target: SocketAddr) -> std::io::Result<UdpSocket> {
        let source = match (self.source, target) {
            (IpAddr::V4(ip), SocketAddr::V4(_)) => IpAddr::V4(ip),
            (_, SocketAddr::V4(_)) => IpAddr::V4(Ipv4Addr::UNSPECIFIED),
            (IpAddr::V6(ip), SocketAddr::V6(_)) => IpAddr::V6(ip),
            (_, SocketAddr::V6(_)) => IpAddr::V6(Ipv6Addr::UNSPECIFIED),
        };
        let socket = UdpSocket::bind(SocketAddr::new(source, 0)).await?;
        socket.connect(target).await?;
        Ok(socket)
    }

    /// A message asking the apex's SOA: header (`flags`, one question,
    /// `answers` to follow) and the question.
    fn soa_question(&self, id: u16, flags: u16, answers: u16) -> Vec<u8> {
        let mut m = Vec::with_capacity(128);
        m.extend_from_slice(&id.to_be_bytes());
        m.extend_from_slice(&flags.to_be_bytes());
        m.extend_from_slice(&1u16.to_be_bytes());
        m.extend_from_slice(&answers.to_be_bytes());
        m.extend_from_slice(&[0, 0, 0, 0]);
        m.extend_from_slice(&self.apex);
        m.extend_from_slice(&rtype::SOA.to_be_bytes());
        m.extend_from_slice(&CLASS_IN.to_be_bytes());
        m
    }

    /// Tell every secondary of each new version until the runtime stops.
    pub async fn run(self: Arc<Self>, history: Arc<History>, current: Current) {
        let mut tasks = tokio::task::JoinSet::new();
        for i in 0..self.targets.len() {
            let (me, newest, current) = (Arc::clone(&self), history.newest(), Arc::clone(&current));
            tasks.spawn(async move { me.notify_target(i, newest, current).await });
        }
        while tasks.join_next().await.is_some() {}
    }

    /// The NOTIFY loop of target `i`.
    async fn notify_target(
        &self,
        i: usize,
        mut newest: watch::Receiver<Option<u32>>,
        current: Current,
    ) {
        let Some(target) = self.targets.get(i) else { return };
        let socket = match self.socket_to(target.addr).await {
            Ok(socket) => socket,
            Err(e) => {
                tracing::warn!(secondary = %target.addr, "NOTIFY: cannot open a socket to it: {e}");
                return;
            }
        };
        // The first records in service: the secondary may hold an older
        // run's zone.
        let mut changes = current.changes();
        let first = loop {
            if let Some(s) = current.load().as_ref() {
                break s.serial();
            }
            if changes.changed().await.is_err() {
                return;
            }
        };
        let mut serial = first;
        let mut last_sent: Option<Instant> = None;
        loop {
            if let Some(at) = last_sent {
                tokio::time::sleep_until(at + MIN_INTERVAL).await;
            }
            if let Some(newer) = *newest.borrow_and_update() {
                serial = newer;
            }
            self.until_answered(target, &socket, serial, &mut newest, &mut last_sent).await;
            if newest.changed().await.is_err() {
                return;
            }
        }
    }

    /// Send NOTIFY for `serial` until it is answered or a newer version
    /// is remembered.
    async fn until_answered(
        &self,
        target: &Target,
        socket: &UdpSocket,
        serial: u32,
        newest: &mut watch::Receiver<Option<u32>>,
        last_sent: &mut Option<Instant>,
    ) {
        let mut wait = FIRST_WAIT;
        loop {
            let id = rand::random::<u16>();
            let (message, signer) = self.message(id, serial, target.key.as_ref());
            *last_sent = Some(Instant::now());
            target.sent.fetch_add(1, Ordering::Relaxed);
            if let Err(e) = socket.send(&message).await {
                tracing::debug!(secondary = %target.addr, "NOTIFY: {e}");
            }
            let answered = tokio::time::timeout(wait, answer(socket, id, opcode::NOTIFY)).await;
            match answered {
                Ok(reply) => {
                    let verified = signer.as_ref().map_or(Ok(()), |s| {
                        s.verify_response(&reply, tsig::now()).map_err(|f| format!("{f:?}"))
                    });
                    let code = header::rcode(&reply).unwrap_or(rcode::SERVFAIL);
                    if code == rcode::NOERROR && verified.is_ok() {
                        target.answered.fetch_add(1, Ordering::Relaxed);
                        tracing::debug!(secondary = %target.addr, serial, "NOTIFY answered");
                    } else {
                        target.failed.fetch_add(1, Ordering::Relaxed);
                        tracing::warn!(
                            secondary = %target.addr, serial, rcode = code, signature = ?verified.err(),
                            "NOTIFY refused by the secondary (check its allow-notify and key)"
                        );
                    }
                    return;
                }
                Err(_) => {
                    target.failed.fetch_add(1, Ordering::Relaxed);
                    tracing::debug!(secondary = %target.addr, serial, ?wait, "NOTIFY not answered; retrying");
                }
            }
            if newest.has_changed().unwrap_or(true) {
                return;
            }
            wait = (wait * 2).min(MAX_WAIT);
        }
    }

    /// A NOTIFY for the zone at `serial`: the SOA question, and the SOA
    /// (with that serial) in the answer section as a hint (RFC 1996 §3.7);
    /// signed when `key` is given.
    fn message(&self, id: u16, serial: u32, key: Option<&Arc<Key>>) -> (Vec<u8>, Option<Signer>) {
        let flags = (u16::from(opcode::NOTIFY) << 11) | header::AA;
        let mut m = self.soa_question(id, flags, 1);
        // The answer: the apex's SOA, only its serial known for sure.
        m.extend_from_slice(&QUESTION_POINTER);
        m.extend_from_slice(&rtype::SOA.to_be_bytes());
        m.extend_from_slice(&CLASS_IN.to_be_bytes());
        m.extend_from_slice(&0u32.to_be_bytes());
        // RDATA: root names for MNAME and RNAME, then the five numbers.
        m.extend_from_slice(&22u16.to_be_bytes());
        m.extend_from_slice(&[0, 0]);
        for v in [serial, 0, 0, 0, 0] {
            m.extend_from_slice(&v.to_be_bytes());
        }
        let signer = key.map(|k| {
            let mut signer = Signer::for_request(Arc::clone(k));
            signer.sign(&mut m, tsig::now());
            signer
        });
        (m, signer)
    }
}

/// The serial of the SOA first in a reply's answer section.
fn soa_serial(reply: &[u8]) -> Option<u32> {
    if u16_at(reply, header::ANCOUNT)? == 0 || header::rcode(reply)? != rcode::NOERROR {
        return None;
    }
    let question_end = skip_name(reply, header::LEN)? + 4;
    let type_at = skip_name(reply, question_end)?;
    if u16_at(reply, type_at)? != rtype::SOA {
        return None;
    }
    u32_at(reply, soa_serial_offset(reply, type_at + RDATA_OFFSET)?)
}

/// The next answer to message `id` of `opcode` on `socket` (others are
/// ignored).
async fn answer(socket: &UdpSocket, id: u16, opcode: u8) -> Vec<u8> {
    let mut buf = vec![0; 4096];
    loop {
        let Ok(n) = socket.recv(&mut buf).await else {
            // An ICMP error (nobody listening): as good as no answer.
            tokio::time::sleep(MAX_WAIT).await;
            continue;
        };
        let reply = buf.get(..n).unwrap_or_default();
        let is_answer = u16_at(reply, 0) == Some(id)
            && header::is_response(reply)
            && header::flags(reply).map(header::opcode) == Some(opcode);
        if is_answer {
            return reply.to_vec();
        }
    }
}

impl Export for Notifier {
    fn export(&self, e: &mut DescriptorEncoder) -> std::fmt::Result {
        let addrs: Vec<String> = self.targets.iter().map(|t| t.addr.to_string()).collect();
        let mut rows = Vec::new();
        for (t, addr) in self.targets.iter().zip(&addrs) {
            for (outcome, v) in
                [("sent", &t.sent), ("answered", &t.answered), ("failed", &t.failed)]
            {
                rows.push((
                    vec![("secondary", addr.as_str()), ("outcome", outcome)],
                    v.load(Ordering::Relaxed),
                ));
            }
        }
        counter(e, "mesos_dns_notify", "NOTIFY messages to secondaries, by outcome", &rows)
    }
}
