//! The record set's JSON views, serialized straight from it: the `/v1/axfr`
//! document ([`Axfr`], also what `-dump` prints) and `/v1/enumerate`.

use std::fmt;
use std::ops::Range;

use serde::Serialize;
use serde::ser::{SerializeMap, SerializeStruct, Serializer};

use crate::config::Config;

use super::{EnumFramework, EnumTask, NameId, Record, RecordSet, RecordType, Value};

impl RecordSet {
    /// `/v1/enumerate`: every framework, its running tasks and the records
    /// each task contributed (the first task to add a record owns it).
    pub fn enumeration(&self) -> Enumeration<'_> {
        Enumeration(self)
    }

    /// The `Records` member of `/v1/axfr` (names sorted here, once).
    pub fn axfr_records(&self) -> AxfrRecords<'_> {
        AxfrRecords::new(self.names().map(|id| (self, id)))
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
    /// Every name holding records, in name order, with the record set
    /// that holds its records.
    sorted: Vec<(&'a RecordSet, NameId)>,
}

impl<'a> AxfrRecords<'a> {
    /// The names of `named`, each with its records in the record set
    /// beside it (a version's names can be in several), sorted.
    pub fn new(named: impl IntoIterator<Item = (&'a RecordSet, NameId)>) -> Self {
        let mut sorted: Vec<_> = named.into_iter().collect();
        sorted.sort_unstable_by(|(a, x), (b, y)| a.name(*x).cmp(b.name(*y)));
        AxfrRecords { sorted }
    }
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
        let (AxfrRecords { sorted }, rtype) = (self.0, self.1);
        let mut map = s.serialize_map(None)?;
        // A name's values as text, one after another in `text`.
        let (mut text, mut spans) = (String::new(), Vec::<Range<usize>>::new());
        for &(rs, id) in sorted {
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
    ttl: u32,
    #[serde(rename = "Serial")]
    serial: u32,
    #[serde(rename = "RefreshSeconds")]
    refresh_seconds: u64,
    #[serde(rename = "Mname")]
    mname: String,
    #[serde(rename = "Rname")]
    rname: String,
    #[serde(rename = "Domain")]
    domain: String,
    #[serde(rename = "Records")]
    records: AxfrRecords<'a>,
}

impl<'a> Axfr<'a> {
    /// The document for `records`, served under `config` as zone `serial`.
    pub fn new(records: AxfrRecords<'a>, config: &Config, serial: u32) -> Axfr<'a> {
        Axfr {
            ttl: config.ttl,
            serial,
            refresh_seconds: config.refresh_seconds,
            mname: config.soa_mname.clone(),
            rname: config.soa_rname.clone(),
            domain: config.domain.clone(),
            records,
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
            Value::Ptr { target } => f.write_str(self.0.name(target)),
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
