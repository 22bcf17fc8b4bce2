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
use std::ops::Range;
use std::sync::Arc;

use serde::Deserialize;
use serde_json::value::RawValue;

mod arena;
mod lenient;
mod outline;
mod scan;
pub mod v1;
pub mod cluster;

use arena::{TaskParser, TaskSlots};
use lenient::{flag, integer, is_object, number, object, objects, string, text};
use outline::Outline;

/// A parsed state document.
#[derive(Debug, Default, Clone)]
pub struct State {
    /// The `frameworks` array: every active framework and its tasks.
    pub frameworks: Vec<Framework>,
    /// The `slaves` array: every registered agent.
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
    /// The document is JSON but not an object; the kind of value it is.
    #[error("state document is not a JSON object (found {0})")]
    NotAnObject(&'static str),
    /// A task object could not be read.
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
        self.tasks.parsed()
    }
}

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
        self.range.clone().filter_map(move |i| self.slots.task(i))
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

/// A framework (scheduler) and its tasks.
#[derive(Debug, Default, Clone)]
pub struct Framework {
    /// The framework's `name`, e.g. `marathon`.
    pub name: String,
    /// The scheduler's UPID, `scheduler-...@ip:port`.
    pub pid: String,
    /// The `hostname` the scheduler registered from.
    pub hostname: String,
    /// The framework's `tasks` array.
    pub tasks: Tasks,
}

/// An agent (Mesos "slave").
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(default)]
pub struct Agent {
    /// The agent's `id`, which tasks name in their `slave_id`.
    #[serde(deserialize_with = "string")]
    pub id: String,
    /// The agent's `hostname`, as the master knows it.
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
    /// The task's `id`.
    #[serde(borrow, deserialize_with = "text")]
    pub id: Text<'a>,
    /// The task's `name`.
    #[serde(borrow, deserialize_with = "text")]
    pub name: Text<'a>,
    /// The `id` of the agent the task runs on.
    #[serde(borrow, deserialize_with = "text")]
    pub slave_id: Text<'a>,
    /// The task's current `state`, e.g. `TASK_RUNNING`.
    #[serde(borrow, deserialize_with = "text")]
    pub state: Text<'a>,
    /// The task's `statuses`: its status updates.
    #[serde(borrow, deserialize_with = "objects")]
    pub statuses: Vec<Status<'a>>,
    /// The task's `resources`.
    #[serde(borrow, deserialize_with = "object")]
    pub resources: Resources<'a>,
    /// The task's `discovery` (DiscoveryInfo), if any.
    #[serde(borrow, deserialize_with = "object")]
    pub discovery: Discovery<'a>,
    /// Whether the task has a Mesos health check (`health_check`, shown
    /// by Mesos 1.8 and later, and by the operator API).
    #[serde(deserialize_with = "is_object")]
    pub health_check: bool,
}

impl Task<'_> {
    /// Whether the task's health checks pass, for `healthyOnly`: the
    /// `healthy` of its newest status that has one (`true`: passing). A
    /// task with a health check but no result yet does not pass; a task
    /// with neither a check nor a result passes (nothing says otherwise).
    pub fn passes_health_checks(&self) -> bool {
        let newest = self.statuses.iter().filter_map(|s| s.healthy.map(|h| (s.timestamp, h))).fold(
            None,
            |best: Option<(f64, bool)>, (ts, h)| match best {
                Some((t, _)) if t > ts => best,
                _ => Some((ts, h)),
            },
        );
        match newest {
            Some((_, healthy)) => healthy,
            None => !self.health_check,
        }
    }
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
    /// The task `state` this update reports, e.g. `TASK_RUNNING`.
    #[serde(borrow, deserialize_with = "text")]
    pub state: Text<'a>,
    /// When the update was sent: the `timestamp`, in seconds since the epoch.
    #[serde(deserialize_with = "number")]
    pub timestamp: f64,
    /// The update's `labels`.
    #[serde(borrow, deserialize_with = "objects")]
    pub labels: Vec<Label<'a>>,
    /// The update's `container_status`.
    #[serde(borrow, deserialize_with = "object")]
    pub container_status: ContainerStatus<'a>,
    /// The health check's result it carries (`healthy`), if any.
    #[serde(deserialize_with = "flag")]
    pub healthy: Option<bool>,
}

/// A key/value label.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(default)]
pub struct Label<'a> {
    /// The label's `key`.
    #[serde(borrow, deserialize_with = "text")]
    pub key: Text<'a>,
    /// The label's `value`.
    #[serde(borrow, deserialize_with = "text")]
    pub value: Text<'a>,
}

/// Container metadata of a status.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(default)]
pub struct ContainerStatus<'a> {
    /// The container's `network_infos`: one per network interface.
    #[serde(borrow, deserialize_with = "objects")]
    pub network_infos: Vec<NetworkInfo<'a>>,
}

/// One network interface of a container.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(default)]
pub struct NetworkInfo<'a> {
    /// The interface's `ip_addresses`.
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
    /// The `ip_address`, IPv4 or IPv6, as text.
    #[serde(borrow, deserialize_with = "text")]
    pub ip_address: Text<'a>,
}

/// A task's DiscoveryInfo.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(default)]
pub struct Discovery<'a> {
    /// The DiscoveryInfo's `name`.
    #[serde(borrow, deserialize_with = "text")]
    pub name: Text<'a>,
    /// The DiscoveryInfo's `ports`.
    #[serde(borrow, deserialize_with = "object")]
    pub ports: DiscoveryPorts<'a>,
}

/// The `ports` wrapper object of a DiscoveryInfo.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(default)]
pub struct DiscoveryPorts<'a> {
    /// The `ports` array inside the wrapper.
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
    /// The port's `name`.
    #[serde(borrow, deserialize_with = "text")]
    pub name: Text<'a>,
    /// The port's `protocol`, e.g. `tcp` or `udp`.
    #[serde(borrow, deserialize_with = "text")]
    pub protocol: Text<'a>,
}

fn zero() -> Option<i64> {
    Some(0)
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

    /// A state of `n` running tasks, each with one port.
    pub(super) fn state_of(n: usize) -> String {
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
}
