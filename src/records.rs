//! The record set: what generation produces from one state (SPEC.md §3) and
//! what the zone is compiled from, plus its JSON views (`/v1/axfr`,
//! `/v1/enumerate`, `-dump`).
//!
//! Every insertion checks that the record can exist in DNS; a record that
//! cannot (empty label, label over 63, name over 253) is skipped and
//! counted, never stored.

use std::collections::{BTreeMap, HashMap};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use serde::Serialize;

use crate::labels::is_valid_dns_name;

/// An SRV record's value: the target name and port (priority and weight are
/// set when serving).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SrvTarget {
    /// Fully qualified, with the final dot.
    pub target: String,
    pub port: u16,
}

impl std::fmt::Display for SrvTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.target, self.port)
    }
}

/// Every record held at one name.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RrSet {
    pub a: Vec<Ipv4Addr>,
    pub aaaa: Vec<Ipv6Addr>,
    pub srv: Vec<SrvTarget>,
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

/// The records generated from one state: a map from fully qualified name
/// (with the final dot) to its records, plus the enumeration data.
#[derive(Debug, Clone, Default)]
pub struct RecordSet {
    names: HashMap<String, RrSet, foldhash::fast::RandomState>,
    /// Per framework and task, the records each task contributed.
    pub enumeration: Enumeration,
    /// Records not produced because the name could not exist in DNS, or a
    /// value was out of range.
    pub skipped: u64,
}

/// An IP address the way the original classifies it: an IPv4-mapped IPv6
/// address is IPv4.
pub fn canonical_ip(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

impl RecordSet {
    /// Add an A or AAAA record; `false` if it was already there or invalid.
    pub fn insert_ip(&mut self, name: &str, ip: IpAddr) -> bool {
        let Some(set) = self.entry(name) else {
            return false;
        };
        match canonical_ip(ip) {
            IpAddr::V4(v4) => push_unique(&mut set.a, v4),
            IpAddr::V6(v6) => push_unique(&mut set.aaaa, v6),
        }
    }

    /// Add an SRV record; `false` if it was already there or invalid.
    pub fn insert_srv(&mut self, name: &str, target: &str, port: u16) -> bool {
        // A name already present was checked when it was added.
        if !self.names.contains_key(target) && !self.check_name(target) {
            return false;
        }
        let value = SrvTarget { target: target.to_owned(), port };
        match self.entry(name) {
            Some(set) => push_unique(&mut set.srv, value),
            None => false,
        }
    }

    /// The records at `name`, created (after checking the name) if new;
    /// the key is allocated only then.
    fn entry(&mut self, name: &str) -> Option<&mut RrSet> {
        if !self.names.contains_key(name) {
            if !self.check_name(name) {
                return None;
            }
            self.names.insert(name.to_owned(), RrSet::default());
        }
        self.names.get_mut(name)
    }

    /// Count a record that could not be produced.
    pub fn skip(&mut self, what: std::fmt::Arguments<'_>) {
        self.skipped += 1;
        tracing::debug!("record skipped: {what}");
    }

    fn check_name(&mut self, name: &str) -> bool {
        let ok = is_valid_dns_name(name);
        if !ok {
            self.skip(format_args!("{name:?} cannot exist in DNS"));
        }
        ok
    }

    /// The records at `name` (fully qualified, with the final dot).
    pub fn get(&self, name: &str) -> Option<&RrSet> {
        self.names.get(name)
    }

    /// Every name and its records, in no particular order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &RrSet)> {
        self.names.iter().map(|(k, v)| (k.as_str(), v))
    }

    /// How many names hold records.
    pub fn len(&self) -> usize {
        self.names.len()
    }

    /// Whether no name holds a record.
    pub fn is_empty(&self) -> bool {
        self.names.is_empty()
    }

    /// The `Records` member of `/v1/axfr`: names sorted, values sorted.
    pub fn axfr_records(&self) -> AxfrRecords {
        let mut out = AxfrRecords::default();
        for (name, set) in &self.names {
            let put = |map: &mut BTreeMap<String, Vec<String>>, mut values: Vec<String>| {
                if !values.is_empty() {
                    values.sort();
                    map.insert(name.clone(), values);
                }
            };
            put(&mut out.a, set.a.iter().map(ToString::to_string).collect());
            put(&mut out.aaaa, set.aaaa.iter().map(ToString::to_string).collect());
            put(&mut out.srv, set.srv.iter().map(ToString::to_string).collect());
        }
        out
    }
}

fn push_unique<T: PartialEq>(values: &mut Vec<T>, value: T) -> bool {
    if values.contains(&value) {
        return false;
    }
    values.push(value);
    true
}

/// The record maps of `/v1/axfr`, keyed by name.
#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct AxfrRecords {
    #[serde(rename = "As")]
    pub a: BTreeMap<String, Vec<String>>,
    #[serde(rename = "AAAAs")]
    pub aaaa: BTreeMap<String, Vec<String>>,
    #[serde(rename = "SRVs")]
    pub srv: BTreeMap<String, Vec<String>>,
}

/// The whole `/v1/axfr` document (also what `-dump` prints).
#[derive(Debug, Clone, Serialize)]
pub struct Axfr {
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
    pub records: AxfrRecords,
}

/// `/v1/enumerate`: every framework, its running tasks and their records.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Enumeration {
    pub frameworks: Vec<EnumFramework>,
}

/// A framework in `/v1/enumerate`.
#[derive(Debug, Clone, Default, Serialize)]
pub struct EnumFramework {
    pub tasks: Vec<EnumTask>,
    pub name: String,
}

/// A task in `/v1/enumerate`.
#[derive(Debug, Clone, Default, Serialize)]
pub struct EnumTask {
    pub name: String,
    pub id: String,
    pub records: Vec<EnumRecord>,
}

/// One record a task contributed (the first task to add a record owns it).
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct EnumRecord {
    pub name: String,
    /// The value: an IP address, or `target:port` for SRV.
    pub host: String,
    pub rtype: RecordType,
}

#[cfg(test)]
mod tests {
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
        let ax = rs.axfr_records();
        assert_eq!(ax.a["a.mesos."], vec!["1.2.3.4"]);
        assert_eq!(ax.aaaa["a.mesos."], vec!["::1"]);
        assert_eq!(ax.srv["_a._tcp.mesos."], vec!["a.mesos.:80"]);
    }
}
