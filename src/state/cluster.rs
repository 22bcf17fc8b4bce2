//! The cluster model: what the leading master has told us over its event
//! stream, the `SUBSCRIBED` state updated by each event since. It gives a
//! [`State`] like the one `/master/state` would give for the same cluster,
//! for record generation to read.
//!
//! Rules (docs/architecture.md, live records):
//! - a task is known from `SUBSCRIBED` or `TASK_ADDED`; `TASK_UPDATED` sets
//!   its state and appends its status; a terminal state removes it (the
//!   master will not speak of it again), `TASK_UNREACHABLE` does not (the
//!   task may come back);
//! - `FRAMEWORK_REMOVED` removes the framework and its tasks,
//!   `AGENT_REMOVED` the agent and the tasks on it;
//! - after a master failover the new leader knows the agents that have not
//!   re-registered yet only as `recovered_agents`, without their tasks: the
//!   model keeps those agents and their tasks from before
//!   ([`Cluster::subscribed`]) until the agent re-registers (its tasks are
//!   then sent again as `TASK_ADDED`, before `AGENT_ADDED`: the ones not
//!   sent have ended) or is removed. A failover never empties the zone.

use std::collections::HashSet;
use std::sync::Arc;

use indexmap::IndexMap;

use super::arena::TaskSlots;
use super::v1::{Event, FrameworkInfo, GetState, TaskUpdate};
use super::{Agent, Framework, State, Task, Tasks};

/// The states after which the master forgets a task.
const TERMINAL: [&str; 8] = [
    "TASK_FINISHED",
    "TASK_FAILED",
    "TASK_KILLED",
    "TASK_LOST",
    "TASK_ERROR",
    "TASK_DROPPED",
    "TASK_GONE",
    "TASK_GONE_BY_OPERATOR",
];

/// The only state whose tasks have records.
const RUNNING: &str = "TASK_RUNNING";

/// The cluster as the event stream describes it.
#[derive(Debug, Default, Clone)]
pub struct Cluster {
    /// The leading master's UPID, `master@ip:port`.
    leader: String,
    frameworks: IndexMap<String, FrameworkEntry>,
    agents: IndexMap<String, AgentEntry>,
}

#[derive(Debug, Default, Clone)]
struct FrameworkEntry {
    info: FrameworkInfo,
    tasks: IndexMap<String, TaskEntry>,
}

#[derive(Debug, Clone)]
struct TaskEntry {
    task: Arc<Task<'static>>,
    /// Kept from before a failover, on an agent that has not re-registered.
    carried: bool,
}

#[derive(Debug, Clone)]
struct AgentEntry {
    agent: Agent,
    /// Known from before a failover, not re-registered yet.
    recovered: bool,
}

/// What applying one event did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Applied {
    /// The records of these may have changed.
    Changed(Vec<Touched>),
    /// Nothing that records are made of changed (a heartbeat, a task
    /// moving between states that have no records, an unused event type).
    Unchanged,
    /// The event names a task, framework or agent the model does not know;
    /// what it names. Nothing changed.
    Unknown(String),
}

/// A part of the cluster whose records an event may have changed.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Touched {
    /// A task: its framework's id and its key.
    Task(String, String),
    /// A framework's own records.
    Framework(String),
    /// An agent's own records.
    Agent(String),
}

impl Cluster {
    /// The model of a `SUBSCRIBED` state from the leader `leader`
    /// (`master@ip:port`). `before` is the model of the previous
    /// subscription, if any: of its agents that the new state lists as
    /// recovered (not re-registered since a failover), the agent and its
    /// tasks are kept.
    pub fn subscribed(
        state: GetState,
        leader: String,
        before: Option<&Cluster>,
    ) -> (Cluster, usize) {
        let mut cluster = Cluster { leader, ..Cluster::default() };
        for info in state.frameworks {
            cluster
                .frameworks
                .insert(info.id.clone(), FrameworkEntry { info, tasks: IndexMap::new() });
        }
        for agent in state.agents {
            cluster.agents.insert(agent.id.clone(), AgentEntry { agent, recovered: false });
        }
        let mut orphans = 0;
        for (framework, task) in state.tasks {
            match cluster.frameworks.get_mut(&framework) {
                Some(f) => {
                    let mut key = task.id.to_string();
                    // A master never lists a task id twice in a framework;
                    // a state that does keeps both, as polling it would
                    // (events name the first).
                    while f.tasks.contains_key(&key) {
                        key.push('\0');
                    }
                    f.tasks.insert(key, TaskEntry { task: Arc::new(task), carried: false });
                }
                None => orphans += 1,
            }
        }
        if let Some(before) = before {
            cluster.carry_over(before, &state.recovered_agents);
        }
        (cluster, orphans)
    }

    /// Keep the agents `recovered` (those not registered now) and their
    /// tasks from `before`, in one pass over its tasks.
    fn carry_over(&mut self, before: &Cluster, recovered: &[String]) {
        let mut kept = HashSet::new();
        for id in recovered {
            if self.agents.contains_key(id) {
                continue;
            }
            if let Some(agent) = before.agents.get(id) {
                let entry = AgentEntry { agent: agent.agent.clone(), recovered: true };
                self.agents.insert(id.clone(), entry);
                kept.insert(id.as_str());
            }
        }
        if kept.is_empty() {
            return;
        }
        for (fid, f) in &before.frameworks {
            let on_kept = f.tasks.iter().filter(|(_, t)| kept.contains(&*t.task.slave_id));
            for (tid, t) in on_kept {
                let entry = self.frameworks.entry(fid.clone()).or_insert_with(|| FrameworkEntry {
                    info: f.info.clone(),
                    tasks: IndexMap::new(),
                });
                let task = TaskEntry { task: Arc::clone(&t.task), carried: true };
                entry.tasks.entry(tid.clone()).or_insert(task);
            }
        }
    }

    /// Apply one event (not `SUBSCRIBED`, which starts a new model).
    pub fn apply(&mut self, event: Event) -> Applied {
        match event {
            Event::TaskAdded(framework, task) => self.task_added(&framework, task),
            Event::TaskUpdated(update) => self.task_updated(update),
            Event::FrameworkAdded(info) | Event::FrameworkUpdated(info) => self.framework(info),
            Event::FrameworkRemoved(id) => match self.frameworks.shift_remove(&id) {
                Some(f) => {
                    let mut touched: Vec<Touched> =
                        f.tasks.keys().map(|k| Touched::Task(id.clone(), k.clone())).collect();
                    touched.push(Touched::Framework(id));
                    Applied::Changed(touched)
                }
                None => Applied::Unknown(format!("framework {id:?}")),
            },
            Event::AgentAdded(agent) => self.agent_added(agent),
            Event::AgentRemoved(id) => {
                if self.agents.shift_remove(&id).is_none() {
                    return Applied::Unknown(format!("agent {id:?}"));
                }
                let mut touched = self.remove_tasks(|t| t.task.slave_id == id);
                touched.push(Touched::Agent(id));
                Applied::Changed(touched)
            }
            Event::Subscribed { .. } | Event::Heartbeat | Event::Other(_) => Applied::Unchanged,
        }
    }

    fn task_added(&mut self, framework: &str, task: Task<'static>) -> Applied {
        let Some(f) = self.frameworks.get_mut(framework) else {
            return Applied::Unknown(format!("framework {framework:?} of task {:?}", task.id));
        };
        let running = task.state == RUNNING;
        let key = task.id.to_string();
        let entry = TaskEntry { task: Arc::new(task), carried: false };
        let before = f.tasks.insert(key.clone(), entry);
        if running || before.is_some_and(|t| t.task.state == RUNNING) {
            Applied::Changed(vec![Touched::Task(framework.to_owned(), key)])
        } else {
            Applied::Unchanged
        }
    }

    fn task_updated(&mut self, update: TaskUpdate) -> Applied {
        let TaskUpdate { framework_id, task_id, state, status } = update;
        let Some(f) = self.frameworks.get_mut(&framework_id) else {
            return Applied::Unknown(format!("framework {framework_id:?} of task {task_id:?}"));
        };
        let Some(entry) = f.tasks.get_mut(&task_id) else {
            return Applied::Unknown(format!("task {task_id:?}"));
        };
        let was_running = entry.task.state == RUNNING;
        let running = state == RUNNING;
        if TERMINAL.contains(&state.as_str()) {
            f.tasks.shift_remove(&task_id);
        } else {
            let task = Arc::make_mut(&mut entry.task);
            task.state = state.into();
            task.statuses.push(status);
        }
        if was_running || running {
            Applied::Changed(vec![Touched::Task(framework_id, task_id)])
        } else {
            Applied::Unchanged
        }
    }

    fn framework(&mut self, info: FrameworkInfo) -> Applied {
        let id = info.id.clone();
        let f = match self.frameworks.get_mut(&id) {
            Some(f) if f.info == info => return Applied::Unchanged,
            Some(f) => {
                f.info = info;
                f
            }
            None => self
                .frameworks
                .entry(id.clone())
                .or_insert(FrameworkEntry { info, tasks: IndexMap::new() }),
        };
        // Its tasks' names hold its name.
        let mut touched: Vec<Touched> =
            f.tasks.keys().map(|k| Touched::Task(id.clone(), k.clone())).collect();
        touched.push(Touched::Framework(id));
        Applied::Changed(touched)
    }

    fn agent_added(&mut self, agent: Agent) -> Applied {
        let id = agent.id.clone();
        let before = self.agents.get(&id);
        let recovered = before.is_some_and(|b| b.recovered);
        let same = before.is_some_and(|b| {
            !b.recovered && b.agent.hostname == agent.hostname && b.agent.pid == agent.pid
        });
        self.agents.insert(id.clone(), AgentEntry { agent, recovered: false });
        let mut touched = Vec::new();
        if recovered {
            // Re-registered after a failover: its tasks that still run
            // were sent again (TASK_ADDED) just before.
            touched = self.remove_tasks(|t| t.carried && t.task.slave_id == id);
        }
        if same && touched.is_empty() {
            return Applied::Unchanged;
        }
        // Its tasks' records hold its addresses.
        for (fid, f) in &self.frameworks {
            let on_agent = f.tasks.iter().filter(|(_, t)| t.task.slave_id == id);
            touched.extend(on_agent.map(|(k, _)| Touched::Task(fid.clone(), k.clone())));
        }
        touched.push(Touched::Agent(id));
        Applied::Changed(touched)
    }

    /// Remove the tasks `remove` picks; which they were.
    fn remove_tasks(&mut self, remove: impl Fn(&TaskEntry) -> bool) -> Vec<Touched> {
        let mut removed = Vec::new();
        for (fid, f) in &mut self.frameworks {
            f.tasks.retain(|k, t| {
                let keep = !remove(t);
                if !keep {
                    removed.push(Touched::Task(fid.clone(), k.clone()));
                }
                keep
            });
        }
        removed
    }

    /// Every part of the cluster that has records of its own: each
    /// framework, agent and task.
    pub fn parts(&self) -> Vec<Touched> {
        let mut out =
            Vec::with_capacity(self.task_count() + self.frameworks.len() + self.agents.len());
        for (fid, f) in &self.frameworks {
            out.push(Touched::Framework(fid.clone()));
            out.extend(f.tasks.keys().map(|k| Touched::Task(fid.clone(), k.clone())));
        }
        out.extend(self.agents.keys().map(|a| Touched::Agent(a.clone())));
        out
    }

    /// The state of one part alone, for generating its records: a task
    /// with its framework and agent, a framework without tasks, or an
    /// agent. `None` when the model no longer has it.
    pub fn part_state(&self, part: &Touched) -> Option<State> {
        let (framework, task, agent) = match part {
            Touched::Task(fid, key) => {
                let f = self.frameworks.get(fid)?;
                let t = f.tasks.get(key)?;
                (Some(&f.info), Some(&t.task), self.agents.get(&*t.task.slave_id))
            }
            Touched::Framework(fid) => (Some(&self.frameworks.get(fid)?.info), None, None),
            Touched::Agent(id) => (None, None, Some(self.agents.get(id)?)),
        };
        let slots = Arc::new(TaskSlots::shared(task.into_iter().cloned().collect()));
        let range = 0..usize::from(task.is_some());
        Some(State {
            frameworks: framework
                .map(|info| Framework {
                    name: info.name.clone(),
                    pid: String::new(),
                    hostname: info.hostname.clone(),
                    tasks: Tasks { slots: Arc::clone(&slots), range },
                })
                .into_iter()
                .collect(),
            slaves: agent.map(|a| a.agent.clone()).into_iter().collect(),
            leader: self.leader.clone(),
            tasks: slots,
        })
    }

    /// The leading master's UPID.
    pub fn leader(&self) -> &str {
        &self.leader
    }

    /// How many tasks the model holds (running or not).
    pub fn task_count(&self) -> usize {
        self.frameworks.values().map(|f| f.tasks.len()).sum()
    }

    /// The state `/master/state` would give for this cluster: the
    /// frameworks in the order the master first listed them, each with its
    /// tasks in order, and the agents. The tasks are shared, not copied.
    pub fn state(&self) -> State {
        let mut shared = Vec::with_capacity(self.task_count());
        let mut frameworks = Vec::with_capacity(self.frameworks.len());
        let mut ranges = Vec::with_capacity(self.frameworks.len());
        for f in self.frameworks.values() {
            let start = shared.len();
            shared.extend(f.tasks.values().map(|t| Arc::clone(&t.task)));
            ranges.push(start..shared.len());
            frameworks.push(&f.info);
        }
        let slots = Arc::new(TaskSlots::shared(shared));
        State {
            frameworks: frameworks
                .into_iter()
                .zip(ranges)
                .map(|(info, range)| Framework {
                    name: info.name.clone(),
                    pid: String::new(),
                    hostname: info.hostname.clone(),
                    tasks: Tasks { slots: Arc::clone(&slots), range },
                })
                .collect(),
            slaves: self.agents.values().map(|a| a.agent.clone()).collect(),
            leader: self.leader.clone(),
            tasks: slots,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state(json: &str) -> GetState {
        GetState::parse(json.as_bytes()).unwrap()
    }

    fn task(id: &str, agent: &str) -> String {
        format!(
            r#"{{"task_id":{{"value":"{id}"}},"framework_id":{{"value":"F"}},"agent_id":{{"value":"{agent}"}},
                "name":"web","state":"TASK_RUNNING"}}"#
        )
    }

    fn running(c: &Cluster) -> Vec<String> {
        let s = c.state();
        let mut ids: Vec<String> =
            s.frameworks.iter().flat_map(|f| f.tasks.iter().map(|t| t.id.to_string())).collect();
        ids.sort();
        ids
    }

    #[test]
    fn a_failover_keeps_the_tasks_of_agents_not_yet_back() {
        let frameworks = r#""get_frameworks":{"frameworks":[{"framework_info":{"id":{"value":"F"},"name":"marathon"}}]}"#;
        let agent = |id: &str| {
            format!(r#"{{"agent_info":{{"id":{{"value":"{id}"}},"hostname":"h-{id}"}}}}"#)
        };
        let before = state(&format!(
            r#"{{"get_state":{{{frameworks},"get_agents":{{"agents":[{},{}]}},
                "get_tasks":{{"tasks":[{},{}]}}}}}}"#,
            agent("A"),
            agent("B"),
            task("a1", "A"),
            task("b1", "B")
        ));
        let (old, _) = Cluster::subscribed(before, "master@m1:5050".into(), None);
        // The new leader: A re-registered, B only recovered from the registry.
        let after = state(&format!(
            r#"{{"get_state":{{{frameworks},"get_agents":{{"agents":[{}],
                "recovered_agents":[{{"id":{{"value":"B"}}}}]}},"get_tasks":{{"tasks":[{}]}}}}}}"#,
            agent("A"),
            task("a1", "A")
        ));
        let (mut new, _) = Cluster::subscribed(after, "master@m2:5050".into(), Some(&old));
        assert_eq!(running(&new), ["a1", "b1"], "B's task is kept while B is away");

        // B re-registers: its running tasks come again first; the others ended.
        let added = Event::parse(
            format!(r#"{{"type":"TASK_ADDED","task_added":{{"task":{}}}}}"#, task("b2", "B"))
                .as_bytes(),
        )
        .unwrap();
        assert!(matches!(new.apply(added), Applied::Changed(_)));
        let back = Event::parse(
            format!(r#"{{"type":"AGENT_ADDED","agent_added":{{"agent":{}}}}}"#, agent("B"))
                .as_bytes(),
        )
        .unwrap();
        let Applied::Changed(touched) = new.apply(back) else { panic!("not changed") };
        assert!(touched.contains(&Touched::Task("F".into(), "b1".into())), "{touched:?}");
        assert_eq!(running(&new), ["a1", "b2"]);
    }

    #[test]
    fn events_for_what_the_model_lacks_change_nothing() {
        let mut c = Cluster::default();
        let update = r#"{"type":"TASK_UPDATED","task_updated":{"framework_id":{"value":"F"},
            "state":"TASK_RUNNING","status":{"task_id":{"value":"t"},"state":"TASK_RUNNING"}}}"#;
        assert!(matches!(c.apply(Event::parse(update.as_bytes()).unwrap()), Applied::Unknown(_)));
        let removed = r#"{"type":"AGENT_REMOVED","agent_removed":{"agent_id":{"value":"X"}}}"#;
        assert!(matches!(c.apply(Event::parse(removed.as_bytes()).unwrap()), Applied::Unknown(_)));
        assert_eq!(c.task_count(), 0);
    }
}
