//! `healthyOnly`: tasks whose Mesos health checks fail, or have no result
//! yet, are left out of the records; tasks that pass, or have no health
//! check, are served. The same polled and streamed, and a task's health
//! changing through the stream takes it out and brings it back.

use std::collections::BTreeSet;

use serde_json::{Value, json};

use crate::harness::operator::{self, framework_id};
use crate::harness::*;
use crate::stream::{following, served};

/// A running task named `name` on agent `agent` with these statuses (and
/// a health check definition when `checked`).
fn task(name: &str, agent: &str, statuses: Value, checked: bool) -> Value {
    let mut t = json!({"id": format!("{name}.1"), "name": name, "slave_id": agent,
        "state": "TASK_RUNNING", "resources": {"ports": "[31000-31000]"}, "statuses": statuses});
    if checked {
        t["health_check"] = json!({"type": "HTTP", "http": {"port": 8080, "path": "/"}});
    }
    t
}

/// One task of each kind: its name, and whether `healthyOnly` serves it.
fn tasks(agent: &str) -> Vec<(Value, bool)> {
    let running = |ts: f64| json!({"state": "TASK_RUNNING", "timestamp": ts});
    let checked = |ts: f64, healthy: bool| json!({"state": "TASK_RUNNING", "timestamp": ts, "healthy": healthy});
    vec![
        (task("hc-passing", agent, json!([running(1.0), checked(2.0, true)]), true), true),
        (task("hc-failing", agent, json!([checked(1.0, true), checked(2.0, false)]), true), false),
        // The newest result counts, wherever it is in the list.
        (task("hc-recovered", agent, json!([checked(3.0, true), checked(2.0, false)]), true), true),
        (task("hc-pending", agent, json!([running(1.0)]), true), false),
        (task("hc-unchecked", agent, json!([running(1.0)]), false), true),
    ]
}

/// The `hc-` tasks' names served.
fn served_tasks(r: &Running) -> BTreeSet<String> {
    served(r)
        .into_keys()
        .filter_map(|n| {
            n.strip_prefix("hc-").and_then(|n| n.split(['.', '-']).next()).map(str::to_owned)
        })
        .collect()
}

fn expected(kinds: &[(Value, bool)], healthy_only: bool) -> BTreeSet<String> {
    kinds
        .iter()
        .filter(|(_, serve)| *serve || !healthy_only)
        .map(|(t, _)| t["name"].as_str().unwrap().trim_start_matches("hc-").to_owned())
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn healthy_only_polled() {
    let mut doc: Value = serde_json::from_slice(&fixture(FIXTURE)).unwrap();
    let agent = doc["slaves"][0]["id"].as_str().unwrap().to_owned();
    let kinds = tasks(&agent);
    for (t, _) in &kinds {
        doc["frameworks"][0]["tasks"].as_array_mut().unwrap().push(t.clone());
    }
    let bytes = doc.to_string().into_bytes();
    let master: std::net::SocketAddr = "127.0.0.1:5050".parse().unwrap();
    for healthy_only in [false, true] {
        let extra = merged(with_http(), &json!({"healthyOnly": healthy_only}));
        let (_dir, running, _) = serve_state_file(&bytes, test_config(&[master], extra)).await;
        assert_eq!(served_tasks(&running), expected(&kinds, healthy_only), "{healthy_only}");
        let left_out = if healthy_only { 2 } else { 0 };
        let line = format!("mesos_dns_tasks_left_out{{reason=\"unhealthy\"}} {left_out}");
        assert!(metrics(&running).await.contains(&line), "{line}");
        running.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn healthy_only_streamed_follows_health_changes() {
    let config = json!({"healthyOnly": true});
    let (master, running, doc) = following(FIXTURE, Api::stream(15.0), config).await;
    let agent = doc["slaves"][0]["id"].as_str().unwrap().to_owned();
    let fid = framework_id(&doc, 0);
    let kinds = tasks(&agent);
    for (t, _) in &kinds {
        master.state().send(&operator::task_added(t, &fid));
    }
    let want = expected(&kinds, true);
    wait_for(5, "the healthy tasks", || served_tasks(&running) == want).await;

    // The passing task fails its check: out; passes again: back.
    let update = |healthy: bool, ts: f64| {
        json!({"type": "TASK_UPDATED", "task_updated": {
            "framework_id": {"value": fid}, "state": "TASK_RUNNING",
            "status": {"task_id": {"value": "hc-passing.1"}, "agent_id": {"value": agent},
                       "state": "TASK_RUNNING", "timestamp": ts, "healthy": healthy}}})
    };
    master.state().send(&update(false, 10.0));
    wait_for(5, "the failing task out", || !served_tasks(&running).contains("passing")).await;
    master.state().send(&update(true, 11.0));
    wait_for(5, "the task back", || served_tasks(&running).contains("passing")).await;
    running.shutdown().await;
}
