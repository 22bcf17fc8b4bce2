//! The published snapshot: what is in service (the compiled zone for DNS,
//! the record set for HTTP, the leader it came from), swapped in whole by
//! the refresh loop with one atomic pointer swap. Serving reads it and
//! never waits; nothing here knows how a snapshot was made.

use std::collections::HashMap;
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use arc_swap::ArcSwapOption;
use prometheus_client::encoding::DescriptorEncoder;
use tokio::sync::{Notify, mpsc, watch};

use crate::metrics::{Export, gauge};
use crate::proto::serial_newer;
use crate::records::{AxfrRecords, RecordSet, RrSet, Value};
use crate::zone::{Overlay, Zone, ZoneView};

/// What is in service: the zone for DNS and the record set for HTTP.
#[derive(Debug)]
pub struct Snapshot {
    /// The compiled zone the DNS hot path answers from (through the
    /// overlay, when there is one).
    pub zone: Arc<Zone>,
    /// The names changed since `zone` was compiled (live records).
    pub overlay: Option<Overlay>,
    /// The record set `zone` was compiled from, which the HTTP API shows.
    pub records: Arc<RecordSet>,
    /// The leading master named by the state (`host:port`), if any.
    pub leader: Option<String>,
    /// When it was published.
    pub loaded_at: SystemTime,
    /// When the state `records` were generated from was taken.
    pub state_taken: Instant,
    /// Its place in the order of snapshots put in service: grows with
    /// each ([`Published::swap`]).
    pub index: u64,
    /// How long each stage of the refresh that made it took.
    pub timings: Timings,
    /// When the masters last confirmed these records current, in
    /// milliseconds since the epoch: when they were published, then each
    /// event or heartbeat of the stream that changed nothing.
    pub confirmed: AtomicU64,
}

impl Snapshot {
    /// A snapshot published now (of a state taken now: see
    /// [`Snapshot::taken`]).
    pub fn new(zone: Zone, records: RecordSet, leader: Option<String>, timings: Timings) -> Self {
        let now = SystemTime::now();
        Snapshot {
            zone: Arc::new(zone),
            overlay: None,
            records: Arc::new(records),
            leader,
            loaded_at: now,
            state_taken: Instant::now(),
            index: 0,
            timings,
            confirmed: AtomicU64::new(millis(now)),
        }
    }

    /// `base`'s zone and records with one more version over them.
    pub fn with_overlay(base: &Snapshot, overlay: Overlay) -> Self {
        let now = SystemTime::now();
        Snapshot {
            zone: Arc::clone(&base.zone),
            overlay: Some(overlay),
            records: Arc::clone(&base.records),
            leader: base.leader.clone(),
            loaded_at: now,
            state_taken: base.state_taken,
            index: 0,
            timings: Timings::default(),
            confirmed: AtomicU64::new(millis(now)),
        }
    }

    /// The same, of a state taken at `taken`.
    pub fn taken(self, taken: Instant) -> Self {
        Snapshot { state_taken: taken, ..self }
    }

    /// What DNS answers from: the zone through its overlay.
    pub fn view(&self) -> ZoneView<'_> {
        ZoneView::new(&self.zone, self.overlay.as_ref())
    }

    /// The records at `name` (lower case, fully qualified), as the newest
    /// version has them.
    pub fn get(&self, name: &str) -> Option<RrSet> {
        match self.overlay.as_ref().and_then(|o| o.get(name)) {
            Some(now) => now,
            None => self.records.get(name),
        }
    }

    /// Every name holding records in the newest version, with the record
    /// set that holds them, sorted: the records of `/v1/axfr`.
    pub fn axfr_records(&self) -> AxfrRecords<'_> {
        let Some(overlay) = &self.overlay else {
            return self.records.axfr_records();
        };
        let base = self.records.names().filter(|&id| !overlay.overrides(self.records.name(id)));
        AxfrRecords::new(base.map(|id| (&*self.records, id)).chain(overlay.with_records()))
    }

    /// The SRV records of the newest version whose target is `target`:
    /// (owner name, port).
    pub fn srv_targeting(&self, target: &str) -> Vec<(&str, u16)> {
        let mut out = self.records.srv_targeting(target);
        if let Some(overlay) = &self.overlay {
            out.retain(|(owner, _)| !overlay.overrides(owner));
            for (rs, id) in overlay.with_records() {
                for value in rs.values(id) {
                    if let Value::Srv { target: t, port } = value
                        && rs.name(t) == target
                    {
                        out.push((rs.name(id), port));
                    }
                }
            }
        }
        out
    }

    /// The serial of the newest version: the SOA's.
    pub fn serial(&self) -> u32 {
        self.overlay.as_ref().map_or(self.zone.serial, Overlay::serial)
    }

    /// The masters have confirmed the records current just now.
    pub fn confirm(&self) {
        self.confirmed.store(millis(SystemTime::now()), Ordering::Relaxed);
    }

    /// How long ago the masters last confirmed the records current.
    pub fn unconfirmed_for(&self) -> Duration {
        let then = UNIX_EPOCH + Duration::from_millis(self.confirmed.load(Ordering::Relaxed));
        SystemTime::now().duration_since(then).unwrap_or_default()
    }
}

/// A watch on one name's answer ([`Published::watch`]).
#[derive(Debug)]
pub struct NameWatch<'a> {
    published: &'a Published,
    name: Box<str>,
    notify: Arc<Notify>,
}

impl NameWatch<'_> {
    /// Resolves at the next swap that may change the name's answer. (Make
    /// the future, and `enable` it, before reading the snapshot: a swap in
    /// between then wakes it.)
    pub fn changed(&self) -> tokio::sync::futures::Notified<'_> {
        self.notify.notified()
    }
}

impl Drop for NameWatch<'_> {
    fn drop(&mut self) {
        if let Ok(mut watched) = self.published.watched.lock()
            && let Some((_, holders)) = watched.get_mut(&self.name)
        {
            *holders = holders.saturating_sub(1);
            if *holders == 0 {
                watched.remove(&self.name);
            }
        }
    }
}

fn millis(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH).map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// The cost of each refresh stage (the fetch itself is not included).
#[derive(Debug, Clone, Copy, Default)]
pub struct Timings {
    /// State JSON bytes → `State`.
    pub parse: Duration,
    /// `State` → `RecordSet`.
    pub generate: Duration,
    /// `RecordSet` → `Zone`.
    pub compile: Duration,
}

/// The snapshot in service, shared by the refresh loop and the servers.
pub type Current = Arc<Published>;

/// The snapshot in service, swapped atomically (readers never wait; empty
/// until the first state has loaded), with what waiting on it needs: a
/// signal of each swap, and one per watched name when its answer may have
/// changed.
#[derive(Debug)]
pub struct Published {
    slot: ArcSwapOption<Snapshot>,
    /// The index of the snapshot in service ([`Snapshot::index`]).
    swaps: watch::Sender<u64>,
    /// The index before the first snapshot of this run.
    base: u64,
    /// Watched names (lower case, fully qualified): a signal, and how many
    /// hold it.
    watched: Mutex<Watched>,
    /// Asks the refresh loop for a full compile now.
    wanted: Notify,
    /// Where each swap is told, once someone follows them
    /// ([`Published::follow_swaps`]).
    followers: OnceLock<mpsc::UnboundedSender<Swapped>>,
    /// The serial to number versions after, before the first one of this
    /// run ([`Published::resume_after`]).
    resumed: OnceLock<u32>,
}

/// One swap, for those who keep a history of versions (zone transfers).
#[derive(Debug)]
pub struct Swapped {
    /// The snapshot replaced.
    pub old: Arc<Snapshot>,
    /// The snapshot put in service.
    pub new: Arc<Snapshot>,
    /// What it changed.
    pub changed: SwappedNames,
}

/// [`Changed`], owned.
#[derive(Debug)]
pub enum SwappedNames {
    /// Any name may differ.
    Everything,
    /// Only these names may differ.
    Names(Vec<String>),
    /// The same records.
    Nothing,
}

/// Watched names (lower case, fully qualified): each one's signal, and how
/// many watches hold it.
type Watched = HashMap<Box<str>, (Arc<Notify>, usize)>;

/// What a new snapshot changed, for those watching names.
#[derive(Debug, Clone, Copy)]
pub enum Changed<'a> {
    /// Any answer may differ (records built from a whole state).
    Everything,
    /// Only these names' answers may differ.
    Names(&'a [String]),
    /// No answer differs (the same records compiled afresh).
    Nothing,
}

impl Default for Published {
    fn default() -> Self {
        // Indexes start at this run's start time in milliseconds, times a
        // thousand: those of an earlier run are below, whatever it did.
        let base = millis(SystemTime::now()).saturating_mul(1000);
        Published {
            slot: ArcSwapOption::empty(),
            swaps: watch::Sender::new(base),
            base,
            watched: Mutex::new(HashMap::new()),
            wanted: Notify::new(),
            followers: OnceLock::new(),
            resumed: OnceLock::new(),
        }
    }
}

impl Published {
    /// The snapshot in service, borrowed for a short read.
    pub fn load(&self) -> arc_swap::Guard<Option<Arc<Snapshot>>> {
        self.slot.load()
    }

    /// The snapshot in service, held as long as needed.
    pub fn load_full(&self) -> Option<Arc<Snapshot>> {
        self.slot.load_full()
    }

    /// Put `snapshot` in service under the next index, and wake those
    /// watching the names it `changed`. Returns it and the one it replaces.
    /// (One refresh loop swaps: the index is not raced for.)
    pub fn swap(
        &self,
        mut snapshot: Snapshot,
        changed: Changed<'_>,
    ) -> (Arc<Snapshot>, Option<Arc<Snapshot>>) {
        snapshot.index = self.swaps.borrow().saturating_add(1);
        let index = snapshot.index;
        let snapshot = Arc::new(snapshot);
        let old = self.slot.swap(Some(Arc::clone(&snapshot)));
        if let Ok(watched) = self.watched.lock() {
            match changed {
                Changed::Everything => watched.values().for_each(|(n, _)| n.notify_waiters()),
                Changed::Names(names) => names
                    .iter()
                    .filter_map(|name| watched.get(name.as_str()))
                    .for_each(|(n, _)| n.notify_waiters()),
                Changed::Nothing => {}
            }
        }
        if let (Some(followers), Some(old)) = (self.followers.get(), &old) {
            let changed = match changed {
                Changed::Everything => SwappedNames::Everything,
                Changed::Names(names) => SwappedNames::Names(names.to_vec()),
                Changed::Nothing => SwappedNames::Nothing,
            };
            let swapped = Swapped { old: Arc::clone(old), new: Arc::clone(&snapshot), changed };
            let _ = followers.send(swapped);
        }
        self.swaps.send_replace(index);
        (snapshot, old)
    }

    /// Number this run's versions after `serial` (an earlier run's, which
    /// secondaries hold), not from the clock. Only before the first
    /// snapshot; once.
    pub fn resume_after(&self, serial: u32) {
        let _ = self.resumed.set(serial);
    }

    /// The serial the next version follows: the one in service, or the
    /// one resumed after.
    pub fn serial(&self) -> Option<u32> {
        self.load().as_ref().map(|s| s.serial()).or_else(|| self.resumed.get().copied())
    }

    /// Every swap from now on, in order (for one follower: `None` once
    /// someone follows them).
    pub fn follow_swaps(&self) -> Option<mpsc::UnboundedReceiver<Swapped>> {
        let (tx, rx) = mpsc::unbounded_channel();
        self.followers.set(tx).ok().map(|()| rx)
    }

    /// The index before the first snapshot of this run: below any index of
    /// this run, above any of an earlier run.
    pub fn base(&self) -> u64 {
        self.base
    }

    /// A signal for when the answer at `name` (lower case, fully
    /// qualified) may have changed, held until the watch is dropped.
    pub fn watch(&self, name: &str) -> NameWatch<'_> {
        let notify = match self.watched.lock() {
            Ok(mut watched) => {
                let (n, holders) =
                    watched.entry(name.into()).or_insert_with(|| (Arc::new(Notify::new()), 0));
                *holders += 1;
                Arc::clone(n)
            }
            Err(_) => Arc::new(Notify::new()),
        };
        NameWatch { published: self, name: name.into(), notify }
    }

    /// How many names are watched.
    pub fn watched(&self) -> usize {
        self.watched.lock().map_or(0, |w| w.len())
    }

    /// Wakes its holder at each swap.
    pub fn changes(&self) -> watch::Receiver<u64> {
        self.swaps.subscribe()
    }

    /// A snapshot whose record set is whole (no overlay over it, or one
    /// compiled from a state taken after this call): what the views of the
    /// whole record set (`/v1/enumerate`) read. With live records this asks
    /// for a full compile and waits for it, at most `limit`; then, or
    /// without records, it settles for the snapshot in service.
    pub async fn whole(&self, limit: Duration) -> Option<Arc<Snapshot>> {
        let asked = Instant::now();
        let mut changes = self.changes();
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            let s = self.load_full()?;
            if s.overlay.is_none() || s.state_taken >= asked {
                return Some(s);
            }
            self.wanted.notify_one();
            let changed = tokio::time::timeout_at(deadline, changes.changed()).await;
            if !matches!(changed, Ok(Ok(()))) {
                return self.load_full();
            }
        }
    }

    /// Resolves when someone waits for a whole record set
    /// ([`Published::whole`]).
    pub async fn compile_wanted(&self) {
        self.wanted.notified().await;
    }
}

/// The serial of a zone made now: seconds since the epoch, as the original
/// numbers its zones.
pub fn new_serial() -> u32 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u32::try_from(d.as_secs()).unwrap_or(u32::MAX))
}

/// The serial of the version after one numbered `previous`: the time, or
/// one more than `previous` when versions come faster than one a second
/// (serial arithmetic, RFC 1982: the clock is not ahead of `previous`).
pub fn next_serial(previous: Option<u32>) -> u32 {
    let now = new_serial();
    match previous {
        Some(p) if !serial_newer(now, p) => p.wrapping_add(1),
        _ => now,
    }
}

/// The records in service, as metrics.
#[derive(Debug)]
pub struct InService(pub Current);

impl Export for InService {
    fn export(&self, e: &mut DescriptorEncoder) -> fmt::Result {
        let current = self.0.load();
        let unhealthy = current.as_ref().map_or(0, |s| s.records.unhealthy);
        let (a, aaaa, srv, names, skipped, age, leader) = match current.as_ref() {
            Some(s) => {
                let age = SystemTime::now().duration_since(s.loaded_at).unwrap_or_default();
                let st = s.zone.stats;
                (
                    st.a,
                    st.aaaa,
                    st.srv,
                    st.names,
                    s.records.skipped,
                    age.as_secs_f64(),
                    s.leader.clone(),
                )
            }
            None => (0, 0, 0, 0, 0, -1.0, None),
        };
        gauge(
            e,
            "mesos_dns_records",
            "Records in service, by type",
            &[
                (vec![("type", "A")], a as f64),
                (vec![("type", "AAAA")], aaaa as f64),
                (vec![("type", "SRV")], srv as f64),
            ],
        )?;
        gauge(
            e,
            "mesos_dns_names",
            "Names in the zone (including empty non-terminals)",
            &[(vec![], names as f64)],
        )?;
        gauge(
            e,
            "mesos_dns_records_skipped",
            "Records of the last state not produced because they cannot exist in DNS",
            &[(vec![], skipped as f64)],
        )?;
        gauge(
            e,
            "mesos_dns_tasks_left_out",
            "Running tasks without records, by reason (healthyOnly: as of the last full compile)",
            &[(vec![("reason", "unhealthy")], unhealthy as f64)],
        )?;
        gauge(
            e,
            "mesos_dns_records_age_seconds",
            "Age of the records in service (-1 before the first load)",
            &[(vec![], age)],
        )?;
        let leader = leader.unwrap_or_default();
        gauge(
            e,
            "mesos_dns_leader",
            "The leading master of the records in service",
            &[(vec![("leader", leader.as_str())], 1.0)],
        )?;
        gauge(
            e,
            "mesos_dns_watched_names",
            "Names that blocking queries are waiting on",
            &[(vec![], self.0.watched() as f64)],
        )
    }
}
