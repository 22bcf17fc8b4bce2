//! The overlay: the names changed since the zone was compiled, each with
//! what it is now, over that compiled zone. A new version compiles only
//! the names it changes (with their SRV targets, for glue) into a small
//! zone of its own, and shares the rest: the cost of a version grows with
//! the change, not with the cluster. A fresh full compile folds the
//! overlay away.

use std::collections::HashMap;
use std::sync::Arc;

use super::{Node, Span, Zone};
use crate::proto::{name_text, wire_name};
use crate::records::live::Standing;
use crate::records::{NameId, RecordSet, RrSet};

/// The names one version changed: their records, compiled.
#[derive(Debug)]
pub struct Batch {
    /// The zone of those records (with the version's serial).
    pub zone: Zone,
    /// The records (for the HTTP API).
    pub records: RecordSet,
}

/// What a changed name is now.
#[derive(Debug, Clone)]
enum Layer {
    /// It holds records: those of its node in this batch.
    Records(Arc<Batch>),
    /// It holds none, but names below it do.
    Empty,
    /// It does not exist.
    Gone,
}

/// The node of an empty non-terminal.
static EMPTY: Node = Node {
    key: Span { start: 0, len: 0 },
    a: Span { start: 0, len: 0 },
    aaaa: Span { start: 0, len: 0 },
    srv_start: 0,
    srv_len: 0,
    ptr: Span { start: 0, len: 0 },
};

/// Changed names by lower-case wire name (foldhash: looked up per query).
type Names = HashMap<Box<[u8]>, (Layer, u64), foldhash::fast::RandomState>;

/// The changed names over a compiled zone, by lower-case wire name, each
/// with the number of the version that changed it last.
#[derive(Debug, Clone)]
pub struct Overlay {
    names: Names,
    /// The newest version's batch: its SOA carries the newest serial.
    head: Arc<Batch>,
}

impl Overlay {
    /// `previous` (if any) with the names version `version` changed:
    /// `batch` holds the records of those that have records (compiled
    /// with the version's serial); `changed` says what each is now.
    pub fn with<'n>(
        previous: Option<&Overlay>,
        batch: Arc<Batch>,
        version: u64,
        changed: impl IntoIterator<Item = (&'n str, Standing)>,
    ) -> Overlay {
        let mut names = previous.map(|o| o.names.clone()).unwrap_or_default();
        for (name, standing) in changed {
            let Some(wire) = wire_name(name) else { continue };
            let layer = match standing {
                Standing::Records => Layer::Records(Arc::clone(&batch)),
                Standing::Empty => Layer::Empty,
                Standing::Gone => Layer::Gone,
            };
            names.insert(wire.into_boxed_slice(), (layer, version));
        }
        Overlay { names, head: batch }
    }

    /// The names changed after version `version` (a full compile made at
    /// that version holds the others); `None` when there are none.
    pub fn after(&self, version: u64) -> Option<Overlay> {
        let names: Names = self
            .names
            .iter()
            .filter(|(_, (_, v))| *v > version)
            .map(|(k, l)| (k.clone(), l.clone()))
            .collect();
        (!names.is_empty()).then(|| Overlay { names, head: Arc::clone(&self.head) })
    }

    /// The records of `name` (lower case, fully qualified) if the overlay
    /// changed it: `Some(None)` when it holds none now.
    pub fn get(&self, name: &str) -> Option<Option<RrSet>> {
        let wire = wire_name(name)?;
        Some(match &self.names.get(&*wire)?.0 {
            Layer::Records(batch) => batch.records.get(name),
            Layer::Empty | Layer::Gone => None,
        })
    }

    /// Whether it overrides `name` (lower case, fully qualified).
    pub fn overrides(&self, name: &str) -> bool {
        wire_name(name).is_some_and(|wire| self.names.contains_key(&*wire))
    }

    /// The names it gives records, each with the record set of the version
    /// that changed it last (which holds them).
    pub fn with_records(&self) -> impl Iterator<Item = (&RecordSet, NameId)> + '_ {
        self.names.iter().filter_map(|(wire, (layer, _))| match layer {
            Layer::Records(batch) => {
                batch.records.find(&name_text(wire)).map(|id| (&batch.records, id))
            }
            Layer::Empty | Layer::Gone => None,
        })
    }

    /// How many names it overrides.
    pub fn len(&self) -> usize {
        self.names.len()
    }

    /// Whether it overrides no name.
    pub fn is_empty(&self) -> bool {
        self.names.is_empty()
    }

    /// The names it overrides, as text (`web.marathon.mesos.`).
    pub fn names(&self) -> impl Iterator<Item = String> + '_ {
        self.names.keys().map(|wire| name_text(wire))
    }

    /// The serial of the newest version.
    pub fn serial(&self) -> u32 {
        self.head.zone.serial
    }
}

/// A compiled zone seen through its overlay: what DNS answers from.
#[derive(Debug, Clone, Copy)]
pub struct ZoneView<'a> {
    base: &'a Zone,
    overlay: Option<&'a Overlay>,
}

impl<'a> ZoneView<'a> {
    /// `base` as changed by `overlay`.
    pub fn new(base: &'a Zone, overlay: Option<&'a Overlay>) -> Self {
        ZoneView { base, overlay }
    }

    /// The node of a lower-case wire name, and the zone its spans are in.
    pub fn node(&self, wire: &[u8]) -> Option<(&'a Zone, &'a Node)> {
        if let Some((layer, _)) = self.overlay.and_then(|o| o.names.get(wire)) {
            return match layer {
                Layer::Records(batch) => batch.zone.node(wire).map(|n| (&batch.zone, n)),
                Layer::Empty => Some((self.base, &EMPTY)),
                Layer::Gone => None,
            };
        }
        self.base.node(wire).map(|n| (self.base, n))
    }

    /// Every name holding records in this version: the zone its node is
    /// in, and the node.
    pub fn owners(&self) -> impl Iterator<Item = (&'a Zone, &'a Node)> + 'a {
        let (base, overlay) = (self.base, self.overlay);
        let kept = base
            .owners()
            .filter(move |n| overlay.is_none_or(|o| !o.names.contains_key(base.owner(n))))
            .map(move |n| (base, n));
        // Names of the domain only (not `ptrOn`'s reverse names).
        let changed =
            overlay.into_iter().flat_map(|o| &o.names).filter_map(move |(wire, (layer, _))| {
                match layer {
                    Layer::Records(batch) if wire.ends_with(base.apex()) => {
                        batch.zone.node(wire).map(|n| (&batch.zone, n))
                    }
                    Layer::Records(_) | Layer::Empty | Layer::Gone => None,
                }
            });
        kept.chain(changed)
    }

    /// The zone whose SOA carries the newest serial.
    pub fn head(&self) -> &'a Zone {
        self.overlay.map_or(self.base, |o| &o.head.zone)
    }

    /// The compiled zone under the overlay (the apex's NS and its glue).
    pub fn base(&self) -> &'a Zone {
        self.base
    }
}
