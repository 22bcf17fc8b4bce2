//! The state document's first pass: the outline (agents, leader, each
//! framework's own fields) and where each task object lies, found by the
//! scanner or, where it gives up, by serde.

use std::fmt;
use std::marker::PhantomData;
use std::ops::Range;
use std::sync::Arc;

use serde::Deserialize;
use serde::de::{self, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::value::RawValue;

use super::arena::TaskSlots;
use super::lenient::{elements, objects, string};
use super::{Agent, Framework, State, StateError, Tasks, scan};

/// The document's first pass: everything but the task objects, which it
/// only locates.
#[derive(Default, Deserialize)]
#[serde(default)]
pub(super) struct Outline<'a> {
    #[serde(borrow, deserialize_with = "objects")]
    frameworks: Vec<FrameworkOutline<'a>>,
    #[serde(deserialize_with = "objects")]
    slaves: Vec<Agent>,
    #[serde(deserialize_with = "string")]
    leader: String,
}

#[derive(Default, Deserialize)]
#[serde(default)]
struct FrameworkOutline<'a> {
    #[serde(deserialize_with = "string")]
    name: String,
    #[serde(deserialize_with = "string")]
    pid: String,
    #[serde(deserialize_with = "string")]
    hostname: String,
    #[serde(borrow, deserialize_with = "elements")]
    tasks: Vec<&'a RawValue>,
}

/// The outline, read: each framework's own fields and the range of the
/// task spans that are its tasks.
#[derive(Debug)]
pub(super) struct ReadOutline {
    frameworks: Vec<(String, String, String, Range<usize>)>,
    slaves: Vec<Agent>,
    leader: String,
    /// Where each task element lies in the document.
    pub(super) spans: Vec<Range<usize>>,
}

impl Outline<'_> {
    /// Read the outline of `body`: the state, its tasks not yet parsed
    /// (their slots keep `body`), and where in `body` each task object
    /// lies.
    pub(super) fn parse(body: Vec<u8>) -> Result<(State, Vec<Range<usize>>), StateError> {
        let ReadOutline { frameworks, slaves, leader, spans } = match Self::scanned(&body) {
            Some(read) => read,
            None => Self::read(&body)?,
        };
        let tasks = Arc::new(TaskSlots::new(spans.len(), body));
        let frameworks = frameworks
            .into_iter()
            .map(|(name, pid, hostname, range)| Framework {
                name,
                pid,
                hostname,
                tasks: Tasks { slots: Arc::clone(&tasks), range },
            })
            .collect();
        let state = State { frameworks, slaves, leader, tasks };
        Ok((state, spans))
    }

    /// The outline the fast way: the task elements located by
    /// [`scan::locate`], the rest read by serde from the skeleton left
    /// without them. `None` where the scanner gave up, or serde does not
    /// read the skeleton as it does the document (an error in it,
    /// reported by [`Outline::read`]).
    pub(super) fn scanned(body: &[u8]) -> Option<ReadOutline> {
        let located = scan::locate(body)?;
        let Ok(Document::Object(outline)) = serde_json::from_slice(&located.skeleton) else {
            return None;
        };
        if outline.frameworks.len() != located.frameworks.len()
            || outline.frameworks.iter().any(|f| !f.tasks.is_empty())
        {
            return None;
        }
        let frameworks = outline
            .frameworks
            .into_iter()
            .zip(located.frameworks)
            .map(|(f, range)| (f.name, f.pid, f.hostname, range))
            .collect();
        Some(ReadOutline {
            frameworks,
            slaves: outline.slaves,
            leader: outline.leader,
            spans: located.spans,
        })
    }

    /// The outline read by serde from the whole document.
    pub(super) fn read(body: &[u8]) -> Result<ReadOutline, StateError> {
        let outline = match serde_json::from_slice(body)? {
            Document::Object(outline) => outline,
            Document::Other(kind) => return Err(StateError::NotAnObject(kind)),
        };
        let count = outline.frameworks.iter().map(|f| f.tasks.len()).sum();
        let base = body.as_ptr() as usize;
        let mut spans = Vec::with_capacity(count);
        let mut frameworks = Vec::with_capacity(outline.frameworks.len());
        for f in outline.frameworks {
            let first = spans.len();
            // The raw values are slices of `body`.
            spans.extend(f.tasks.iter().map(|raw| {
                let start = (raw.get().as_ptr() as usize).saturating_sub(base);
                start..start + raw.get().len()
            }));
            frameworks.push((f.name, f.pid, f.hostname, first..spans.len()));
        }
        Ok(ReadOutline { frameworks, slaves: outline.slaves, leader: outline.leader, spans })
    }
}

/// The top level: a state's outline if it is an object, else the kind of
/// JSON found.
enum Document<'a> {
    Object(Outline<'a>),
    Other(&'static str),
}

impl<'de: 'a, 'a> Deserialize<'de> for Document<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<'a>(PhantomData<&'a ()>);
        impl<'de: 'a, 'a> Visitor<'de> for V<'a> {
            type Value = Document<'a>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a Mesos state object")
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Document<'a>, A::Error> {
                Outline::deserialize(de::value::MapAccessDeserializer::new(map))
                    .map(Document::Object)
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Document<'a>, A::Error> {
                while seq.next_element::<IgnoredAny>()?.is_some() {}
                Ok(Document::Other("an array"))
            }
            fn visit_str<E>(self, _: &str) -> Result<Document<'a>, E> {
                Ok(Document::Other("a string"))
            }
            fn visit_bool<E>(self, _: bool) -> Result<Document<'a>, E> {
                Ok(Document::Other("a boolean"))
            }
            fn visit_i64<E>(self, _: i64) -> Result<Document<'a>, E> {
                Ok(Document::Other("a number"))
            }
            fn visit_u64<E>(self, _: u64) -> Result<Document<'a>, E> {
                Ok(Document::Other("a number"))
            }
            fn visit_f64<E>(self, _: f64) -> Result<Document<'a>, E> {
                Ok(Document::Other("a number"))
            }
            fn visit_unit<E>(self) -> Result<Document<'a>, E> {
                Ok(Document::Other("null"))
            }
        }
        d.deserialize_any(V(PhantomData))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::tests::state_of;

    #[test]
    fn the_scanner_follows_every_fixture_and_agrees_with_serde() {
        let dir =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/mesos-state");
        let mut seen = 0;
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().is_none_or(|e| e != "json") {
                continue;
            }
            let body = std::fs::read(&path).unwrap();
            let fast = Outline::scanned(&body);
            assert!(fast.is_some(), "{}: the scanner gave up", path.display());
            assert!(State::scan_agrees(&body), "{}", path.display());
            seen += 1;
        }
        assert!(seen >= 10, "only {seen} fixtures");
        let doc = state_of(50);
        assert!(Outline::scanned(doc.as_bytes()).is_some_and(|o| o.spans.len() == 53));
        assert!(State::scan_agrees(doc.as_bytes()));
    }

    proptest::proptest! {
        /// A document damaged anywhere: the fast outline, where the
        /// scanner follows it, is serde's.
        #[test]
        fn the_scanner_agrees_with_serde_on_damaged_documents(
            edits in proptest::collection::vec(
                (0usize..2000, proptest::sample::select(b"{}[]\",: \\ax0".to_vec()), proptest::bool::ANY),
                1..4,
            ),
        ) {
            let mut doc = r#"{"leader":"master@10.0.0.1:5050","frameworks":[{"name":"a","tasks":[
                    {"id":"t\"1","name":"x","labels":[{"key":"k]","value":"{"}]},7,"s",null,[1,[2]]]},
                    "odd",{"tasks":{"a":1}},{"name":"b","tasks":[]}],"slaves":[{"id":"s"}]}"#
            .as_bytes()
            .to_vec();
            for (at, byte, insert) in edits {
                let at = at % (doc.len() + 1);
                if insert || at == doc.len() {
                    doc.insert(at, byte);
                } else {
                    doc[at] = byte;
                }
            }
            proptest::prop_assert!(State::scan_agrees(&doc), "{}", String::from_utf8_lossy(&doc));
        }
    }

    #[test]
    fn bytes_that_are_not_utf8_in_a_task_fail_it_where_it_is_read() {
        let doc = |field: &str| {
            let mut doc = format!(
                r#"{{"leader":"master@10.0.0.1:5050","frameworks":[{{"tasks":[{{"{field}":"a-XX"}}]}}]}}"#
            )
            .into_bytes();
            let at = doc.windows(2).position(|w| w == b"XX").unwrap();
            doc[at..at + 2].copy_from_slice(&[0xd0, 0xcf]);
            doc
        };
        // serde refuses the whole document for it; the task parser only
        // where it reads the field.
        for (field, readable) in [("slave_id", false), ("not_a_field", true)] {
            let doc = doc(field);
            assert!(Outline::read(&doc).is_err());
            assert!(Outline::scanned(&doc).is_some());
            assert!(State::scan_agrees(&doc));
            assert_eq!(State::from_slice(&doc).is_ok(), readable, "{field}");
        }
    }
}
