//! The record set: what generation produces from one state (docs/naming.md) and
//! what the zone is compiled from. Adding records is in `insert`, the JSON
//! views (`/v1/axfr`, `/v1/enumerate`, `-dump`) in `json`.
//!
//! Layout, chosen for a cheap refresh and a small resident set (a 20,000-task
//! state holds ~52,000 names and ~240,000 records):
//! - every name is interned once into one string ([`NameId`] is its index);
//! - records are one flat vector in insertion order, each linked to the next
//!   record of the same name, so a name's records keep their order;
//! - an SRV record names its target by id, not by a copy of the string;
//! - the enumeration is, per task, a range of that vector: the records a
//!   task added are exactly those appended while it was generated.
//!
//! Every insertion checks that the record can exist in DNS; a record that
//! cannot (empty label, label over 63, name over 253) is skipped and
//! counted, never stored.
//!
//! Duplicates are refused. Most of a task's records are SRV records to a
//! name the task itself just interned (`t-h-s.f.slave.D.`), which no
//! stored record can name yet: those are checked only against the task's
//! own batch ([`RecordSet::add_batch`]), everything else against a set of
//! fingerprints of every record stored.

use std::fmt;
use std::hash::BuildHasher;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::ops::Range;

use hashbrown::HashTable;
use hashbrown::hash_table::Entry;
use serde::Serialize;

mod insert;
mod json;
pub mod live;

use insert::{Batch, Fingerprints};
pub use json::{Axfr, AxfrRecords, Enumeration};

type Hasher = foldhash::fast::RandomState;

/// A name interned in one [`RecordSet`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct NameId(u32);

impl NameId {
    /// The position of the name in its record set's name table.
    pub fn index(self) -> usize {
        self.0 as usize
    }
}

/// The value of one record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Value {
    /// An A record's address.
    A(Ipv4Addr),
    /// An AAAA record's address.
    Aaaa(Ipv6Addr),
    /// Priority and weight are set when serving.
    Srv {
        /// The target name, in the same record set.
        target: NameId,
        /// The target's port.
        port: u16,
    },
    /// A reverse lookup's answer (`ptrOn`), at an address's reverse name.
    Ptr {
        /// The name the address belongs to, in the same record set.
        target: NameId,
    },
}

impl Value {
    pub(crate) fn rtype(self) -> RecordType {
        match self {
            Value::A(_) => RecordType::A,
            Value::Aaaa(_) => RecordType::Aaaa,
            Value::Srv { .. } => RecordType::Srv,
            Value::Ptr { .. } => RecordType::Ptr,
        }
    }
}

impl From<IpAddr> for Value {
    /// An IPv4-mapped IPv6 address is an A record, as in the original.
    fn from(ip: IpAddr) -> Self {
        match canonical_ip(ip) {
            IpAddr::V4(v4) => Value::A(v4),
            IpAddr::V6(v6) => Value::Aaaa(v6),
        }
    }
}

/// An IP address the way the original classifies it: an IPv4-mapped IPv6
/// address is IPv4.
pub fn canonical_ip(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

/// The kind of a record, as the original names it in `rtype`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum RecordType {
    /// An IPv4 address.
    A,
    /// An IPv6 address.
    #[serde(rename = "AAAA")]
    Aaaa,
    /// A service: a target name and port.
    #[serde(rename = "SRV")]
    Srv,
    /// A reverse lookup: the name an address belongs to.
    #[serde(rename = "PTR")]
    Ptr,
}

/// An SRV record's value with its target spelled out.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SrvTarget {
    /// Fully qualified, with the final dot.
    pub target: String,
    /// The port the service listens on.
    pub port: u16,
}

impl fmt::Display for SrvTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.target, self.port)
    }
}

/// Every record held at one name, spelled out (for the HTTP API and tests).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RrSet {
    /// The A records' addresses.
    pub a: Vec<Ipv4Addr>,
    /// The AAAA records' addresses.
    pub aaaa: Vec<Ipv6Addr>,
    /// The SRV records' targets and ports.
    pub srv: Vec<SrvTarget>,
}

/// End of a chain of records.
const NONE: u32 = u32::MAX;

#[derive(Debug, Clone, Copy)]
struct Record {
    name: NameId,
    value: Value,
    /// The next record of the same name, or `NONE`.
    next: u32,
}

/// The first and last record of one name (`NONE` when it has none: a name
/// interned only as an SRV target).
#[derive(Debug, Clone, Copy)]
struct Chain {
    first: u32,
    last: u32,
}

/// Interned names, back to back in one string.
#[derive(Debug, Clone, Default)]
struct Names {
    text: String,
    /// Where each name ends in `text`.
    ends: Vec<u32>,
    index: HashTable<u32>,
    hasher: Hasher,
}

fn name_at<'t>(text: &'t str, ends: &[u32], i: usize) -> &'t str {
    let end = ends.get(i).map_or(0, |&e| e as usize);
    let start = match i.checked_sub(1) {
        Some(prev) => ends.get(prev).map_or(0, |&e| e as usize),
        None => 0,
    };
    text.get(start..end).unwrap_or_default()
}

impl Names {
    fn name(&self, id: NameId) -> &str {
        name_at(&self.text, &self.ends, id.index())
    }

    fn find(&self, name: &str) -> Option<NameId> {
        let hash = self.hasher.hash_one(name);
        self.index.find(hash, |&i| self.name(NameId(i)) == name).map(|&i| NameId(i))
    }

    /// The id of `name`, interned if new and `valid(name)`: (id, new).
    fn intern(&mut self, name: &str, valid: impl FnOnce(&str) -> bool) -> Option<(NameId, bool)> {
        let Names { text, ends, index, hasher } = self;
        let hash = hasher.hash_one(name);
        let entry = index.entry(
            hash,
            |&i| name_at(text, ends, i as usize) == name,
            |&i| hasher.hash_one(name_at(text, ends, i as usize)),
        );
        match entry {
            Entry::Occupied(e) => Some((NameId(*e.get()), false)),
            Entry::Vacant(v) => {
                if !valid(name) {
                    return None;
                }
                let id = ends.len() as u32;
                text.push_str(name);
                ends.push(text.len() as u32);
                v.insert(id);
                Some((NameId(id), true))
            }
        }
    }

    fn len(&self) -> usize {
        self.ends.len()
    }
}

/// A framework in `/v1/enumerate`: its name and its range of `tasks`.
#[derive(Debug, Clone)]
struct EnumFramework {
    name: Box<str>,
    tasks: Range<u32>,
}

/// A task in `/v1/enumerate`: its name and id are `text[start..name_end]`
/// and `text[name_end..end]` of the record set's `task_text`; the records it
/// added are a range of `records`.
#[derive(Debug, Clone)]
struct EnumTask {
    start: u32,
    name_end: u32,
    end: u32,
    records: Range<u32>,
}

impl EnumTask {
    fn name<'t>(&self, text: &'t str) -> &'t str {
        text.get(self.start as usize..self.name_end as usize).unwrap_or_default()
    }

    fn id<'t>(&self, text: &'t str) -> &'t str {
        text.get(self.name_end as usize..self.end as usize).unwrap_or_default()
    }
}

/// The records generated from one state: interned names, their records, and
/// the enumeration data.
#[derive(Debug, Clone, Default)]
pub struct RecordSet {
    names: Names,
    /// By `NameId`.
    chains: Vec<Chain>,
    records: Vec<Record>,
    /// Fingerprints of every (name, value) stored, to refuse duplicates in
    /// O(1); freed by [`RecordSet::seal`], after which duplicates are found
    /// along the chain. Records checked only within their batch are not
    /// in it.
    seen: Fingerprints,
    /// Names from this id on were interned after the last record was
    /// stored, so no stored record names them.
    fresh_from: u32,
    /// The batches holding records not in `seen`, in order (their name
    /// ranges ascend).
    batches: Vec<Batch>,
    /// The batch being added, once it has more than
    /// [`SMALL_BATCH`](insert::SMALL_BATCH) records checked only within it:
    /// those, by index into `records`.
    in_batch: HashTable<u32>,
    sealed: bool,
    /// How many names hold at least one record.
    with_records: usize,
    /// How many of the records are SRV records.
    srv_records: usize,
    frameworks: Vec<EnumFramework>,
    tasks: Vec<EnumTask>,
    /// The names and ids of `tasks`, back to back.
    task_text: String,
    /// Records not produced because the name could not exist in DNS, or a
    /// value was out of range.
    pub skipped: u64,
    /// Running tasks left out because their health checks do not pass
    /// (`healthyOnly`).
    pub unhealthy: u64,
}

impl RecordSet {
    /// The id of `name`, if interned (it may hold no records).
    pub fn find(&self, name: &str) -> Option<NameId> {
        self.names.find(name)
    }

    /// The name an id stands for.
    pub fn name(&self, id: NameId) -> &str {
        self.names.name(id)
    }

    /// How many names are interned (an upper bound of every `NameId`).
    pub fn name_count(&self) -> usize {
        self.names.len()
    }

    /// The records at a name, in the order they were added.
    pub fn values(&self, id: NameId) -> impl Iterator<Item = Value> + '_ {
        let mut at = self.chains.get(id.index()).map_or(NONE, |c| c.first);
        std::iter::from_fn(move || {
            let record = self.records.get(at as usize)?;
            at = record.next;
            Some(record.value)
        })
    }

    /// Every record, in the order they were stored.
    pub fn stored(&self) -> impl Iterator<Item = (NameId, Value)> + '_ {
        self.records.iter().map(|r| (r.name, r.value))
    }

    /// Whether `other` holds the same records in the same order, names
    /// compared by their text: what the zone is compiled from, so both
    /// compile to the same zone (a state polled again without a change).
    pub fn same_records(&self, other: &RecordSet) -> bool {
        self.records.len() == other.records.len()
            && self.stored().zip(other.stored()).all(|((name, value), (name2, value2))| {
                let same_value = match (value, value2) {
                    (Value::Srv { target, port }, Value::Srv { target: t2, port: p2 }) => {
                        port == p2 && self.name(target) == other.name(t2)
                    }
                    (Value::Ptr { target }, Value::Ptr { target: t2 }) => {
                        self.name(target) == other.name(t2)
                    }
                    (Value::A(ip), Value::A(ip2)) => ip == ip2,
                    (Value::Aaaa(ip), Value::Aaaa(ip2)) => ip == ip2,
                    _ => false,
                };
                same_value && self.name(name) == other.name(name2)
            })
    }

    /// Every interned name (some may hold no records), in id order.
    pub fn all_names(&self) -> impl Iterator<Item = NameId> + use<> {
        (0..self.names.len() as u32).map(NameId)
    }

    /// Every name holding records, in id order.
    pub fn names(&self) -> impl Iterator<Item = NameId> + '_ {
        self.chains
            .iter()
            .enumerate()
            .filter(|(_, c)| c.first != NONE)
            .map(|(i, _)| NameId(i as u32))
    }

    /// The records at `name` (fully qualified, with the final dot).
    pub fn get(&self, name: &str) -> Option<RrSet> {
        let set = self.rrset(self.find(name)?);
        (set != RrSet::default()).then_some(set)
    }

    /// Every name and its records, in no particular order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, RrSet)> + '_ {
        self.names().map(|id| (self.name(id), self.rrset(id)))
    }

    /// The records at a name, spelled out.
    fn rrset(&self, id: NameId) -> RrSet {
        let mut set = RrSet::default();
        for value in self.values(id) {
            match value {
                Value::A(ip) => set.a.push(ip),
                Value::Aaaa(ip) => set.aaaa.push(ip),
                Value::Srv { target, port } => {
                    set.srv.push(SrvTarget { target: self.name(target).to_owned(), port })
                }
                // Reverse names are not looked up over HTTP.
                Value::Ptr { .. } => {}
            }
        }
        set
    }

    /// The SRV records whose target is `target`: (owner name, port).
    pub fn srv_targeting(&self, target: &str) -> Vec<(&str, u16)> {
        let Some(target_id) = self.find(target) else {
            return Vec::new();
        };
        let mut out = Vec::new();
        for r in &self.records {
            if let Value::Srv { target, port } = r.value
                && target == target_id
            {
                out.push((self.name(r.name), port));
            }
        }
        out
    }

    /// How many names hold records.
    pub fn len(&self) -> usize {
        self.with_records
    }

    /// Whether no name holds a record.
    pub fn is_empty(&self) -> bool {
        self.with_records == 0
    }

    /// How many records are stored; marks where a task's records begin.
    pub fn record_count(&self) -> usize {
        self.records.len()
    }

    /// How many of the records are SRV records.
    pub fn srv_count(&self) -> usize {
        self.srv_records
    }

    /// The length of every interned name together (their text form).
    pub fn name_bytes(&self) -> usize {
        self.names.text.len()
    }

    /// Start a framework in the enumeration.
    pub fn enumerate_framework(&mut self, name: &str) {
        let at = self.tasks.len() as u32;
        self.frameworks.push(EnumFramework { name: name.into(), tasks: at..at });
    }

    /// Add a task to the last framework of the enumeration; its records are
    /// those stored since `first_record` (a [`RecordSet::record_count`]).
    pub fn enumerate_task(&mut self, name: &str, id: &str, first_record: usize) {
        let records = first_record as u32..self.records.len() as u32;
        let start = self.task_text.len() as u32;
        self.task_text.push_str(name);
        let name_end = self.task_text.len() as u32;
        self.task_text.push_str(id);
        let end = self.task_text.len() as u32;
        self.tasks.push(EnumTask { start, name_end, end, records });
        if let Some(f) = self.frameworks.last_mut() {
            f.tasks.end = self.tasks.len() as u32;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_name_known_only_as_a_target_holds_nothing() {
        let mut rs = RecordSet::default();
        rs.insert_srv("_s._tcp.mesos.", "t.mesos.", 1);
        assert!(rs.get("t.mesos.").is_none());
        assert_eq!(rs.len(), 1);
        assert_eq!(rs.iter().count(), 1);
        assert_eq!(rs.srv_targeting("t.mesos."), vec![("_s._tcp.mesos.", 1)]);
    }

    #[test]
    fn same_records_compares_names_by_text_and_every_value() {
        // The same ids in each set: a target or PTR differs only by text.
        let build = |target: &str, port: u16, ip: [u8; 4], ptr: &str| {
            let mut rs = RecordSet::default();
            rs.insert_srv("_s._tcp.mesos.", target, port);
            rs.insert_ip("t.mesos.", IpAddr::from(ip));
            rs.insert_ptr_at("1.0.0.10.in-addr.arpa.", ptr);
            rs.seal();
            rs
        };
        let base = build("t.mesos.", 1, [10, 0, 0, 1], "t.mesos.");
        assert!(base.same_records(&build("t.mesos.", 1, [10, 0, 0, 1], "t.mesos.")));
        assert!(!base.same_records(&build("t.mesos.", 2, [10, 0, 0, 1], "t.mesos.")), "port");
        assert!(!base.same_records(&build("t.mesos.", 1, [10, 0, 0, 2], "t.mesos.")), "address");
        assert!(!base.same_records(&build("t.mesos.", 1, [10, 0, 0, 1], "u.mesos.")), "PTR");
        assert!(!base.same_records(&build("u.mesos.", 1, [10, 0, 0, 1], "t.mesos.")), "target");
        assert!(!base.same_records(&RecordSet::default()));
    }
}
