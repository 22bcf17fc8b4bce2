//! The operator API side of the fake master: one cluster description (a
//! `/master/state` document) rendered as the operator API shows the same
//! cluster (`GET_STATE`, events), and the RecordIO stream that carries
//! the events.

use std::pin::Pin;
use std::task::{Context, Poll};

use axum::body::Bytes;
use serde_json::{Value, json};

/// One RecordIO record: the length in decimal, a newline, the bytes.
pub fn record(event: &Value) -> Bytes {
    let body = event.to_string();
    Bytes::from(format!("{}\n{body}", body.len()))
}

/// A framework's id in a state document (`fw-N` when it has none).
pub fn framework_id(state: &Value, index: usize) -> String {
    match &state["frameworks"][index]["id"] {
        Value::String(s) => s.clone(),
        Value::Null => format!("fw-{index}"),
        other => other.to_string(),
    }
}

/// A framework's name in a state document, as a DNS label (lower case,
/// what is not a letter, digit or `-` dropped).
pub fn framework_name(state: &Value, index: usize) -> String {
    let name = state["frameworks"][index]["name"].as_str().unwrap_or_default().to_lowercase();
    name.chars().filter(|c| c.is_ascii_alphanumeric() || *c == '-').collect()
}

/// The operator API's `get_state` for the cluster a `/master/state`
/// document describes.
pub fn get_state(state: &Value) -> Value {
    let empty = Vec::new();
    let frameworks = state["frameworks"].as_array().unwrap_or(&empty);
    let mut v1_frameworks = Vec::new();
    let mut tasks = Vec::new();
    for (i, f) in frameworks.iter().enumerate() {
        let id = framework_id(state, i);
        v1_frameworks.push(framework(f, &id));
        for t in f["tasks"].as_array().unwrap_or(&empty) {
            tasks.push(task(t, &id));
        }
    }
    let agents: Vec<Value> =
        state["slaves"].as_array().unwrap_or(&empty).iter().map(agent).collect();
    json!({
        "get_tasks": {"tasks": tasks},
        "get_frameworks": {"frameworks": v1_frameworks},
        "get_agents": {"agents": agents},
        "get_executors": {},
    })
}

/// `SUBSCRIBED` for the cluster of a `/master/state` document.
pub fn subscribed(state: &Value, heartbeat_seconds: f64) -> Value {
    json!({"type": "SUBSCRIBED", "subscribed": {
        "get_state": get_state(state),
        "heartbeat_interval_seconds": heartbeat_seconds,
    }})
}

/// A framework of the operator API (it has no scheduler pid).
pub fn framework(f: &Value, id: &str) -> Value {
    json!({"framework_info": {"id": {"value": id}, "name": f["name"], "hostname": f["hostname"]},
           "active": true, "connected": true})
}

/// An agent of the operator API.
pub fn agent(s: &Value) -> Value {
    json!({"agent_info": {"id": {"value": s["id"]}, "hostname": s["hostname"], "port": 5051},
           "pid": s["pid"], "active": true})
}

/// A task of `/master/state` as the operator API shows it.
pub fn task(t: &Value, framework_id: &str) -> Value {
    let mut statuses = Vec::new();
    for s in t["statuses"].as_array().into_iter().flatten() {
        let mut s = s.clone();
        if let Some(o) = s.as_object_mut() {
            let labels = o.remove("labels").unwrap_or(Value::Null);
            o.insert("labels".into(), json!({"labels": labels}));
            o.insert("task_id".into(), json!({"value": t["id"]}));
        }
        statuses.push(s);
    }
    let mut v1 = json!({
        "name": t["name"],
        "task_id": {"value": t["id"]},
        "framework_id": {"value": framework_id},
        "agent_id": {"value": t["slave_id"]},
        "state": t["state"],
        "resources": resources(&t["resources"]),
        "statuses": statuses,
    });
    for field in ["discovery", "health_check"] {
        if !t[field].is_null() {
            v1[field] = t[field].clone();
        }
    }
    v1
}

/// `/master/state`'s `{"ports": "[31000-31001, ...]", "cpus": 1}` as the
/// operator API's list of resources.
fn resources(r: &Value) -> Value {
    let mut out = vec![json!({"name": "cpus", "type": "SCALAR", "scalar": {"value": 0.1}})];
    if let Some(ports) = r["ports"].as_str() {
        let inner = ports.trim().trim_start_matches('[').trim_end_matches(']');
        let ranges: Vec<Value> = inner
            .split(',')
            .filter_map(|range| {
                let (b, e) = range.trim().split_once('-')?;
                Some(json!({"begin": b.trim().parse::<i64>().ok()?, "end": e.trim().parse::<i64>().ok()?}))
            })
            .collect();
        out.push(json!({"name": "ports", "type": "RANGES", "ranges": {"range": ranges}}));
    }
    Value::Array(out)
}

/// `TASK_ADDED` for a task of `/master/state`.
pub fn task_added(t: &Value, framework_id: &str) -> Value {
    json!({"type": "TASK_ADDED", "task_added": {"task": task(t, framework_id)}})
}

/// `TASK_UPDATED`: the task's new state, with a status of that state.
pub fn task_updated(framework_id: &str, task_id: &str, agent_id: &str, state: &str) -> Value {
    json!({"type": "TASK_UPDATED", "task_updated": {
        "framework_id": {"value": framework_id},
        "state": state,
        "status": {"task_id": {"value": task_id}, "agent_id": {"value": agent_id},
                   "state": state, "timestamp": 1.7e9},
    }})
}

/// A stream of chunks for a streaming response body.
pub struct Chunks(pub tokio::sync::mpsc::UnboundedReceiver<Bytes>);

impl futures_core::Stream for Chunks {
    type Item = Result<Bytes, std::io::Error>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.0.poll_recv(cx).map(|chunk| chunk.map(Ok))
    }
}
