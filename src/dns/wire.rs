//! The DNS hot path (docs/architecture.md, the DNS hot path): parse one
//! query from the received bytes without allocating, look the name up in
//! the compiled [`Zone`], and assemble the answer from pre-encoded bytes.
//!
//! Every read from the packet is bounds-checked; malformed input yields
//! FORMERR (or nothing, when not even a header can be read), never a panic.

pub use crate::proto::rcode;
use crate::proto::rr::{
    A_TAIL, AAAA_TAIL, OPT_LEN, RDATA_OFFSET, RDLENGTH_OFFSET, SRV_TARGET_OFFSET,
};
use crate::proto::{
    CLASS_IN, MAX_LABEL_LEN, MAX_WIRE_NAME_LEN, POINTER, POINTER_LEN, POINTER_LIMIT,
    QUESTION_POINTER, REVERSE_ZONES, header, label_count, rtype, skip_name, skip_rr, u16_at,
    wire_name,
};
use crate::zone::{Node, Zone, ZoneView, each_tail};

const MAX_LABELS: usize = 128;
/// The UDP payload size we advertise in our OPT record (DNS flag day 2020).
pub const OUR_UDP_SIZE: u16 = 1232;
/// Plain DNS over UDP without EDNS (RFC 1035).
pub const MIN_UDP_SIZE: usize = 512;
/// The DO bit in an OPT record's flags (RFC 3225).
const EDNS_DO: u16 = 0x8000;

/// The EDNS(0) OPT record of a query.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Edns {
    /// The UDP payload size the client accepts (the OPT record's class).
    pub udp_size: u16,
    /// The EDNS version (above 0: BADVERS).
    pub version: u8,
    /// The DO bit ("DNSSEC OK"), which the response must copy (RFC 3225 §3).
    pub dnssec_ok: bool,
}

/// A parsed query: the header fields we need and the question, with the
/// name lower-cased into an inline buffer.
#[derive(Debug, Clone)]
pub struct Query {
    /// The query's id, echoed in the response.
    pub id: u16,
    /// The second header word as received (opcode, RD, CD, ...).
    pub flags: u16,
    /// The question's type (A, SRV, ...).
    pub qtype: u16,
    qclass: u16,
    /// End of the question in the packet.
    pub question_end: usize,
    name: [u8; MAX_WIRE_NAME_LEN],
    name_len: usize,
    labels: [u8; MAX_LABELS],
    label_count: usize,
    /// The OPT record, if the query has one.
    pub edns: Option<Edns>,
    /// Whether a TSIG record signs it (RFC 8945).
    pub signed: bool,
}

impl Query {
    /// The question name in lower-case wire form.
    pub fn name(&self) -> &[u8] {
        self.name.get(..self.name_len).unwrap_or_default()
    }

    /// Offset (within the name) of each label's length byte.
    fn label_offset(&self, i: usize) -> Option<usize> {
        self.labels.get(..self.label_count)?.get(i).map(|&o| usize::from(o))
    }

    /// The opcode from the header flags (0: a standard query).
    pub fn opcode(&self) -> u8 {
        header::opcode(self.flags)
    }

    /// If the name lies at or below `apex` (wire form), the offset of the
    /// apex suffix within the name.
    pub fn apex_offset(&self, apex: &[u8], apex_labels: usize) -> Option<usize> {
        let first = self.label_count.checked_sub(apex_labels)?;
        let off = if apex_labels == 0 { self.name_len - 1 } else { self.label_offset(first)? };
        (self.name().get(off..)? == apex).then_some(off)
    }
}

/// Why a packet got no normal answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ParseError {
    /// Not even a query header: send nothing.
    Drop,
    /// Send this rcode with the query's id (question echoed if it parsed).
    Reply {
        /// The query's id.
        id: u16,
        /// The query's second header word, as received.
        flags: u16,
        /// The rcode to answer with.
        rcode: u8,
    },
}

/// Parse a query packet.
pub fn parse(p: &[u8]) -> Result<Query, ParseError> {
    let (Some(id), Some(flags)) = (u16_at(p, 0), u16_at(p, 2)) else {
        return Err(ParseError::Drop);
    };
    if p.len() < header::LEN || flags & header::QR != 0 {
        return Err(ParseError::Drop); // short, or a response (QR set)
    }
    let formerr = ParseError::Reply { id, flags, rcode: rcode::FORMERR };
    let count = |section| u16_at(p, header::count_offset(section));
    let counts = [
        u16_at(p, header::QDCOUNT),
        count(header::ANSWER),
        count(header::AUTHORITY),
        count(header::ADDITIONAL),
    ];
    let [Some(qd), Some(an), Some(ns), Some(ar)] = counts else {
        return Err(formerr);
    };
    if header::opcode(flags) != 0 {
        return Err(ParseError::Reply { id, flags, rcode: rcode::NOTIMP });
    }
    if qd != 1 {
        return Err(formerr);
    }

    let mut q = Query {
        id,
        flags,
        qtype: 0,
        qclass: 0,
        question_end: 0,
        name: [0; MAX_WIRE_NAME_LEN],
        name_len: 0,
        labels: [0; MAX_LABELS],
        label_count: 0,
        edns: None,
        signed: false,
    };
    let mut at = header::LEN;
    loop {
        let len = usize::from(*p.get(at).ok_or(formerr)?);
        if len == 0 {
            break;
        }
        // No compression in the question (nothing before it to point to),
        // labels of at most 63, a name of at most 255 bytes.
        if len > MAX_LABEL_LEN
            || q.label_count >= MAX_LABELS
            || q.name_len + 1 + len + 1 > MAX_WIRE_NAME_LEN
        {
            return Err(formerr);
        }
        let label = p.get(at + 1..at + 1 + len).ok_or(formerr)?;
        q.labels[q.label_count] = q.name_len as u8;
        q.label_count += 1;
        q.name[q.name_len] = len as u8;
        for (dst, src) in q.name[q.name_len + 1..q.name_len + 1 + len].iter_mut().zip(label) {
            *dst = src.to_ascii_lowercase();
        }
        q.name_len += 1 + len;
        at += 1 + len;
    }
    q.name[q.name_len] = 0;
    q.name_len += 1;
    at += 1;
    q.qtype = u16_at(p, at).ok_or(formerr)?;
    q.qclass = u16_at(p, at + 2).ok_or(formerr)?;
    at += 4;
    q.question_end = at;

    // Skip answer and authority records; read an OPT from additional.
    for _ in 0..(u32::from(an) + u32::from(ns)) {
        at = skip_rr(p, at).ok_or(formerr)?;
    }
    for _ in 0..ar {
        let name_end = skip_name(p, at).ok_or(formerr)?;
        let rtype = u16_at(p, name_end).ok_or(formerr)?;
        if rtype == rtype::OPT {
            // One OPT only, owned by the root (RFC 6891 §6.1.1).
            if q.edns.is_some() || name_end != at + 1 {
                return Err(formerr);
            }
            let udp_size = u16_at(p, name_end + 2).ok_or(formerr)?;
            let version = *p.get(name_end + 5).ok_or(formerr)?;
            let flags = u16_at(p, name_end + 6).ok_or(formerr)?;
            q.edns = Some(Edns { udp_size, version, dnssec_ok: flags & EDNS_DO != 0 });
        }
        q.signed |= rtype == rtype::TSIG;
        at = skip_rr(p, at).ok_or(formerr)?;
    }
    Ok(q)
}

/// What the server does with a query, once parsed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Disposition {
    /// A response was written.
    Answered {
        /// The response's rcode.
        rcode: u8,
        /// Whether records were left out for lack of room.
        truncated: bool,
    },
    /// The name is outside the domain: forward it (or refuse).
    Outside,
    /// A zone transfer (AXFR, IXFR) or a signed query: for
    /// [`super::transfer`].
    Transfer,
    /// Nothing to send.
    Dropped,
}

/// Serving settings taken from the config.
#[derive(Debug, Clone, Copy, Default)]
pub struct Settings {
    /// `RecurseOn`: set RA (recursion available) in responses.
    pub recurse_on: bool,
    /// `SetTruncateBit`: set TC on a response that left records out.
    pub set_truncate_bit: bool,
    /// TSIG keys are configured: signed queries are verified and their
    /// answers signed (without keys, a signature is ignored, as the
    /// original does).
    pub verify_signatures: bool,
    /// `answerLimit`: at most this many A, AAAA and SRV records each per
    /// answer, chosen at random (0: all).
    pub answer_limit: u16,
    /// `ptrOn`: PTR questions for the zone's addresses are answered (the
    /// others are forwarded as before).
    pub ptr_on: bool,
}

impl Settings {
    /// The most records of one type an answer carries (`answerLimit`).
    fn per_type(&self) -> usize {
        if self.answer_limit == 0 { usize::MAX } else { usize::from(self.answer_limit) }
    }
}

/// Per-worker scratch space, reused across queries (no allocation per
/// query once warm).
#[derive(Debug, Default)]
pub struct Scratch {
    order: Vec<u32>,
    /// Written SRVs: (target offset in message, glue index, target id).
    written_srv: Vec<(usize, u32)>,
    glued: Vec<u32>,
    rng: u64,
}

impl Scratch {
    /// Empty scratch space; `seed` starts the random order of records.
    pub fn new(seed: u64) -> Self {
        Scratch { rng: seed | 1, ..Default::default() }
    }

    fn next(&mut self) -> u64 {
        // xorshift64*: plenty for load-balancing order.
        let mut x = self.rng;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.rng = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// Fill `order` with 0..n, its first `k` a uniformly random choice in
    /// random order (Fisher–Yates, stopped after `k`; `k >= n`: all of it
    /// shuffled). Returns how many to take: `k` at most.
    fn shuffle(&mut self, n: usize, k: usize) -> usize {
        self.order.clear();
        self.order.extend(0..n as u32);
        let take = n.min(k);
        for i in 0..take.min(n.saturating_sub(1)) {
            let j = i + (self.next() % (n - i) as u64) as usize;
            self.order.swap(i, j);
        }
        take
    }
}

/// The largest response for this query on this transport.
pub fn size_limit(q: &Query, udp: bool) -> usize {
    if !udp {
        return usize::from(u16::MAX);
    }
    q.edns.map_or(MIN_UDP_SIZE, |e| usize::from(e.udp_size).max(MIN_UDP_SIZE))
}

/// Write the header and echoed question for `q`: QR, opcode and RD/CD
/// from the query; AA when `aa`; RA when `ra` (only answers from the
/// zone carry RA, per `recurseon`, as the original's: a refusal or a
/// failed forward offers no recursion).
fn begin(out: &mut Vec<u8>, packet: &[u8], q: &Query, aa: bool, ra: bool, rcode: u8) {
    out.clear();
    out.extend_from_slice(&q.id.to_be_bytes());
    let mut flags = header::QR | (q.flags & (header::OPCODE_MASK | header::RD | header::CD));
    if aa {
        flags |= header::AA;
    }
    if ra {
        flags |= header::RA;
    }
    flags |= u16::from(rcode) & header::RCODE_MASK;
    out.extend_from_slice(&flags.to_be_bytes());
    // One question; no records yet.
    out.extend_from_slice(&[0, 1, 0, 0, 0, 0, 0, 0]);
    out.extend_from_slice(packet.get(header::LEN..q.question_end).unwrap_or_default());
}

/// The header and echoed question of an authoritative answer with
/// `rcode`, no records yet (zone transfers build theirs after it).
pub(crate) fn begin_authoritative(out: &mut Vec<u8>, packet: &[u8], q: &Query, rcode: u8) {
    begin(out, packet, q, true, false, rcode);
}

/// Set a section count (`header::ANSWER`, `AUTHORITY`, `ADDITIONAL`).
fn set_count(out: &mut [u8], section: usize, value: u16) {
    let at = header::count_offset(section);
    if let Some(slot) = out.get_mut(at..at + 2) {
        slot.copy_from_slice(&value.to_be_bytes());
    }
}

/// Add one to a section count.
fn bump_count(out: &mut [u8], section: usize) {
    if let Some(n) = u16_at(out, header::count_offset(section)) {
        set_count(out, section, n.saturating_add(1));
    }
}

/// Our OPT record: version 0, our payload size, the query's DO bit.
fn push_opt(out: &mut Vec<u8>, ext_rcode: u8, dnssec_ok: bool) {
    out.push(0);
    out.extend_from_slice(&rtype::OPT.to_be_bytes());
    out.extend_from_slice(&OUR_UDP_SIZE.to_be_bytes());
    out.extend_from_slice(&[ext_rcode, 0]);
    out.extend_from_slice(&(if dnssec_ok { EDNS_DO } else { 0 }).to_be_bytes());
    out.extend_from_slice(&[0, 0]);
}

/// A header-only (plus question, when parsed) response with `rcode`,
/// without RA: a malformed query, a refusal or a failed forward offers no
/// recursion.
pub fn error_response(
    out: &mut Vec<u8>,
    packet: &[u8],
    q: Option<&Query>,
    e: ParseError,
) -> Disposition {
    match (q, e) {
        (_, ParseError::Drop) => Disposition::Dropped,
        (Some(q), ParseError::Reply { rcode, .. }) => {
            begin(out, packet, q, false, false, rcode);
            finish_with_opt(out, q, 0);
            Disposition::Answered { rcode, truncated: false }
        }
        (None, ParseError::Reply { id, flags, rcode }) => {
            out.clear();
            out.extend_from_slice(&id.to_be_bytes());
            let f = header::QR | (flags & (header::OPCODE_MASK | header::RD)) | u16::from(rcode);
            out.extend_from_slice(&f.to_be_bytes());
            out.extend_from_slice(&[0; 8]);
            Disposition::Answered { rcode, truncated: false }
        }
    }
}

/// Add our OPT record if the query had one.
pub(crate) fn finish_with_opt(out: &mut Vec<u8>, q: &Query, ext_rcode: u8) {
    if let Some(edns) = q.edns {
        push_opt(out, ext_rcode, edns.dnssec_ok);
        bump_count(out, header::ADDITIONAL);
    }
}

/// Answers queries for one domain with one set of settings.
#[derive(Debug, Clone)]
pub struct Responder {
    /// The domain in lower-case wire form, and its label count.
    apex: Vec<u8>,
    apex_labels: usize,
    /// How to answer.
    pub settings: Settings,
}

impl Responder {
    /// A responder for `domain` (its name as text, e.g. `mesos`).
    pub fn new(domain: &str, settings: Settings) -> Responder {
        let apex = wire_name(domain).unwrap_or_else(|| vec![0]);
        let apex_labels = label_count(&apex);
        Responder { apex, apex_labels, settings }
    }

    /// Answer a parsed query from `zone` into `out`.
    ///
    /// `zone` is `None` until the first state has loaded: names in the
    /// domain then get SERVFAIL.
    pub fn answer(
        &self,
        out: &mut Vec<u8>,
        packet: &[u8],
        q: &Query,
        zone: Option<ZoneView<'_>>,
        udp: bool,
        scratch: &mut Scratch,
    ) -> Disposition {
        answer(out, packet, q, zone, (&self.apex, self.apex_labels), udp, &self.settings, scratch)
    }
}

#[allow(clippy::too_many_arguments)]
fn answer(
    out: &mut Vec<u8>,
    packet: &[u8],
    q: &Query,
    view: Option<ZoneView<'_>>,
    (apex, apex_labels): (&[u8], usize),
    udp: bool,
    s: &Settings,
    scratch: &mut Scratch,
) -> Disposition {
    if let Some(edns) = q.edns.filter(|e| e.version > 0) {
        begin(out, packet, q, false, s.recurse_on, 0);
        push_opt(out, (rcode::BADVERS >> 4) as u8, edns.dnssec_ok);
        set_count(out, header::ADDITIONAL, 1);
        return Disposition::Answered { rcode: rcode::BADVERS as u8, truncated: false };
    }
    // Zone transfers and signed queries are answered elsewhere.
    if q.qtype == rtype::AXFR || q.qtype == rtype::IXFR || (q.signed && s.verify_signatures) {
        return Disposition::Transfer;
    }
    if q.qclass != CLASS_IN {
        let refused = ParseError::Reply { id: q.id, flags: q.flags, rcode: rcode::REFUSED };
        return error_response(out, packet, Some(q), refused);
    }
    let Some(apex_off) = q.apex_offset(apex, apex_labels) else {
        if s.ptr_on
            && let Some(view) = view
        {
            return reverse(out, packet, q, view, udp, s);
        }
        return Disposition::Outside;
    };
    let Some(view) = view else {
        begin(out, packet, q, false, s.recurse_on, rcode::SERVFAIL);
        finish_with_opt(out, q, 0);
        return Disposition::Answered { rcode: rcode::SERVFAIL, truncated: false };
    };

    let found = lookup(view, q);
    let limit = record_room(q, udp);
    let Some((zone, node)) = found else {
        return negative(out, packet, q, view.head(), apex_off, limit, rcode::NXDOMAIN, s);
    };
    let at_apex = apex_off == 0;
    begin(out, packet, q, true, s.recurse_on, rcode::NOERROR);
    let mut w = Writer { out, limit, per_type: s.per_type(), answers: 0, truncated: false };
    let qt = q.qtype;
    let any = qt == rtype::ANY;
    if any || qt == rtype::A {
        w.fixed_rrset(zone.bytes(node.a), A_TAIL, scratch);
    }
    if any || qt == rtype::AAAA {
        w.fixed_rrset(zone.bytes(node.aaaa), AAAA_TAIL, scratch);
    }
    scratch.written_srv.clear();
    if any || qt == rtype::SRV {
        w.srv_rrset(zone, node, scratch);
    }
    if at_apex && (any || qt == rtype::SOA) {
        w.answer(view.head().soa());
    }
    let mut ns_target = None;
    if at_apex && (any || qt == rtype::NS) {
        let start = w.out.len();
        if w.answer(view.base().ns()) {
            ns_target = Some(start + POINTER_LEN + RDATA_OFFSET);
        }
    }
    if w.answers == 0 && !w.truncated {
        return negative(w.out, packet, q, view.head(), apex_off, limit, rcode::NOERROR, s);
    }
    let answers = w.answers;
    let truncated = w.truncated;
    // Additional section: SRV targets' and the name server's addresses.
    let mut additional = 0u16;
    scratch.glued.clear();
    for i in 0..scratch.written_srv.len() {
        let Some(&(target_at, srv_index)) = scratch.written_srv.get(i) else {
            break;
        };
        let Some(srv) = zone.srvs(node).get(srv_index as usize) else {
            continue;
        };
        if scratch.glued.contains(&srv.target_id) {
            continue;
        }
        scratch.glued.push(srv.target_id);
        let target = zone.bytes(srv.rr).get(SRV_TARGET_OFFSET..).unwrap_or_default();
        additional += w.glue(zone.bytes(srv.glue), target_at, target);
    }
    if let Some(at) = ns_target {
        let base = view.base();
        additional += w.glue(base.ns_glue(), at, base.ns().get(RDATA_OFFSET..).unwrap_or_default());
    }
    let out = w.out;
    set_count(out, header::ANSWER, answers);
    set_count(out, header::ADDITIONAL, additional);
    close(out, q, rcode::NOERROR, truncated, s)
}

/// A PTR question (`ptrOn`) for an address the zone hands out: its PTR
/// records, authoritative. Any other name or type outside the domain is
/// forwarded, as without `ptrOn`.
fn reverse(
    out: &mut Vec<u8>,
    packet: &[u8],
    q: &Query,
    view: ZoneView<'_>,
    udp: bool,
    s: &Settings,
) -> Disposition {
    let name = q.name();
    let reverse_name = REVERSE_ZONES.iter().any(|zone| name.ends_with(zone));
    let asked = q.qtype == rtype::PTR || q.qtype == rtype::ANY;
    let Some((zone, node)) = view.node(name).filter(|_| reverse_name && asked) else {
        return Disposition::Outside;
    };
    let ptrs = zone.bytes(node.ptr);
    if ptrs.is_empty() {
        return Disposition::Outside;
    }
    let limit = record_room(q, udp);
    begin(out, packet, q, true, s.recurse_on, rcode::NOERROR);
    let per_type = s.per_type();
    let mut w = Writer { out, limit, per_type, answers: 0, truncated: false };
    for tail in each_tail(ptrs).take(per_type) {
        if !w.answer(tail) {
            break;
        }
    }
    let (answers, truncated) = (w.answers, w.truncated);
    set_count(out, header::ANSWER, answers);
    close(out, q, rcode::NOERROR, truncated, s)
}

/// Look the name up, applying the original's `.*` stripping (a label that
/// starts with `*`, other than the first, is removed with its dot).
fn lookup<'z>(zone: ZoneView<'z>, q: &Query) -> Option<(&'z Zone, &'z Node)> {
    let name = q.name();
    let has_wild = (1..q.label_count)
        .any(|i| q.label_offset(i).and_then(|o| name.get(o + 1)).is_some_and(|&b| b == b'*'));
    if !has_wild {
        return zone.node(name);
    }
    // Rare: rebuild the presentation name, strip ".*", re-encode.
    let mut text = String::new();
    for i in 0..q.label_count {
        let off = q.label_offset(i)?;
        let len = usize::from(*name.get(off)?);
        if i > 0 {
            text.push('.');
        }
        text.push_str(&String::from_utf8_lossy(name.get(off + 1..off + 1 + len)?));
    }
    let cleaned = text.replace(".*", "");
    wire_name(&cleaned).and_then(|w| zone.node(&w))
}

/// NXDOMAIN or NODATA: the SOA (owner: the apex, compressed) in authority.
#[allow(clippy::too_many_arguments)]
fn negative(
    out: &mut Vec<u8>,
    packet: &[u8],
    q: &Query,
    zone: &Zone,
    apex_off: usize,
    limit: usize,
    rcode: u8,
    s: &Settings,
) -> Disposition {
    begin(out, packet, q, true, s.recurse_on, rcode);
    let soa = zone.negative_soa();
    let mut truncated = false;
    if out.len() + POINTER_LEN + soa.len() <= limit {
        out.extend_from_slice(&(POINTER | (header::LEN + apex_off) as u16).to_be_bytes());
        out.extend_from_slice(soa);
        set_count(out, header::AUTHORITY, 1);
    } else {
        truncated = true;
    }
    close(out, q, rcode, truncated, s)
}

/// The room for records in an answer: the size limit, less our OPT
/// record when the query had one.
#[inline]
fn record_room(q: &Query, udp: bool) -> usize {
    size_limit(q, udp) - if q.edns.is_some() { OPT_LEN } else { 0 }
}

/// Close an answer with `rcode`: our OPT record if the query had one, and
/// TC when records were left out (with `SetTruncateBit`).
#[inline]
fn close(out: &mut Vec<u8>, q: &Query, rcode: u8, truncated: bool, s: &Settings) -> Disposition {
    finish_with_opt(out, q, 0);
    if truncated && s.set_truncate_bit {
        header::set_flags(out, header::TC);
    }
    Disposition::Answered { rcode, truncated }
}

/// Appends answer RRs within the size limit.
struct Writer<'a> {
    out: &'a mut Vec<u8>,
    limit: usize,
    /// The most records of one type (`answerLimit`; `usize::MAX`: all).
    per_type: usize,
    answers: u16,
    truncated: bool,
}

impl Writer<'_> {
    /// Add one answer RR owned by the question name; false if it did not fit.
    fn answer(&mut self, tail: &[u8]) -> bool {
        if self.truncated || self.out.len() + POINTER_LEN + tail.len() > self.limit {
            self.truncated = true;
            return false;
        }
        self.out.extend_from_slice(&QUESTION_POINTER);
        self.out.extend_from_slice(tail);
        self.answers += 1;
        true
    }

    /// An RRset of fixed-size tails, in random order (a random
    /// `per_type` of them at most).
    fn fixed_rrset(&mut self, bytes: &[u8], size: usize, scratch: &mut Scratch) {
        let n = bytes.len() / size;
        if n == 0 {
            return;
        }
        let take = scratch.shuffle(n, self.per_type);
        for k in 0..take {
            let i = scratch.order.get(k).map_or(k, |&i| i as usize);
            if let Some(tail) = bytes.get(i * size..(i + 1) * size)
                && !self.answer(tail)
            {
                return;
            }
        }
    }

    /// The SRV RRset in random order; remembers where each target landed.
    fn srv_rrset(&mut self, zone: &Zone, node: &Node, scratch: &mut Scratch) {
        let srvs = zone.srvs(node);
        let take = scratch.shuffle(srvs.len(), self.per_type);
        for k in 0..take {
            let i = scratch.order.get(k).map_or(k, |&i| i as usize);
            let Some(srv) = srvs.get(i) else { continue };
            let start = self.out.len();
            if !self.answer(zone.bytes(srv.rr)) {
                return;
            }
            scratch.written_srv.push((start + POINTER_LEN + SRV_TARGET_OFFSET, i as u32));
        }
    }

    /// Add address RRs (back-to-back tails) owned by the name at message
    /// offset `name_at` (whose wire form is `name`). Returns how many fit.
    fn glue(&mut self, tails: &[u8], name_at: usize, name: &[u8]) -> u16 {
        let mut added = 0;
        let mut pos = 0;
        while let Some(rdlen) = u16_at(tails, pos + RDLENGTH_OFFSET) {
            let end = pos + RDATA_OFFSET + usize::from(rdlen);
            let Some(tail) = tails.get(pos..end) else {
                break;
            };
            pos = end;
            let owner_len = if name_at < POINTER_LIMIT { POINTER_LEN } else { name.len() };
            if self.out.len() + owner_len + tail.len() > self.limit {
                break;
            }
            if name_at < POINTER_LIMIT {
                self.out.extend_from_slice(&(POINTER | name_at as u16).to_be_bytes());
            } else {
                self.out.extend_from_slice(name);
            }
            self.out.extend_from_slice(tail);
            added += 1;
        }
        added
    }
}
