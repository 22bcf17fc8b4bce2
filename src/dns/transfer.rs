//! Zone transfers (AXFR, RFC 5936; IXFR, RFC 1995) and signed queries
//! (TSIG, RFC 8945): who may transfer (`allowTransferFrom`, each entry
//! with the key it requires), and the messages of a transfer, built from
//! one version in service with names compressed.
//!
//! The rules, in order: a signature that does not verify is NOTAUTH (with
//! its TSIG error); a client outside `allowTransferFrom` is REFUSED; one
//! inside but without the key its entry requires is NOTAUTH. AXFR over UDP
//! is FORMERR (RFC 5936 §4.2: transfers run over TCP); IXFR over UDP gets
//! the current SOA alone, which tells the client to come over TCP or that
//! it is up to date (RFC 1995 §2). Over TCP, IXFR answers the changes since
//! the client's serial from the [`History`] (condensed into one
//! difference), or the whole zone when that serial is not remembered or
//! the difference would be bigger than the zone.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use prometheus_client::encoding::DescriptorEncoder;

use super::journal::{Changes, History};
use super::wire::{self, Disposition, ParseError, Query, Responder, Scratch};
use crate::config::{Config, TransferPeer};
use crate::metrics::{Export, counter};
use crate::proto::rr::RDATA_OFFSET;
use crate::proto::tsig::{self, Keyring, Signer, now};
use crate::proto::{
    POINTER, POINTER_LIMIT, header, label_offsets, rcode, rtype, serial_newer, skip_name,
    soa_serial_offset, u16_at, u32_at,
};
use crate::snapshot::Snapshot;
use crate::zone::ZoneView;

/// The most bytes in one message of a transfer, leaving room for a TSIG
/// record within the 64 KiB a TCP message can hold.
const MESSAGE_LIMIT: usize = 65_535 - 512;

/// Serves zone transfers and signed queries.
#[derive(Debug)]
pub struct Transfers {
    peers: Vec<TransferPeer>,
    keys: Keyring,
    history: Arc<History>,
    /// Answers the queries inside signed messages.
    responder: Responder,
    counters: Counters,
}

/// What became of transfer requests and signed queries.
#[derive(Debug, Default)]
struct Counters {
    axfr: AtomicU64,
    ixfr: AtomicU64,
    /// IXFR requests answered with the whole zone.
    ixfr_whole: AtomicU64,
    /// IXFR requests of a client already up to date, or over UDP.
    ixfr_soa_only: AtomicU64,
    refused: AtomicU64,
    /// A signature missing where a key is required, or that did not
    /// verify.
    notauth: AtomicU64,
    /// Messages (of transfers and signed answers) signed.
    signed: AtomicU64,
}

/// Whether a request may go on, and how its answers are signed.
enum Verdict {
    /// Go on (signing with this, if the request was signed).
    Allowed(Option<Signer>),
    /// Answer this rcode (with a TSIG error, when the signature failed).
    Denied(u8, Option<tsig::Failure>),
}

impl Transfers {
    /// Transfers as `config` allows them, from the versions `history`
    /// remembers; `responder` answers the queries of signed messages.
    pub fn new(config: &Config, history: Arc<History>, responder: &Responder) -> Transfers {
        let mut responder = responder.clone();
        responder.settings.verify_signatures = false;
        Transfers {
            peers: config.parsed.allow_transfer_from.clone(),
            keys: Keyring::new(config.parsed.tsig_keys.iter().cloned()),
            history,
            responder,
            counters: Counters::default(),
        }
    }

    /// Verify the request's signature, if it has one.
    fn verify(&self, packet: &[u8], q: &Query) -> Result<Option<Signer>, tsig::Failure> {
        if !q.signed {
            return Ok(None);
        }
        tsig::verify_request(&self.keys, packet, now()).map(Some)
    }

    /// May `peer` transfer the zone with this request?
    fn admit(&self, packet: &[u8], q: &Query, peer: IpAddr) -> Verdict {
        let signer = match self.verify(packet, q) {
            Ok(signer) => signer,
            Err(failure) => return Verdict::Denied(failure.rcode(), Some(failure)),
        };
        let peer = crate::records::canonical_ip(peer);
        let used = signer.as_ref().map(|s| s.key().name_text());
        let mut listed = false;
        for entry in self.peers.iter().filter(|p| p.net.contains(&peer)) {
            listed = true;
            if entry.key.is_none() || entry.key == used {
                return Verdict::Allowed(signer);
            }
        }
        if listed {
            Verdict::Denied(rcode::NOTAUTH, None)
        } else {
            Verdict::Denied(rcode::REFUSED, None)
        }
    }

    /// Answer a query the hot path handed over ([`Disposition::Transfer`]):
    /// each message of the answer, in order, signed when the request was,
    /// goes to `send` as soon as it is full (a whole zone is never in
    /// memory at once); `send` returns false to stop (the client left).
    /// Nothing sent: send nothing. Over UDP there is at most one.
    pub fn respond(
        &self,
        packet: &[u8],
        peer: IpAddr,
        udp: bool,
        snapshot: Option<&Snapshot>,
        scratch: &mut Scratch,
        send: &mut dyn FnMut(Vec<u8>) -> bool,
    ) {
        let Ok(q) = wire::parse(packet) else { return };
        if q.qtype != rtype::AXFR && q.qtype != rtype::IXFR {
            return self.signed_query(packet, &q, udp, snapshot, scratch, send);
        }
        let signer = match self.admit(packet, &q, peer) {
            Verdict::Allowed(signer) => signer,
            Verdict::Denied(rcode, failure) => {
                let counter = match rcode {
                    rcode::REFUSED => &self.counters.refused,
                    _ => &self.counters.notauth,
                };
                counter.fetch_add(1, Ordering::Relaxed);
                tracing::debug!(%peer, rcode, ?failure, "zone transfer denied");
                send(self.error(packet, &q, rcode, failure.as_ref()));
                return;
            }
        };
        let mut out = Sink { signer, send, counter: &self.counters.signed };
        match (snapshot, q.qtype, udp) {
            (_, rtype::AXFR, true) => {
                out.emit(reply(packet, &q, rcode::FORMERR));
            }
            (None, ..) => {
                out.emit(reply(packet, &q, rcode::SERVFAIL));
            }
            (Some(s), rtype::AXFR, false) => {
                self.counters.axfr.fetch_add(1, Ordering::Relaxed);
                whole_zone(packet, &q, s.view(), &mut out);
            }
            (Some(s), _, udp) => {
                self.counters.ixfr.fetch_add(1, Ordering::Relaxed);
                self.incremental(packet, &q, s.view(), udp, &mut out);
            }
        };
    }

    /// A signed query that is not a transfer: verified, answered as any
    /// other, and the answer signed.
    fn signed_query(
        &self,
        packet: &[u8],
        q: &Query,
        udp: bool,
        snapshot: Option<&Snapshot>,
        scratch: &mut Scratch,
        send: &mut dyn FnMut(Vec<u8>) -> bool,
    ) {
        let signer = match self.verify(packet, q) {
            Ok(signer) => signer,
            Err(failure) => {
                self.counters.notauth.fetch_add(1, Ordering::Relaxed);
                send(self.error(packet, q, failure.rcode(), Some(&failure)));
                return;
            }
        };
        let mut answer = Vec::new();
        let zone = snapshot.map(Snapshot::view);
        match self.responder.answer(&mut answer, packet, q, zone, udp, scratch) {
            Disposition::Answered { .. } => {}
            Disposition::Dropped => return,
            // Nothing signed is forwarded.
            Disposition::Outside | Disposition::Transfer => {
                answer = reply(packet, q, rcode::REFUSED);
            }
        }
        Sink { signer, send, counter: &self.counters.signed }.emit(answer);
    }

    /// An error reply; with a TSIG error when the signature failed.
    fn error(
        &self,
        packet: &[u8],
        q: &Query,
        rcode: u8,
        failure: Option<&tsig::Failure>,
    ) -> Vec<u8> {
        let mut out = reply(packet, q, rcode);
        if let Some(failure) = failure {
            tsig::error_response(&mut out, failure, &self.keys, now());
        }
        out
    }

    /// IXFR: the changes since the client's serial to the newest version
    /// the history holds, or the current SOA alone, or the whole zone.
    fn incremental(
        &self,
        packet: &[u8],
        q: &Query,
        view: ZoneView<'_>,
        udp: bool,
        out: &mut Sink<'_>,
    ) {
        let Some(theirs) = client_serial(packet, q) else {
            out.emit(reply(packet, q, rcode::FORMERR));
            return;
        };
        let head = view.head();
        if udp || !serial_newer(head.serial, theirs) {
            self.counters.ixfr_soa_only.fetch_add(1, Ordering::Relaxed);
            let mut m = Message::first(packet, q);
            m.push(head.apex(), head.soa());
            out.emit(m.finish(q));
            return;
        }
        // The history may be a version or two behind the zone in service
        // (it is worked out after each swap): the answer then ends at its
        // newest, and the next NOTIFY brings the rest.
        let zone_size = view.base().stats.records();
        let answered = self.history.read(|journal| {
            let newest = journal.newest()?;
            if newest == theirs {
                // Up to date with the history: nothing to send yet.
                let mut m = Message::first(packet, q);
                m.push(head.apex(), &soa_with_serial(head.soa(), newest));
                out.emit(m.finish(q));
                return Some(());
            }
            let changes = journal.since(theirs)?;
            if changes.deleted.len() + changes.added.len() > zone_size {
                return None;
            }
            differences(packet, q, view, (theirs, newest), &changes, out);
            Some(())
        });
        if answered.flatten().is_none() {
            self.counters.ixfr_whole.fetch_add(1, Ordering::Relaxed);
            whole_zone(packet, q, view, out);
        }
    }
}

/// Where the messages of one answer go: signed (when the request was),
/// then sent.
struct Sink<'s> {
    signer: Option<Signer>,
    send: &'s mut dyn FnMut(Vec<u8>) -> bool,
    /// Counts the messages signed.
    counter: &'s AtomicU64,
}

impl Sink<'_> {
    /// Sign and send one message; false once the receiver is gone.
    fn emit(&mut self, mut message: Vec<u8>) -> bool {
        if let Some(signer) = &mut self.signer {
            signer.sign(&mut message, now());
            self.counter.fetch_add(1, Ordering::Relaxed);
        }
        (self.send)(message)
    }
}

/// A header-and-question reply with `rcode`.
fn reply(packet: &[u8], q: &Query, rcode: u8) -> Vec<u8> {
    let mut out = Vec::new();
    let e = ParseError::Reply { id: q.id, flags: q.flags, rcode };
    wire::error_response(&mut out, packet, Some(q), e);
    out
}

/// The serial in an IXFR request's authority section (the client's SOA).
fn client_serial(packet: &[u8], q: &Query) -> Option<u32> {
    if u16_at(packet, header::count_offset(header::AUTHORITY))? != 1
        || u16_at(packet, header::count_offset(header::ANSWER))? != 0
    {
        return None;
    }
    let type_at = skip_name(packet, q.question_end)?;
    if u16_at(packet, type_at)? != rtype::SOA {
        return None;
    }
    u32_at(packet, soa_serial_offset(packet, type_at + RDATA_OFFSET)?)
}

/// An SOA tail with another serial.
fn soa_with_serial(tail: &[u8], serial: u32) -> Vec<u8> {
    let mut soa = tail.to_vec();
    let at = soa_serial_offset(tail, RDATA_OFFSET);
    if let Some(slot) = at.and_then(|at| soa.get_mut(at..at + 4)) {
        slot.copy_from_slice(&serial.to_be_bytes());
    }
    soa
}

/// The whole zone: its SOA, NS, every name's records, and the SOA again.
fn whole_zone(packet: &[u8], q: &Query, view: ZoneView<'_>, out: &mut Sink<'_>) {
    let head = view.head();
    let apex = head.apex();
    let mut m = Messages::new(packet, q, out);
    m.push(apex, head.soa());
    m.push(apex, view.base().ns());
    for (zone, node) in view.owners() {
        let owner = zone.owner(node);
        for tail in zone.tails(node) {
            if !m.push(owner, tail) {
                return;
            }
        }
    }
    m.push(apex, head.soa());
    m.finish();
}

/// An IXFR answer in one difference sequence from serial `from` to `to`:
/// the new SOA, the client's SOA, what to delete, the new SOA, what to
/// add, the new SOA.
fn differences(
    packet: &[u8],
    q: &Query,
    view: ZoneView<'_>,
    (from, to): (u32, u32),
    changes: &Changes<'_>,
    out: &mut Sink<'_>,
) {
    let head = view.head();
    let apex = head.apex();
    let (old, new) = (soa_with_serial(head.soa(), from), soa_with_serial(head.soa(), to));
    let mut m = Messages::new(packet, q, out);
    m.push(apex, &new);
    m.push(apex, &old);
    for rr in &changes.deleted {
        let (owner, tail) = rr.split();
        m.push(owner, tail);
    }
    m.push(apex, &new);
    for rr in &changes.added {
        let (owner, tail) = rr.split();
        m.push(owner, tail);
    }
    m.push(apex, &new);
    m.finish();
}

/// The messages of one answer, each filled up to [`MESSAGE_LIMIT`], then
/// sent.
struct Messages<'p, 's, 'o> {
    packet: &'p [u8],
    q: &'p Query,
    current: Message,
    out: &'o mut Sink<'s>,
    /// The receiver is still there.
    open: bool,
}

impl<'p, 's, 'o> Messages<'p, 's, 'o> {
    fn new(packet: &'p [u8], q: &'p Query, out: &'o mut Sink<'s>) -> Self {
        Messages { packet, q, current: Message::first(packet, q), out, open: true }
    }

    /// Add an RR, sending the message before when it is full; false once
    /// the receiver is gone.
    fn push(&mut self, owner: &[u8], tail: &[u8]) -> bool {
        if self.open && !self.current.push(owner, tail) {
            let next = Message::next(self.packet, self.q);
            let full = std::mem::replace(&mut self.current, next);
            self.open = self.out.emit(full.finish(self.q));
            // An RR always fits an empty message.
            self.current.push(owner, tail);
        }
        self.open
    }

    fn finish(self) {
        if self.open {
            self.out.emit(self.current.finish(self.q));
        }
    }
}

/// One message of an answer: header, the question (in the first only),
/// answer RRs with their owner names compressed.
struct Message {
    buf: Vec<u8>,
    /// Where each name suffix already written starts.
    suffixes: HashMap<Vec<u8>, u16>,
    answers: u16,
    first: bool,
}

impl Message {
    /// The first message: the question echoed.
    fn first(packet: &[u8], q: &Query) -> Message {
        let mut buf = Vec::new();
        wire::begin_authoritative(&mut buf, packet, q, rcode::NOERROR);
        let mut m = Message { buf, suffixes: HashMap::new(), answers: 0, first: true };
        m.remember(q.name(), header::LEN);
        m
    }

    /// A later message: no question.
    fn next(packet: &[u8], q: &Query) -> Message {
        let mut buf = Vec::new();
        wire::begin_authoritative(&mut buf, packet, q, rcode::NOERROR);
        buf.truncate(header::LEN);
        if let Some(count) = buf.get_mut(header::QDCOUNT..header::QDCOUNT + 2) {
            count.copy_from_slice(&[0, 0]);
        }
        Message { buf, suffixes: HashMap::new(), answers: 0, first: false }
    }

    /// Note the suffixes of a name written in full at `at` (all but the
    /// root, below the pointer limit) for later names to point to.
    fn remember(&mut self, name: &[u8], at: usize) {
        self.remember_prefix(name, name.len().saturating_sub(1), at);
    }

    /// Add an answer RR; false if it does not fit (an empty message takes
    /// any).
    fn push(&mut self, owner: &[u8], tail: &[u8]) -> bool {
        // The longest suffix already written, if any.
        let pointer = label_offsets(owner).find_map(|offset| {
            let suffix = owner.get(offset..)?;
            self.suffixes.get(suffix).map(|&at| (offset, at))
        });
        let owner_len = pointer.map_or(owner.len(), |(offset, _)| offset + 2);
        if self.answers > 0 && self.buf.len() + owner_len + tail.len() > MESSAGE_LIMIT {
            return false;
        }
        let at = self.buf.len();
        match pointer {
            Some((offset, target)) => {
                let prefix = owner.get(..offset).unwrap_or_default();
                self.buf.extend_from_slice(prefix);
                self.buf.extend_from_slice(&(POINTER | target).to_be_bytes());
                if offset > 0 {
                    self.remember_prefix(owner, offset, at);
                }
            }
            None => {
                self.buf.extend_from_slice(owner);
                self.remember(owner, at);
            }
        }
        self.buf.extend_from_slice(tail);
        self.answers += 1;
        true
    }

    /// Note the suffixes of `owner` that start before `end` (the part
    /// written at `at`; a pointer or the root follows it), below the
    /// pointer limit.
    fn remember_prefix(&mut self, owner: &[u8], end: usize, at: usize) {
        for offset in label_offsets(owner).take_while(|&o| o < end) {
            if at + offset >= POINTER_LIMIT {
                break;
            }
            let suffix = owner.get(offset..).unwrap_or_default();
            self.suffixes.entry(suffix.to_vec()).or_insert((at + offset) as u16);
        }
    }

    fn finish(mut self, q: &Query) -> Vec<u8> {
        if let Some(count) = self.buf.get_mut(header::ANCOUNT..header::ANCOUNT + 2) {
            count.copy_from_slice(&self.answers.to_be_bytes());
        }
        if self.first {
            wire::finish_with_opt(&mut self.buf, q, 0);
        }
        self.buf
    }
}

impl Export for Transfers {
    fn export(&self, e: &mut DescriptorEncoder) -> std::fmt::Result {
        let c = &self.counters;
        let load = |v: &AtomicU64| v.load(Ordering::Relaxed);
        counter(
            e,
            "mesos_dns_zone_transfers",
            "Zone transfer requests, by type and outcome",
            &[
                (vec![("type", "AXFR"), ("outcome", "whole")], load(&c.axfr)),
                (vec![("type", "IXFR"), ("outcome", "answered")], load(&c.ixfr)),
                (vec![("type", "IXFR"), ("outcome", "whole")], load(&c.ixfr_whole)),
                (vec![("type", "IXFR"), ("outcome", "soa_only")], load(&c.ixfr_soa_only)),
                (vec![("type", ""), ("outcome", "refused")], load(&c.refused)),
                (vec![("type", ""), ("outcome", "notauth")], load(&c.notauth)),
            ],
        )?;
        counter(
            e,
            "mesos_dns_tsig_signed_messages",
            "Messages signed with TSIG (transfers and answers to signed queries)",
            &[(vec![], load(&c.signed))],
        )?;
        let (versions, bytes) = self.history.read(|j| j.size()).unwrap_or_default();
        crate::metrics::gauge(
            e,
            "mesos_dns_ixfr_history",
            "Versions and bytes of records remembered for IXFR",
            &[
                (vec![("unit", "versions")], versions as f64),
                (vec![("unit", "bytes")], bytes as f64),
            ],
        )
    }
}
