//! Adding records to a [`RecordSet`]: names checked as DNS names,
//! duplicates refused (by fingerprints, or within a task's batch), and the
//! insertion-only state freed once generation is over.

use std::fmt;
use std::hash::BuildHasher;
use std::net::IpAddr;
use std::ops::Range;

use hashbrown::HashTable;
use hashbrown::hash_table::Entry;

use super::{Chain, NONE, NameId, Record, RecordSet, Value};
use crate::labels::is_valid_dns_name;

/// Up to this many records kept out of the fingerprints, a batch finds
/// its duplicates by comparing with each; past it, by a hash table.
pub(super) const SMALL_BATCH: usize = 32;

/// A set of 32-bit fingerprints of 64-bit hashes: open addressing, linear
/// probing, one flat array (one cache miss per lookup, where a hash set of
/// whole records would take several times the memory). A fingerprint match
/// is only a hint: the caller confirms it against the name's records, so
/// a collision costs a short walk, never a lost record. 0 marks an empty
/// slot.
#[derive(Debug, Clone, Default)]
pub(super) struct Fingerprints {
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
pub(super) struct Batch {
    names: Range<u32>,
    records: Range<u32>,
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

    /// Add a PTR record at the reverse name of `ip` naming `target`;
    /// `false` if it was already there or invalid.
    pub fn insert_ptr(&mut self, ip: IpAddr, target: &str) -> bool {
        let name = crate::proto::reverse_name(crate::records::canonical_ip(ip));
        self.insert_ptr_at(&name, target)
    }

    /// Add a PTR record at `name` naming `target`; `false` if it was
    /// already there or invalid.
    pub fn insert_ptr_at(&mut self, name: &str, target: &str) -> bool {
        let Some(target) = self.name_id(target) else { return false };
        let id = self.name_id(name);
        self.add(id, Value::Ptr { target })
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
}

#[cfg(test)]
mod tests {
    use std::net::Ipv4Addr;

    use super::*;

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
}
