//! The Mesos master state document (`GET /master/state`, SPEC.md §2): the
//! fields record generation uses, parsed leniently.
//!
//! Mesos versions from 0.19 to 1.x differ in which fields they send, and a
//! single odd value must never spoil the whole document. So every field is
//! optional (missing or `null` → empty), numbers may be integers, floats or
//! numeric strings, a value of the wrong JSON type is read as empty, and an
//! array element that is not an object is skipped. Only a document that is
//! not a JSON object at all (or not JSON) is an error.

use std::fmt;
use std::marker::PhantomData;

use serde::Deserialize;
use serde::de::{self, DeserializeOwned, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};

/// A parsed state document.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(default)]
pub struct State {
    #[serde(deserialize_with = "objects")]
    pub frameworks: Vec<Framework>,
    #[serde(deserialize_with = "objects")]
    pub slaves: Vec<Agent>,
    /// The leading master's UPID, `master@ip:port`.
    #[serde(deserialize_with = "string")]
    pub leader: String,
}

/// Why a document could not be read as a state.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    /// (The JSON error is part of the message, not a `source`, so a
    /// printed error chain does not repeat it.)
    #[error("state document is not valid JSON: {0}")]
    Json(serde_json::Error),
    #[error("state document is not a JSON object (found {0})")]
    NotAnObject(&'static str),
}

impl From<serde_json::Error> for StateError {
    fn from(e: serde_json::Error) -> Self {
        StateError::Json(e)
    }
}

impl State {
    /// Parse a state document from its bytes.
    pub fn from_slice(bytes: &[u8]) -> Result<State, StateError> {
        let doc: Document = serde_json::from_slice(bytes)?;
        match doc {
            Document::Object(state) => Ok(state),
            Document::Other(kind) => Err(StateError::NotAnObject(kind)),
        }
    }
}

/// The top level: a state if it is an object, else the kind of JSON found.
enum Document {
    Object(State),
    Other(&'static str),
}

impl<'de> Deserialize<'de> for Document {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Document;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a Mesos state object")
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Document, A::Error> {
                State::deserialize(de::value::MapAccessDeserializer::new(map)).map(Document::Object)
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Document, A::Error> {
                while seq.next_element::<IgnoredAny>()?.is_some() {}
                Ok(Document::Other("an array"))
            }
            fn visit_str<E>(self, _: &str) -> Result<Document, E> {
                Ok(Document::Other("a string"))
            }
            fn visit_bool<E>(self, _: bool) -> Result<Document, E> {
                Ok(Document::Other("a boolean"))
            }
            fn visit_i64<E>(self, _: i64) -> Result<Document, E> {
                Ok(Document::Other("a number"))
            }
            fn visit_u64<E>(self, _: u64) -> Result<Document, E> {
                Ok(Document::Other("a number"))
            }
            fn visit_f64<E>(self, _: f64) -> Result<Document, E> {
                Ok(Document::Other("a number"))
            }
            fn visit_unit<E>(self) -> Result<Document, E> {
                Ok(Document::Other("null"))
            }
        }
        d.deserialize_any(V)
    }
}

/// A framework (scheduler) and its tasks.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(default)]
pub struct Framework {
    #[serde(deserialize_with = "string")]
    pub name: String,
    /// The scheduler's UPID, `scheduler-...@ip:port`.
    #[serde(deserialize_with = "string")]
    pub pid: String,
    #[serde(deserialize_with = "string")]
    pub hostname: String,
    #[serde(deserialize_with = "objects")]
    pub tasks: Vec<Task>,
}

/// An agent (Mesos "slave").
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(default)]
pub struct Agent {
    #[serde(deserialize_with = "string")]
    pub id: String,
    #[serde(deserialize_with = "string")]
    pub hostname: String,
    /// The agent's UPID, `slave(1)@ip:port`.
    #[serde(deserialize_with = "string")]
    pub pid: String,
}

/// A task as the master reports it.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(default)]
pub struct Task {
    #[serde(deserialize_with = "string")]
    pub id: String,
    #[serde(deserialize_with = "string")]
    pub name: String,
    #[serde(deserialize_with = "string")]
    pub slave_id: String,
    #[serde(deserialize_with = "string")]
    pub state: String,
    #[serde(deserialize_with = "objects")]
    pub statuses: Vec<Status>,
    #[serde(deserialize_with = "object")]
    pub resources: Resources,
    #[serde(deserialize_with = "object")]
    pub discovery: Discovery,
}

/// The task's resources; only the port ranges are used.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(default)]
pub struct Resources {
    /// Port ranges as Mesos prints them: `"[31000-31002, 31005-31005]"`.
    #[serde(deserialize_with = "string")]
    pub ports: String,
}

/// One status update of a task.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(default)]
pub struct Status {
    #[serde(deserialize_with = "string")]
    pub state: String,
    #[serde(deserialize_with = "number")]
    pub timestamp: f64,
    #[serde(deserialize_with = "objects")]
    pub labels: Vec<Label>,
    #[serde(deserialize_with = "object")]
    pub container_status: ContainerStatus,
}

/// A key/value label.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(default)]
pub struct Label {
    #[serde(deserialize_with = "string")]
    pub key: String,
    #[serde(deserialize_with = "string")]
    pub value: String,
}

/// Container metadata of a status.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(default)]
pub struct ContainerStatus {
    #[serde(deserialize_with = "objects")]
    pub network_infos: Vec<NetworkInfo>,
}

/// One network interface of a container.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(default)]
pub struct NetworkInfo {
    #[serde(deserialize_with = "objects")]
    pub ip_addresses: Vec<IpAddress>,
    /// Mesos 0.25's single address field.
    #[serde(deserialize_with = "string")]
    pub ip_address: String,
}

/// One address of a network interface.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(default)]
pub struct IpAddress {
    #[serde(deserialize_with = "string")]
    pub ip_address: String,
}

/// A task's DiscoveryInfo.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(default)]
pub struct Discovery {
    #[serde(deserialize_with = "string")]
    pub name: String,
    #[serde(deserialize_with = "object")]
    pub ports: DiscoveryPorts,
}

/// The `ports` wrapper object of a DiscoveryInfo.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(default)]
pub struct DiscoveryPorts {
    #[serde(deserialize_with = "objects")]
    pub ports: Vec<DiscoveryPort>,
}

/// A named, numbered port of a DiscoveryInfo.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(default)]
pub struct DiscoveryPort {
    /// `None` when the number is not an integer (e.g. `31000.5`, `"x"`);
    /// 0 when missing, as in the original.
    #[serde(deserialize_with = "integer", default = "zero")]
    pub number: Option<i64>,
    #[serde(deserialize_with = "string")]
    pub name: String,
    #[serde(deserialize_with = "string")]
    pub protocol: String,
}

fn zero() -> Option<i64> {
    Some(0)
}

// ---------------------------------------------------------------------------
// Lenient field readers: each accepts any JSON value.

fn drain_seq<'de, A: SeqAccess<'de>>(mut seq: A) -> Result<(), A::Error> {
    while seq.next_element::<IgnoredAny>()?.is_some() {}
    Ok(())
}

fn drain_map<'de, A: MapAccess<'de>>(mut map: A) -> Result<(), A::Error> {
    while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
    Ok(())
}

/// A string; numbers are taken in their decimal form, anything else is "".
fn string<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    struct V;
    impl<'de> Visitor<'de> for V {
        type Value = String;
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("a string")
        }
        fn visit_str<E>(self, v: &str) -> Result<String, E> {
            Ok(v.to_owned())
        }
        fn visit_string<E>(self, v: String) -> Result<String, E> {
            Ok(v)
        }
        fn visit_i64<E>(self, v: i64) -> Result<String, E> {
            Ok(v.to_string())
        }
        fn visit_u64<E>(self, v: u64) -> Result<String, E> {
            Ok(v.to_string())
        }
        fn visit_f64<E>(self, v: f64) -> Result<String, E> {
            Ok(v.to_string())
        }
        fn visit_bool<E>(self, _: bool) -> Result<String, E> {
            Ok(String::new())
        }
        fn visit_unit<E>(self) -> Result<String, E> {
            Ok(String::new())
        }
        fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<String, A::Error> {
            drain_seq(seq).map(|()| String::new())
        }
        fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<String, A::Error> {
            drain_map(map).map(|()| String::new())
        }
    }
    d.deserialize_any(V)
}

/// A number; a numeric string is read as its number; anything else is 0.
fn number<'de, D: Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
    Ok(match Scalar::read(d)? {
        Scalar::Int(i) => i as f64,
        Scalar::Float(f) => f,
        Scalar::Text(s) => s.trim().parse().unwrap_or(0.0),
        Scalar::Other => 0.0,
    })
}

/// An integer; an integral float or numeric string is read as its integer;
/// anything else (a fraction, text) is `None`.
fn integer<'de, D: Deserializer<'de>>(d: D) -> Result<Option<i64>, D::Error> {
    Ok(match Scalar::read(d)? {
        Scalar::Int(i) => Some(i),
        Scalar::Float(f) => float_to_int(f),
        Scalar::Text(s) => {
            let s = s.trim();
            s.parse().ok().or_else(|| s.parse().ok().and_then(float_to_int))
        }
        Scalar::Other => None,
    })
}

fn float_to_int(f: f64) -> Option<i64> {
    // The bounds keep the cast exact; fractions are not integers.
    (f.fract() == 0.0 && f.abs() < 9.0e15).then_some(f as i64)
}

/// Any JSON value, reduced to what number readers care about.
enum Scalar {
    Int(i64),
    Float(f64),
    Text(String),
    Other,
}

impl Scalar {
    fn read<'de, D: Deserializer<'de>>(d: D) -> Result<Scalar, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Scalar;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a number")
            }
            fn visit_i64<E>(self, v: i64) -> Result<Scalar, E> {
                Ok(Scalar::Int(v))
            }
            fn visit_u64<E>(self, v: u64) -> Result<Scalar, E> {
                Ok(i64::try_from(v).map_or(Scalar::Float(v as f64), Scalar::Int))
            }
            fn visit_f64<E>(self, v: f64) -> Result<Scalar, E> {
                Ok(Scalar::Float(v))
            }
            fn visit_str<E>(self, v: &str) -> Result<Scalar, E> {
                Ok(Scalar::Text(v.to_owned()))
            }
            fn visit_bool<E>(self, _: bool) -> Result<Scalar, E> {
                Ok(Scalar::Other)
            }
            fn visit_unit<E>(self) -> Result<Scalar, E> {
                Ok(Scalar::Other)
            }
            fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Scalar, A::Error> {
                drain_seq(seq).map(|()| Scalar::Other)
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Scalar, A::Error> {
                drain_map(map).map(|()| Scalar::Other)
            }
        }
        d.deserialize_any(V)
    }
}

/// An object read as `T`, or `None` for any other JSON value.
struct Obj<T>(Option<T>);

impl<'de, T: DeserializeOwned> Deserialize<'de> for Obj<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<T>(PhantomData<T>);
        impl<'de, T: DeserializeOwned> Visitor<'de> for V<T> {
            type Value = Obj<T>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("an object")
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Obj<T>, A::Error> {
                T::deserialize(de::value::MapAccessDeserializer::new(map)).map(|t| Obj(Some(t)))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Obj<T>, A::Error> {
                drain_seq(seq).map(|()| Obj(None))
            }
            fn visit_str<E>(self, _: &str) -> Result<Obj<T>, E> {
                Ok(Obj(None))
            }
            fn visit_bool<E>(self, _: bool) -> Result<Obj<T>, E> {
                Ok(Obj(None))
            }
            fn visit_i64<E>(self, _: i64) -> Result<Obj<T>, E> {
                Ok(Obj(None))
            }
            fn visit_u64<E>(self, _: u64) -> Result<Obj<T>, E> {
                Ok(Obj(None))
            }
            fn visit_f64<E>(self, _: f64) -> Result<Obj<T>, E> {
                Ok(Obj(None))
            }
            fn visit_unit<E>(self) -> Result<Obj<T>, E> {
                Ok(Obj(None))
            }
        }
        d.deserialize_any(V(PhantomData))
    }
}

/// An object field; anything that is not an object reads as the default.
fn object<'de, D: Deserializer<'de>, T: DeserializeOwned + Default>(d: D) -> Result<T, D::Error> {
    Obj::<T>::deserialize(d).map(|o| o.0.unwrap_or_default())
}

/// An array of objects; elements that are not objects are skipped, and a
/// value that is not an array reads as empty.
fn objects<'de, D: Deserializer<'de>, T: DeserializeOwned>(d: D) -> Result<Vec<T>, D::Error> {
    struct V<T>(PhantomData<T>);
    impl<'de, T: DeserializeOwned> Visitor<'de> for V<T> {
        type Value = Vec<T>;
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("an array of objects")
        }
        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Vec<T>, A::Error> {
            let mut out = Vec::new();
            while let Some(Obj(item)) = seq.next_element::<Obj<T>>()? {
                if let Some(item) = item {
                    if out.len() == out.capacity() {
                        // Double from 1, not from `Vec`'s minimum of 4: most
                        // of these arrays (statuses, network infos, addresses)
                        // hold one or two objects.
                        out.reserve_exact(out.len().max(1));
                    }
                    out.push(item);
                }
            }
            // A parsed state lives through generation: no slack.
            out.shrink_to_fit();
            Ok(out)
        }
        fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Vec<T>, A::Error> {
            drain_map(map).map(|()| Vec::new())
        }
        fn visit_str<E>(self, _: &str) -> Result<Vec<T>, E> {
            Ok(Vec::new())
        }
        fn visit_bool<E>(self, _: bool) -> Result<Vec<T>, E> {
            Ok(Vec::new())
        }
        fn visit_i64<E>(self, _: i64) -> Result<Vec<T>, E> {
            Ok(Vec::new())
        }
        fn visit_u64<E>(self, _: u64) -> Result<Vec<T>, E> {
            Ok(Vec::new())
        }
        fn visit_f64<E>(self, _: f64) -> Result<Vec<T>, E> {
            Ok(Vec::new())
        }
        fn visit_unit<E>(self) -> Result<Vec<T>, E> {
            Ok(Vec::new())
        }
    }
    d.deserialize_any(V(PhantomData))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arrays_hold_no_slack() {
        // A parsed state lives through generation; `Vec`'s growth would
        // leave 3 empty slots in every one-element array.
        let statuses = |n: usize| {
            let status = r#"{"state":"TASK_RUNNING","timestamp":1}"#;
            let list = vec![status; n].join(",");
            let doc = format!(r#"{{"frameworks":[{{"tasks":[{{"statuses":[{list}]}}]}}]}}"#);
            let state = State::from_slice(doc.as_bytes()).unwrap();
            let task = &state.frameworks[0].tasks[0];
            (task.statuses.len(), task.statuses.capacity(), state.frameworks.capacity())
        };
        assert_eq!(statuses(1), (1, 1, 1));
        assert_eq!(statuses(3), (3, 3, 1));
        assert_eq!(statuses(100), (100, 100, 1));
    }

    #[test]
    fn empty_object_is_an_empty_state() {
        let s = State::from_slice(b"{}").unwrap();
        assert!(s.frameworks.is_empty() && s.slaves.is_empty() && s.leader.is_empty());
    }

    #[test]
    fn non_objects_and_garbage_are_errors() {
        for doc in [&b"[]"[..], b"\"x\"", b"3", b"null", b"", b"{\"leader\":", b"\xff\xfe"] {
            assert!(State::from_slice(doc).is_err(), "{:?}", String::from_utf8_lossy(doc));
        }
    }

    #[test]
    fn wrong_types_read_as_empty_and_bad_elements_are_skipped() {
        let doc = br#"{"leader": null, "slaves": [3, {"id": 7, "pid": null}, "x"],
            "frameworks": [{"name": ["x"], "tasks": {"a": 1}}, null,
              {"name": "m", "tasks": [{"id": "t", "statuses": [{"timestamp": "12.5"}],
                "resources": "nope", "discovery": {"ports": {"ports": [
                  {"number": 31000.0}, {"number": 1.5}, {"number": "80"}, {}]}}}]}]}"#;
        let s = State::from_slice(doc).unwrap();
        assert_eq!(s.leader, "");
        assert_eq!(s.slaves.len(), 1);
        assert_eq!(s.slaves[0].id, "7");
        assert_eq!(s.frameworks.len(), 2);
        assert_eq!(s.frameworks[0].name, "");
        let t = &s.frameworks[1].tasks[0];
        assert_eq!(t.statuses[0].timestamp, 12.5);
        assert_eq!(t.resources.ports, "");
        let numbers: Vec<_> = t.discovery.ports.ports.iter().map(|p| p.number).collect();
        assert_eq!(numbers, vec![Some(31000), None, Some(80), Some(0)]);
    }
}
