//! The Mesos master state document (`GET /master/state`): the
//! fields record generation uses, parsed leniently.
//!
//! Mesos versions from 0.19 to 1.x differ in which fields they send, and a
//! single odd value must never spoil the whole document. So every field is
//! optional (missing or `null` → empty), numbers may be integers, floats or
//! numeric strings, a value of the wrong JSON type is read as empty, and an
//! array element that is not an object is skipped. Only a document that is
//! not a JSON object at all (or not JSON), or holds a task object serde
//! refuses (a field given twice), is an error.
//!
//! Parsing is two passes. The first reads the document's outline: the
//! agents, the leader, each framework's fields, and where each of its task
//! objects lies in the document. A scanner (`scan`) finds the task objects
//! by the document's brackets alone, 64 bytes at a time, and serde reads
//! the outline from what is left without them. The second pass parses
//! those task objects, most of the document, in order; [`State::from_vec`]
//! runs it on a thread of its own, so record generation starts on the
//! first tasks while the later ones are still being parsed (two cores: a
//! shorter reload).
//!
//! A task's strings borrow from the document (unless they hold JSON
//! escapes), which the state keeps for as long as its tasks: parsing a task
//! allocates a few vectors, not a dozen strings, and freeing a big state is
//! cheap.

use std::borrow::Cow;
use std::fmt;
use std::marker::PhantomData;
use std::ops::Range;
use std::sync::{Arc, OnceLock};

use serde::Deserialize;
use serde::de::{self, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::value::RawValue;

mod scan;

/// A parsed state document.
#[derive(Debug, Default, Clone)]
pub struct State {
    pub frameworks: Vec<Framework>,
    pub slaves: Vec<Agent>,
    /// The leading master's UPID, `master@ip:port`.
    pub leader: String,
    /// Every framework's tasks, in document order.
    tasks: Arc<TaskSlots>,
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
    #[error(transparent)]
    Task(#[from] TaskError),
}

/// A task object of a state document that could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("a task of the state document could not be read: {0}")]
pub struct TaskError(String);

impl From<serde_json::Error> for StateError {
    fn from(e: serde_json::Error) -> Self {
        StateError::Json(e)
    }
}

/// Below this many tasks, [`State::from_vec`] parses them itself: a thread
/// would cost more than it saves.
const TASKS_ON_A_THREAD: usize = 1000;

impl State {
    /// Parse a state document from its bytes, every task before returning.
    pub fn from_slice(bytes: &[u8]) -> Result<State, StateError> {
        let (state, spans) = Outline::parse(bytes.to_vec())?;
        TaskParser::new(&state.tasks).run(&spans);
        state.tasks_parsed()?;
        Ok(state)
    }

    /// Parse a state document, its tasks on a thread of their own when
    /// there are many: they become readable, in order, while that thread
    /// goes on ([`Tasks::iter`] waits for each). Read them all, then call
    /// [`State::tasks_parsed`] for whether all of them could be read.
    pub fn from_vec(bytes: Vec<u8>) -> Result<State, StateError> {
        let (state, spans) = Outline::parse(bytes)?;
        let parser = TaskParser::new(&state.tasks);
        if spans.len() < TASKS_ON_A_THREAD {
            parser.run(&spans);
        } else {
            // A thread that fails to start drops its parser unrun, which
            // marks every task as missing: the error shows in
            // `tasks_parsed`, and no reader waits forever.
            let spawned = std::thread::Builder::new()
                .name("state-tasks".into())
                .spawn(move || parser.run(&spans));
            if let Err(e) = spawned {
                tracing::warn!("cannot start a thread to parse the state's tasks: {e}");
            }
        }
        Ok(state)
    }

    /// Whether the fast outline ([`scan`]) of `body`, where the scanner
    /// can follow it, is the one serde reads from the whole document: the
    /// same frameworks, agents, leader and task spans. Where serde refuses
    /// the document, it must be for a task element, read on its own as
    /// serde read it in the document (the task parser reads it again, and
    /// refuses it unless the fault is in a field it skips, such as bytes
    /// that are not UTF-8), or for nesting that only the document around
    /// a task element took over serde's recursion limit. For tests and
    /// the fuzzer.
    #[doc(hidden)]
    pub fn scan_agrees(body: &[u8]) -> bool {
        let Some(fast) = Outline::scanned(body) else {
            return true;
        };
        match Outline::read(body) {
            Ok(slow) => format!("{fast:?}") == format!("{slow:?}"),
            Err(e) => {
                e.to_string().contains("recursion limit")
                    || fast.spans.iter().any(|span| {
                        body.get(span.clone())
                            .is_none_or(|task| serde_json::from_slice::<&RawValue>(task).is_err())
                    })
            }
        }
    }

    /// Wait until every task is parsed; an error if one could not be read
    /// (it was left out of its framework's tasks).
    pub fn tasks_parsed(&self) -> Result<(), TaskError> {
        if let Some(last) = self.tasks.slots.last() {
            last.wait();
        }
        match self.tasks.error.get() {
            Some(e) => Err(TaskError(e.clone())),
            None => Ok(()),
        }
    }
}

/// How far ahead a reader that caught up with [`State::from_vec`]'s parser
/// lets it get before reading on.
const CATCH_UP_TASKS: usize = 512;

/// A framework's tasks: a range of the state's task slots, each filled once
/// its task object is parsed (`None`: not an object, or unreadable).
#[derive(Default, Clone)]
pub struct Tasks {
    slots: Arc<TaskSlots>,
    range: Range<usize>,
}

impl Tasks {
    /// The tasks, in document order; waits for any not yet parsed.
    pub fn iter(&self) -> impl Iterator<Item = &Task<'_>> {
        let all = &self.slots.slots;
        self.range.clone().filter_map(move |i| {
            let slot = all.get(i)?;
            if slot.get().is_none() {
                // Caught up with the parser: wait until it is a stretch
                // ahead (slots fill in order), not for every next task,
                // as each wake-up costs more than parsing a task.
                all.get(i + CATCH_UP_TASKS).or(all.last()).map(OnceLock::wait);
            }
            slot.wait().as_ref().map(borrowing_slots)
        })
    }

    /// How many elements the framework's `tasks` array holds (objects or
    /// not): a size estimate that does not wait.
    pub fn len(&self) -> usize {
        self.range.len()
    }

    /// Whether the `tasks` array is empty.
    pub fn is_empty(&self) -> bool {
        self.range.is_empty()
    }
}

impl fmt::Debug for Tasks {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

/// Every task of a state, filled in document order by one [`TaskParser`],
/// and the document they borrow their strings from.
#[derive(Default)]
struct TaskSlots {
    /// The tasks, their lifetime erased: they borrow from `body`, declared
    /// after them so that it is dropped after them, and are only handed
    /// out as borrowing the slots ([`borrowing_slots`]).
    slots: Vec<OnceLock<Option<Task<'static>>>>,
    /// The first task that could not be read.
    error: OnceLock<String>,
    /// The state document; never changed once the slots are shared.
    body: Vec<u8>,
}

/// A task of the slots, as borrowing them (and so their `body`).
fn borrowing_slots<'s>(task: &'s Task<'static>) -> &'s Task<'s> {
    task
}

impl fmt::Debug for TaskSlots {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} task slots", self.slots.len())
    }
}

/// Parses task objects into their slots, in order. Whatever it has not
/// filled when dropped (it stopped early, or never ran) is filled as
/// missing, with an error, so no reader waits forever.
struct TaskParser {
    tasks: Arc<TaskSlots>,
    next: usize,
}

impl TaskParser {
    fn new(tasks: &Arc<TaskSlots>) -> Self {
        TaskParser { tasks: Arc::clone(tasks), next: 0 }
    }

    /// Parse the task at each of `spans` of the document.
    fn run(mut self, spans: &[Range<usize>]) {
        let started = std::time::Instant::now();
        let body = &self.tasks.body;
        // SAFETY: the tasks parsed here borrow from `body` and are stored
        // in the same `TaskSlots`, which owns the document: a `Vec` whose
        // buffer never moves and is never written once shared (there is
        // no `&mut` to an `Arc`'s contents while it is shared), and which
        // is dropped after the slots. Readers get the tasks only for as
        // long as they borrow the slots (`borrowing_slots`).
        let body: &'static [u8] = unsafe { std::slice::from_raw_parts(body.as_ptr(), body.len()) };
        // A document that is UTF-8 throughout (the usual case) is checked
        // once here, and each task read as text: serde then does not check
        // each string again. Otherwise each task is read as bytes, and
        // fails only where bytes that are not UTF-8 sit in a string read.
        let text = std::str::from_utf8(body).ok();
        for (i, span) in spans.iter().enumerate() {
            // Nobody left to read them (the refresh failed meanwhile).
            if i % 256 == 0 && Arc::strong_count(&self.tasks) == 1 {
                return;
            }
            let parsed = match text {
                Some(text) => text.get(span.clone()).map(serde_json::from_str::<Obj<Task>>),
                None => body.get(span.clone()).map(serde_json::from_slice::<Obj<Task>>),
            };
            let task = match parsed {
                Some(Ok(Obj(task))) => task,
                Some(Err(e)) => {
                    let _ = self.tasks.error.set(e.to_string());
                    None
                }
                None => None,
            };
            if let Some(slot) = self.tasks.slots.get(self.next) {
                let _ = slot.set(task);
            }
            self.next += 1;
        }
        tracing::debug!(
            tasks = spans.len(),
            ms = started.elapsed().as_secs_f64() * 1e3,
            "tasks parsed"
        );
    }
}

impl Drop for TaskParser {
    fn drop(&mut self) {
        let rest = self.tasks.slots.get(self.next..).unwrap_or_default();
        if !rest.is_empty() {
            let _ = self.tasks.error.set("the task parser stopped".into());
            for slot in rest {
                let _ = slot.set(None);
            }
        }
    }
}

/// The document's first pass: everything but the task objects, which it
/// only locates.
#[derive(Default, Deserialize)]
#[serde(default)]
struct Outline<'a> {
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
struct ReadOutline {
    frameworks: Vec<(String, String, String, Range<usize>)>,
    slaves: Vec<Agent>,
    leader: String,
    /// Where each task element lies in the document.
    spans: Vec<Range<usize>>,
}

impl Outline<'_> {
    /// Read the outline of `body`: the state, its tasks not yet parsed
    /// (their slots keep `body`), and where in `body` each task object
    /// lies.
    fn parse(body: Vec<u8>) -> Result<(State, Vec<Range<usize>>), StateError> {
        let ReadOutline { frameworks, slaves, leader, spans } = match Self::scanned(&body) {
            Some(read) => read,
            None => Self::read(&body)?,
        };
        let tasks = Arc::new(TaskSlots {
            slots: (0..spans.len()).map(|_| OnceLock::new()).collect(),
            error: OnceLock::new(),
            body,
        });
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
    fn scanned(body: &[u8]) -> Option<ReadOutline> {
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
    fn read(body: &[u8]) -> Result<ReadOutline, StateError> {
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

/// A framework (scheduler) and its tasks.
#[derive(Debug, Default, Clone)]
pub struct Framework {
    pub name: String,
    /// The scheduler's UPID, `scheduler-...@ip:port`.
    pub pid: String,
    pub hostname: String,
    pub tasks: Tasks,
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

/// A string of a task object: borrowed from the document when it holds no
/// JSON escapes (most do not), so parsing a task allocates little and
/// freeing it is cheap.
pub type Text<'a> = Cow<'a, str>;

/// A task as the master reports it.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(default)]
pub struct Task<'a> {
    #[serde(borrow, deserialize_with = "text")]
    pub id: Text<'a>,
    #[serde(borrow, deserialize_with = "text")]
    pub name: Text<'a>,
    #[serde(borrow, deserialize_with = "text")]
    pub slave_id: Text<'a>,
    #[serde(borrow, deserialize_with = "text")]
    pub state: Text<'a>,
    #[serde(borrow, deserialize_with = "objects")]
    pub statuses: Vec<Status<'a>>,
    #[serde(borrow, deserialize_with = "object")]
    pub resources: Resources<'a>,
    #[serde(borrow, deserialize_with = "object")]
    pub discovery: Discovery<'a>,
}

/// The task's resources; only the port ranges are used.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(default)]
pub struct Resources<'a> {
    /// Port ranges as Mesos prints them: `"[31000-31002, 31005-31005]"`.
    #[serde(borrow, deserialize_with = "text")]
    pub ports: Text<'a>,
}

/// One status update of a task.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(default)]
pub struct Status<'a> {
    #[serde(borrow, deserialize_with = "text")]
    pub state: Text<'a>,
    #[serde(deserialize_with = "number")]
    pub timestamp: f64,
    #[serde(borrow, deserialize_with = "objects")]
    pub labels: Vec<Label<'a>>,
    #[serde(borrow, deserialize_with = "object")]
    pub container_status: ContainerStatus<'a>,
}

/// A key/value label.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(default)]
pub struct Label<'a> {
    #[serde(borrow, deserialize_with = "text")]
    pub key: Text<'a>,
    #[serde(borrow, deserialize_with = "text")]
    pub value: Text<'a>,
}

/// Container metadata of a status.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(default)]
pub struct ContainerStatus<'a> {
    #[serde(borrow, deserialize_with = "objects")]
    pub network_infos: Vec<NetworkInfo<'a>>,
}

/// One network interface of a container.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(default)]
pub struct NetworkInfo<'a> {
    #[serde(borrow, deserialize_with = "objects")]
    pub ip_addresses: Vec<IpAddress<'a>>,
    /// Mesos 0.25's single address field.
    #[serde(borrow, deserialize_with = "text")]
    pub ip_address: Text<'a>,
}

/// One address of a network interface.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(default)]
pub struct IpAddress<'a> {
    #[serde(borrow, deserialize_with = "text")]
    pub ip_address: Text<'a>,
}

/// A task's DiscoveryInfo.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(default)]
pub struct Discovery<'a> {
    #[serde(borrow, deserialize_with = "text")]
    pub name: Text<'a>,
    #[serde(borrow, deserialize_with = "object")]
    pub ports: DiscoveryPorts<'a>,
}

/// The `ports` wrapper object of a DiscoveryInfo.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(default)]
pub struct DiscoveryPorts<'a> {
    #[serde(borrow, deserialize_with = "objects")]
    pub ports: Vec<DiscoveryPort<'a>>,
}

/// A named, numbered port of a DiscoveryInfo.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(default)]
pub struct DiscoveryPort<'a> {
    /// `None` when the number is not an integer (e.g. `31000.5`, `"x"`);
    /// 0 when missing, as in the original.
    #[serde(deserialize_with = "integer", default = "zero")]
    pub number: Option<i64>,
    #[serde(borrow, deserialize_with = "text")]
    pub name: Text<'a>,
    #[serde(borrow, deserialize_with = "text")]
    pub protocol: Text<'a>,
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

/// A string, borrowed from the document when it holds no escapes;
/// numbers are taken in their decimal form, anything else is "".
fn text<'de: 'a, 'a, D: Deserializer<'de>>(d: D) -> Result<Text<'a>, D::Error> {
    struct V;
    impl<'de> Visitor<'de> for V {
        type Value = Text<'de>;
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("a string")
        }
        fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Text<'de>, E> {
            Ok(Cow::Borrowed(v))
        }
        fn visit_str<E>(self, v: &str) -> Result<Text<'de>, E> {
            Ok(Cow::Owned(v.to_owned()))
        }
        fn visit_string<E>(self, v: String) -> Result<Text<'de>, E> {
            Ok(Cow::Owned(v))
        }
        fn visit_i64<E>(self, v: i64) -> Result<Text<'de>, E> {
            Ok(Cow::Owned(v.to_string()))
        }
        fn visit_u64<E>(self, v: u64) -> Result<Text<'de>, E> {
            Ok(Cow::Owned(v.to_string()))
        }
        fn visit_f64<E>(self, v: f64) -> Result<Text<'de>, E> {
            Ok(Cow::Owned(v.to_string()))
        }
        fn visit_bool<E>(self, _: bool) -> Result<Text<'de>, E> {
            Ok(Text::default())
        }
        fn visit_unit<E>(self) -> Result<Text<'de>, E> {
            Ok(Text::default())
        }
        fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Text<'de>, A::Error> {
            drain_seq(seq).map(|()| Text::default())
        }
        fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Text<'de>, A::Error> {
            drain_map(map).map(|()| Text::default())
        }
    }
    d.deserialize_any(V)
}

/// A string, as [`text`] reads it, owned.
fn string<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    text(d).map(Cow::into_owned)
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

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Obj<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<T>(PhantomData<T>);
        impl<'de, T: Deserialize<'de>> Visitor<'de> for V<T> {
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
fn object<'de, D: Deserializer<'de>, T: Deserialize<'de> + Default>(d: D) -> Result<T, D::Error> {
    Obj::<T>::deserialize(d).map(|o| o.0.unwrap_or_default())
}

/// An array of objects; elements that are not objects are skipped, and a
/// value that is not an array reads as empty.
fn objects<'de, D: Deserializer<'de>, T: Deserialize<'de>>(d: D) -> Result<Vec<T>, D::Error> {
    array(d, |Obj(item): Obj<T>| item)
}

/// Every element of an array, unparsed (a slice of the document); a value
/// that is not an array reads as empty.
fn elements<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<&'de RawValue>, D::Error> {
    array(d, Some)
}

/// An array, each element read as `E` and kept where `keep` makes a `T`
/// of it; a value that is not an array reads as empty.
fn array<'de, D, E, T>(d: D, keep: fn(E) -> Option<T>) -> Result<Vec<T>, D::Error>
where
    D: Deserializer<'de>,
    E: Deserialize<'de>,
{
    struct V<E, T>(fn(E) -> Option<T>);
    impl<'de, E: Deserialize<'de>, T> Visitor<'de> for V<E, T> {
        type Value = Vec<T>;
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("an array")
        }
        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Vec<T>, A::Error> {
            let mut out = Vec::new();
            while let Some(element) = seq.next_element::<E>()? {
                if let Some(item) = (self.0)(element) {
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
        fn visit_str<Er>(self, _: &str) -> Result<Vec<T>, Er> {
            Ok(Vec::new())
        }
        fn visit_bool<Er>(self, _: bool) -> Result<Vec<T>, Er> {
            Ok(Vec::new())
        }
        fn visit_i64<Er>(self, _: i64) -> Result<Vec<T>, Er> {
            Ok(Vec::new())
        }
        fn visit_u64<Er>(self, _: u64) -> Result<Vec<T>, Er> {
            Ok(Vec::new())
        }
        fn visit_f64<Er>(self, _: f64) -> Result<Vec<T>, Er> {
            Ok(Vec::new())
        }
        fn visit_unit<Er>(self) -> Result<Vec<T>, Er> {
            Ok(Vec::new())
        }
    }
    d.deserialize_any(V(keep))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn task_strings_are_borrowed_from_the_document_unless_escaped() {
        let doc = r#"{"frameworks":[{"tasks":[
            {"id":"plain","name":"a\u0062c","slave_id":7,"discovery":{"name":"svc"}}]}]}"#;
        let state = State::from_slice(doc.as_bytes()).unwrap();
        let task = state.frameworks[0].tasks.iter().next().unwrap();
        assert!(matches!(task.id, Cow::Borrowed("plain")));
        assert!(matches!(task.discovery.name, Cow::Borrowed("svc")));
        assert!(matches!(&task.name, Cow::Owned(s) if s == "abc"));
        assert_eq!(task.slave_id, "7");
        // The tasks (and the document they borrow from) live as long as
        // any clone of the state.
        let kept = state.clone();
        drop(state);
        assert_eq!(kept.frameworks[0].tasks.iter().next().unwrap().id, "plain");
    }

    #[test]
    fn arrays_hold_no_slack() {
        // A parsed state lives through generation; `Vec`'s growth would
        // leave 3 empty slots in every one-element array.
        let statuses = |n: usize| {
            let status = r#"{"state":"TASK_RUNNING","timestamp":1}"#;
            let list = vec![status; n].join(",");
            let doc = format!(r#"{{"frameworks":[{{"tasks":[{{"statuses":[{list}]}}]}}]}}"#);
            let state = State::from_slice(doc.as_bytes()).unwrap();
            let task = state.frameworks[0].tasks.iter().next().unwrap();
            (task.statuses.len(), task.statuses.capacity(), state.frameworks.capacity())
        };
        assert_eq!(statuses(1), (1, 1, 1));
        assert_eq!(statuses(3), (3, 3, 1));
        assert_eq!(statuses(100), (100, 100, 1));
    }

    /// A state of `n` running tasks, each with one port.
    fn state_of(n: usize) -> String {
        let tasks: Vec<String> = (0..n)
            .map(|i| {
                format!(
                    r#"{{"id":"t{i}","name":"app-{}","slave_id":"s1","state":"TASK_RUNNING",
                        "resources":{{"ports":"[{}-{}]"}}}}"#,
                    i % 7,
                    31000 + i % 1000,
                    31000 + i % 1000
                )
            })
            .collect();
        format!(
            r#"{{"leader":"master@10.0.0.1:5050","slaves":[{{"id":"s1","hostname":"10.0.0.2"}}],
                "frameworks":[{{"name":"a","tasks":[{}]}},{{"name":"b","tasks":[]}},
                              {{"name":"c","tasks":[{}]}}]}}"#,
            tasks.join(","),
            tasks.get(..3).unwrap_or_default().join(",")
        )
    }

    #[test]
    fn tasks_parsed_on_a_thread_are_the_same_tasks() {
        let doc = state_of(TASKS_ON_A_THREAD * 3);
        let ids = |s: &State| -> Vec<Vec<String>> {
            s.frameworks
                .iter()
                .map(|f| f.tasks.iter().map(|t| t.id.to_string()).collect())
                .collect()
        };
        let eager = State::from_slice(doc.as_bytes()).unwrap();
        let threaded = State::from_vec(doc.clone().into_bytes()).unwrap();
        assert_eq!(ids(&threaded), ids(&eager));
        assert_eq!(ids(&eager).iter().map(Vec::len).collect::<Vec<_>>(), [3000, 0, 3]);
        assert_eq!(threaded.tasks_parsed(), Ok(()));
        assert_eq!(
            format!("{:?}", threaded.frameworks[2].tasks),
            format!("{:?}", eager.frameworks[2].tasks)
        );
    }

    #[test]
    fn a_task_that_cannot_be_read_fails_the_state_without_hanging_its_readers() {
        // serde refuses a field given twice.
        let bad = r#"{"frameworks":[{"tasks":[{"id":"a"},{"id":"b","id":"c"},{"id":"d"}]}]}"#;
        assert!(matches!(State::from_slice(bad.as_bytes()), Err(StateError::Task(_))));
        let doc = bad.replace(r#"{"id":"d"}"#, &vec![r#"{"id":"d"}"#; TASKS_ON_A_THREAD].join(","));
        let state = State::from_vec(doc.into_bytes()).unwrap();
        assert_eq!(state.frameworks[0].tasks.iter().count(), 1 + TASKS_ON_A_THREAD);
        assert!(state.tasks_parsed().unwrap_err().to_string().contains("duplicate field"));

        // A parser that never runs (its thread did not start) leaves every
        // task missing, and says so.
        let (state, _spans) = Outline::parse(state_of(5).into_bytes()).unwrap();
        drop(TaskParser::new(&state.tasks));
        assert_eq!(state.frameworks[0].tasks.iter().count(), 0);
        assert_eq!(state.frameworks[0].tasks.len(), 5);
        assert!(state.tasks_parsed().unwrap_err().to_string().contains("stopped"));
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
        let t = s.frameworks[1].tasks.iter().next().unwrap();
        assert_eq!(t.statuses[0].timestamp, 12.5);
        assert_eq!(t.resources.ports, "");
        let numbers: Vec<_> = t.discovery.ports.ports.iter().map(|p| p.number).collect();
        assert_eq!(numbers, vec![Some(31000), None, Some(80), Some(0)]);
    }

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
