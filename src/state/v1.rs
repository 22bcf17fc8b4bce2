//! The operator API's JSON (`POST /api/v1`, Mesos 1.1 and later): the
//! events of the `SUBSCRIBE` stream and the `GET_STATE` they open with,
//! read into the same types as `/master/state` ([`Task`], [`Agent`],
//! [`Framework`]'s fields), leniently as that document is.
//!
//! The operator API says some things differently, and each is read back
//! into what `/master/state` would have said for the same cluster:
//! - ids are objects: `task_id.value`, `agent_id.value`, `framework_id.value`;
//! - a task's port resources are `ranges.range[{begin,end}]`, possibly in
//!   several entries (one per reservation): they are merged into the one
//!   `"[b-e, ...]"` text `/master/state` prints;
//! - labels are wrapped: `labels.labels[]`;
//! - a framework carries no scheduler pid: its records come from
//!   `framework_info.hostname`, as the original does for a framework
//!   without pid (and it gets no `_framework._tcp` SRV record);
//! - the leading master is not in the state: [`MasterInfo`] reads it from
//!   a `GET_MASTER` answer.

use std::borrow::Cow;
use std::time::Duration;

use serde::Deserialize;

use super::lenient::{flag, integer, is_object, number, object, objects, string, text};
use super::{
    Agent, ContainerStatus, Discovery, DiscoveryPort, DiscoveryPorts, IpAddress, Label,
    NetworkInfo, Resources, Status, Task, Text,
};

/// A framework as the operator API describes it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FrameworkInfo {
    /// `framework_info.id.value`.
    pub id: String,
    /// `framework_info.name`.
    pub name: String,
    /// `framework_info.hostname`.
    pub hostname: String,
}

/// The cluster as `SUBSCRIBED` (or `GET_STATE`) describes it.
#[derive(Debug, Default)]
pub struct GetState {
    /// Every registered framework (`get_frameworks.frameworks`).
    pub frameworks: Vec<FrameworkInfo>,
    /// Every registered agent (`get_agents.agents`).
    pub agents: Vec<Agent>,
    /// The ids of agents the master knows from its registry but that have
    /// not re-registered since it was elected (`get_agents.recovered_agents`).
    pub recovered_agents: Vec<String>,
    /// Every task the master knows and has not seen end
    /// (`get_tasks.tasks`), with the id of its framework.
    pub tasks: Vec<(String, Task<'static>)>,
}

/// One event of the stream, its task objects owned.
#[derive(Debug)]
pub enum Event {
    /// The first event: the whole state, and how often heartbeats come.
    Subscribed {
        /// The cluster.
        state: GetState,
        /// `heartbeat_interval_seconds`, when given.
        heartbeat: Option<Duration>,
    },
    /// A task was launched: its framework's id and the task.
    TaskAdded(String, Task<'static>),
    /// A task's status changed.
    TaskUpdated(TaskUpdate),
    /// A framework registered (or re-registered).
    FrameworkAdded(FrameworkInfo),
    /// A framework changed (re-subscribed, or updated its info).
    FrameworkUpdated(FrameworkInfo),
    /// A framework was removed, with all its tasks: its id.
    FrameworkRemoved(String),
    /// An agent registered (or re-registered).
    AgentAdded(Agent),
    /// An agent was removed: its id.
    AgentRemoved(String),
    /// The master is alive.
    Heartbeat,
    /// An event of a type this version does not use, e.g. a newer Mesos's
    /// `OPERATION_UPDATED`: its type.
    Other(String),
}

/// A `TASK_UPDATED` event.
#[derive(Debug)]
pub struct TaskUpdate {
    /// `framework_id.value`.
    pub framework_id: String,
    /// `status.task_id.value`.
    pub task_id: String,
    /// The task's latest state, e.g. `TASK_RUNNING`.
    pub state: String,
    /// The new status, appended to the task's statuses.
    pub status: Status<'static>,
}

/// Why an event could not be read.
#[derive(Debug, thiserror::Error)]
pub enum EventError {
    /// Not JSON, or not an object.
    #[error("event is not a JSON object: {0}")]
    Json(#[from] serde_json::Error),
    /// An event that names no type, or misses what its type needs.
    #[error("{0} event without {1}")]
    Incomplete(String, &'static str),
}

impl Event {
    /// Read one event (one RecordIO record).
    pub fn parse(bytes: &[u8]) -> Result<Event, EventError> {
        let e: RawEvent<'_> = serde_json::from_slice(bytes)?;
        let incomplete = |what| EventError::Incomplete(e.kind.to_string(), what);
        Ok(match &*e.kind {
            "SUBSCRIBED" => {
                let s = e.subscribed.ok_or_else(|| incomplete("subscribed"))?;
                let heartbeat = (s.heartbeat_interval_seconds > 0.0)
                    .then(|| Duration::try_from_secs_f64(s.heartbeat_interval_seconds).ok())
                    .flatten();
                Event::Subscribed { state: s.get_state.into_state(), heartbeat }
            }
            "TASK_ADDED" => {
                let task = e.task_added.ok_or_else(|| incomplete("task_added"))?.task;
                let framework = task.framework_id.value.to_string();
                Event::TaskAdded(framework, task.into_task())
            }
            "TASK_UPDATED" => {
                let u = e.task_updated.ok_or_else(|| incomplete("task_updated"))?;
                if u.status.task_id.value.is_empty() {
                    return Err(incomplete("status.task_id"));
                }
                Event::TaskUpdated(TaskUpdate {
                    framework_id: u.framework_id.value.into_owned(),
                    task_id: u.status.task_id.value.to_string(),
                    // `state` is required; a master without it is read
                    // as reporting the status' state.
                    state: if u.state.is_empty() { &u.status.state } else { &u.state }.to_string(),
                    status: u.status.into_status(),
                })
            }
            "FRAMEWORK_ADDED" => Event::FrameworkAdded(
                e.framework_added.ok_or_else(|| incomplete("framework_added"))?.framework.info(),
            ),
            "FRAMEWORK_UPDATED" => Event::FrameworkUpdated(
                e.framework_updated
                    .ok_or_else(|| incomplete("framework_updated"))?
                    .framework
                    .info(),
            ),
            "FRAMEWORK_REMOVED" => {
                let r = e.framework_removed.ok_or_else(|| incomplete("framework_removed"))?;
                Event::FrameworkRemoved(r.info().id)
            }
            "AGENT_ADDED" => Event::AgentAdded(
                e.agent_added.ok_or_else(|| incomplete("agent_added"))?.agent.agent(),
            ),
            "AGENT_REMOVED" => {
                let r = e.agent_removed.ok_or_else(|| incomplete("agent_removed"))?;
                Event::AgentRemoved(r.agent_id.value.into_owned())
            }
            "HEARTBEAT" => Event::Heartbeat,
            "" => return Err(incomplete("type")),
            other => Event::Other(other.to_owned()),
        })
    }

    /// The event's type as the stream names it, for logs and metrics.
    pub fn kind(&self) -> &str {
        match self {
            Event::Subscribed { .. } => "SUBSCRIBED",
            Event::TaskAdded(..) => "TASK_ADDED",
            Event::TaskUpdated(_) => "TASK_UPDATED",
            Event::FrameworkAdded(_) => "FRAMEWORK_ADDED",
            Event::FrameworkUpdated(_) => "FRAMEWORK_UPDATED",
            Event::FrameworkRemoved(_) => "FRAMEWORK_REMOVED",
            Event::AgentAdded(_) => "AGENT_ADDED",
            Event::AgentRemoved(_) => "AGENT_REMOVED",
            Event::Heartbeat => "HEARTBEAT",
            Event::Other(kind) => kind,
        }
    }
}

impl GetState {
    /// Read a `GET_STATE` answer (`{"type":"GET_STATE","get_state":{...}}`),
    /// or its `get_state` object alone.
    pub fn parse(bytes: &[u8]) -> Result<GetState, EventError> {
        #[derive(Deserialize, Default)]
        #[serde(default)]
        struct Answer<'a> {
            #[serde(borrow)]
            get_state: Option<RawGetState<'a>>,
            #[serde(borrow, deserialize_with = "object")]
            get_tasks: RawGetTasks<'a>,
            #[serde(borrow, deserialize_with = "object")]
            get_frameworks: RawGetFrameworks<'a>,
            #[serde(borrow, deserialize_with = "object")]
            get_agents: RawGetAgents<'a>,
        }
        let a: Answer<'_> = serde_json::from_slice(bytes)?;
        Ok(match a.get_state {
            Some(s) => s.into_state(),
            None => RawGetState {
                get_tasks: a.get_tasks,
                get_frameworks: a.get_frameworks,
                get_agents: a.get_agents,
            }
            .into_state(),
        })
    }
}

/// What a `GET_MASTER` answer says of the leading master.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub struct MasterInfo {
    /// Its UPID, `master@ip:port`, as `/master/state` names the leader.
    #[serde(deserialize_with = "string")]
    pub pid: String,
    /// Its Mesos version, e.g. `1.5.0`.
    #[serde(deserialize_with = "string")]
    pub version: String,
}

impl MasterInfo {
    /// Read a `GET_MASTER` answer; `None` when it is not one.
    pub fn parse(bytes: &[u8]) -> Option<MasterInfo> {
        #[derive(Deserialize, Default)]
        #[serde(default)]
        struct Answer {
            #[serde(deserialize_with = "object")]
            get_master: GetMaster,
        }
        #[derive(Deserialize, Default)]
        #[serde(default)]
        struct GetMaster {
            #[serde(deserialize_with = "object")]
            master_info: MasterInfo,
        }
        let a: Answer = serde_json::from_slice(bytes).ok()?;
        Some(a.get_master.master_info).filter(|m| !m.pid.is_empty() || !m.version.is_empty())
    }
}

// The operator API's JSON, as read (borrowing from the event's bytes).

#[derive(Deserialize, Default)]
#[serde(default)]
struct RawEvent<'a> {
    #[serde(rename = "type", borrow, deserialize_with = "text")]
    kind: Text<'a>,
    #[serde(borrow)]
    subscribed: Option<RawSubscribed<'a>>,
    #[serde(borrow)]
    task_added: Option<RawTaskAdded<'a>>,
    #[serde(borrow)]
    task_updated: Option<RawTaskUpdated<'a>>,
    #[serde(borrow)]
    framework_added: Option<RawFrameworkEvent<'a>>,
    #[serde(borrow)]
    framework_updated: Option<RawFrameworkEvent<'a>>,
    /// Its `framework_info`, the one field read of a framework.
    #[serde(borrow)]
    framework_removed: Option<RawFramework<'a>>,
    #[serde(borrow)]
    agent_added: Option<RawAgentAdded<'a>>,
    #[serde(borrow)]
    agent_removed: Option<RawAgentRemoved<'a>>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct RawSubscribed<'a> {
    #[serde(borrow, deserialize_with = "object")]
    get_state: RawGetState<'a>,
    #[serde(deserialize_with = "number")]
    heartbeat_interval_seconds: f64,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct RawGetState<'a> {
    #[serde(borrow, deserialize_with = "object")]
    get_tasks: RawGetTasks<'a>,
    #[serde(borrow, deserialize_with = "object")]
    get_frameworks: RawGetFrameworks<'a>,
    #[serde(borrow, deserialize_with = "object")]
    get_agents: RawGetAgents<'a>,
}

impl RawGetState<'_> {
    fn into_state(self) -> GetState {
        let tasks = self.get_tasks.tasks.into_iter();
        GetState {
            frameworks: self.get_frameworks.frameworks.into_iter().map(|f| f.info()).collect(),
            agents: self.get_agents.agents.into_iter().map(|a| a.agent()).collect(),
            recovered_agents: self
                .get_agents
                .recovered_agents
                .into_iter()
                .map(|a| a.id.value.into_owned())
                .collect(),
            tasks: tasks.map(|t| (t.framework_id.value.to_string(), t.into_task())).collect(),
        }
    }
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct RawGetTasks<'a> {
    #[serde(borrow, deserialize_with = "objects")]
    tasks: Vec<RawTask<'a>>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct RawGetFrameworks<'a> {
    #[serde(borrow, deserialize_with = "objects")]
    frameworks: Vec<RawFramework<'a>>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct RawGetAgents<'a> {
    #[serde(borrow, deserialize_with = "objects")]
    agents: Vec<RawAgent<'a>>,
    #[serde(borrow, deserialize_with = "objects")]
    recovered_agents: Vec<RawAgentInfo<'a>>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct Id<'a> {
    #[serde(borrow, deserialize_with = "text")]
    value: Text<'a>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct RawFramework<'a> {
    #[serde(borrow, deserialize_with = "object")]
    framework_info: RawFrameworkInfo<'a>,
}

impl RawFramework<'_> {
    fn info(self) -> FrameworkInfo {
        self.framework_info.info()
    }
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct RawFrameworkInfo<'a> {
    #[serde(borrow, deserialize_with = "object")]
    id: Id<'a>,
    #[serde(borrow, deserialize_with = "text")]
    name: Text<'a>,
    #[serde(borrow, deserialize_with = "text")]
    hostname: Text<'a>,
}

impl RawFrameworkInfo<'_> {
    fn info(self) -> FrameworkInfo {
        FrameworkInfo {
            id: self.id.value.into_owned(),
            name: self.name.into_owned(),
            hostname: self.hostname.into_owned(),
        }
    }
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct RawFrameworkEvent<'a> {
    #[serde(borrow, deserialize_with = "object")]
    framework: RawFramework<'a>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct RawAgent<'a> {
    #[serde(borrow, deserialize_with = "object")]
    agent_info: RawAgentInfo<'a>,
    #[serde(borrow, deserialize_with = "text")]
    pid: Text<'a>,
}

impl RawAgent<'_> {
    fn agent(self) -> Agent {
        Agent {
            id: self.agent_info.id.value.into_owned(),
            hostname: self.agent_info.hostname.into_owned(),
            pid: self.pid.into_owned(),
        }
    }
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct RawAgentInfo<'a> {
    #[serde(borrow, deserialize_with = "object")]
    id: Id<'a>,
    #[serde(borrow, deserialize_with = "text")]
    hostname: Text<'a>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct RawAgentAdded<'a> {
    #[serde(borrow, deserialize_with = "object")]
    agent: RawAgent<'a>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct RawAgentRemoved<'a> {
    #[serde(borrow, deserialize_with = "object")]
    agent_id: Id<'a>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct RawTaskAdded<'a> {
    #[serde(borrow, deserialize_with = "object")]
    task: RawTask<'a>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct RawTaskUpdated<'a> {
    #[serde(borrow, deserialize_with = "object")]
    framework_id: Id<'a>,
    #[serde(borrow, deserialize_with = "object")]
    status: RawStatus<'a>,
    #[serde(borrow, deserialize_with = "text")]
    state: Text<'a>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct RawTask<'a> {
    #[serde(borrow, deserialize_with = "object")]
    task_id: Id<'a>,
    #[serde(borrow, deserialize_with = "object")]
    framework_id: Id<'a>,
    #[serde(borrow, deserialize_with = "object")]
    agent_id: Id<'a>,
    #[serde(borrow, deserialize_with = "text")]
    name: Text<'a>,
    #[serde(borrow, deserialize_with = "text")]
    state: Text<'a>,
    #[serde(borrow, deserialize_with = "objects")]
    statuses: Vec<RawStatus<'a>>,
    #[serde(borrow, deserialize_with = "objects")]
    resources: Vec<RawResource<'a>>,
    #[serde(borrow, deserialize_with = "object")]
    discovery: Discovery<'a>,
    #[serde(deserialize_with = "is_object")]
    health_check: bool,
}

impl RawTask<'_> {
    fn into_task(self) -> Task<'static> {
        let ports = port_text(self.resources.iter().filter(|r| r.name == "ports"));
        Task {
            id: owned(self.task_id.value),
            name: owned(self.name),
            slave_id: owned(self.agent_id.value),
            state: owned(self.state),
            statuses: self.statuses.into_iter().map(RawStatus::into_status).collect(),
            resources: Resources { ports: Cow::Owned(ports) },
            discovery: owned_discovery(self.discovery),
            health_check: self.health_check,
        }
    }
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct RawResource<'a> {
    #[serde(borrow, deserialize_with = "text")]
    name: Text<'a>,
    #[serde(deserialize_with = "object")]
    ranges: RawRanges,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct RawRanges {
    #[serde(deserialize_with = "objects")]
    range: Vec<RawRange>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct RawRange {
    #[serde(deserialize_with = "integer")]
    begin: Option<i64>,
    #[serde(deserialize_with = "integer")]
    end: Option<i64>,
}

/// The port ranges of `resources` as `/master/state` prints them: every
/// range of every entry, sorted, overlapping and adjacent ones merged
/// (`"[31000-31002, 31005-31005]"`). A range without both bounds is
/// printed as it is, for generation to report.
fn port_text<'r, 'a: 'r>(resources: impl Iterator<Item = &'r RawResource<'a>>) -> String {
    let mut ranges: Vec<(i64, i64)> = Vec::new();
    let mut broken = Vec::new();
    for range in resources.flat_map(|r| &r.ranges.range) {
        match (range.begin, range.end) {
            (Some(b), Some(e)) if b <= e => ranges.push((b, e)),
            (b, e) => broken.push(format!(
                "{}-{}",
                b.map_or("?".into(), |b| b.to_string()),
                e.map_or("?".into(), |e| e.to_string())
            )),
        }
    }
    ranges.sort_unstable();
    let mut merged: Vec<(i64, i64)> = Vec::with_capacity(ranges.len());
    for (b, e) in ranges {
        match merged.last_mut() {
            Some(last) if b <= last.1.saturating_add(1) => last.1 = last.1.max(e),
            _ => merged.push((b, e)),
        }
    }
    let parts: Vec<String> = merged.iter().map(|(b, e)| format!("{b}-{e}")).chain(broken).collect();
    format!("[{}]", parts.join(", "))
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct RawStatus<'a> {
    #[serde(borrow, deserialize_with = "object")]
    task_id: Id<'a>,
    #[serde(borrow, deserialize_with = "text")]
    state: Text<'a>,
    #[serde(deserialize_with = "number")]
    timestamp: f64,
    #[serde(borrow, deserialize_with = "object")]
    labels: RawLabels<'a>,
    #[serde(borrow, deserialize_with = "object")]
    container_status: ContainerStatus<'a>,
    #[serde(deserialize_with = "flag")]
    healthy: Option<bool>,
}

impl RawStatus<'_> {
    fn into_status(self) -> Status<'static> {
        Status {
            state: owned(self.state),
            timestamp: self.timestamp,
            labels: self.labels.labels.into_iter().map(owned_label).collect(),
            container_status: ContainerStatus {
                network_infos: self
                    .container_status
                    .network_infos
                    .into_iter()
                    .map(owned_network_info)
                    .collect(),
            },
            healthy: self.healthy,
        }
    }
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct RawLabels<'a> {
    #[serde(borrow, deserialize_with = "objects")]
    labels: Vec<Label<'a>>,
}

fn owned(text: Text<'_>) -> Text<'static> {
    Cow::Owned(text.into_owned())
}

fn owned_label(l: Label<'_>) -> Label<'static> {
    Label { key: owned(l.key), value: owned(l.value) }
}

fn owned_network_info(n: NetworkInfo<'_>) -> NetworkInfo<'static> {
    NetworkInfo {
        ip_addresses: n
            .ip_addresses
            .into_iter()
            .map(|a| IpAddress { ip_address: owned(a.ip_address) })
            .collect(),
        ip_address: owned(n.ip_address),
    }
}

fn owned_discovery(d: Discovery<'_>) -> Discovery<'static> {
    Discovery {
        name: owned(d.name),
        ports: DiscoveryPorts {
            ports: d
                .ports
                .ports
                .into_iter()
                .map(|p| DiscoveryPort {
                    number: p.number,
                    name: owned(p.name),
                    protocol: owned(p.protocol),
                })
                .collect(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ports_are_merged_as_master_state_prints_them() {
        let doc = r#"[{"name":"ports","ranges":{"range":[{"begin":31005,"end":31005},{"begin":31000,"end":31002}]}},
                      {"name":"cpus","scalar":{"value":1}},
                      {"name":"ports","ranges":{"range":[{"begin":31003,"end":31003},{"begin":"x"}]}}]"#;
        let resources: Vec<RawResource<'_>> = serde_json::from_str(doc).unwrap();
        let text = port_text(resources.iter().filter(|r| r.name == "ports"));
        assert_eq!(text, "[31000-31003, 31005-31005, ?-?]");
        assert_eq!(port_text(std::iter::empty()), "[]");
    }

    #[test]
    fn a_task_reads_as_master_state_would_show_it() {
        let event = br#"{"type":"TASK_ADDED","task_added":{"task":{
            "name":"web","task_id":{"value":"web.1"},"framework_id":{"value":"F1"},
            "agent_id":{"value":"S1"},"state":"TASK_STAGING",
            "resources":[{"name":"ports","type":"RANGES","ranges":{"range":[{"begin":31000,"end":31001}]}}],
            "statuses":[{"task_id":{"value":"web.1"},"state":"TASK_RUNNING","timestamp":1.5,
                "labels":{"labels":[{"key":"Docker.NetworkSettings.IPAddress","value":"10.1.1.1"}]},
                "container_status":{"network_infos":[{"ip_addresses":[{"ip_address":"10.2.2.2"}]}]}}],
            "discovery":{"name":"web","ports":{"ports":[{"number":80,"name":"http","protocol":"tcp"}]}}}}}"#;
        let Event::TaskAdded(framework, task) = Event::parse(event).unwrap() else {
            panic!("not TASK_ADDED");
        };
        assert_eq!(framework, "F1");
        assert_eq!((&*task.id, &*task.name, &*task.slave_id), ("web.1", "web", "S1"));
        assert_eq!(task.resources.ports, "[31000-31001]");
        let status = &task.statuses[0];
        assert_eq!((&*status.state, status.timestamp), ("TASK_RUNNING", 1.5));
        assert_eq!(status.labels[0].value, "10.1.1.1");
        assert_eq!(status.container_status.network_infos[0].ip_addresses[0].ip_address, "10.2.2.2");
        assert_eq!(task.discovery.ports.ports[0].number, Some(80));
    }

    #[test]
    fn every_event_of_the_fixture_streams_reads() {
        for file in [
            "v1-dcos-net-subscribe-hello-world.jsonl",
            "v1-dcos-net-subscribe-network-matrix-ipv6.jsonl",
        ] {
            let path = format!("{}/tests/fixtures/mesos-state/{file}", env!("CARGO_MANIFEST_DIR"));
            let text = std::fs::read_to_string(path).unwrap();
            let kinds: Vec<String> = text
                .lines()
                .map(|l| Event::parse(l.as_bytes()).unwrap().kind().to_owned())
                .collect();
            assert_eq!(kinds.first().map(String::as_str), Some("SUBSCRIBED"), "{file}");
            assert!(!kinds.iter().any(|k| k.contains("UNKNOWN")), "{file}: {kinds:?}");
        }
    }

    #[test]
    fn malformed_events_are_errors_not_panics() {
        for bad in [
            &b""[..],
            b"[]",
            b"{}",
            b"{\"type\":\"TASK_ADDED\"}",
            b"{\"type\":\"TASK_UPDATED\",\"task_updated\":{}}",
            b"\xff",
        ] {
            assert!(Event::parse(bad).is_err(), "{:?}", String::from_utf8_lossy(bad));
        }
        assert!(
            matches!(Event::parse(br#"{"type":"NEW_THING"}"#), Ok(Event::Other(k)) if k == "NEW_THING")
        );
        // A type that is not even a string is just another unknown type.
        assert!(matches!(Event::parse(br#"{"type":3}"#), Ok(Event::Other(k)) if k == "3"));
        assert!(matches!(Event::parse(br#"{"type":"HEARTBEAT"}"#), Ok(Event::Heartbeat)));
    }

    #[test]
    fn the_leader_comes_from_get_master() {
        let answer = br#"{"type":"GET_MASTER","get_master":{"master_info":{"id":"x","ip":16842879,
            "port":5050,"pid":"master@127.0.1.1:5050","address":{"ip":"127.0.1.1","port":5050}}}}"#;
        let info = MasterInfo::parse(answer).unwrap();
        assert_eq!(info.pid, "master@127.0.1.1:5050");
        assert_eq!(MasterInfo::parse(b"{}"), None);
        assert_eq!(MasterInfo::parse(b"garbage"), None);
    }
}
