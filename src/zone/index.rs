//! The zone's name index: one [`Node`] per owner name, per empty
//! non-terminal and for the apex, found by a hash table keyed by the
//! lower-case wire name.

use std::hash::BuildHasher;

use hashbrown::HashTable;

use super::{Node, Span, span, span_bytes};
use crate::proto::{label_offsets, push_wire_name};
use crate::records::{NameId, RecordSet};

/// The zone's names: one [`Node`] per owner name, per empty non-terminal
/// and for the apex, found by a hash table of node positions keyed by the
/// wire name. The wire names live back to back in `names`; an empty
/// non-terminal's key is a suffix of a longer name's bytes, so it costs no
/// bytes.
#[derive(Debug)]
pub(super) struct NameIndex {
    pub(super) index: HashTable<u32>,
    pub(super) hasher: foldhash::fast::RandomState,
    pub(super) nodes: Vec<Node>,
    pub(super) names: Vec<u8>,
}

impl NameIndex {
    /// A node, with only its key, for every name holding records, then
    /// for every ancestor of one below the apex, and for the apex; and the
    /// record-set name each of the first nodes was made for. Names that
    /// differ only in case are one name: the first one's records are
    /// served.
    pub(super) fn build(records: &RecordSet, apex: &[u8]) -> (NameIndex, Vec<NameId>) {
        let mut ix = NameIndex {
            index: HashTable::with_capacity(records.len() * 2),
            hasher: foldhash::fast::RandomState::default(),
            nodes: Vec::with_capacity(records.len() * 2),
            names: Vec::with_capacity(records.name_bytes() + records.name_count() + apex.len()),
        };
        let mut owners = Vec::with_capacity(records.len());
        for id in records.names() {
            let start = ix.names.len();
            // Names that cannot be encoded were refused by the record set;
            // skipping one here is defensive.
            if !push_wire_name(&mut ix.names, records.name(id)) {
                continue;
            }
            if ix.insert(span(start, ix.names.len())) {
                owners.push(id);
            } else {
                ix.names.truncate(start);
            }
        }

        // Empty non-terminals: every ancestor of a name, below the apex. A
        // name's ancestors are walked until one already exists: that one's
        // own ancestors were added with it, or will be when it is walked.
        let mut offsets: Vec<usize> = Vec::new();
        for n in 0..owners.len() {
            let Some(key) = ix.nodes.get(n).map(|node| node.key) else {
                continue;
            };
            let wire = span_bytes(&ix.names, key);
            if !wire.ends_with(apex) {
                continue;
            }
            offsets.clear();
            offsets.extend(label_offsets(wire).skip(1));
            for &off in &offsets {
                if key.len as usize - off <= apex.len() {
                    break;
                }
                if !ix.insert(Span { start: key.start + off as u32, len: key.len - off as u32 }) {
                    break;
                }
            }
        }
        let apex_key = ix.names.len();
        ix.names.extend_from_slice(apex);
        ix.insert(span(apex_key, ix.names.len()));
        (ix, owners)
    }

    /// Add a node with only a key (a span of `names`) unless the name is
    /// already there; whether it was added.
    pub(super) fn insert(&mut self, key: Span) -> bool {
        let NameIndex { index, hasher, nodes, names, .. } = self;
        let bytes = span_bytes(names, key);
        let at = nodes.len() as u32;
        let entry = index.entry(
            hasher.hash_one(bytes),
            |&i| node_key(nodes, names, i) == bytes,
            |&i| hasher.hash_one(node_key(nodes, names, i)),
        );
        match entry {
            hashbrown::hash_table::Entry::Occupied(_) => false,
            hashbrown::hash_table::Entry::Vacant(v) => {
                v.insert(at);
                nodes.push(Node { key, ..Node::default() });
                true
            }
        }
    }

    pub(super) fn find(&self, wire: &[u8]) -> Option<&Node> {
        let hash = self.hasher.hash_one(wire);
        let at = self.index.find(hash, |&i| node_key(&self.nodes, &self.names, i) == wire)?;
        self.nodes.get(*at as usize)
    }
}

/// The owner name of node `i` (empty if there is none: never a real key,
/// which holds at least the root label).
fn node_key<'n>(nodes: &[Node], names: &'n [u8], i: u32) -> &'n [u8] {
    nodes.get(i as usize).map_or(&[][..], |n| span_bytes(names, n.key))
}
