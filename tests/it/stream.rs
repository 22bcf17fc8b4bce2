//! Live records: the server follows a fake master's operator API event
//! stream (chunked RecordIO over real HTTP). The same cluster gives the
//! same records streamed as polled; events reach the records in service;
//! a master that cannot stream is polled, and the stream is taken up again
//! when it can; redirects, cut, garbage and stalled streams.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::harness::operator::{self, framework_id};
use crate::harness::*;
use axum::body::Bytes;
use mesos_dns::config::Config;
use mesos_dns::generate::{StaticResolver, generate};
use mesos_dns::records::{RecordSet, RrSet};
use mesos_dns::state::State;
use serde_json::{Value, json};

/// The records at one name, spelled out and sorted.
fn values(set: &RrSet) -> BTreeSet<String> {
    let a = set.a.iter().map(ToString::to_string);
    let aaaa = set.aaaa.iter().map(ToString::to_string);
    a.chain(aaaa).chain(set.srv.iter().map(ToString::to_string)).collect()
}

/// Every record of a set, by name, sorted: the form two sets compare in.
pub(crate) fn canonical(rs: &RecordSet) -> BTreeMap<String, BTreeSet<String>> {
    // Names with A, AAAA or SRV records (not `ptrOn`'s reverse names).
    rs.iter()
        .map(|(name, set)| (name.to_owned(), values(&set)))
        .filter(|(_, values)| !values.is_empty())
        .collect()
}

/// The record set polling `doc` gives, under a config naming its leader.
fn polled(doc: &Value) -> RecordSet {
    let leader: std::net::SocketAddr =
        doc["leader"].as_str().unwrap().trim_start_matches("master@").parse().unwrap();
    let config: Config = test_config(&[leader], json!({}));
    let state = State::from_slice(doc.to_string().as_bytes()).unwrap();
    let resolver = StaticResolver::localhost_only();
    generate(&state, &config, &config.masters, &resolver).unwrap()
}

/// The records in service: the compiled ones, as the versions since have
/// changed them.
pub(crate) fn served(r: &Running) -> BTreeMap<String, BTreeSet<String>> {
    let s = r.current.load_full().expect("records loaded");
    let mut names: BTreeSet<String> = s.records.iter().map(|(n, _)| n.to_owned()).collect();
    names.extend(s.overlay.iter().flat_map(|o| o.names()));
    names.into_iter().filter_map(|name| s.get(&name).map(|set| (name, values(&set)))).collect()
}

/// `fixture` led by `master`, without framework pids (the operator API
/// has none: both sides then name frameworks by their hostname).
pub(crate) fn document(fixture_name: &str, master: &FakeMaster) -> Value {
    let mut doc: Value =
        serde_json::from_slice(&state_with_leader(fixture_name, master.addr)).unwrap();
    for f in doc["frameworks"].as_array_mut().into_iter().flatten() {
        if let Some(f) = f.as_object_mut() {
            f.remove("pid");
        }
    }
    doc
}

/// A master serving `fixture_name` (its [`document`]) and answering the
/// operator API as `api` says, and the server (serving HTTP) loaded from it.
pub(crate) async fn following(
    fixture_name: &str,
    api: Api,
    extra: Value,
) -> (FakeMaster, Running, Value) {
    let master = FakeMaster::start(Behaviour::Status(503)).await;
    let doc = document(fixture_name, &master);
    master.state().set_document(&doc);
    master.state().set_api(api);
    let running =
        start_with_masters(test_config(&[master.addr], merged(with_http(), &extra))).await;
    wait_loaded(&running).await;
    (master, running, doc)
}

/// How many streams `master` has opened.
fn subscriptions(master: &FakeMaster) -> usize {
    master.state().subscriptions.load(std::sync::atomic::Ordering::SeqCst)
}

/// Wait until the records in service are those polling `doc` gives.
async fn until_served(r: &Running, doc: &Value, what: &str) -> Duration {
    let want = canonical(&polled(doc));
    let started = Instant::now();
    let current = Arc::clone(&r.current);
    let deadline = started + Duration::from_secs(5);
    loop {
        let have = current.load_full().map(|_| served(r));
        if have.as_ref() == Some(&want) {
            return started.elapsed();
        }
        if Instant::now() > deadline {
            let have = have.unwrap_or_default();
            let missing: Vec<_> =
                want.iter().filter(|(k, v)| have.get(*k) != Some(v)).take(5).collect();
            let extra: Vec<_> =
                have.iter().filter(|(k, v)| want.get(*k) != Some(v)).take(5).collect();
            panic!("{what}: records differ from polling's: missing {missing:?}, extra {extra:?}");
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

/// `/v1/axfr` and `/v1/enumerate` are what polling `doc` gives, and the
/// serial is the SOA's.
async fn views_match(r: &Running, doc: &Value) {
    let want = polled(doc);
    let base = format!("http://{}", r.http_addr.unwrap());
    let get = |path: &'static str| {
        let url = format!("{base}{path}");
        async move {
            serde_json::from_str::<Value>(&reqwest::get(url).await.unwrap().text().await.unwrap())
                .unwrap()
        }
    };
    let axfr = get("/v1/axfr").await;
    assert_eq!(axfr["Records"], serde_json::to_value(want.axfr_records()).unwrap(), "/v1/axfr");
    let serial = r.current.load_full().unwrap().serial();
    assert_eq!(axfr["Serial"], serial, "/v1/axfr's serial");
    let enumerate = get("/v1/enumerate").await;
    assert_eq!(enumerate, serde_json::to_value(want.enumeration()).unwrap(), "/v1/enumerate");
}

#[tokio::test]
async fn every_fixture_streamed_gives_the_records_polling_gives() {
    let dir = fixtures().join("mesos-state");
    let mut checked = 0;
    for entry in std::fs::read_dir(dir).unwrap() {
        let name = entry.unwrap().file_name().into_string().unwrap();
        if !name.ends_with(".json") || name.starts_with("v1-") {
            continue;
        }
        let (master, running, doc) = following(&name, Api::stream(15.0), json!({})).await;
        until_served(&running, &doc, &name).await;
        assert_eq!(subscriptions(&master), 1, "{name}");
        assert!(!served(&running).is_empty(), "{name}");
        running.shutdown().await;
        checked += 1;
    }
    assert!(checked >= 11, "{checked} fixtures");
}

/// A running task of `/master/state` on agent `agent`.
pub(crate) fn running_task(id: &str, name: &str, agent: &str, port: u16) -> Value {
    json!({"id": id, "name": name, "slave_id": agent, "state": "TASK_RUNNING",
           "resources": {"ports": format!("[{port}-{port}]")},
           "statuses": [{"state": "TASK_RUNNING", "timestamp": 1.7e9}]})
}

#[tokio::test]
async fn events_reach_the_records_in_service() {
    let (master, running, mut doc) = following(FIXTURE, Api::stream(15.0), json!({})).await;
    until_served(&running, &doc, "subscribed").await;
    let fid = framework_id(&doc, 0);
    let agent = doc["slaves"][0]["id"].as_str().unwrap().to_owned();

    // A task starts.
    let task = running_task("web.1", "web", &agent, 31555);
    doc["frameworks"][0]["tasks"].as_array_mut().unwrap().push(task.clone());
    master.state().set_document(&doc);
    master.state().send(&operator::task_added(&task, &fid));
    let took = until_served(&running, &doc, "task added").await;
    assert!(served(&running).keys().any(|n| n.starts_with("web.")), "no web name");
    eprintln!("task added: in service after {took:?}");
    views_match(&running, &doc).await;

    // It is killed: a status without records, then a terminal one.
    for state in ["TASK_KILLING", "TASK_KILLED"] {
        master.state().send(&operator::task_updated(&fid, "web.1", &agent, state));
    }
    doc["frameworks"][0]["tasks"].as_array_mut().unwrap().pop();
    until_served(&running, &doc, "task killed").await;

    // Heartbeats and unknown event types change nothing.
    master.state().send(&json!({"type": "HEARTBEAT"}));
    master.state().send(&json!({"type": "OPERATION_UPDATED", "operation_updated": {}}));
    master.state().send(&operator::task_updated(&fid, "no-such-task", &agent, "TASK_RUNNING"));

    // The framework goes, with its tasks.
    let removed = doc["frameworks"].as_array_mut().unwrap().remove(0);
    master.state().send(&json!({"type": "FRAMEWORK_REMOVED", "framework_removed": {
        "framework_info": {"id": {"value": fid}, "name": removed["name"]}}}));
    until_served(&running, &doc, "framework removed").await;

    // An agent goes, with its tasks' records.
    let gone = doc["slaves"].as_array_mut().unwrap().remove(0);
    master.state().send(
        &json!({"type": "AGENT_REMOVED", "agent_removed": {"agent_id": {"value": gone["id"]}}}),
    );
    until_served(&running, &doc, "agent removed").await;
    views_match(&running, &doc).await;

    // One stream all along.
    assert_eq!(subscriptions(&master), 1);
    let text = metrics(&running).await;
    assert!(text.contains("mesos_dns_state_source{source=\"stream\",reason=\"\"} 1"), "{text}");
    assert!(text.contains("mesos_dns_stream_events_total{type=\"TASK_UPDATED\"} 3"), "{text}");
    assert!(text.contains("mesos_dns_stream_unknown_references_total 1"), "{text}");
    running.shutdown().await;
}

#[tokio::test]
async fn broken_streams_are_subscribed_to_again_and_the_records_stay() {
    let cap = json!({"stateMaxMegabytes": 1});
    let (master, running, doc) = following(FIXTURE, Api::stream(15.0), cap).await;
    until_served(&running, &doc, "subscribed").await;
    let before = served(&running);
    let cuts: [(&str, &dyn Fn()); 3] = [
        ("cut mid-record", &|| {
            master.state().send_raw(Bytes::from_static(b"120\n{\"type\":\"TASK_"));
            master.state().end_streams();
        }),
        ("garbage", &|| master.state().send_raw(Bytes::from_static(b"<html>oops</html>\n"))),
        ("ended", &|| master.state().end_streams()),
    ];
    for (n, (what, cut)) in cuts.iter().enumerate() {
        cut();
        let want = n + 2;
        wait_for(10, what, || subscriptions(&master) >= want).await;
        assert_eq!(served(&running), before, "{what}");
    }
    // A record over the cap breaks the stream too, never the server.
    master.state().send_raw(Bytes::from(format!("{}\n", 2u64 << 20)));
    wait_for(10, "over the cap", || subscriptions(&master) >= 5).await;
    assert_eq!(served(&running), before);
    running.shutdown().await;
}

#[tokio::test]
async fn a_silent_stream_is_given_up_after_three_heartbeats() {
    let (master, running, _) = following(FIXTURE, Api::stream(0.2), json!({})).await;
    let started = Instant::now();
    wait_for(5, "a second subscription", || subscriptions(&master) >= 2).await;
    assert!(started.elapsed() >= Duration::from_millis(500), "{:?}", started.elapsed());
    running.shutdown().await;
}

#[tokio::test]
async fn a_master_that_cannot_stream_is_polled_until_it_can() {
    // Api::Absent: 404, a master before the operator API.
    let (master, running, doc) = following(FIXTURE, Api::Absent, json!({})).await;
    until_served(&running, &doc, "polled").await;
    wait_metrics(&running, 5, "mesos_dns_state_source{source=\"poll\",reason=\"").await;

    // The master is upgraded: the stream is taken up again (after ten
    // polls; `refreshSeconds` is 1 here).
    master.state().set_api(Api::stream(15.0));
    wait_for(15, "the stream taken up", || subscriptions(&master) >= 1).await;
    wait_metrics(&running, 5, "source=\"stream\"").await;

    // A Mesos 1.0 master streams events without task statuses: polled.
    master.state().set_api(Api::Stream { heartbeat: 15.0, version: "1.0.1" });
    master.state().end_streams();
    wait_metrics(&running, 10, "Mesos 1.0.1").await;
    running.shutdown().await;
}

#[tokio::test]
async fn a_master_that_does_not_lead_redirects_to_the_one_that_does() {
    let leader = FakeMaster::start(Behaviour::Status(503)).await;
    let doc = document(FIXTURE, &leader);
    leader.state().set_document(&doc);
    leader.state().set_api(Api::stream(15.0));
    let follower = FakeMaster::start(Behaviour::Status(503)).await;
    follower.state().set_api(Api::Redirect(leader.addr));
    let running = start_with_masters(test_config(&[follower.addr], json!({}))).await;
    wait_loaded(&running).await;
    assert_eq!(subscriptions(&leader), 1);
    let snapshot = running.current.load_full().unwrap();
    assert_eq!(snapshot.leader.as_deref(), Some(leader.addr.to_string().as_str()));
    running.shutdown().await;
}

#[tokio::test]
async fn a_stream_refused_for_now_is_retried_and_the_masters_polled_meanwhile() {
    // 503: a master that has not finished recovering, or no leader yet.
    let (_master, running, doc) = following(FIXTURE, Api::Status(503), json!({})).await;
    until_served(&running, &doc, "polled").await;
    wait_metrics(&running, 5, "mesos_dns_stream_resubscriptions_total{cause=\"connect\"} 3").await;
    wait_metrics(&running, 5, "reason=\"stream stopped: connect\"").await;
    running.shutdown().await;
}

/// The running tasks' ids on known agents, by the operator API's rules,
/// tracked independently of the server: what `/v1/enumerate` must list.
#[derive(Default)]
struct Expected {
    tasks: BTreeMap<String, (String, String, String)>, // id → (framework, agent, state)
    agents: BTreeSet<String>,
}

impl Expected {
    fn apply(&mut self, e: &Value) {
        let id = |v: &Value| v["value"].as_str().unwrap_or_default().to_owned();
        match e["type"].as_str().unwrap_or_default() {
            "SUBSCRIBED" => {
                let s = &e["subscribed"]["get_state"];
                for a in s["get_agents"]["agents"].as_array().into_iter().flatten() {
                    self.agents.insert(id(&a["agent_info"]["id"]));
                }
                for t in s["get_tasks"]["tasks"].as_array().into_iter().flatten() {
                    self.add(t);
                }
            }
            "TASK_ADDED" => self.add(&e["task_added"]["task"]),
            "TASK_UPDATED" => {
                let u = &e["task_updated"];
                if let Some(t) = self.tasks.get_mut(&id(&u["status"]["task_id"])) {
                    t.2 = u["state"].as_str().unwrap_or_default().to_owned();
                }
            }
            "FRAMEWORK_REMOVED" => {
                let f = id(&e["framework_removed"]["framework_info"]["id"]);
                self.tasks.retain(|_, t| t.0 != f);
            }
            _ => {}
        }
    }

    fn add(&mut self, t: &Value) {
        let id = |v: &Value| v["value"].as_str().unwrap_or_default().to_owned();
        let state = t["state"].as_str().unwrap_or_default().to_owned();
        self.tasks.insert(id(&t["task_id"]), (id(&t["framework_id"]), id(&t["agent_id"]), state));
    }

    fn running(&self) -> BTreeSet<String> {
        self.tasks
            .iter()
            .filter(|(_, t)| t.2 == "TASK_RUNNING" && self.agents.contains(&t.1))
            .map(|(id, _)| id.clone())
            .collect()
    }
}

/// The task ids the records in service enumerate.
fn enumerated(r: &Running) -> BTreeSet<String> {
    let snapshot = r.current.load_full().expect("records loaded");
    let v = serde_json::to_value(snapshot.records.enumeration()).unwrap();
    v["frameworks"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|f| f["tasks"].as_array().unwrap().iter())
        .map(|t| t["id"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn the_fixture_streams_replayed_end_to_end() {
    for file in [
        "v1-dcos-net-subscribe-hello-world.jsonl",
        "v1-dcos-net-subscribe-network-matrix-ipv6.jsonl",
    ] {
        let events: Vec<Value> = String::from_utf8(fixture(file))
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        // A master whose stream is the fixture's: its SUBSCRIBED first.
        let master = FakeMaster::start(Behaviour::Status(503)).await;
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        let first = events[0].clone();
        master.state().set_api(Api::Replay(Arc::new(std::sync::Mutex::new(Some((first, rx))))));
        let running = start_with_masters(test_config(&[master.addr], json!({}))).await;
        wait_loaded(&running).await;
        let mut expected = Expected::default();
        expected.apply(&events[0]);
        assert_eq!(enumerated(&running), expected.running(), "{file}: SUBSCRIBED");
        for (i, e) in events.iter().enumerate().skip(1) {
            expected.apply(e);
            tx.send(operator::record(e)).unwrap();
            let want = expected.running();
            let what = format!("{file}: event {i} ({})", e["type"]);
            wait_for(5, &what, || enumerated(&running) == want).await;
        }
        // Not vacuous: tasks came and went.
        assert!(events.iter().any(|e| e["type"] == "TASK_ADDED"), "{file}");
        running.shutdown().await;
    }
}
