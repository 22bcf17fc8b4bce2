//! The zone's record bytes: every RR stored as its tail (type, class, TTL,
//! RDLENGTH, RDATA, no owner name) back to back in one arena, SRV tails made
//! once per (target, port) and shared by the names that hold them, and each
//! SRV target's glue.

use std::collections::HashMap;

use super::{Node, Span, SrvRr, span};
use crate::config::Config;
use crate::proto::rr::{A_TAIL, AAAA_TAIL, RDATA_OFFSET, SRV_TARGET_OFFSET};
use crate::proto::{CLASS_IN, push_wire_name, rtype};
use crate::records::{NameId, RecordSet, Value};

/// The fixed part of an RR tail: type, class IN, TTL and RDLENGTH.
fn rr_header(rtype: u16, ttl: u32, rdlen: usize) -> [u8; RDATA_OFFSET] {
    let mut header = [0; RDATA_OFFSET];
    let fields = rtype.to_be_bytes().into_iter().chain(CLASS_IN.to_be_bytes());
    let fields = fields.chain(ttl.to_be_bytes()).chain((rdlen as u16).to_be_bytes());
    for (byte, field) in header.iter_mut().zip(fields) {
        *byte = field;
    }
    header
}

/// An SRV target, once its first SRV tail is made: its wire name (inside
/// that tail), its glue, and its SRV tails (one per port, made once).
#[derive(Debug, Clone, Copy)]
struct Target {
    wire: Span,
    glue: Span,
    /// Its first `LISTED_PORTS` tails: the last one made, head of a list
    /// in [`PortTails`]. Any more are in its table by (target, port).
    tails: u32,
    /// How many tails it has.
    ports: u32,
}

/// The SRV tails of a target kept in a list; a task rarely has more ports.
pub(super) const LISTED_PORTS: u32 = 8;

/// End of a target's list of SRV tails.
const NO_TAIL: u32 = u32::MAX;

/// An SRV tail of one target, for one port; `next` is the target's tail
/// listed before it.
#[derive(Debug, Clone, Copy)]
struct PortTail {
    port: u16,
    rr: Span,
    next: u32,
}

/// Every target's SRV tails, by port. A target has a few ports, so a walk
/// along its short list is quicker than a lookup in a table of every
/// (target, port); only past `LISTED_PORTS` does it use one.
#[derive(Default)]
struct PortTails {
    listed: Vec<PortTail>,
    more: HashMap<(NameId, u16), Span, foldhash::fast::RandomState>,
}

impl PortTails {
    /// The tail of target `id` (which is `target`) for `port`, if made.
    fn find(&self, id: NameId, target: &Target, port: u16) -> Option<Span> {
        let mut at = target.tails;
        while let Some(tail) = self.listed.get(at as usize) {
            if tail.port == port {
                return Some(tail.rr);
            }
            at = tail.next;
        }
        (target.ports > LISTED_PORTS).then(|| self.more.get(&(id, port)).copied())?
    }

    /// Remember `rr` as the tail of target `id` (which is `target`) for
    /// `port`.
    fn add(&mut self, id: NameId, target: &mut Target, port: u16, rr: Span) {
        if target.ports >= LISTED_PORTS {
            self.more.insert((id, port), rr);
        } else {
            let at = self.listed.len() as u32;
            self.listed.push(PortTail { port, rr, next: target.tails });
            target.tails = at;
        }
        target.ports += 1;
    }
}

/// An SRV target's name: the dotted text, or wire bytes already in the
/// arena.
enum TargetName<'a> {
    Text(&'a str),
    Wire(Span),
}

/// The zone's record bytes, built while compiling: every RR tail in one
/// arena, the SRV table, and per record-set name (by [`NameId`]) its spans
/// (a [`Node`] without a key).
#[derive(Default)]
pub(super) struct Tails {
    pub(super) arena: Vec<u8>,
    pub(super) srvs: Vec<SrvRr>,
    pub(super) of: Vec<Node>,
}

impl Tails {
    /// The tails of every name's records: address records first, so SRV
    /// glue can refer to them. A target's glue and each (target, port)
    /// SRV tail are worked out once.
    pub(super) fn build(records: &RecordSet, config: &Config) -> Tails {
        let ttl = config.ttl;
        let weight = config.srv_record_default_weight;
        // The arena sized up front: growing it by doubling would write
        // (and, fresh from the system, fault in) it about twice over. The
        // size is an estimate: address tails, as many again for SRV glue,
        // and SRV tails at the shortest.
        let addresses = records.record_count().saturating_sub(records.srv_count());
        let mut t = Tails {
            arena: Vec::with_capacity(
                addresses * A_TAIL * 2 + records.srv_count() * SRV_TARGET_OFFSET,
            ),
            srvs: Vec::with_capacity(records.srv_count()),
            of: vec![Node::default(); records.name_count()],
        };
        // Where each name's records go: its A tails then its AAAA tails in
        // the arena, name after name, and its SRV records in `pending` (for
        // the second part, once every name's addresses, the glue, are
        // known). Counted in one pass over the records in the order they
        // were stored, then placed in a second: both read the records front
        // to back, where following each name's chain would jump all over
        // them, one cache miss waiting for the other.
        #[derive(Clone, Copy, Default)]
        struct Place {
            a: u32,
            aaaa: u32,
            srv: u32,
        }
        let mut place = vec![Place::default(); records.name_count()];
        for (name, value) in records.stored() {
            if let Some(p) = place.get_mut(name.index()) {
                match value {
                    Value::A(_) => p.a += 1,
                    Value::Aaaa(_) => p.aaaa += 1,
                    Value::Srv { .. } => p.srv += 1,
                    Value::Ptr { .. } => {}
                }
            }
        }
        let (mut arena_len, mut srv_len) = (0u32, 0u32);
        for (p, of) in place.iter_mut().zip(t.of.iter_mut()) {
            let (a, aaaa) = (p.a * A_TAIL as u32, p.aaaa * AAAA_TAIL as u32);
            if a > 0 {
                of.a = Span { start: arena_len, len: a };
            }
            if aaaa > 0 {
                of.aaaa = Span { start: arena_len + a, len: aaaa };
            }
            (p.a, p.aaaa) = (arena_len, arena_len + a);
            arena_len += a + aaaa;
            (p.srv, srv_len) = (srv_len, srv_len + p.srv);
        }
        t.arena.resize(arena_len as usize, 0);
        let mut pending: Vec<Option<(NameId, u16)>> = vec![None; srv_len as usize];
        for (name, value) in records.stored() {
            let Some(p) = place.get_mut(name.index()) else {
                continue;
            };
            match value {
                Value::A(v4) => {
                    t.put_tail(p.a, rtype::A, ttl, &v4.octets());
                    p.a += A_TAIL as u32;
                }
                Value::Aaaa(v6) => {
                    t.put_tail(p.aaaa, rtype::AAAA, ttl, &v6.octets());
                    p.aaaa += AAAA_TAIL as u32;
                }
                Value::Srv { target, port } => {
                    if let Some(slot) = pending.get_mut(p.srv as usize) {
                        *slot = Some((target, port));
                    }
                    p.srv += 1;
                }
                Value::Ptr { .. } => {}
            }
        }
        t.ptr_tails(records, ttl);

        // Per SRV target: its wire name (inside its first SRV tail) and its
        // glue; and each (target, port) tail, made once. Each name's SRV
        // records are `pending[previous name's end..its end]`: placing
        // them moved its cursor to its end.
        let mut targets: Vec<Option<Target>> = vec![None; records.name_count()];
        let mut port_tails = PortTails::default();
        let mut first = 0;
        for (owner, p) in records.all_names().zip(&place) {
            let group = pending.get(first as usize..p.srv as usize).unwrap_or_default();
            first = p.srv;
            if group.is_empty() {
                continue;
            }
            let srv_start = t.srvs.len() as u32;
            for &(target, port) in group.iter().flatten() {
                let Some(slot) = targets.get_mut(target.index()) else {
                    continue;
                };
                let made = slot.as_ref().and_then(|k| port_tails.find(target, k, port));
                let rr = match made {
                    Some(rr) => rr,
                    None => {
                        let name =
                            slot.as_ref().map_or(TargetName::Text(records.name(target)), |k| {
                                TargetName::Wire(k.wire)
                            });
                        let Some(rr) = t.srv_tail(name, port, weight, ttl) else {
                            continue;
                        };
                        let k = match slot {
                            Some(k) => k,
                            None => slot.insert(t.target(target, rr)),
                        };
                        port_tails.add(target, k, port, rr);
                        rr
                    }
                };
                let glue = slot.as_ref().map_or(Span::default(), |k| k.glue);
                t.srvs.push(SrvRr { rr, glue, target_id: target.index() as u32 });
            }
            if let Some(of) = t.of.get_mut(owner.index()) {
                of.srv_start = srv_start;
                of.srv_len = t.srvs.len() as u32 - srv_start;
            }
        }
        t
    }

    /// The PTR tails (`ptrOn`), each name's back to back after the rest.
    fn ptr_tails(&mut self, records: &RecordSet, ttl: u32) {
        let mut ptrs: Vec<(NameId, NameId)> = records
            .stored()
            .filter_map(|(name, value)| match value {
                Value::Ptr { target } => Some((name, target)),
                _ => None,
            })
            .collect();
        ptrs.sort_unstable();
        let mut target = Vec::new();
        for group in ptrs.chunk_by(|a, b| a.0 == b.0) {
            let Some(&(owner, _)) = group.first() else { continue };
            let start = self.arena.len();
            for &(_, to) in group {
                target.clear();
                if push_wire_name(&mut target, records.name(to)) {
                    self.tail(rtype::PTR, ttl, &target);
                }
            }
            let span = self.span_from(start);
            if let Some(of) = self.of.get_mut(owner.index()) {
                of.ptr = span;
            }
        }
    }

    /// A target whose first SRV tail is `rr`: its wire name is the end of
    /// that tail, its glue its address tails; no tails listed yet.
    fn target(&mut self, target: NameId, rr: Span) -> Target {
        let of = self.of.get(target.index()).copied().unwrap_or_default();
        let wire = Span {
            start: rr.start + SRV_TARGET_OFFSET as u32,
            len: rr.len.saturating_sub(SRV_TARGET_OFFSET as u32),
        };
        Target { wire, glue: self.concat(of.a, of.aaaa), tails: NO_TAIL, ports: 0 }
    }

    fn span_from(&self, start: usize) -> Span {
        span(start, self.arena.len())
    }

    fn header(&mut self, rtype: u16, ttl: u32, rdlen: usize) {
        self.arena.extend_from_slice(&rr_header(rtype, ttl, rdlen));
    }

    /// Write an RR tail at `at`, in arena bytes already there.
    fn put_tail(&mut self, at: u32, rtype: u16, ttl: u32, rdata: &[u8]) {
        let at = at as usize;
        let Some(tail) = self.arena.get_mut(at..at + RDATA_OFFSET + rdata.len()) else {
            return;
        };
        let (header, data) = tail.split_at_mut(RDATA_OFFSET);
        header.copy_from_slice(&rr_header(rtype, ttl, rdata.len()));
        data.copy_from_slice(rdata);
    }

    pub(super) fn tail(&mut self, rtype: u16, ttl: u32, rdata: &[u8]) -> Span {
        let start = self.arena.len();
        self.header(rtype, ttl, rdata.len());
        self.arena.extend_from_slice(rdata);
        self.span_from(start)
    }

    /// An SRV RR tail; `None` if the target cannot be a DNS name.
    fn srv_tail(&mut self, target: TargetName, port: u16, weight: u16, ttl: u32) -> Option<Span> {
        let start = self.arena.len();
        self.header(rtype::SRV, ttl, 0);
        self.arena.extend_from_slice(&0u16.to_be_bytes());
        self.arena.extend_from_slice(&weight.to_be_bytes());
        self.arena.extend_from_slice(&port.to_be_bytes());
        match target {
            TargetName::Text(name) => {
                if !push_wire_name(&mut self.arena, name) {
                    self.arena.truncate(start);
                    return None;
                }
            }
            TargetName::Wire(wire) => {
                let from = wire.start as usize;
                self.arena.extend_from_within(from..from + wire.len as usize);
            }
        }
        // RDLENGTH, now that the target's length is known.
        let rdlen = (self.arena.len() - start - RDATA_OFFSET) as u16;
        if let Some(at) = self.arena.get_mut(start + RDATA_OFFSET - 2..start + RDATA_OFFSET) {
            at.copy_from_slice(&rdlen.to_be_bytes());
        }
        Some(self.span_from(start))
    }

    pub(super) fn soa_tail(
        &mut self,
        mname: &[u8],
        rname: &[u8],
        serial: u32,
        c: &Config,
        ttl: u32,
    ) -> Span {
        let mut rdata = Vec::with_capacity(mname.len() + rname.len() + 20);
        rdata.extend_from_slice(mname);
        rdata.extend_from_slice(rname);
        for v in [serial, c.soa_refresh, c.soa_retry, c.soa_expire, c.soa_minttl] {
            rdata.extend_from_slice(&v.to_be_bytes());
        }
        self.tail(rtype::SOA, ttl, &rdata)
    }

    /// Copy two spans into one new contiguous span.
    pub(super) fn concat(&mut self, a: Span, b: Span) -> Span {
        if b.is_empty() {
            return a;
        }
        if a.is_empty() {
            return b;
        }
        let start = self.arena.len();
        for s in [a, b] {
            let from = s.start as usize;
            self.arena.extend_from_within(from..from + s.len as usize);
        }
        self.span_from(start)
    }
}
