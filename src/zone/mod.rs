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

use crate::config::Config;
use crate::memory::{self, Collapsed, Region, region_of};
use crate::proto::rr::{A_TAIL, AAAA_TAIL, RDATA_OFFSET, RDLENGTH_OFFSET};
use crate::proto::{label_count, rtype, wire_name};
use crate::records::{NameId, RecordSet};

mod index;
mod overlay;
mod tails;

use index::NameIndex;
pub use overlay::{Batch, Overlay, ZoneView};
use tails::Tails;

/// A range of the zone's byte arena.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Span {
    start: u32,
    len: u32,
}

impl Span {
    pub(crate) fn is_empty(self) -> bool {
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
    /// How many SRV RRs of that table are the node's.
    pub srv_len: u32,
    /// PTR RR tails (`ptrOn`, at reverse names), back to back.
    pub ptr: Span,
}

impl Node {
    /// Whether any record is owned here (not an empty non-terminal).
    pub fn has_records(&self) -> bool {
        !self.a.is_empty() || !self.aaaa.is_empty() || self.srv_len > 0 || !self.ptr.is_empty()
    }
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
    /// The SOA serial the zone was compiled with.
    pub serial: u32,
    /// How many names and records the zone holds.
    pub stats: ZoneStats,
}

/// Counts, for logs and metrics.
#[derive(Debug, Clone, Copy, Default)]
pub struct ZoneStats {
    /// The record set's names.
    pub names: usize,
    /// A records.
    pub a: usize,
    /// AAAA records.
    pub aaaa: usize,
    /// SRV records.
    pub srv: usize,
}

impl ZoneStats {
    /// Every record (A, AAAA and SRV).
    pub fn records(&self) -> usize {
        self.a + self.aaaa + self.srv
    }
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

    /// A node's owner name (lower-case wire form).
    pub fn owner(&self, node: &Node) -> &[u8] {
        span_bytes(&self.names.names, node.key)
    }

    /// Every node of the domain holding records (not the reverse names
    /// of `ptrOn`, which are outside it).
    pub fn owners(&self) -> impl Iterator<Item = &Node> + '_ {
        let apex = &*self.apex;
        self.names.nodes.iter().filter(move |n| n.has_records() && self.owner(n).ends_with(apex))
    }

    /// A node's RRs as tails (type, class, TTL, RDLENGTH, RDATA): its A,
    /// then AAAA, then SRV, then PTR records.
    pub fn tails<'z>(&'z self, node: &Node) -> impl Iterator<Item = &'z [u8]> + 'z {
        let a = self.bytes(node.a).chunks_exact(A_TAIL);
        let aaaa = self.bytes(node.aaaa).chunks_exact(AAAA_TAIL);
        let srv = self.srvs(node).iter().map(|srv| self.bytes(srv.rr));
        a.chain(aaaa).chain(srv).chain(each_tail(self.bytes(node.ptr)))
    }

    pub(crate) fn soa(&self) -> &[u8] {
        self.bytes(self.soa)
    }

    pub(crate) fn negative_soa(&self) -> &[u8] {
        self.bytes(self.negative_soa)
    }

    pub(crate) fn ns(&self) -> &[u8] {
        self.bytes(self.ns)
    }

    pub(crate) fn ns_glue(&self) -> &[u8] {
        self.bytes(self.ns_glue)
    }
}

/// The RR tails back to back in `bytes`, each by its RDLENGTH.
pub fn each_tail(bytes: &[u8]) -> impl Iterator<Item = &[u8]> {
    let mut at = 0;
    std::iter::from_fn(move || {
        let rdlen = usize::from(crate::proto::u16_at(bytes, at + RDLENGTH_OFFSET)?);
        let end = at + RDATA_OFFSET + rdlen;
        let tail = bytes.get(at..end)?;
        at = end;
        Some(tail)
    })
}

fn span(start: usize, end: usize) -> Span {
    Span { start: start as u32, len: end.saturating_sub(start) as u32 }
}

fn span_bytes(bytes: &[u8], span: Span) -> &[u8] {
    let start = span.start as usize;
    bytes.get(start..start + span.len as usize).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::tails::LISTED_PORTS;
    use super::*;
    use crate::proto::rr::{RDATA_OFFSET, SRV_TARGET_OFFSET};
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
