//! The compiled zone: a [`RecordSet`] turned into an immutable lookup table
//! whose RRsets are already encoded as DNS wire bytes (DESIGN.md "compile").
//!
//! Built off the serving path once per refresh, then published with one
//! atomic pointer swap; the DNS hot path only reads it. Every RR is stored
//! as its "tail" — type, class, TTL, RDLENGTH, RDATA — without the owner
//! name, which the answer writes as a compression pointer (to the question,
//! or to an SRV target for glue).

use std::collections::HashMap;
use std::net::IpAddr;

use crate::config::Config;
use crate::records::{RecordSet, RrSet};

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
    /// A RR tails, `A_TAIL` bytes each.
    pub a: Span,
    /// AAAA RR tails, `AAAA_TAIL` bytes each.
    pub aaaa: Span,
    /// Index range into the zone's SRV table.
    pub srv_start: u32,
    pub srv_len: u32,
}

type Map = HashMap<Box<[u8]>, Node, foldhash::fast::RandomState>;

/// The compiled, immutable zone.
#[derive(Debug)]
pub struct Zone {
    /// The domain in lower-case wire form, e.g. `\x05mesos\x00`.
    apex: Box<[u8]>,
    apex_labels: usize,
    nodes: Map,
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
    /// Offset of the name inside the NS tail (for glue compression).
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

/// Encode a dotted name (with or without the final dot) as lower-case wire
/// bytes. `None` if it cannot be a DNS name.
pub fn wire_name(name: &str) -> Option<Vec<u8>> {
    let name = name.strip_suffix('.').unwrap_or(name);
    let mut out = Vec::with_capacity(name.len() + 2);
    if !name.is_empty() {
        for label in name.split('.') {
            let len = u8::try_from(label.len()).ok().filter(|&l| (1..=63).contains(&l))?;
            out.push(len);
            out.extend(label.bytes().map(|b| b.to_ascii_lowercase()));
        }
    }
    out.push(0);
    (out.len() <= 255).then_some(out)
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

impl Zone {
    /// Compile `records` for serving with the settings of `config`.
    pub fn compile(records: &RecordSet, config: &Config, serial: u32) -> Zone {
        let mut b = Builder::default();
        let apex = wire_name(&config.domain).unwrap_or_else(|| vec![0]).into_boxed_slice();
        let ttl = config.ttl;

        // Names, in wire form; records whose names can't be encoded were
        // already refused by the record set, so skipping here is defensive.
        let mut wired: Vec<(Vec<u8>, &RrSet)> = Vec::with_capacity(records.len());
        for (name, set) in records.iter() {
            if let Some(w) = wire_name(name) {
                wired.push((w, set));
            }
        }
        let mut nodes: Map = Map::with_capacity_and_hasher(wired.len() * 2, Default::default());
        let mut stats = ZoneStats::default();

        // Address records first, so SRV glue can refer to them.
        for (wire, set) in &wired {
            let a = b.addr_tails(set.a.iter().map(|ip| IpAddr::V4(*ip)), ttl);
            let aaaa = b.addr_tails(set.aaaa.iter().map(|ip| IpAddr::V6(*ip)), ttl);
            stats.a += set.a.len();
            stats.aaaa += set.aaaa.len();
            nodes.insert(wire.clone().into_boxed_slice(), Node { a, aaaa, ..Node::default() });
        }
        // Per distinct target (far fewer than SRV records): its wire name, id
        // and glue, worked out once.
        let mut targets: HashMap<&str, Target, foldhash::fast::RandomState> = HashMap::default();
        for (wire, set) in &wired {
            if set.srv.is_empty() {
                continue;
            }
            let srv_start = b.srvs.len() as u32;
            for srv in &set.srv {
                let next_id = targets.len() as u32;
                let target = match targets.get(srv.target.as_str()) {
                    Some(t) => t,
                    None => {
                        let Some(wire) = wire_name(&srv.target) else {
                            continue;
                        };
                        let glue =
                            nodes.get(&wire[..]).map_or(Span::default(), |n| b.concat(n.a, n.aaaa));
                        targets.entry(&srv.target).or_insert(Target { wire, id: next_id, glue })
                    }
                };
                let (target_id, glue) = (target.id, target.glue);
                let rr = b.srv_tail(&target.wire, srv.port, config.srv_record_default_weight, ttl);
                b.srvs.push(SrvRr { rr, glue, target_id });
            }
            stats.srv += set.srv.len();
            if let Some(node) = nodes.get_mut(&wire[..]) {
                node.srv_start = srv_start;
                node.srv_len = b.srvs.len() as u32 - srv_start;
            }
        }
        stats.names = nodes.len();

        // Empty non-terminals: every ancestor of a name, below the apex.
        let apex_labels = label_count(&apex);
        for (wire, _) in &wired {
            if !wire.ends_with(&apex) {
                continue;
            }
            let offsets: Vec<usize> = label_offsets(wire).collect();
            let own = offsets.len();
            for &off in offsets.iter().take(own.saturating_sub(apex_labels)).skip(1) {
                nodes.entry(wire[off..].to_vec().into_boxed_slice()).or_default();
            }
        }
        nodes.entry(apex.clone()).or_default();

        let mname = wire_name(&config.soa_mname).unwrap_or_else(|| vec![0]);
        let rname = wire_name(&config.soa_rname).unwrap_or_else(|| vec![0]);
        let soa = b.soa_tail(&mname, &rname, serial, config, ttl);
        let negative_soa = b.soa_tail(&mname, &rname, serial, config, ttl.min(config.soa_minttl));
        let ns = b.tail(TYPE_NS, ttl, &mname);
        let ns_glue = nodes.get(&mname[..]).map_or(Span::default(), |n| b.concat(n.a, n.aaaa));

        Zone {
            apex,
            apex_labels,
            nodes,
            arena: b.arena,
            srvs: b.srvs,
            soa,
            negative_soa,
            ns,
            ns_glue,
            serial,
            stats,
        }
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
        self.nodes.get(wire)
    }

    /// The bytes of a span.
    pub fn bytes(&self, span: Span) -> &[u8] {
        let start = span.start as usize;
        self.arena.get(start..start + span.len as usize).unwrap_or_default()
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

/// An SRV target, encoded once per compile.
struct Target {
    wire: Vec<u8>,
    id: u32,
    glue: Span,
}

/// Accumulates the arena while compiling.
#[derive(Default)]
struct Builder {
    arena: Vec<u8>,
    srvs: Vec<SrvRr>,
}

impl Builder {
    fn span_from(&self, start: usize) -> Span {
        Span { start: start as u32, len: (self.arena.len() - start) as u32 }
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

    fn addr_tails(&mut self, ips: impl Iterator<Item = IpAddr>, ttl: u32) -> Span {
        let start = self.arena.len();
        for ip in ips {
            match ip {
                IpAddr::V4(v4) => {
                    self.header(TYPE_A, ttl, 4);
                    self.arena.extend_from_slice(&v4.octets());
                }
                IpAddr::V6(v6) => {
                    self.header(TYPE_AAAA, ttl, 16);
                    self.arena.extend_from_slice(&v6.octets());
                }
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
