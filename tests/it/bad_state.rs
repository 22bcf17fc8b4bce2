//! One bad item never spoils the whole state: every
//! case where the original crashes or throws the whole state away. Ours
//! parses leniently where the meaning is clear and otherwise skips just
//! the bad item.

use std::collections::HashMap;
use std::net::IpAddr;

use mesos_dns::config::Config;
use mesos_dns::generate::{GenerateError, StaticResolver, generate};
use mesos_dns::records::RecordSet;
use mesos_dns::state::State;
use serde_json::{Value, json};

fn config(masters: &[&str]) -> Config {
    // Without masters, a zk URL satisfies validation (nothing connects to it).
    let doc =
        json!({"masters": masters, "zk": "zk://127.0.0.1:2181/mesos", "listener": "127.0.0.1"});
    Config::from_json(&doc.to_string(), "t.json".into()).unwrap()
}

/// A healthy two-agent, two-task state; `edit` spoils one item.
fn state(edit: impl FnOnce(&mut Value)) -> State {
    let mut v = json!({
        "leader": "master@10.0.0.1:5050",
        "frameworks": [{
            "name": "marathon", "pid": "scheduler-1@10.0.0.2:8080", "tasks": [
                {"id": "good.1", "name": "good", "slave_id": "S1", "state": "TASK_RUNNING",
                 "resources": {"ports": "[31000-31001]"},
                 "statuses": [{"state": "TASK_RUNNING", "timestamp": 100.5}]},
                {"id": "other.1", "name": "other", "slave_id": "S2", "state": "TASK_RUNNING",
                 "resources": {"ports": "[32000-32000]"},
                 "statuses": [{"state": "TASK_RUNNING", "timestamp": 100.5}],
                 "discovery": {"name": "other", "ports": {"ports": [{"number": 80, "name": "http", "protocol": "tcp"}]}}}
            ]}, {"name": "chronos", "pid": "scheduler-2@10.0.0.3:8081", "tasks": []}],
        "slaves": [
            {"id": "S1", "hostname": "a1", "pid": "slave(1)@10.0.1.1:5051"},
            {"id": "S2", "hostname": "a2", "pid": "slave(1)@10.0.1.2:5051"}
        ]
    });
    edit(&mut v);
    State::from_slice(&serde_json::to_vec(&v).unwrap()).unwrap()
}

fn resolver() -> StaticResolver {
    let mut hosts = HashMap::new();
    hosts.insert("localhost".to_owned(), vec![IpAddr::from([127, 0, 0, 1])]);
    hosts.insert("agent-two.example".to_owned(), vec![IpAddr::from([10, 0, 1, 22])]);
    StaticResolver { hosts, interfaces: Vec::new() }
}

fn records(state: &State, masters: &[&str]) -> RecordSet {
    generate(state, &config(masters), &config(masters).masters, &resolver()).unwrap()
}

fn a(rs: &RecordSet, name: &str) -> Vec<String> {
    let mut v: Vec<String> =
        rs.get(name).map(|s| s.a.iter().map(ToString::to_string).collect()).unwrap_or_default();
    v.sort();
    v
}

fn srv(rs: &RecordSet, name: &str) -> Vec<String> {
    let mut v: Vec<String> =
        rs.get(name).map(|s| s.srv.iter().map(ToString::to_string).collect()).unwrap_or_default();
    v.sort();
    v
}

/// The records every case must still have: the healthy items.
fn assert_rest_is_there(rs: &RecordSet) {
    assert_eq!(a(rs, "good.marathon.mesos."), vec!["10.0.1.1"]);
    assert_eq!(a(rs, "chronos.mesos."), vec!["10.0.0.3"]);
    assert_eq!(a(rs, "leader.mesos."), vec!["10.0.0.1"]);
}

#[test]
fn healthy_state() {
    let rs = records(&state(|_| {}), &["10.0.0.1:5050"]);
    assert_rest_is_there(&rs);
    assert_eq!(srv(&rs, "_good._tcp.marathon.mesos.").len(), 2);
    assert_eq!(rs.skipped, 0);
}

#[test]
fn ports_without_dash_or_brackets() {
    let rs = records(
        &state(|v| v["frameworks"][0]["tasks"][0]["resources"]["ports"] = json!("[31000]")),
        &[],
    );
    assert_rest_is_there(&rs);
    assert_eq!(srv(&rs, "_good._tcp.marathon.mesos.").len(), 1);
    let rs = records(
        &state(|v| v["frameworks"][0]["tasks"][0]["resources"]["ports"] = json!("31000-31002")),
        &[],
    );
    assert_eq!(srv(&rs, "_good._tcp.marathon.mesos.").len(), 3);
    let rs = records(
        &state(|v| v["frameworks"][0]["tasks"][0]["resources"]["ports"] = json!("[x-y, 99999999]")),
        &[],
    );
    assert_rest_is_there(&rs);
    assert!(srv(&rs, "_good._tcp.marathon.mesos.").is_empty());
    assert_eq!(rs.skipped, 2);
}

#[test]
fn agent_without_pid_uses_its_hostname() {
    let rs = records(
        &state(|v| {
            v["slaves"][1] = json!({"id": "S2", "hostname": "agent-two.example"});
        }),
        &[],
    );
    assert_rest_is_there(&rs);
    assert_eq!(a(&rs, "other.marathon.slave.mesos."), vec!["10.0.1.22"]);
    assert_eq!(srv(&rs, "_slave._tcp.mesos."), vec!["slave.mesos.:5051"]);
}

#[test]
fn agent_or_framework_pid_without_port_empty_null_or_unresolvable() {
    for bad in [
        json!("slave(1)@10.0.1.2"),
        json!(""),
        json!(null),
        json!("slave(1)@nowhere.invalid:5051"),
        json!(7),
    ] {
        let rs = records(&state(|v| v["slaves"][1]["pid"] = bad.clone()), &[]);
        assert_rest_is_there(&rs);
        if bad == json!("slave(1)@10.0.1.2") {
            // The host is clear without the port: its address, no SRV.
            assert_eq!(a(&rs, "slave.mesos."), vec!["10.0.1.1", "10.0.1.2"]);
            assert_eq!(srv(&rs, "_slave._tcp.mesos."), vec!["slave.mesos.:5051"]);
        }
        // The task on that agent still has its SRV records.
        assert_eq!(srv(&rs, "_other._tcp.marathon.slave.mesos.").len(), 1, "{bad}");
    }
    for bad in
        [json!("scheduler@10.0.0.3"), json!(""), json!(null), json!("scheduler@nowhere.invalid:1")]
    {
        let rs = records(&state(|v| v["frameworks"][1]["pid"] = bad.clone()), &[]);
        assert_eq!(a(&rs, "good.marathon.mesos."), vec!["10.0.1.1"], "{bad}");
        if bad == json!("scheduler@10.0.0.3") {
            assert_eq!(a(&rs, "chronos.mesos."), vec!["10.0.0.3"]);
            assert!(srv(&rs, "_framework._tcp.chronos.mesos.").is_empty());
        }
    }
}

#[test]
fn string_timestamps_and_float_discovery_ports() {
    let rs = records(
        &state(|v| {
            v["frameworks"][0]["tasks"][0]["statuses"][0]["timestamp"] = json!("100.5");
            v["frameworks"][0]["tasks"][0]["statuses"][0]["container_status"] =
                json!({"network_infos": [{"ip_addresses": [{"ip_address": "172.17.0.9"}]}]});
            v["frameworks"][0]["tasks"][1]["discovery"]["ports"]["ports"] = json!([{"number": 80.0, "name": "http"}, {"number": 81.5, "name": "bad"}, {"number": "8080", "name": "alt"}]);
        }),
        &[],
    );
    assert_eq!(
        a(&rs, "good.marathon.mesos."),
        vec!["172.17.0.9"],
        "string timestamp read as a number"
    );
    assert_eq!(srv(&rs, "_http._other._tcp.marathon.mesos.").len(), 1);
    assert_eq!(srv(&rs, "_alt._other._tcp.marathon.mesos.").len(), 1);
    assert!(srv(&rs, "_bad._other._tcp.marathon.mesos.").is_empty());
    assert_eq!(rs.skipped, 1);
}

#[test]
fn host_names_in_the_leader_and_in_masters_are_resolved() {
    let rs = records(
        &state(|v| v["leader"] = json!("master@localhost:5050")),
        &["localhost:5050", "10.0.0.9:5050"],
    );
    assert_eq!(a(&rs, "leader.mesos."), vec!["127.0.0.1"]);
    assert_eq!(a(&rs, "master.mesos."), vec!["10.0.0.9", "127.0.0.1"]);
    assert_eq!(a(&rs, "master0.mesos."), vec!["127.0.0.1"]);
    assert_eq!(a(&rs, "master1.mesos."), vec!["10.0.0.9"]);
    assert_eq!(srv(&rs, "_leader._tcp.mesos."), vec!["leader.mesos.:5050"]);
}

#[test]
fn bad_items_in_arrays_are_skipped() {
    let rs = records(
        &state(|v| {
            v["slaves"].as_array_mut().unwrap().push(json!("garbage"));
            v["frameworks"].as_array_mut().unwrap().push(json!(null));
            v["frameworks"][0]["tasks"].as_array_mut().unwrap().push(json!([1, 2]));
            v["frameworks"][0]["tasks"][1]["statuses"] = json!({"not": "a list"});
        }),
        &[],
    );
    assert_rest_is_there(&rs);
    assert_eq!(a(&rs, "other.marathon.slave.mesos."), vec!["10.0.1.2"]);
}

#[test]
fn only_a_state_without_a_usable_leader_is_rejected() {
    let cfg = config(&[]);
    for (leader, want) in [
        (json!(""), GenerateError::NoLeader),
        (json!(null), GenerateError::NoLeader),
        (json!("10.0.0.1:5050"), GenerateError::BadLeader("10.0.0.1:5050".into())),
        (json!("master@"), GenerateError::BadLeader("master@".into())),
        (json!("master@10.0.0.1"), GenerateError::BadLeader("master@10.0.0.1".into())),
    ] {
        let s = state(|v| v["leader"] = leader.clone());
        assert_eq!(generate(&s, &cfg, &[], &resolver()).unwrap_err(), want, "{leader}");
    }
    for doc in [&b"[]"[..], b"not json", b"", b"{\"leader\": "] {
        assert!(State::from_slice(doc).is_err());
    }
}
