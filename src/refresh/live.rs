//! New versions in proportion to the change: the records of the parts of
//! the cluster an event touched are generated again, alone; the names
//! whose records that changed are compiled into a small zone, laid over
//! the zone in service. Now and then a full compile folds the overlay
//! away (`follow`).

use std::sync::Arc;

use crate::config::Config;
use crate::generate::{GenerateError, HostResolver, Parts, generate_parts};
use crate::records::live::{Contributor, LiveIndex, Standing};
use crate::snapshot::Snapshot;
use crate::state::State;
use crate::state::cluster::{Cluster, Touched};
use crate::zone::{Batch, Overlay, Zone};

/// What generating one part's records needs.
pub struct Generation<'a> {
    /// The config (domain, label rules, IP sources...).
    pub config: &'a Config,
    /// The known masters, for the masters' records.
    pub masters: &'a [String],
    /// Resolves host names found in the state.
    pub resolver: &'a dyn HostResolver,
}

impl Generation<'_> {
    /// Every part's records, from scratch (their names are not marked
    /// changed: a full build of the same cluster is what is in service).
    pub fn index(&self, cluster: &Cluster) -> Result<LiveIndex, GenerateError> {
        let mut index = LiveIndex::new(&self.config.domain);
        let mut global = State::default();
        cluster.leader().clone_into(&mut global.leader);
        let masters = Parts { masters: true, ..Parts::NONE };
        index.set(
            Contributor::Masters,
            &generate_parts(&global, self.config, self.masters, self.resolver, masters)?,
        );
        self.update(&mut index, cluster, cluster.parts())?;
        // A full build of the same cluster is in service: nothing to lay
        // over it yet.
        index.take_changed();
        index.take_retargeted();
        index.shrink_to_fit();
        Ok(index)
    }

    /// Generate again the records of each part `touched`.
    pub fn update(
        &self,
        index: &mut LiveIndex,
        cluster: &Cluster,
        touched: impl IntoIterator<Item = Touched>,
    ) -> Result<(), GenerateError> {
        for part in touched {
            let (who, parts) = match &part {
                Touched::Task(f, t) => (Contributor::Task(f.clone(), t.clone()), Parts::TASKS),
                Touched::Framework(f) => {
                    (Contributor::Framework(f.clone()), Parts { frameworks: true, ..Parts::NONE })
                }
                Touched::Agent(a) => {
                    (Contributor::Agent(a.clone()), Parts { agents: true, ..Parts::NONE })
                }
            };
            match cluster.part_state(&part) {
                Some(state) => {
                    let records =
                        generate_parts(&state, self.config, self.masters, self.resolver, parts)?;
                    index.set(who, &records);
                }
                None => index.remove_contributor(&who),
            }
        }
        Ok(())
    }
}

/// A version made of what changed.
#[derive(Debug)]
pub struct Version {
    /// The zone in service with the changed names laid over it.
    pub snapshot: Snapshot,
    /// The names whose answers may differ from the version before: those
    /// laid over, and the targets of SRV records added or removed.
    pub changed: Vec<String>,
}

/// The version after `current`: the names `index` says changed since the
/// last version, compiled with `serial`, over `current`'s zone. `None`
/// when no name changed.
pub fn next_version(
    current: &Snapshot,
    index: &mut LiveIndex,
    config: &Config,
    serial: u32,
    version: u64,
) -> Option<Version> {
    let changed = index.take_changed();
    let mut woken = index.take_retargeted();
    if changed.is_empty() {
        return None;
    }
    let with_records = changed.iter().filter(|(_, s)| *s == Standing::Records).map(|(id, _)| *id);
    let records = index.record_set(with_records);
    let zone = Zone::compile(&records, config, serial);
    let batch = Arc::new(Batch { zone, records });
    let names = changed.iter().map(|&(id, standing)| (index.name(id), standing));
    let overlay = Overlay::with(current.overlay.as_ref(), batch, version, names);
    let snapshot = Snapshot::with_overlay(current, overlay);
    woken.extend(changed.iter().map(|&(id, _)| index.name(id).to_owned()));
    index.release(changed.iter().map(|(id, _)| *id));
    Some(Version { snapshot, changed: woken })
}
