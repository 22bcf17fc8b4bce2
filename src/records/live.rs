//! Live records: the record set kept up to date one contributor at a time
//! (a task, a framework, an agent, or the masters), for the event stream.
//!
//! Each contributor's records are what generation gives for it alone
//! (`generate_parts`); a name's records are the union of its contributors'
//! (each value counted, so a value two tasks share stays while one of them
//! does). Replacing a contributor's records marks the names whose records
//! changed, and the ancestors whose standing as empty non-terminals
//! changed: those are what a new version must override.

use std::collections::{HashMap, HashSet};
use std::hash::BuildHasher;
use std::net::{Ipv4Addr, Ipv6Addr};

use hashbrown::HashTable;
use hashbrown::hash_table::Entry;

use super::{Hasher, RecordSet, Value};

/// Who contributes records.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Contributor {
    /// `SOAMname`, the leader and the masters.
    Masters,
    /// A framework's own records, by framework id.
    Framework(String),
    /// An agent's share of `slave.D.` and `_slave._tcp.D.`, by agent id.
    Agent(String),
    /// A task's records, by framework id and task key.
    Task(String, String),
}

/// A record's value, its SRV target as a live name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum LiveValue {
    /// An A record.
    A(Ipv4Addr),
    /// An AAAA record.
    Aaaa(Ipv6Addr),
    /// An SRV record: its target's id and the port.
    Srv {
        /// The target name.
        target: u32,
        /// The port.
        port: u16,
    },
    /// A PTR record: the name's id.
    Ptr {
        /// The target name.
        target: u32,
    },
}

impl LiveValue {
    /// The name an SRV or PTR record names (it is kept while named).
    fn target(self) -> Option<u32> {
        match self {
            LiveValue::Srv { target, .. } | LiveValue::Ptr { target } => Some(target),
            LiveValue::A(_) | LiveValue::Aaaa(_) => None,
        }
    }
}

/// What a name is, now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Standing {
    /// It holds records.
    Records,
    /// It holds none, but names below it do (an empty non-terminal).
    Empty,
    /// It does not exist.
    Gone,
}

/// The records of every contributor, by name.
#[derive(Debug, Default)]
pub struct LiveIndex {
    /// The apex, `mesos.`: ancestors are counted below it.
    apex: String,
    /// Name ids by name (the text is in `names`, only there).
    ids: HashTable<u32>,
    hasher: Hasher,
    names: Vec<Box<str>>,
    /// By name id: each value and how many contributors give it.
    values: Vec<Vec<(LiveValue, u32)>>,
    /// By name id: how many names holding records lie below it.
    below: Vec<u32>,
    /// By name id: the names whose SRV records name it as their target
    /// (once per such record): their answers carry its addresses as glue.
    targeted: Vec<Vec<u32>>,
    free: Vec<u32>,
    contributions: HashMap<Contributor, Vec<(u32, LiveValue)>>,
    changed: HashSet<u32>,
    /// The targets of SRV records added or removed since the last
    /// [`LiveIndex::take_retargeted`].
    retargeted: HashSet<u32>,
}

impl LiveIndex {
    /// An empty index for the domain `domain` (`mesos`).
    pub fn new(domain: &str) -> Self {
        LiveIndex { apex: format!("{}.", domain.trim_end_matches('.')), ..LiveIndex::default() }
    }

    /// Replace the records of `who` with `records` (empty: it is gone).
    pub fn set(&mut self, who: Contributor, records: &RecordSet) {
        let new: Vec<(u32, LiveValue)> = records
            .stored()
            .map(|(name, value)| {
                let name = self.intern(records.name(name));
                let value = match value {
                    Value::A(ip) => LiveValue::A(ip),
                    Value::Aaaa(ip) => LiveValue::Aaaa(ip),
                    Value::Srv { target, port } => {
                        LiveValue::Srv { target: self.intern(records.name(target)), port }
                    }
                    Value::Ptr { target } => {
                        LiveValue::Ptr { target: self.intern(records.name(target)) }
                    }
                };
                (name, value)
            })
            .collect();
        if self.contributions.get(&who).is_some_and(|old| *old == new) {
            return;
        }
        let old = self.contributions.remove(&who).unwrap_or_default();
        for &(name, value) in &new {
            self.add(name, value);
        }
        for &(name, value) in &old {
            self.remove(name, value);
        }
        if !new.is_empty() {
            self.contributions.insert(who, new);
        }
    }

    /// Remove every record of `who`.
    pub fn remove_contributor(&mut self, who: &Contributor) {
        for (name, value) in self.contributions.remove(who).unwrap_or_default() {
            self.remove(name, value);
        }
    }

    fn add(&mut self, name: u32, value: LiveValue) {
        let Some(values) = self.values.get_mut(name as usize) else { return };
        match values.iter_mut().find(|(v, _)| *v == value) {
            Some((_, n)) => *n += 1,
            None => {
                values.push((value, 1));
                self.changed.insert(name);
                if values.len() == 1 {
                    self.count_below(name, true);
                }
                if let Some(target) = value.target()
                    && let Some(t) = self.targeted.get_mut(target as usize)
                {
                    t.push(name);
                    self.retargeted.insert(target);
                }
            }
        }
    }

    fn remove(&mut self, name: u32, value: LiveValue) {
        let Some(values) = self.values.get_mut(name as usize) else { return };
        let Some(at) = values.iter().position(|(v, _)| *v == value) else { return };
        let gone = values.get_mut(at).is_some_and(|(_, n)| {
            *n -= 1;
            *n == 0
        });
        if !gone {
            return;
        }
        values.remove(at);
        self.changed.insert(name);
        if values.is_empty() {
            self.count_below(name, false);
        }
        if let Some(target) = value.target()
            && let Some(t) = self.targeted.get_mut(target as usize)
            && let Some(at) = t.iter().position(|&owner| owner == name)
        {
            t.swap_remove(at);
            self.retargeted.insert(target);
        }
    }

    /// A name gained its first record (`gained`) or lost its last: count it
    /// in each ancestor below the apex, and mark those whose standing
    /// changed.
    fn count_below(&mut self, name: u32, gained: bool) {
        let Some(text) = self.names.get(name as usize).cloned() else { return };
        let mut rest: &str = &text;
        while let Some((_, parent)) = rest.split_once('.') {
            if parent.len() <= self.apex.len() || !parent.ends_with(&*self.apex) {
                break;
            }
            rest = parent;
            let id = self.intern(parent);
            if let Some(n) = self.below.get_mut(id as usize) {
                let before = *n;
                *n = if gained { n.saturating_add(1) } else { n.saturating_sub(1) };
                if (before == 0) != (*n == 0) {
                    self.changed.insert(id);
                }
            }
        }
    }

    fn intern(&mut self, name: &str) -> u32 {
        let LiveIndex { ids, hasher, names, .. } = self;
        let text = |id: u32| names.get(id as usize).map_or("", |n| n);
        let entry = ids.entry(
            hasher.hash_one(name),
            |&id| text(id) == name,
            |&id| hasher.hash_one(text(id)),
        );
        let vacant = match entry {
            Entry::Occupied(e) => return *e.get(),
            Entry::Vacant(v) => v,
        };
        let id = match self.free.pop() {
            Some(id) => {
                if let Some(slot) = self.names.get_mut(id as usize) {
                    *slot = name.into();
                }
                id
            }
            None => {
                self.names.push(name.into());
                self.values.push(Vec::new());
                self.below.push(0);
                self.targeted.push(Vec::new());
                (self.names.len() - 1) as u32
            }
        };
        vacant.insert(id);
        id
    }

    /// Give back the room each name's lists keep to grow into (they grow
    /// by doubling: half of it is spare once the index is built, 30 % of
    /// the index). The tables keep theirs: shrunk, they would grow again,
    /// rehashing every entry, at the first new name or contributor.
    pub fn shrink_to_fit(&mut self) {
        for values in &mut self.values {
            values.shrink_to_fit();
        }
        for owners in &mut self.targeted {
            owners.shrink_to_fit();
        }
    }

    /// The name an id stands for.
    pub fn name(&self, id: u32) -> &str {
        self.names.get(id as usize).map_or("", |n| n)
    }

    /// The id of `name`, if known.
    pub fn find(&self, name: &str) -> Option<u32> {
        self.ids.find(self.hasher.hash_one(name), |&id| self.name(id) == name).copied()
    }

    /// What the name `id` is now.
    pub fn standing(&self, id: u32) -> Standing {
        if self.values.get(id as usize).is_some_and(|v| !v.is_empty()) {
            Standing::Records
        } else if self.below.get(id as usize).is_some_and(|&n| n > 0) {
            Standing::Empty
        } else {
            Standing::Gone
        }
    }

    /// The records at `id`, in a fixed order.
    pub fn values(&self, id: u32) -> Vec<LiveValue> {
        let mut out: Vec<LiveValue> = self
            .values
            .get(id as usize)
            .map(|v| v.iter().map(|(v, _)| *v).collect())
            .unwrap_or_default();
        out.sort_unstable();
        out
    }

    /// The names changed since the last call, each with its standing now.
    /// The names whose SRV records target a changed name count as changed
    /// too: their answers carry its addresses as glue.
    pub fn take_changed(&mut self) -> Vec<(u32, Standing)> {
        let mut changed: HashSet<u32> = self.changed.drain().collect();
        let owners: Vec<u32> = changed
            .iter()
            .flat_map(|&id| self.targeted.get(id as usize).into_iter().flatten().copied())
            .collect();
        changed.extend(owners);
        let mut changed: Vec<u32> = changed.into_iter().collect();
        changed.sort_unstable();
        changed.into_iter().map(|id| (id, self.standing(id))).collect()
    }

    /// The names that SRV records started or stopped naming as their
    /// target since the last call (what `/v1/hosts/{host}/ports` shows).
    pub fn take_retargeted(&mut self) -> Vec<String> {
        let ids: Vec<u32> = self.retargeted.drain().collect();
        ids.into_iter().map(|id| self.name(id).to_owned()).collect()
    }

    /// Forget `ids` if nothing refers to them any more (call after their
    /// change has been published).
    pub fn release(&mut self, ids: impl IntoIterator<Item = u32>) {
        for id in ids {
            let i = id as usize;
            let unused = self.values.get(i).is_some_and(Vec::is_empty)
                && self.below.get(i) == Some(&0)
                && self.targeted.get(i).is_some_and(Vec::is_empty);
            if unused
                && !self.changed.contains(&id)
                && let Some(name) = self.names.get_mut(i)
                && let Ok(entry) = self.ids.find_entry(self.hasher.hash_one(&**name), |&n| n == id)
            {
                entry.remove();
                *name = Box::default();
                self.free.push(id);
            }
        }
    }

    /// The records of `names` (and of their SRV targets, which answers
    /// carry as glue), as a record set.
    pub fn record_set(&self, names: impl IntoIterator<Item = u32>) -> RecordSet {
        let mut rs = RecordSet::default();
        let mut targets = Vec::new();
        let put = |rs: &mut RecordSet, id: u32, targets: &mut Vec<u32>| {
            let name = self.name(id);
            for value in self.values(id) {
                match value {
                    LiveValue::A(ip) => rs.insert_ip(name, ip.into()),
                    LiveValue::Aaaa(ip) => rs.insert_ip(name, ip.into()),
                    LiveValue::Srv { target, port } => {
                        targets.push(target);
                        rs.insert_srv(name, self.name(target), port)
                    }
                    LiveValue::Ptr { target } => rs.insert_ptr_at(name, self.name(target)),
                };
            }
        };
        let mut done = HashSet::new();
        for id in names {
            if done.insert(id) {
                put(&mut rs, id, &mut targets);
            }
        }
        let mut glue = Vec::new();
        for id in targets {
            if done.insert(id) {
                put(&mut rs, id, &mut glue);
            }
        }
        rs.seal();
        rs
    }

    /// How many names hold records.
    pub fn len(&self) -> usize {
        self.values.iter().filter(|v| !v.is_empty()).count()
    }

    /// Whether no name holds records.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn records(list: &[(&str, &str)]) -> RecordSet {
        let mut rs = RecordSet::default();
        for (name, value) in list {
            match value.split_once(':') {
                Some((target, port)) if !value.contains("::") => {
                    rs.insert_srv(name, target, port.parse().unwrap());
                }
                _ => {
                    rs.insert_ip(name, value.parse().unwrap());
                }
            }
        }
        rs
    }

    #[test]
    fn shared_values_stay_while_one_contributor_gives_them() {
        let mut ix = LiveIndex::new("mesos");
        let t1 = Contributor::Task("f".into(), "1".into());
        let t2 = Contributor::Task("f".into(), "2".into());
        ix.set(t1.clone(), &records(&[("web.marathon.mesos.", "10.0.0.1")]));
        ix.set(t2.clone(), &records(&[("web.marathon.mesos.", "10.0.0.1")]));
        let changed: Vec<String> =
            ix.take_changed().iter().map(|(id, _)| ix.name(*id).to_owned()).collect();
        assert_eq!(changed, ["web.marathon.mesos.", "marathon.mesos."]);
        ix.remove_contributor(&t1);
        assert!(ix.take_changed().is_empty(), "t2 still gives the address");
        ix.remove_contributor(&t2);
        let changed = ix.take_changed();
        let web = ix.find("web.marathon.mesos.").unwrap();
        let marathon = ix.find("marathon.mesos.").unwrap();
        assert_eq!(changed, vec![(web, Standing::Gone), (marathon, Standing::Gone)]);
        ix.release(changed.iter().map(|(id, _)| *id));
        assert_eq!(ix.find("web.marathon.mesos."), None);
        assert!(ix.is_empty());
        // A released id is given to the next new name, found by its text.
        ix.set(t1, &records(&[("api.marathon.mesos.", "10.0.0.2")]));
        let api = ix.find("api.marathon.mesos.").unwrap();
        assert!([web, marathon].contains(&api));
        assert_eq!(ix.name(api), "api.marathon.mesos.");
        assert_eq!(ix.values(api), [LiveValue::A(Ipv4Addr::new(10, 0, 0, 2))]);
        assert_eq!(ix.find("web.marathon.mesos."), None);
    }

    #[test]
    fn glue_comes_with_the_srv_records() {
        let mut ix = LiveIndex::new("mesos");
        ix.set(
            Contributor::Task("f".into(), "1".into()),
            &records(&[
                ("t.f.slave.mesos.", "10.0.0.1"),
                ("_t._tcp.f.mesos.", "t.f.slave.mesos.:31000"),
            ]),
        );
        let srv = ix.find("_t._tcp.f.mesos.").unwrap();
        let rs = ix.record_set([srv]);
        assert_eq!(rs.get("t.f.slave.mesos.").unwrap().a, [Ipv4Addr::new(10, 0, 0, 1)]);
        assert_eq!(rs.get("_t._tcp.f.mesos.").unwrap().srv.len(), 1);
    }
}
