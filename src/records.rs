//! The record set: what generation produces from one state (docs/naming.md) and
//! what the zone is compiled from, plus its JSON views (`/v1/axfr`,
//! `/v1/enumerate`, `-dump`).
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
use serde::ser::{SerializeMap, SerializeStruct, Serializer};

use crate::config::Config;
use crate::labels::is_valid_dns_name;

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
    A(Ipv4Addr),
    Aaaa(Ipv6Addr),
    /// Priority and weight are set when serving.
    Srv {
        target: NameId,
        port: u16,
    },
}

impl Value {
    pub fn rtype(self) -> RecordType {
        match self {
            Value::A(_) => RecordType::A,
            Value::Aaaa(_) => RecordType::Aaaa,
            Value::Srv { .. } => RecordType::Srv,
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
    A,
    #[serde(rename = "AAAA")]
    Aaaa,
    #[serde(rename = "SRV")]
    Srv,
}

/// An SRV record's value with its target spelled out.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SrvTarget {
    /// Fully qualified, with the final dot.
    pub target: String,
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
    pub a: Vec<Ipv4Addr>,
    pub aaaa: Vec<Ipv6Addr>,
    pub srv: Vec<SrvTarget>,
}

/// Up to this many records kept out of the fingerprints, a batch finds
/// its duplicates by comparing with each; past it, by a hash table.
const SMALL_BATCH: usize = 32;

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

/// A set of 32-bit fingerprints of 64-bit hashes: open addressing, linear
/// probing, one flat array (one cache miss per lookup, where a hash set of
/// whole records would take several times the memory). A fingerprint match
/// is only a hint: the caller confirms it against the name's records, so
/// a collision costs a short walk, never a lost record. 0 marks an empty
/// slot.
#[derive(Debug, Clone, Default)]
struct Fingerprints {
    slots: Vec<u32>,
    len: usize,
}

impl Fingerprints {
    /// Add the fingerprint of `hash`; `false` if it was already there.
    fn insert(&mut self, hash: u64) -> bool {
        if (self.len + 1) * 2 > self.slots.len() {
            self.reserve(self.len + 1);
        }
        let fp = fingerprint(hash);
        if Self::place(&mut self.slots, fp) {
            self.len += 1;
            true
        } else {
            false
        }
    }

    /// Start loading the slot where a lookup of `hash` starts.
    fn prefetch(&self, hash: u64) {
        let mask = self.slots.len().saturating_sub(1);
        if let Some(slot) = self.slots.get(fingerprint(hash) as usize & mask) {
            prefetch(slot);
        }
    }

    /// Put `fp` in the first free slot of its run (which starts at its low
    /// bits, so a rehash needs only the fingerprints); `false` if found
    /// there.
    fn place(slots: &mut [u32], fp: u32) -> bool {
        let mask = slots.len().saturating_sub(1);
        let mut i = fp as usize & mask;
        while let Some(slot) = slots.get_mut(i) {
            if *slot == fp {
                return false;
            }
            if *slot == 0 {
                *slot = fp;
                return true;
            }
            i = (i + 1) & mask;
        }
        false
    }

    /// Room for `n` fingerprints at most half full.
    fn reserve(&mut self, n: usize) {
        let want = (n * 2).next_power_of_two().max(64);
        if want <= self.slots.len() {
            return;
        }
        let old = std::mem::replace(&mut self.slots, vec![0; want]);
        for fp in old.into_iter().filter(|&fp| fp != 0) {
            Self::place(&mut self.slots, fp);
        }
    }
}

/// Ask the CPU to start loading the cache line of `value` (a hint; nothing
/// where there is no such instruction).
#[inline(always)]
fn prefetch<T>(value: &T) {
    // SAFETY: SSE is part of every x86_64 CPU, and a prefetch never
    // faults, whatever the address.
    #[cfg(target_arch = "x86_64")]
    unsafe {
        std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T0 }>(
            (value as *const T).cast(),
        );
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = value;
}

/// The fingerprint of a 64-bit hash: its high half, never 0.
fn fingerprint(hash: u64) -> u32 {
    ((hash >> 32) as u32).max(1)
}

/// The records of one [`RecordSet::add_batch`] that were checked only
/// against their own batch (SRV records to a name interned for the
/// batch), and the names interned for it: any later record to one of
/// those names is compared with them.
#[derive(Debug, Clone)]
struct Batch {
    names: Range<u32>,
    records: Range<u32>,
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
    /// The batch being added, once it has more than [`SMALL_BATCH`]
    /// records checked only within it: those, by index into `records`.
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
}

impl RecordSet {
    /// The id of `name` (fully qualified, with the final dot), interned if
    /// new; `None` if it cannot exist in DNS (the records for it are then
    /// counted as skipped when added).
    pub fn name_id(&mut self, name: &str) -> Option<NameId> {
        let valid = |name: &str| {
            let ok = is_valid_dns_name(name);
            if !ok {
                tracing::debug!("record skipped: {name:?} cannot exist in DNS");
            }
            ok
        };
        let (id, new) = self.names.intern(name, valid)?;
        if new {
            self.chains.push(Chain { first: NONE, last: NONE });
        }
        Some(id)
    }

    /// Room for about `names` names and `records` records.
    pub fn reserve(&mut self, names: usize, records: usize) {
        self.names.ends.reserve(names);
        self.names.text.reserve(names * 48);
        self.names.index.reserve(names, |_| 0);
        self.chains.reserve(names);
        // Headroom: capacity never written costs no memory, and `seal`
        // gives it back; growing past it would copy every record.
        self.records.reserve(records + records / 2);
        // Only records not checked within their batch are fingerprinted:
        // about a third of a task's (its addresses).
        self.seen.reserve(records / 3);
    }

    /// Add a record at `name` (from [`RecordSet::name_id`]); `false` if it
    /// was already there, or skipped because the name is invalid.
    pub fn add(&mut self, name: Option<NameId>, value: Value) -> bool {
        let Some(name) = self.known(name) else {
            return false;
        };
        if self.is_stored(name, value) {
            return false;
        }
        self.store(name, value);
        self.fresh_from = self.names.len() as u32;
        true
    }

    /// `name` if it is one of this set's names; a record for an invalid
    /// name (`None`) is counted as skipped.
    fn known(&mut self, name: Option<NameId>) -> Option<NameId> {
        if name.is_none() {
            self.skipped += 1;
        }
        name.filter(|n| self.chains.get(n.index()).is_some())
    }

    /// Whether `(name, value)` is stored; its fingerprint is remembered.
    fn is_stored(&mut self, name: NameId, value: Value) -> bool {
        if self.sealed || !self.seen.insert(self.names.hasher.hash_one((name, value))) {
            // A known fingerprint is a duplicate or (rarely) a collision:
            // the name's records tell which.
            return self.values(name).any(|v| v == value);
        }
        // Not in `seen`, but it may be in the one batch whose records to
        // its target were left out of it.
        let Value::Srv { target, .. } = value else {
            return false;
        };
        let at = self.batches.partition_point(|b| b.names.end <= target.0);
        let Some(batch) = self.batches.get(at).filter(|b| b.names.contains(&target.0)) else {
            return false;
        };
        let records = batch.records.start as usize..batch.records.end as usize;
        self.records
            .get(records)
            .unwrap_or_default()
            .iter()
            .any(|r| r.name == name && r.value == value)
    }

    /// Append a record to its name's chain (the caller has checked it is
    /// not a duplicate and that the name is valid).
    fn store(&mut self, name: NameId, value: Value) {
        let Some(chain) = self.chains.get_mut(name.index()) else {
            return;
        };
        let at = self.records.len() as u32;
        if self.records.len() == self.records.capacity() {
            // Past the reserved estimate, grow by a quarter, not double:
            // for a big record set that halves the peak of the copy.
            self.records.reserve_exact(self.records.len() / 4 + 64);
        }
        self.records.push(Record { name, value, next: NONE });
        self.srv_records += usize::from(matches!(value, Value::Srv { .. }));
        if chain.last == NONE {
            chain.first = at;
            self.with_records += 1;
        } else if let Some(prev) = self.records.get_mut(chain.last as usize) {
            prev.next = at;
        }
        chain.last = at;
    }

    /// Add the records of `batch` in order, as [`RecordSet::add`] would,
    /// and empty it.
    ///
    /// Faster than one `add` after the other, in two ways. An SRV record
    /// to a name interned since the last record was stored (a task's own
    /// name) can only repeat a record of this batch, so it is checked
    /// against the batch alone (by comparing with each of its records,
    /// up to `SMALL_BATCH` of them; then by a hash table) and kept out
    /// of the fingerprint set (the batch is remembered for the rare later
    /// record to that name). And the other records' fingerprint slots and
    /// their names' last records are far apart in memory: a first pass
    /// only reads them, so their cache misses overlap instead of queueing
    /// one behind the other.
    pub fn add_batch(&mut self, batch: &mut Vec<(Option<NameId>, Value)>) {
        if self.sealed {
            for (name, value) in batch.drain(..) {
                self.add(name, value);
            }
            return;
        }
        let fresh_from = self.fresh_from;
        let is_fresh_srv =
            |value: &Value| matches!(value, Value::Srv { target, .. } if target.0 >= fresh_from);
        for &(name, value) in batch.iter().filter(|(_, v)| !is_fresh_srv(v)) {
            let Some(name) = name else { continue };
            self.seen.prefetch(self.names.hasher.hash_one((name, value)));
            let last =
                self.chains.get(name.index()).and_then(|c| self.records.get(c.last as usize));
            if let Some(last) = last {
                prefetch(last);
            }
        }

        let first_record = self.records.len() as u32;
        let mut kept_out = 0;
        for (name, value) in batch.drain(..) {
            if !is_fresh_srv(&value) {
                self.add(name, value);
                continue;
            }
            let Some(name) = self.known(name) else {
                continue;
            };
            let RecordSet { records, in_batch, names, .. } = self;
            let is_this = |r: &Record| r.name == name && r.value == value;
            let new = if kept_out < SMALL_BATCH {
                // A few records: comparing with each is cheaper than hashing.
                let kept = records.get(first_record as usize..).unwrap_or_default();
                !kept.iter().any(is_this)
            } else {
                let key = |r: &Record| names.hasher.hash_one((r.name, r.value));
                let rehash = |&i: &u32| records.get(i as usize).map_or(0, key);
                if in_batch.is_empty() {
                    // Past the small size: index what the scan has kept.
                    for (i, r) in records.iter().enumerate().skip(first_record as usize) {
                        if is_fresh_srv(&r.value) {
                            in_batch.insert_unique(key(r), i as u32, rehash);
                        }
                    }
                }
                let same = |&i: &u32| records.get(i as usize).is_some_and(is_this);
                match in_batch.entry(names.hasher.hash_one((name, value)), same, rehash) {
                    Entry::Occupied(_) => false,
                    Entry::Vacant(v) => {
                        v.insert(records.len() as u32);
                        true
                    }
                }
            };
            if new {
                self.store(name, value);
                kept_out += 1;
            }
        }
        self.in_batch.clear();
        let names_end = self.names.len() as u32;
        if kept_out > 0 {
            let records = first_record..self.records.len() as u32;
            self.batches.push(Batch { names: fresh_from..names_end, records });
        }
        self.fresh_from = names_end;
    }

    /// Add an A or AAAA record; `false` if it was already there or invalid.
    pub fn insert_ip(&mut self, name: &str, ip: IpAddr) -> bool {
        let id = self.name_id(name);
        self.add(id, Value::from(ip))
    }

    /// Add an SRV record; `false` if it was already there or invalid.
    pub fn insert_srv(&mut self, name: &str, target: &str, port: u16) -> bool {
        let target = self.name_id(target);
        let id = if target.is_some() { self.name_id(name) } else { None };
        self.add_srv(id, target, port)
    }

    /// Add an SRV record at `name` pointing at `target` (both from
    /// [`RecordSet::name_id`]); skipped and counted if either is invalid.
    pub fn add_srv(&mut self, name: Option<NameId>, target: Option<NameId>, port: u16) -> bool {
        self.srv(target, port).is_some_and(|value| self.add(name, value))
    }

    /// The value of an SRV record to `target` (from [`RecordSet::name_id`]);
    /// `None`, and the record skipped and counted, if the target is invalid.
    pub fn srv(&mut self, target: Option<NameId>, port: u16) -> Option<Value> {
        if target.is_none() {
            self.skip(format_args!("SRV record to an invalid target"));
        }
        target.map(|target| Value::Srv { target, port })
    }

    /// Count a record that could not be produced.
    pub fn skip(&mut self, what: fmt::Arguments<'_>) {
        self.skipped += 1;
        tracing::debug!("record skipped: {what}");
    }

    /// Generation is over: free what only insertion needs.
    pub fn seal(&mut self) {
        self.seen = Fingerprints::default();
        self.batches = Vec::new();
        self.in_batch = HashTable::new();
        self.sealed = true;
        self.records.shrink_to_fit();
        self.tasks.shrink_to_fit();
        self.task_text.shrink_to_fit();
        self.names.text.shrink_to_fit();
    }

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

    /// `/v1/enumerate`: every framework, its running tasks and the records
    /// each task contributed (the first task to add a record owns it).
    pub fn enumeration(&self) -> Enumeration<'_> {
        Enumeration(self)
    }

    /// The `Records` member of `/v1/axfr` (names sorted here, once).
    pub fn axfr_records(&self) -> AxfrRecords<'_> {
        let mut names: Vec<(&str, NameId)> = self.names().map(|id| (self.name(id), id)).collect();
        names.sort_unstable();
        AxfrRecords { rs: self, sorted: names.into_iter().map(|(_, id)| id).collect() }
    }

    fn range<'s, T>(items: &'s [T], r: &Range<u32>) -> &'s [T] {
        items.get(r.start as usize..r.end as usize).unwrap_or_default()
    }
}

/// The record maps of `/v1/axfr`: `{"As": {name: [value, ...]}, "AAAAs":
/// ..., "SRVs": ...}`, names sorted, each name's values sorted as text, a
/// name left out of a map it has no records for. Serialized straight from
/// the record set, a name at a time: the document is never whole in memory.
pub struct AxfrRecords<'a> {
    rs: &'a RecordSet,
    /// Every name holding records, in name order.
    sorted: Vec<NameId>,
}

impl Serialize for AxfrRecords<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut st = s.serialize_struct("Records", 3)?;
        st.serialize_field("As", &TypeMap(self, RecordType::A))?;
        st.serialize_field("AAAAs", &TypeMap(self, RecordType::Aaaa))?;
        st.serialize_field("SRVs", &TypeMap(self, RecordType::Srv))?;
        st.end()
    }
}

/// One map of [`AxfrRecords`]: the names with records of one type.
struct TypeMap<'r, 'a>(&'r AxfrRecords<'a>, RecordType);

impl Serialize for TypeMap<'_, '_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use std::fmt::Write;
        let (AxfrRecords { rs, sorted }, rtype) = (self.0, self.1);
        let mut map = s.serialize_map(None)?;
        // A name's values as text, one after another in `text`.
        let (mut text, mut spans) = (String::new(), Vec::<Range<usize>>::new());
        for &id in sorted {
            text.clear();
            spans.clear();
            for value in rs.values(id).filter(|v| v.rtype() == rtype) {
                let start = text.len();
                let _ = write!(text, "{}", ValueText(rs, value));
                spans.push(start..text.len());
            }
            if spans.is_empty() {
                continue;
            }
            let value = |span: &Range<usize>| text.get(span.clone()).unwrap_or_default();
            spans.sort_unstable_by(|a, b| value(a).cmp(value(b)));
            map.serialize_entry(rs.name(id), &Seq::new(spans.iter().map(value)))?;
        }
        map.end()
    }
}

/// The whole `/v1/axfr` document (also what `-dump` prints).
#[derive(Serialize)]
pub struct Axfr<'a> {
    #[serde(rename = "TTL")]
    pub ttl: u32,
    #[serde(rename = "Serial")]
    pub serial: u32,
    #[serde(rename = "RefreshSeconds")]
    pub refresh_seconds: u64,
    #[serde(rename = "Mname")]
    pub mname: String,
    #[serde(rename = "Rname")]
    pub rname: String,
    #[serde(rename = "Domain")]
    pub domain: String,
    #[serde(rename = "Records")]
    pub records: AxfrRecords<'a>,
}

impl<'a> Axfr<'a> {
    /// The document for `records`, served under `config` as zone `serial`.
    pub fn new(records: &'a RecordSet, config: &Config, serial: u32) -> Axfr<'a> {
        Axfr {
            ttl: config.ttl,
            serial,
            refresh_seconds: config.refresh_seconds,
            mname: config.soa_mname.clone(),
            rname: config.soa_rname.clone(),
            domain: config.domain.clone(),
            records: records.axfr_records(),
        }
    }
}

/// `/v1/enumerate`, serialized straight from the record set:
/// `{"frameworks": [{"tasks": [{"name", "id", "records": [{"name", "host",
/// "rtype"}]}], "name"}]}`.
pub struct Enumeration<'a>(&'a RecordSet);

impl Serialize for Enumeration<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let rs = self.0;
        let frameworks = rs.frameworks.iter().map(|f| FrameworkView(rs, f));
        let mut st = s.serialize_struct("Enumeration", 1)?;
        st.serialize_field("frameworks", &Seq::new(frameworks))?;
        st.end()
    }
}

struct FrameworkView<'a>(&'a RecordSet, &'a EnumFramework);

impl Serialize for FrameworkView<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let (rs, f) = (self.0, self.1);
        let tasks = RecordSet::range(&rs.tasks, &f.tasks).iter().map(|t| TaskView(rs, t));
        let mut st = s.serialize_struct("EnumFramework", 2)?;
        st.serialize_field("tasks", &Seq::new(tasks))?;
        st.serialize_field("name", &f.name)?;
        st.end()
    }
}

struct TaskView<'a>(&'a RecordSet, &'a EnumTask);

impl Serialize for TaskView<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let (rs, t) = (self.0, self.1);
        let records = RecordSet::range(&rs.records, &t.records).iter().map(|r| RecordView(rs, r));
        let mut st = s.serialize_struct("EnumTask", 3)?;
        st.serialize_field("name", t.name(&rs.task_text))?;
        st.serialize_field("id", t.id(&rs.task_text))?;
        st.serialize_field("records", &Seq::new(records))?;
        st.end()
    }
}

struct RecordView<'a>(&'a RecordSet, &'a Record);

impl Serialize for RecordView<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let (rs, r) = (self.0, self.1);
        let mut st = s.serialize_struct("EnumRecord", 3)?;
        st.serialize_field("name", rs.name(r.name))?;
        st.serialize_field("host", &Display(ValueText(rs, r.value)))?;
        st.serialize_field("rtype", &r.value.rtype())?;
        st.end()
    }
}

/// A record's value as the JSON views spell it: the address, or an SRV
/// record's `target:port`.
struct ValueText<'a>(&'a RecordSet, Value);

impl fmt::Display for ValueText<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.1 {
            Value::A(ip) => ip.fmt(f),
            Value::Aaaa(ip) => ip.fmt(f),
            Value::Srv { target, port } => write!(f, "{}:{port}", self.0.name(target)),
        }
    }
}

/// Serializes anything printable as a string, without allocating it.
struct Display<T>(T);

impl<T: fmt::Display> Serialize for Display<T> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(&self.0)
    }
}

/// Serializes an iterator as a sequence (once: it is consumed).
struct Seq<I>(std::cell::Cell<Option<I>>);

impl<I> Seq<I> {
    fn new(items: I) -> Self {
        Seq(std::cell::Cell::new(Some(items)))
    }
}

impl<I: Iterator<Item = T>, T: Serialize> Serialize for Seq<I> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(self.0.take().into_iter().flatten())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn axfr_names_and_values_are_sorted_as_text() {
        let mut rs = RecordSet::default();
        for ip in ["10.0.0.10", "10.0.0.9", "::2"] {
            rs.insert_ip("b.mesos.", ip.parse().unwrap());
        }
        rs.insert_ip("a.mesos.", "10.0.0.1".parse().unwrap());
        rs.insert_srv("_b._tcp.mesos.", "b.mesos.", 9);
        rs.insert_srv("_b._tcp.mesos.", "a.mesos.", 80);
        rs.insert_srv("_b._tcp.mesos.", "b.mesos.", 10);
        assert_eq!(
            serde_json::to_string(&rs.axfr_records()).unwrap(),
            r#"{"As":{"a.mesos.":["10.0.0.1"],"b.mesos.":["10.0.0.10","10.0.0.9"]},"#.to_owned()
                + r#""AAAAs":{"b.mesos.":["::2"]},"#
                + r#""SRVs":{"_b._tcp.mesos.":["a.mesos.:80","b.mesos.:10","b.mesos.:9"]}}"#
        );
    }

    #[test]
    fn duplicates_and_invalid_names_are_not_stored() {
        let mut rs = RecordSet::default();
        assert!(rs.insert_ip("a.mesos.", "1.2.3.4".parse().unwrap()));
        assert!(!rs.insert_ip("a.mesos.", "::ffff:1.2.3.4".parse().unwrap()));
        assert!(rs.insert_ip("a.mesos.", "::1".parse().unwrap()));
        assert!(!rs.insert_ip("a..mesos.", "1.2.3.4".parse().unwrap()));
        assert!(rs.insert_srv("_a._tcp.mesos.", "a.mesos.", 80));
        assert!(!rs.insert_srv("_a._tcp.mesos.", "a.mesos.", 80));
        assert!(!rs.insert_srv("_b._tcp.mesos.", &format!("{}.mesos.", "x".repeat(64)), 80));
        assert_eq!(rs.skipped, 2);
        let ax = serde_json::to_value(rs.axfr_records()).unwrap();
        assert_eq!(ax["As"], serde_json::json!({"a.mesos.": ["1.2.3.4"]}));
        assert_eq!(ax["AAAAs"], serde_json::json!({"a.mesos.": ["::1"]}));
        assert_eq!(ax["SRVs"], serde_json::json!({"_a._tcp.mesos.": ["a.mesos.:80"]}));
        assert_eq!(rs.len(), 2);
    }

    #[test]
    fn sealed_sets_still_refuse_duplicates_and_keep_order() {
        let mut rs = RecordSet::default();
        for ip in ["10.0.0.2", "10.0.0.1", "10.0.0.2"] {
            rs.insert_ip("b.mesos.", ip.parse().unwrap());
        }
        rs.seal();
        assert!(!rs.insert_ip("b.mesos.", "10.0.0.1".parse().unwrap()));
        assert!(rs.insert_ip("b.mesos.", "10.0.0.3".parse().unwrap()));
        let a: Vec<String> = rs.get("b.mesos.").unwrap().a.iter().map(|i| i.to_string()).collect();
        assert_eq!(a, ["10.0.0.2", "10.0.0.1", "10.0.0.3"]);
        assert!(rs.get("c.mesos.").is_none());
    }

    #[test]
    fn a_batch_adds_what_one_add_after_the_other_would() {
        let ip = |s: &str| Value::from(s.parse::<IpAddr>().unwrap());
        let mut one_by_one = RecordSet::default();
        let mut batched = RecordSet::default();
        for rs in [&mut one_by_one, &mut batched] {
            rs.insert_ip("a.mesos.", "10.0.0.1".parse().unwrap());
        }
        let mut batch = Vec::new();
        for rs in [&mut one_by_one, &mut batched] {
            let (a, b, bad) =
                (rs.name_id("a.mesos."), rs.name_id("b.mesos."), rs.name_id("a..mesos."));
            let srv = rs.name_id("_b._tcp.mesos.");
            // Duplicates of an earlier record and within the batch, a
            // record at an invalid name, and the same value at two names.
            batch = vec![
                (a, ip("10.0.0.1")),
                (b, ip("10.0.0.2")),
                (a, ip("10.0.0.2")),
                (b, ip("10.0.0.2")),
                (bad, ip("10.0.0.3")),
                (srv, Value::Srv { target: b.unwrap(), port: 80 }),
                (srv, Value::Srv { target: b.unwrap(), port: 80 }),
            ];
        }
        for &(name, value) in &batch {
            one_by_one.add(name, value);
        }
        batched.add_batch(&mut batch);
        assert!(batch.is_empty());
        let axfr = |rs: &RecordSet| serde_json::to_value(rs.axfr_records()).unwrap();
        assert_eq!(axfr(&batched), axfr(&one_by_one));
        assert_eq!((batched.len(), batched.record_count(), batched.skipped), (3, 4, 1));
        assert_eq!(batched.skipped, one_by_one.skipped);
    }

    #[test]
    fn records_to_a_batchs_own_names_are_still_refused_later() {
        let mut rs = RecordSet::default();
        let mut batch = Vec::new();
        // Each "task" interns its own target, as `t-h-s.f.slave.D.`; the
        // second and third intern nothing new (a repeated task id).
        for task in 0..3 {
            let srv = rs.name_id("_t._tcp.f.mesos.");
            let target = rs.name_id("t-abcde-s1.f.slave.mesos.").unwrap();
            let other = rs.name_id(&format!("t-{task}.f.slave.mesos.")).unwrap();
            for port in [80, 81, 80] {
                batch.push((srv, Value::Srv { target, port }));
            }
            batch.push((srv, Value::Srv { target: other, port: 80 }));
            rs.add_batch(&mut batch);
        }
        assert!(!rs.insert_srv("_t._tcp.f.mesos.", "t-abcde-s1.f.slave.mesos.", 81));
        assert!(rs.insert_srv("_t._tcp.f.mesos.", "t-abcde-s1.f.slave.mesos.", 82));
        rs.seal();
        assert!(!rs.insert_srv("_t._tcp.f.mesos.", "t-abcde-s1.f.slave.mesos.", 82));
        let srv = rs.get("_t._tcp.f.mesos.").unwrap().srv;
        let srv: Vec<String> = srv.iter().map(|s| s.to_string()).collect();
        assert_eq!(
            srv,
            [
                "t-abcde-s1.f.slave.mesos.:80",
                "t-abcde-s1.f.slave.mesos.:81",
                "t-0.f.slave.mesos.:80",
                "t-1.f.slave.mesos.:80",
                "t-2.f.slave.mesos.:80",
                "t-abcde-s1.f.slave.mesos.:82",
            ]
        );
        assert_eq!(rs.srv_count(), 6);
    }

    proptest::proptest! {
        /// Batches of records over a few names (so that names and values
        /// repeat within and across batches, targets are interned by the
        /// batch that uses them or earlier: targets 6 and up are the
        /// batch's own names) store what `add` one after the other
        /// stores, in the same order. Batches go past `SMALL_BATCH`
        /// records to their own names, with duplicates on both sides.
        #[test]
        fn batches_store_what_one_add_after_the_other_does(
            tasks in proptest::collection::vec(
                proptest::collection::vec((0u8..6, proptest::option::of(0u8..9), 0u16..24), 0..90),
                0..12,
            ),
        ) {
            let mut one_by_one = RecordSet::default();
            let mut batched = RecordSet::default();
            let mut batch = Vec::new();
            for (i, task) in tasks.iter().enumerate() {
                for (rs, batches) in [(&mut one_by_one, false), (&mut batched, true)] {
                    batch.clear();
                    for &(name, target, n) in task {
                        let name = rs.name_id(&format!("n{name}.mesos."));
                        let value = match target {
                            Some(t) => {
                                let target = match t {
                                    0..6 => format!("n{t}.mesos."),
                                    _ => format!("t{i}-{t}.mesos."),
                                };
                                let target = rs.name_id(&target).unwrap();
                                Value::Srv { target, port: n }
                            }
                            None => Value::A(Ipv4Addr::new(10, 0, 0, (n % 3) as u8)),
                        };
                        batch.push((name, value));
                    }
                    if batches {
                        rs.add_batch(&mut batch);
                    } else {
                        for &(name, value) in &batch {
                            rs.add(name, value);
                        }
                    }
                }
            }
            let spelled = |rs: &RecordSet| rs.iter().map(|(n, set)| (n.to_owned(), set)).collect::<Vec<_>>();
            proptest::prop_assert_eq!(spelled(&batched), spelled(&one_by_one));
            proptest::prop_assert_eq!(batched.record_count(), one_by_one.record_count());
        }
    }

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
    fn enumeration_is_the_records_each_task_added() {
        let mut rs = RecordSet::default();
        rs.enumerate_framework("fw");
        let start = rs.record_count();
        rs.insert_ip("t.fw.mesos.", "10.0.0.1".parse().unwrap());
        rs.insert_srv("_t._tcp.fw.mesos.", "t.fw.mesos.", 8080);
        rs.enumerate_task("t", "t.1", start);
        let start = rs.record_count();
        rs.insert_ip("t.fw.mesos.", "10.0.0.1".parse().unwrap());
        rs.enumerate_task("t", "t.2", start);
        let json = serde_json::to_value(rs.enumeration()).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"frameworks": [{"tasks": [
                {"name": "t", "id": "t.1", "records": [
                    {"name": "t.fw.mesos.", "host": "10.0.0.1", "rtype": "A"},
                    {"name": "_t._tcp.fw.mesos.", "host": "t.fw.mesos.:8080", "rtype": "SRV"}]},
                {"name": "t", "id": "t.2", "records": []}],
                "name": "fw"}]})
        );
    }
}
