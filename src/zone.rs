//! The compiled zone: a [`RecordSet`] turned into an immutable lookup table
//! whose RRsets are already encoded as DNS wire bytes (docs/architecture.md, zone).
//!
//! Built off the serving path once per refresh, then published with one
//! atomic pointer swap; the DNS hot path only reads it. A big record set
//! compiles on two threads: the name index (`NameIndex`) on one, the
//! record bytes (`Tails`) on the other. Every RR is stored
//! as its "tail" — type, class, TTL, RDLENGTH, RDATA — without the owner
//! name, which the answer writes as a compression pointer (to the question,
//! or to an SRV target for glue).

use std::collections::HashMap;
use std::hash::BuildHasher;

use hashbrown::HashTable;

use crate::config::Config;
use crate::memory::{self, Collapsed, Region, region_of};
use crate::proto::rr::{A_TAIL, AAAA_TAIL, RDATA_OFFSET, SRV_TARGET_OFFSET};
use crate::proto::{CLASS_IN, label_count, label_offsets, push_wire_name, rtype, wire_name};
use crate::records::{NameId, RecordSet, Value};

/// A range of the zone's byte arena.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Span {
    start: u32,
    len: u32,
}

impl Span {
    pub fn is_empty(self) -> bool {
        self.len == 0
    }
}

/// One SRV RR and the address records of its target (glue).
#[derive(Debug, Clone, Copy)]
pub struct SrvRr {
    /// The SRV RR tail.
    pub rr: Span,
    /// The target's A and AAAA RR tails, back to back.
    pub glue: Span,
    /// Identifies the target, to add its glue once per answer.
    pub target_id: u32,
}

/// Everything at one name. All empty: an empty non-terminal (or the apex).
#[derive(Debug, Clone, Copy, Default)]
pub struct Node {
    /// The owner name (lower-case wire form) in the zone's name arena.
    key: Span,
    /// A RR tails, `A_TAIL` bytes each.
    pub a: Span,
    /// AAAA RR tails, `AAAA_TAIL` bytes each.
    pub aaaa: Span,
    /// Index range into the zone's SRV table.
    pub srv_start: u32,
    pub srv_len: u32,
}

/// The compiled, immutable zone.
///
/// Layout: a `NameIndex` finds the [`Node`] of a wire name; each node
/// holds spans of `arena`, where record tails live back to back, and a
/// range of `srvs`. Identical SRV tails (the same target and port under
/// several names) are stored once.
#[derive(Debug)]
pub struct Zone {
    /// The domain in lower-case wire form, e.g. `\x05mesos\x00`.
    apex: Box<[u8]>,
    apex_labels: usize,
    names: NameIndex,
    arena: Vec<u8>,
    srvs: Vec<SrvRr>,
    /// SOA tail with TTL `ttl` (answers), and with min(ttl, SOAMinttl) for
    /// negative answers (RFC 2308).
    soa: Span,
    negative_soa: Span,
    /// NS tail (RDATA = SOAMname).
    ns: Span,
    /// A/AAAA tails of SOAMname, if it is in the zone (NS glue).
    ns_glue: Span,
    pub serial: u32,
    pub stats: ZoneStats,
}

/// Counts, for logs and metrics.
#[derive(Debug, Clone, Copy, Default)]
pub struct ZoneStats {
    pub names: usize,
    pub a: usize,
    pub aaaa: usize,
    pub srv: usize,
}

/// Record sets with at least this many names compile on two threads: the
/// name index on one, the record tails on the other (they need nothing of
/// each other until both are done). Below it a thread costs more than it
/// saves.
const NAMES_ON_A_THREAD: usize = 4096;

impl Zone {
    /// Compile `records` for serving with the settings of `config`.
    pub fn compile(records: &RecordSet, config: &Config, serial: u32) -> Zone {
        let two_threads = records.name_count() >= NAMES_ON_A_THREAD;
        Zone::compile_on(records, config, serial, two_threads)
    }

    fn compile_on(records: &RecordSet, config: &Config, serial: u32, two_threads: bool) -> Zone {
        let apex = wire_name(&config.domain).unwrap_or_else(|| vec![0]).into_boxed_slice();
        let ((names, owners), tails) = if two_threads {
            std::thread::scope(|s| {
                let index = std::thread::Builder::new()
                    .name("zone-index".into())
                    .spawn_scoped(s, || NameIndex::build(records, &apex));
                let tails = Tails::build(records, config);
                let names = match index {
                    Ok(thread) => thread.join().unwrap_or_else(|p| std::panic::resume_unwind(p)),
                    Err(e) => {
                        tracing::debug!("zone index thread: {e}; building it here");
                        NameIndex::build(records, &apex)
                    }
                };
                (names, tails)
            })
        } else {
            (NameIndex::build(records, &apex), Tails::build(records, config))
        };
        Zone::assemble(apex, names, &owners, tails, config, serial)
    }

    /// Give each name's node its record tails (`owners`: the record-set
    /// name each of the first nodes was made for), then add the zone-wide
    /// records (SOA, NS).
    fn assemble(
        apex: Box<[u8]>,
        mut names: NameIndex,
        owners: &[NameId],
        mut tails: Tails,
        config: &Config,
        serial: u32,
    ) -> Zone {
        let mut stats = ZoneStats { names: owners.len(), ..ZoneStats::default() };
        for (node, owner) in names.nodes.iter_mut().zip(owners) {
            let records = tails.of.get(owner.index()).copied().unwrap_or_default();
            *node = Node { key: node.key, ..records };
            stats.a += (node.a.len as usize) / A_TAIL;
            stats.aaaa += (node.aaaa.len as usize) / AAAA_TAIL;
            stats.srv += node.srv_len as usize;
        }
        let ttl = config.ttl;
        let mname = wire_name(&config.soa_mname).unwrap_or_else(|| vec![0]);
        let rname = wire_name(&config.soa_rname).unwrap_or_else(|| vec![0]);
        let soa = tails.soa_tail(&mname, &rname, serial, config, ttl);
        let negative_soa =
            tails.soa_tail(&mname, &rname, serial, config, ttl.min(config.soa_minttl));
        let ns = tails.tail(rtype::NS, ttl, &mname);
        let ns_glue = names.find(&mname).map_or(Span::default(), |n| tails.concat(n.a, n.aaaa));
        let Tails { mut arena, mut srvs, .. } = tails;
        arena.shrink_to_fit();
        srvs.shrink_to_fit();
        names.names.shrink_to_fit();
        names.nodes.shrink_to_fit();
        Zone {
            apex_labels: label_count(&apex),
            apex,
            names,
            arena,
            srvs,
            soa,
            negative_soa,
            ns,
            ns_glue,
            serial,
            stats,
        }
    }

    /// Move the zone's memory onto 2 MiB pages, best effort
    /// ([`memory::collapse_to_huge_pages`]: answers then take fewer TLB
    /// misses). The zone reads the same before, during and after.
    pub fn collapse_to_huge_pages(&self) -> Collapsed {
        memory::collapse_to_huge_pages(self.memory())
    }

    /// Where the zone's data lies: its vectors and its name table.
    fn memory(&self) -> impl Iterator<Item = Region> {
        let NameIndex { index, nodes, names, .. } = &self.names;
        // The table's slots and control bytes are one allocation, which
        // starts at or just before its lowest slot.
        let table = index.iter().map(|slot| std::ptr::from_ref(slot) as usize).min();
        let table = table.map(|start| Region { start, len: index.allocation_size() });
        let vectors =
            [region_of(&self.arena), region_of(&self.srvs), region_of(names), region_of(nodes)];
        vectors.into_iter().chain(table)
    }

    /// The domain in lower-case wire form.
    pub fn apex(&self) -> &[u8] {
        &self.apex
    }

    /// How many labels the domain has.
    pub fn apex_labels(&self) -> usize {
        self.apex_labels
    }

    /// The node at a lower-case wire name, if the name exists (records or
    /// an empty non-terminal).
    pub fn node(&self, wire: &[u8]) -> Option<&Node> {
        self.names.find(wire)
    }

    /// The bytes of a span.
    pub fn bytes(&self, span: Span) -> &[u8] {
        span_bytes(&self.arena, span)
    }

    /// The SRV RRs of a node.
    pub fn srvs(&self, node: &Node) -> &[SrvRr] {
        let start = node.srv_start as usize;
        self.srvs.get(start..start + node.srv_len as usize).unwrap_or_default()
    }

    pub fn soa(&self) -> &[u8] {
        self.bytes(self.soa)
    }

    pub fn negative_soa(&self) -> &[u8] {
        self.bytes(self.negative_soa)
    }

    pub fn ns(&self) -> &[u8] {
        self.bytes(self.ns)
    }

    pub fn ns_glue(&self) -> &[u8] {
        self.bytes(self.ns_glue)
    }
}

/// The zone's names: one [`Node`] per owner name, per empty non-terminal
/// and for the apex, found by a hash table of node positions keyed by the
/// wire name. The wire names live back to back in `names`; an empty
/// non-terminal's key is a suffix of a longer name's bytes, so it costs no
/// bytes.
#[derive(Debug)]
struct NameIndex {
    index: HashTable<u32>,
    hasher: foldhash::fast::RandomState,
    nodes: Vec<Node>,
    names: Vec<u8>,
}

impl NameIndex {
    /// A node, with only its key, for every name holding records, then
    /// for every ancestor of one below the apex, and for the apex; and the
    /// record-set name each of the first nodes was made for. Names that
    /// differ only in case are one name: the first one's records are
    /// served.
    fn build(records: &RecordSet, apex: &[u8]) -> (NameIndex, Vec<NameId>) {
        let mut ix = NameIndex {
            index: HashTable::with_capacity(records.len() * 2),
            hasher: foldhash::fast::RandomState::default(),
            nodes: Vec::with_capacity(records.len() * 2),
            names: Vec::with_capacity(records.name_bytes() + records.name_count() + apex.len()),
        };
        let mut owners = Vec::with_capacity(records.len());
        for id in records.names() {
            let start = ix.names.len();
            // Names that cannot be encoded were refused by the record set;
            // skipping one here is defensive.
            if !push_wire_name(&mut ix.names, records.name(id)) {
                continue;
            }
            if ix.insert(span(start, ix.names.len())) {
                owners.push(id);
            } else {
                ix.names.truncate(start);
            }
        }

        // Empty non-terminals: every ancestor of a name, below the apex. A
        // name's ancestors are walked until one already exists: that one's
        // own ancestors were added with it, or will be when it is walked.
        let mut offsets: Vec<usize> = Vec::new();
        for n in 0..owners.len() {
            let Some(key) = ix.nodes.get(n).map(|node| node.key) else {
                continue;
            };
            let wire = span_bytes(&ix.names, key);
            if !wire.ends_with(apex) {
                continue;
            }
            offsets.clear();
            offsets.extend(label_offsets(wire).skip(1));
            for &off in &offsets {
                if key.len as usize - off <= apex.len() {
                    break;
                }
                if !ix.insert(Span { start: key.start + off as u32, len: key.len - off as u32 }) {
                    break;
                }
            }
        }
        let apex_key = ix.names.len();
        ix.names.extend_from_slice(apex);
        ix.insert(span(apex_key, ix.names.len()));
        (ix, owners)
    }

    /// Add a node with only a key (a span of `names`) unless the name is
    /// already there; whether it was added.
    fn insert(&mut self, key: Span) -> bool {
        let NameIndex { index, hasher, nodes, names, .. } = self;
        let bytes = span_bytes(names, key);
        let at = nodes.len() as u32;
        let entry = index.entry(
            hasher.hash_one(bytes),
            |&i| node_key(nodes, names, i) == bytes,
            |&i| hasher.hash_one(node_key(nodes, names, i)),
        );
        match entry {
            hashbrown::hash_table::Entry::Occupied(_) => false,
            hashbrown::hash_table::Entry::Vacant(v) => {
                v.insert(at);
                nodes.push(Node { key, ..Node::default() });
                true
            }
        }
    }

    fn find(&self, wire: &[u8]) -> Option<&Node> {
        let hash = self.hasher.hash_one(wire);
        let at = self.index.find(hash, |&i| node_key(&self.nodes, &self.names, i) == wire)?;
        self.nodes.get(*at as usize)
    }
}

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

fn span(start: usize, end: usize) -> Span {
    Span { start: start as u32, len: end.saturating_sub(start) as u32 }
}

/// The owner name of node `i` (empty if there is none: never a real key,
/// which holds at least the root label).
fn node_key<'n>(nodes: &[Node], names: &'n [u8], i: u32) -> &'n [u8] {
    nodes.get(i as usize).map_or(&[][..], |n| span_bytes(names, n.key))
}

fn span_bytes(bytes: &[u8], span: Span) -> &[u8] {
    let start = span.start as usize;
    bytes.get(start..start + span.len as usize).unwrap_or_default()
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
const LISTED_PORTS: u32 = 8;

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
struct Tails {
    arena: Vec<u8>,
    srvs: Vec<SrvRr>,
    of: Vec<Node>,
}

impl Tails {
    /// The tails of every name's records: address records first, so SRV
    /// glue can refer to them. A target's glue and each (target, port)
    /// SRV tail are worked out once.
    fn build(records: &RecordSet, config: &Config) -> Tails {
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
            }
        }

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

    fn tail(&mut self, rtype: u16, ttl: u32, rdata: &[u8]) -> Span {
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

    fn soa_tail(&mut self, mname: &[u8], rname: &[u8], serial: u32, c: &Config, ttl: u32) -> Span {
        let mut rdata = Vec::with_capacity(mname.len() + rname.len() + 20);
        rdata.extend_from_slice(mname);
        rdata.extend_from_slice(rname);
        for v in [serial, c.soa_refresh, c.soa_retry, c.soa_expire, c.soa_minttl] {
            rdata.extend_from_slice(&v.to_be_bytes());
        }
        self.tail(rtype::SOA, ttl, &rdata)
    }

    /// Copy two spans into one new contiguous span.
    fn concat(&mut self, a: Span, b: Span) -> Span {
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::IpAddr;

    /// Every name's answer data, as bytes, to compare two compiles: its
    /// wire name, A tails, AAAA tails, then each SRV tail and its glue.
    fn answers(z: &Zone, rs: &RecordSet) -> Vec<Vec<Vec<u8>>> {
        rs.all_names()
            .filter_map(|id| {
                let wire = wire_name(rs.name(id))?;
                let node = z.node(&wire)?;
                let mut data =
                    vec![wire.clone(), z.bytes(node.a).to_vec(), z.bytes(node.aaaa).to_vec()];
                for s in z.srvs(node) {
                    data.extend([z.bytes(s.rr).to_vec(), z.bytes(s.glue).to_vec()]);
                }
                Some(data)
            })
            .collect()
    }

    /// 3,000 tasks of 97 apps, with SRV records and a few AAAA.
    fn many_tasks() -> RecordSet {
        let mut rs = RecordSet::default();
        for i in 0..3000u32 {
            let [_, _, hi, lo] = i.to_be_bytes();
            let task = format!("task{i}.app{}.marathon.mesos.", i % 97);
            let target = format!("task{i}-x.marathon.agent{}.mesos.", i % 13);
            rs.insert_ip(&task, IpAddr::from([10, 1, hi, lo]));
            rs.insert_ip(&target, IpAddr::from([10, 2, hi, lo]));
            if i % 3 == 0 {
                rs.insert_ip(&target, "fd00::1".parse().unwrap());
            }
            let app = format!("app{}.marathon.mesos.", i % 97);
            rs.insert_ip(&app, IpAddr::from([10, 1, hi, lo]));
            for port in [31000 + (i % 5) as u16, 80] {
                rs.insert_srv(&format!("_app{}._tcp.marathon.mesos.", i % 97), &target, port);
                rs.insert_srv(&format!("_task{i}._tcp.marathon.mesos."), &target, port);
            }
        }
        rs.seal();
        rs
    }

    #[test]
    fn two_threads_compile_the_zone_one_thread_does() {
        let rs = many_tasks();
        assert!(rs.name_count() >= NAMES_ON_A_THREAD);
        let config = Config::default();
        let one = Zone::compile_on(&rs, &config, 7, false);
        let two = Zone::compile_on(&rs, &config, 7, true);
        let expected = answers(&one, &rs);
        assert_eq!(expected.len(), rs.len());
        assert_eq!(answers(&two, &rs), expected);
        assert_eq!(format!("{:?}", one.stats), format!("{:?}", two.stats));
        assert_eq!((one.soa(), one.ns(), one.ns_glue()), (two.soa(), two.ns(), two.ns_glue()));
        // An SRV tail names its target in wire form, with its glue.
        let node = two.node(b"\x07_task12\x04_tcp\x08marathon\x05mesos\x00").unwrap();
        let srv = two.srvs(node)[0];
        let target = wire_name("task12-x.marathon.agent12.mesos").unwrap();
        assert_eq!(&two.bytes(srv.rr)[SRV_TARGET_OFFSET..], &target[..]);
        assert_eq!(two.bytes(srv.glue).len(), A_TAIL + AAAA_TAIL);
        assert!(two.node(b"\x08marathon\x07agent12\x05mesos\x00").is_some_and(|n| n.a.is_empty()));
    }

    #[test]
    fn the_zones_regions_hold_all_its_data_and_it_reads_the_same_once_collapsed() {
        let rs = many_tasks();
        let zone = Zone::compile(&rs, &Config::default(), 7);
        let regions: Vec<Region> = zone.memory().collect();
        let within = |at: usize| regions.iter().any(|r| (r.start..r.start + r.len).contains(&at));
        let slots = zone.names.index.iter().map(|slot| std::ptr::from_ref(slot) as usize);
        let nodes = zone.names.nodes.iter().map(|node| std::ptr::from_ref(node) as usize);
        let bytes = [&zone.arena, &zone.names.names].map(|v| v.as_ptr() as usize + v.len() - 1);
        let srvs = zone.srvs.iter().map(|srv| std::ptr::from_ref(srv) as usize);
        assert!(slots.chain(nodes).chain(bytes).chain(srvs).all(within));
        let before = answers(&zone, &rs);
        zone.collapse_to_huge_pages();
        assert_eq!(answers(&zone, &rs), before);
    }

    #[test]
    fn a_targets_srv_tails_are_made_once_per_port_however_many_ports() {
        let mut rs = RecordSet::default();
        rs.insert_ip("t.mesos.", "10.0.0.1".parse().unwrap());
        // More ports than a target keeps in its list, in two orders.
        let ports: Vec<u16> = (0..3 * LISTED_PORTS as u16).map(|i| 31000 + i).collect();
        for &port in &ports {
            rs.insert_srv("_t._tcp.mesos.", "t.mesos.", port);
        }
        for &port in ports.iter().rev() {
            rs.insert_srv("_t._udp.mesos.", "t.mesos.", port);
        }
        rs.seal();
        let z = Zone::compile(&rs, &Config::default(), 1);
        let srvs = |owner: &str| z.srvs(z.node(&wire_name(owner).unwrap()).unwrap()).to_vec();
        let (tcp, udp) = (srvs("_t._tcp.mesos."), srvs("_t._udp.mesos."));
        assert_eq!(tcp.len(), ports.len());
        let port_of = |s: &SrvRr| {
            let rdata = z.bytes(s.rr).get(RDATA_OFFSET..).unwrap();
            u16::from_be_bytes([rdata[4], rdata[5]])
        };
        assert_eq!(tcp.iter().map(port_of).collect::<Vec<_>>(), ports);
        for (t, u) in tcp.iter().zip(udp.iter().rev()) {
            // The same bytes, not a copy of them.
            assert_eq!((t.rr.start, t.rr.len), (u.rr.start, u.rr.len));
            assert_eq!(&z.bytes(t.rr)[SRV_TARGET_OFFSET..], &wire_name("t.mesos.").unwrap()[..]);
            assert_eq!(
                z.bytes(t.glue),
                z.bytes(z.node(&wire_name("t.mesos.").unwrap()).unwrap().a)
            );
        }
    }

    #[test]
    fn empty_non_terminals_exist() {
        let mut rs = RecordSet::default();
        rs.insert_ip("web.marathon.slave.mesos.", "10.0.0.1".parse().unwrap());
        let config = Config::default();
        let z = Zone::compile(&rs, &config, 1);
        assert!(
            z.node(b"\x03web\x08marathon\x05slave\x05mesos\x00").is_some_and(|n| !n.a.is_empty())
        );
        assert!(z.node(b"\x08marathon\x05slave\x05mesos\x00").is_some_and(|n| n.a.is_empty()));
        assert!(z.node(b"\x05slave\x05mesos\x00").is_some());
        assert!(z.node(b"\x05mesos\x00").is_some());
        assert!(z.node(b"\x05other\x05mesos\x00").is_none());
    }
}
