//! The compiled zone: a [`RecordSet`] turned into an immutable lookup table
//! whose RRsets are already encoded as DNS wire bytes (DESIGN.md "compile").
//!
//! Built off the serving path once per refresh, then published with one
//! atomic pointer swap; the DNS hot path only reads it. Every RR is stored
//! as its "tail" — type, class, TTL, RDLENGTH, RDATA — without the owner
//! name, which the answer writes as a compression pointer (to the question,
//! or to an SRV target for glue).

use std::collections::HashMap;
use std::hash::BuildHasher;

use hashbrown::HashTable;

use crate::config::Config;
use crate::records::{NameId, RecordSet, Value};

/// Record types the zone serves.
pub const TYPE_A: u16 = 1;
pub const TYPE_NS: u16 = 2;
pub const TYPE_SOA: u16 = 6;
pub const TYPE_AAAA: u16 = 28;
pub const TYPE_SRV: u16 = 33;
pub const TYPE_OPT: u16 = 41;
pub const TYPE_ANY: u16 = 255;
pub const CLASS_IN: u16 = 1;

/// Length of an A RR tail (type, class, TTL, RDLENGTH, 4 bytes).
pub const A_TAIL: usize = 14;
/// Length of an AAAA RR tail (type, class, TTL, RDLENGTH, 16 bytes).
pub const AAAA_TAIL: usize = 26;
/// Offset of the target name inside an SRV RR tail.
pub const SRV_TARGET_OFFSET: usize = 16;

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
/// Layout: `nodes` holds one [`Node`] per name (and per empty non-terminal);
/// `index` is a hash table of node positions keyed by the owner's wire name,
/// whose bytes live in `names` (an empty non-terminal's key is a suffix of a
/// longer name's bytes, so it costs no bytes). Record tails live back to
/// back in `arena`; identical SRV tails (the same target and port under
/// several names) are stored once.
#[derive(Debug)]
pub struct Zone {
    /// The domain in lower-case wire form, e.g. `\x05mesos\x00`.
    apex: Box<[u8]>,
    apex_labels: usize,
    index: HashTable<u32>,
    hasher: foldhash::fast::RandomState,
    nodes: Vec<Node>,
    names: Vec<u8>,
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

/// Append the lower-case wire form of a dotted name (with or without the
/// final dot) to `out`. `false` (and `out` unchanged) if it cannot be a DNS
/// name.
fn push_wire_name(out: &mut Vec<u8>, name: &str) -> bool {
    let start = out.len();
    let name = name.strip_suffix('.').unwrap_or(name);
    out.reserve(name.len() + 2);
    if !name.is_empty() {
        for label in name.as_bytes().split(|&b| b == b'.') {
            let Some(len) = u8::try_from(label.len()).ok().filter(|l| (1..=63).contains(l)) else {
                out.truncate(start);
                return false;
            };
            out.push(len);
            out.extend(label.iter().map(u8::to_ascii_lowercase));
        }
    }
    out.push(0);
    if out.len() - start > 255 {
        out.truncate(start);
        return false;
    }
    true
}

/// Encode a dotted name (with or without the final dot) as lower-case wire
/// bytes. `None` if it cannot be a DNS name.
pub fn wire_name(name: &str) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(name.len() + 2);
    push_wire_name(&mut out, name).then_some(out)
}

/// Iterate over the label boundaries of a wire name: yields the offset of
/// each label's length byte.
fn label_offsets(wire: &[u8]) -> impl Iterator<Item = usize> + '_ {
    let mut pos = 0usize;
    std::iter::from_fn(move || {
        let len = usize::from(*wire.get(pos)?);
        if len == 0 {
            return None;
        }
        let here = pos;
        pos += 1 + len;
        Some(here)
    })
}

/// How many labels a wire name has.
pub fn label_count(wire: &[u8]) -> usize {
    label_offsets(wire).count()
}

/// "No node" in the per-name tables of a compile.
const NO_NODE: u32 = u32::MAX;

impl Zone {
    /// Compile `records` for serving with the settings of `config`.
    pub fn compile(records: &RecordSet, config: &Config, serial: u32) -> Zone {
        let mut b = Builder::default();
        let apex = wire_name(&config.domain).unwrap_or_else(|| vec![0]).into_boxed_slice();
        let ttl = config.ttl;
        let mut z = Zone {
            apex_labels: label_count(&apex),
            apex,
            index: HashTable::with_capacity(records.len() * 2),
            hasher: foldhash::fast::RandomState::default(),
            nodes: Vec::with_capacity(records.len() * 2),
            names: Vec::new(),
            arena: Vec::new(),
            srvs: Vec::new(),
            soa: Span::default(),
            negative_soa: Span::default(),
            ns: Span::default(),
            ns_glue: Span::default(),
            serial,
            stats: ZoneStats::default(),
        };

        // The arenas sized up front: growing them by doubling would write
        // (and, fresh from the system, fault in) each one about twice
        // over. A name's wire form is one byte longer than its text; the
        // byte arena's size is an estimate (address tails, as many again
        // for SRV glue, and SRV tails at the shortest).
        let addresses = records.record_count().saturating_sub(records.srv_count());
        z.names.reserve(records.name_bytes() + records.name_count() + z.apex.len());
        b.srvs.reserve_exact(records.srv_count());
        b.arena.reserve(addresses * A_TAIL * 2 + records.srv_count() * SRV_TARGET_OFFSET);

        // Every interned name in wire form (SRV targets too); names that
        // can't be encoded were already refused by the record set, so an
        // empty span here is defensive.
        let mut wire_of: Vec<Span> = Vec::with_capacity(records.name_count());
        for id in records.all_names() {
            let name = records.name(id);
            let start = z.names.len();
            push_wire_name(&mut z.names, name);
            wire_of.push(span(start, z.names.len()));
        }
        let wire = |id: NameId| wire_of.get(id.index()).copied().unwrap_or_default();

        // Address records first, so SRV glue can refer to them.
        let mut node_of = vec![NO_NODE; records.name_count()];
        for id in records.names() {
            let key = wire(id);
            if key.is_empty() {
                continue;
            }
            let a = b.addr_tails(records.values(id), ttl, TYPE_A);
            let aaaa = b.addr_tails(records.values(id), ttl, TYPE_AAAA);
            z.stats.a += (a.len as usize) / A_TAIL;
            z.stats.aaaa += (aaaa.len as usize) / AAAA_TAIL;
            let (at, _) = z.insert(Node { key, a, aaaa, ..Node::default() });
            if let Some(slot) = node_of.get_mut(id.index()) {
                *slot = at;
            }
        }
        // SRV RRsets. A target's glue and each (target, port) tail are
        // worked out once.
        let mut glue_of: Vec<Option<Span>> = vec![None; records.name_count()];
        let mut tails: HashMap<(NameId, u16), Span, foldhash::fast::RandomState> =
            HashMap::default();
        let weight = config.srv_record_default_weight;
        for id in records.names() {
            let srv_start = b.srvs.len() as u32;
            for value in records.values(id) {
                let Value::Srv { target, port } = value else {
                    continue;
                };
                let target_wire = wire(target);
                if target_wire.is_empty() {
                    continue;
                }
                let rr = *tails
                    .entry((target, port))
                    .or_insert_with(|| b.srv_tail(z.names_bytes(target_wire), port, weight, ttl));
                let glue = match glue_of.get(target.index()).copied().flatten() {
                    Some(glue) => glue,
                    None => {
                        let node =
                            node_of.get(target.index()).and_then(|&n| z.nodes.get(n as usize));
                        let glue = node.map_or(Span::default(), |n| b.concat(n.a, n.aaaa));
                        if let Some(slot) = glue_of.get_mut(target.index()) {
                            *slot = Some(glue);
                        }
                        glue
                    }
                };
                b.srvs.push(SrvRr { rr, glue, target_id: target.index() as u32 });
            }
            let srv_len = b.srvs.len() as u32 - srv_start;
            z.stats.srv += srv_len as usize;
            let node = node_of.get(id.index()).and_then(|&n| z.nodes.get_mut(n as usize));
            if let Some(node) = node {
                node.srv_start = srv_start;
                node.srv_len = srv_len;
            }
        }
        z.stats.names = z.nodes.len();

        // Empty non-terminals: every ancestor of a name, below the apex. A
        // name's ancestors are walked until one already exists: that one's
        // own ancestors were added with it, or will be when it is walked.
        let apex_len = z.apex.len();
        let mut offsets: Vec<usize> = Vec::new();
        for n in 0..z.stats.names {
            let Some(key) = z.nodes.get(n).map(|node| node.key) else {
                continue;
            };
            if !z.names_bytes(key).ends_with(&z.apex) {
                continue;
            }
            offsets.clear();
            offsets.extend(label_offsets(z.names_bytes(key)).skip(1));
            for &off in &offsets {
                if key.len as usize - off <= apex_len {
                    break;
                }
                let ent = Span { start: key.start + off as u32, len: key.len - off as u32 };
                if !z.insert(Node { key: ent, ..Node::default() }).1 {
                    break;
                }
            }
        }
        let apex_key = z.names.len();
        z.names.extend_from_slice(&z.apex.clone());
        z.insert(Node { key: span(apex_key, z.names.len()), ..Node::default() });

        let mname = wire_name(&config.soa_mname).unwrap_or_else(|| vec![0]);
        let rname = wire_name(&config.soa_rname).unwrap_or_else(|| vec![0]);
        z.soa = b.soa_tail(&mname, &rname, serial, config, ttl);
        z.negative_soa = b.soa_tail(&mname, &rname, serial, config, ttl.min(config.soa_minttl));
        z.ns = b.tail(TYPE_NS, ttl, &mname);
        z.ns_glue = z.node(&mname).map_or(Span::default(), |n| b.concat(n.a, n.aaaa));
        z.arena = b.arena;
        z.srvs = b.srvs;
        z.arena.shrink_to_fit();
        z.names.shrink_to_fit();
        z.nodes.shrink_to_fit();
        z.srvs.shrink_to_fit();
        z
    }

    /// Add a node unless its name is already there: its position, and
    /// whether it was added.
    fn insert(&mut self, node: Node) -> (u32, bool) {
        let Zone { index, hasher, nodes, names, .. } = self;
        let key = span_bytes(names, node.key);
        let at = nodes.len() as u32;
        let entry = index.entry(
            hasher.hash_one(key),
            |&i| node_key(nodes, names, i) == key,
            |&i| hasher.hash_one(node_key(nodes, names, i)),
        );
        match entry {
            hashbrown::hash_table::Entry::Occupied(e) => (*e.get(), false),
            hashbrown::hash_table::Entry::Vacant(v) => {
                v.insert(at);
                nodes.push(node);
                (at, true)
            }
        }
    }

    fn names_bytes(&self, s: Span) -> &[u8] {
        span_bytes(&self.names, s)
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
        let hash = self.hasher.hash_one(wire);
        let at = self.index.find(hash, |&i| node_key(&self.nodes, &self.names, i) == wire)?;
        self.nodes.get(*at as usize)
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

/// Accumulates the arena while compiling.
#[derive(Default)]
struct Builder {
    arena: Vec<u8>,
    srvs: Vec<SrvRr>,
}

impl Builder {
    fn span_from(&self, start: usize) -> Span {
        span(start, self.arena.len())
    }

    fn header(&mut self, rtype: u16, ttl: u32, rdlen: usize) {
        self.arena.extend_from_slice(&rtype.to_be_bytes());
        self.arena.extend_from_slice(&CLASS_IN.to_be_bytes());
        self.arena.extend_from_slice(&ttl.to_be_bytes());
        self.arena.extend_from_slice(&(rdlen as u16).to_be_bytes());
    }

    fn tail(&mut self, rtype: u16, ttl: u32, rdata: &[u8]) -> Span {
        let start = self.arena.len();
        self.header(rtype, ttl, rdata.len());
        self.arena.extend_from_slice(rdata);
        self.span_from(start)
    }

    /// The A (or AAAA) RR tails of `values`, back to back.
    fn addr_tails(&mut self, values: impl Iterator<Item = Value>, ttl: u32, rtype: u16) -> Span {
        let start = self.arena.len();
        for value in values {
            match value {
                Value::A(v4) if rtype == TYPE_A => {
                    self.header(TYPE_A, ttl, 4);
                    self.arena.extend_from_slice(&v4.octets());
                }
                Value::Aaaa(v6) if rtype == TYPE_AAAA => {
                    self.header(TYPE_AAAA, ttl, 16);
                    self.arena.extend_from_slice(&v6.octets());
                }
                _ => {}
            }
        }
        self.span_from(start)
    }

    fn srv_tail(&mut self, target: &[u8], port: u16, weight: u16, ttl: u32) -> Span {
        let start = self.arena.len();
        self.header(TYPE_SRV, ttl, 6 + target.len());
        self.arena.extend_from_slice(&0u16.to_be_bytes());
        self.arena.extend_from_slice(&weight.to_be_bytes());
        self.arena.extend_from_slice(&port.to_be_bytes());
        self.arena.extend_from_slice(target);
        self.span_from(start)
    }

    fn soa_tail(&mut self, mname: &[u8], rname: &[u8], serial: u32, c: &Config, ttl: u32) -> Span {
        let mut rdata = Vec::with_capacity(mname.len() + rname.len() + 20);
        rdata.extend_from_slice(mname);
        rdata.extend_from_slice(rname);
        for v in [serial, c.soa_refresh, c.soa_retry, c.soa_expire, c.soa_minttl] {
            rdata.extend_from_slice(&v.to_be_bytes());
        }
        self.tail(TYPE_SOA, ttl, &rdata)
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

    #[test]
    fn wire_names() {
        assert_eq!(wire_name("A.b.").unwrap(), b"\x01a\x01b\x00");
        assert_eq!(wire_name("mesos").unwrap(), b"\x05mesos\x00");
        assert_eq!(wire_name(".").unwrap(), b"\x00");
        assert!(wire_name("a..b").is_none());
        assert!(wire_name(&"a".repeat(64)).is_none());
        assert_eq!(label_count(b"\x01a\x01b\x00"), 2);
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
