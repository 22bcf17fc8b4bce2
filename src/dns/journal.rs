//! The zone's recent history, for IXFR (RFC 1995): the records each
//! published version deleted and added, by serial, bounded by count
//! ([`MAX_STEPS`]) and by memory ([`MAX_BYTES`]). It follows the swaps of
//! the snapshot in service ([`Published::follow_swaps`]): a live version
//! is compared with the one before at the names it changed; a build from
//! a whole state, everywhere; a full compile of the same records (same
//! serial) adds nothing.

use std::collections::{BTreeSet, HashMap, VecDeque};
use std::sync::{Arc, Mutex};

use tokio::sync::{mpsc, watch};

use crate::proto::{serial_newer, skip_name, wire_name};
use crate::snapshot::{Published, Swapped, SwappedNames};
use crate::zone::ZoneView;

/// The most versions remembered.
pub const MAX_STEPS: usize = 10_000;
/// The most bytes of records remembered (owner names and RR tails).
pub const MAX_BYTES: usize = 64 << 20;

/// One RR: its owner's wire name, then its tail (type, class, TTL,
/// RDLENGTH, RDATA).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Rr(Box<[u8]>);

impl Rr {
    fn new(owner: &[u8], tail: &[u8]) -> Rr {
        let mut bytes = Vec::with_capacity(owner.len() + tail.len());
        bytes.extend_from_slice(owner);
        bytes.extend_from_slice(tail);
        Rr(bytes.into_boxed_slice())
    }

    /// The owner name (wire form) and the tail.
    pub fn split(&self) -> (&[u8], &[u8]) {
        let end = skip_name(&self.0, 0).unwrap_or(self.0.len());
        self.0.split_at(end.min(self.0.len()))
    }

    fn len(&self) -> usize {
        self.0.len()
    }
}

/// What one version changed: from the zone numbered `from` to the one
/// numbered `to`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Step {
    /// The serial before.
    pub from: u32,
    /// The serial after.
    pub to: u32,
    /// RRs the version removed.
    pub deleted: Vec<Rr>,
    /// RRs the version added.
    pub added: Vec<Rr>,
}

impl Step {
    fn bytes(&self) -> usize {
        self.deleted.iter().chain(&self.added).map(Rr::len).sum()
    }
}

/// The changes from one serial to the newest, condensed into one
/// difference (RFC 1995 §4: a record added then removed is in neither).
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Changes<'a> {
    /// RRs to remove from the older zone, sorted.
    pub deleted: Vec<&'a Rr>,
    /// RRs to add, sorted.
    pub added: Vec<&'a Rr>,
}

/// The remembered versions, oldest first; each step starts where the one
/// before ended.
#[derive(Debug, Default)]
pub struct Journal {
    steps: VecDeque<Step>,
    bytes: usize,
}

impl Journal {
    /// Remember `step`; forget the oldest beyond the bounds. A step that
    /// does not start at the newest serial starts the history afresh.
    pub fn push(&mut self, step: Step) {
        if self.newest().is_some_and(|newest| newest != step.from) {
            self.steps.clear();
            self.bytes = 0;
        }
        self.bytes += step.bytes();
        self.steps.push_back(step);
        while self.steps.len() > MAX_STEPS || (self.bytes > MAX_BYTES && self.steps.len() > 1) {
            if let Some(old) = self.steps.pop_front() {
                self.bytes -= old.bytes();
            }
        }
    }

    /// The serial of the newest version remembered.
    pub fn newest(&self) -> Option<u32> {
        self.steps.back().map(|s| s.to)
    }

    /// How many versions and bytes are remembered.
    pub fn size(&self) -> (usize, usize) {
        (self.steps.len(), self.bytes)
    }

    /// The changes from the zone numbered `serial` to the newest; `None`
    /// when that version is not remembered.
    pub fn since(&self, serial: u32) -> Option<Changes<'_>> {
        if self.newest() == Some(serial) {
            return Some(Changes::default());
        }
        let first = self.steps.iter().position(|s| s.from == serial)?;
        // Each RR's net fate: true added, false deleted.
        let mut net: HashMap<&Rr, bool> = HashMap::new();
        for step in self.steps.iter().skip(first) {
            for rr in &step.deleted {
                if net.remove(rr) != Some(true) {
                    net.insert(rr, false);
                }
            }
            for rr in &step.added {
                if net.remove(rr) != Some(false) {
                    net.insert(rr, true);
                }
            }
        }
        let mut changes = Changes::default();
        for (rr, added) in net {
            if added { changes.added.push(rr) } else { changes.deleted.push(rr) }
        }
        changes.deleted.sort_unstable();
        changes.added.sort_unstable();
        Some(changes)
    }
}

/// The journal as the transfer code reads it, kept by [`History::follow`].
#[derive(Debug)]
pub struct History {
    journal: Mutex<Journal>,
    /// The newest serial remembered, for those who tell secondaries.
    newest: watch::Sender<Option<u32>>,
}

impl Default for History {
    fn default() -> Self {
        History { journal: Mutex::new(Journal::default()), newest: watch::Sender::new(None) }
    }
}

impl History {
    /// Read the journal.
    pub fn read<T>(&self, f: impl FnOnce(&Journal) -> T) -> Option<T> {
        self.journal.lock().ok().map(|j| f(&j))
    }

    /// Wakes its holder when a version is remembered (with its serial).
    pub fn newest(&self) -> watch::Receiver<Option<u32>> {
        self.newest.subscribe()
    }

    /// Record every version `published` puts in service from the call on
    /// (the future does it), working out each one's changes on a blocking
    /// thread, in order.
    pub fn follow(self: Arc<Self>, published: &Published) -> impl Future<Output = ()> + use<> {
        let swaps = published.follow_swaps();
        async move {
            if let Some(mut swaps) = swaps {
                self.follow_from(&mut swaps).await;
            }
        }
    }

    async fn follow_from(self: Arc<Self>, swaps: &mut mpsc::UnboundedReceiver<Swapped>) {
        while let Some(swapped) = swaps.recv().await {
            let me = Arc::clone(&self);
            let _ = tokio::task::spawn_blocking(move || me.record(&swapped)).await;
        }
    }

    /// Remember what `swapped` changed (nothing when it kept the serial).
    pub fn record(&self, swapped: &Swapped) {
        let Some(step) = step(swapped) else { return };
        let to = step.to;
        if let Ok(mut journal) = self.journal.lock() {
            journal.push(step);
        }
        self.newest.send_replace(Some(to));
    }
}

/// What a swap changed; `None` when it changed nothing (the same serial).
fn step(swapped: &Swapped) -> Option<Step> {
    let (old, new) = (&swapped.old, &swapped.new);
    let (from, to) = (old.serial(), new.serial());
    if from == to {
        return None;
    }
    if !serial_newer(to, from) {
        tracing::warn!(from, to, "zone serial went back: IXFR history restarts");
    }
    let (old_view, new_view) = (old.view(), new.view());
    let mut step = Step { from, to, ..Step::default() };
    match &swapped.changed {
        SwappedNames::Names(names) => {
            // A name may be listed twice (changed, and an SRV target).
            // Names of the domain only (not `ptrOn`'s reverse names).
            let apex = new_view.base().apex();
            let names: BTreeSet<Vec<u8>> =
                names.iter().filter_map(|n| wire_name(n)).filter(|w| w.ends_with(apex)).collect();
            for wire in &names {
                diff_name(old_view, new_view, wire, &mut step);
            }
        }
        SwappedNames::Everything | SwappedNames::Nothing => {
            for (zone, node) in new_view.owners() {
                diff_name(old_view, new_view, zone.owner(node), &mut step);
            }
            for (zone, node) in old_view.owners() {
                let owner = zone.owner(node);
                if new_view.node(owner).is_none_or(|(_, n)| !n.has_records()) {
                    step.deleted.extend(zone.tails(node).map(|tail| Rr::new(owner, tail)));
                }
            }
        }
    }
    Some(step)
}

/// Add to `step` the RRs at `owner` that `old` has and `new` has not
/// (deleted), and the other way round (added).
fn diff_name(old: ZoneView<'_>, new: ZoneView<'_>, owner: &[u8], step: &mut Step) {
    let (before, after) = (tails_at(old, owner), tails_at(new, owner));
    step.deleted.extend(
        before.iter().filter(|t| after.binary_search(t).is_err()).map(|t| Rr::new(owner, t)),
    );
    step.added.extend(
        after.iter().filter(|t| before.binary_search(t).is_err()).map(|t| Rr::new(owner, t)),
    );
}

/// The RR tails at `owner` in `view`, sorted, each once.
fn tails_at<'z>(view: ZoneView<'z>, owner: &[u8]) -> Vec<&'z [u8]> {
    let mut tails: Vec<&[u8]> =
        view.node(owner).map(|(z, n)| z.tails(n).collect()).unwrap_or_default();
    tails.sort_unstable();
    tails.dedup();
    tails
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rr(name: &str, last: u8) -> Rr {
        Rr::new(&wire_name(name).unwrap(), &[0, 1, 0, 1, 0, 0, 0, 60, 0, 4, 10, 0, 0, last])
    }

    fn step(from: u32, to: u32, deleted: Vec<Rr>, added: Vec<Rr>) -> Step {
        Step { from, to, deleted, added }
    }

    #[test]
    fn changes_since_a_serial_are_condensed() {
        let mut j = Journal::default();
        j.push(step(1, 2, vec![], vec![rr("a.mesos.", 1), rr("b.mesos.", 2)]));
        j.push(step(2, 3, vec![rr("a.mesos.", 1), rr("c.mesos.", 3)], vec![rr("d.mesos.", 4)]));
        j.push(step(3, 4, vec![rr("d.mesos.", 4)], vec![rr("c.mesos.", 3)]));
        assert_eq!(j.newest(), Some(4));
        let c = j.since(1).unwrap();
        // a added then removed: neither; c removed then added back: neither.
        assert_eq!(c.added, vec![&rr("b.mesos.", 2)]);
        assert!(c.deleted.is_empty());
        let c = j.since(3).unwrap();
        assert_eq!((c.deleted, c.added), (vec![&rr("d.mesos.", 4)], vec![&rr("c.mesos.", 3)]));
        assert!(j.since(4).unwrap() == Changes::default(), "the newest: nothing to send");
        assert!(j.since(0).is_none(), "not remembered");
    }

    #[test]
    fn the_history_is_bounded_and_restarts_at_a_gap() {
        let mut j = Journal::default();
        for s in 0..(MAX_STEPS as u32 + 10) {
            j.push(step(s, s + 1, vec![], vec![rr("a.mesos.", s as u8)]));
        }
        assert_eq!(j.size().0, MAX_STEPS);
        assert!(j.since(9).is_none() && j.since(10).is_some());
        j.push(step(5, 6, vec![], vec![]));
        assert_eq!(j.size().0, 1, "a step from elsewhere starts afresh");
        assert_eq!(j.newest(), Some(6));
        let x = rr("x.mesos.", 1);
        let (owner, tail) = x.split();
        assert_eq!((owner, tail.len()), (&wire_name("x.mesos.").unwrap()[..], 14));
    }
}
