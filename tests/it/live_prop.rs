//! The invariant that makes live records safe, as a property: after any
//! sequence of events, the versions made of what changed (a small zone per
//! version over the compiled one) answer every query exactly as a fresh
//! compile of the whole resulting cluster does, and the HTTP lookups and
//! `/v1/axfr` agree (`/v1/enumerate` waits for a full compile: tested end
//! to end in `stream`); and zone transfers: AXFR gives the fresh compile's
//! records, and the IXFR from any earlier version applied to that
//! version's zone gives them too.

use std::collections::BTreeSet;
use std::sync::Arc;

use hickory_proto::op::{Message, Query};
use hickory_proto::rr::{Name, Record, RecordType};
use mesos_dns::config::Config;
use mesos_dns::dns::journal::History;
use mesos_dns::dns::transfer::Transfers;
use mesos_dns::dns::wire::{self, Responder, Scratch, Settings};
use mesos_dns::generate::{StaticResolver, generate};
use mesos_dns::refresh::live::{Generation, next_version};
use mesos_dns::snapshot::{Snapshot, Swapped, SwappedNames, Timings};
use mesos_dns::state::cluster::{Applied, Cluster};
use mesos_dns::state::v1::Event;
use mesos_dns::zone::{Zone, ZoneView};
use proptest::prelude::*;
use serde_json::{Value, json};

use crate::harness::operator::{self, framework_id};
use crate::harness::{FIXTURE, fixture, test_config};
use crate::stream::canonical;
use crate::transfer::{apply, request, zone_of};

const LEADER: &str = "127.0.0.1:5050";

/// One change to the cluster, by indices into what the fixture has.
#[derive(Debug, Clone)]
enum Op {
    /// A task of app `app` starts on agent `agent`.
    Start {
        framework: usize,
        app: u8,
        agent: usize,
        port: u16,
    },
    /// Task `task` (of those known) gets a new status in `state`, with a
    /// container address `ip`.
    Status {
        task: usize,
        state: &'static str,
        ip: u8,
    },
    FrameworkRenamed {
        framework: usize,
        name: u8,
    },
    FrameworkRemoved {
        framework: usize,
    },
    AgentRemoved {
        agent: usize,
    },
    AgentAdded {
        agent: usize,
        ip: u8,
    },
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (0..4usize, 0..4u8, 0..8usize, 31000..31010u16)
            .prop_map(|(framework, app, agent, port)| Op::Start { framework, app, agent, port }),
        4 => (0..40usize, prop::sample::select(vec!["TASK_RUNNING", "TASK_KILLED", "TASK_UNREACHABLE", "TASK_RUNNING"]), 0..4u8)
            .prop_map(|(task, state, ip)| Op::Status { task, state, ip }),
        1 => (0..4usize, 0..3u8).prop_map(|(framework, name)| Op::FrameworkRenamed { framework, name }),
        1 => (0..4usize).prop_map(|framework| Op::FrameworkRemoved { framework }),
        1 => (0..8usize).prop_map(|agent| Op::AgentRemoved { agent }),
        1 => (0..8usize, 0..4u8).prop_map(|(agent, ip)| Op::AgentAdded { agent, ip }),
    ]
}

/// The fixture's cluster, without framework pids (the operator API has none).
fn document() -> Value {
    let mut doc: Value = serde_json::from_slice(&fixture(FIXTURE)).unwrap();
    doc["leader"] = format!("master@{LEADER}").into();
    for f in doc["frameworks"].as_array_mut().unwrap() {
        f.as_object_mut().unwrap().remove("pid");
    }
    doc
}

/// The event of `op`, given what the fixture lists; `tasks` are the task
/// ids known so far (framework id, task id, agent id).
fn event(op: &Op, doc: &Value, tasks: &mut Vec<(String, String, String)>, n: usize) -> Value {
    let frameworks = doc["frameworks"].as_array().unwrap().len();
    let agents = doc["slaves"].as_array().unwrap();
    let agent_id = |i: usize| agents[i % agents.len()]["id"].as_str().unwrap().to_owned();
    match *op {
        Op::Start { framework, app, agent, port } => {
            let fid = framework_id(doc, framework % frameworks);
            let id = format!("app{app}.live-{n}");
            let task = json!({"id": id, "name": format!("app{app}"), "slave_id": agent_id(agent),
                "state": "TASK_RUNNING", "resources": {"ports": format!("[{port}-{port}]")},
                "statuses": [{"state": "TASK_RUNNING", "timestamp": 1.0}]});
            tasks.push((fid.clone(), id, agent_id(agent)));
            operator::task_added(&task, &fid)
        }
        Op::Status { task, state, ip } => {
            let Some((fid, id, agent)) = tasks.get(task % tasks.len().max(1)).cloned() else {
                return json!({"type": "HEARTBEAT"});
            };
            let mut e = operator::task_updated(&fid, &id, &agent, state);
            e["task_updated"]["status"]["timestamp"] = (2.0 + n as f64).into();
            e["task_updated"]["status"]["container_status"] = json!({"network_infos": [{"ip_addresses": [{"ip_address": format!("10.9.0.{ip}")}]}]});
            e
        }
        Op::FrameworkRenamed { framework, name } => {
            let i = framework % frameworks;
            let mut f = doc["frameworks"][i].clone();
            f["name"] = format!("renamed-{name}").into();
            json!({"type": "FRAMEWORK_UPDATED", "framework_updated": {
                "framework": operator::framework(&f, &framework_id(doc, i))}})
        }
        Op::FrameworkRemoved { framework } => {
            let fid = framework_id(doc, framework % frameworks);
            json!({"type": "FRAMEWORK_REMOVED", "framework_removed": {"framework_info": {"id": {"value": fid}}}})
        }
        Op::AgentRemoved { agent } => {
            json!({"type": "AGENT_REMOVED", "agent_removed": {"agent_id": {"value": agent_id(agent)}}})
        }
        Op::AgentAdded { agent, ip } => {
            let mut a = agents[agent % agents.len()].clone();
            a["pid"] = format!("slave(1)@10.8.0.{ip}:5051").into();
            json!({"type": "AGENT_ADDED", "agent_added": {"agent": operator::agent(&a)}})
        }
    }
}

/// The answer to one query, as comparable text: rcode, then each section's
/// records sorted.
fn answer(responder: &Responder, view: ZoneView<'_>, name: &Name, qtype: RecordType) -> String {
    let mut m = Message::query();
    m.add_query(Query::query(name.clone(), qtype));
    let packet = m.to_vec().unwrap();
    let q = wire::parse(&packet).unwrap();
    let mut out = Vec::new();
    responder.answer(&mut out, &packet, &q, Some(view), false, &mut Scratch::new(7));
    if out.is_empty() {
        return "outside the domain".into();
    }
    let r = Message::from_vec(&out).unwrap();
    let section = |records: &[hickory_proto::rr::Record]| {
        let mut v: Vec<String> = records.iter().map(ToString::to_string).collect();
        v.sort();
        v.join(" | ")
    };
    format!(
        "{:?}\n  answers: {}\n  authority: {}\n  additional: {}",
        r.metadata.response_code,
        section(&r.answers),
        section(&r.authorities),
        section(&r.additionals)
    )
}

fn check(ops: &[Op]) -> Result<(), TestCaseError> {
    let doc = document();
    let allow = json!({"allowTransferFrom": ["127.0.0.1"], "ptrOn": true});
    let config: Config = test_config(&[LEADER.parse().unwrap()], allow);
    let resolver = StaticResolver::localhost_only();
    let masters = config.masters.clone();
    let g = Generation { config: &config, masters: &masters, resolver: &resolver };

    let subscribed = operator::subscribed(&doc, 15.0).to_string();
    let Ok(Event::Subscribed { state, .. }) = Event::parse(subscribed.as_bytes()) else {
        return Err(TestCaseError::fail("SUBSCRIBED does not read"));
    };
    let (mut cluster, _) = Cluster::subscribed(state, format!("master@{LEADER}"), None);
    let mut index = g.index(&cluster).unwrap();
    let rs = generate(&cluster.state(), &config, &masters, &resolver).unwrap();
    let mut current =
        Arc::new(Snapshot::new(Zone::compile(&rs, &config, 100), rs, None, Timings::default()));
    // Every version, and the history of their changes (as zone transfers
    // keep it).
    let mut versions = vec![Arc::clone(&current)];
    let history = Arc::new(History::default());

    let mut tasks = Vec::new();
    for (n, op) in ops.iter().enumerate() {
        let e = event(op, &doc, &mut tasks, n);
        let event = Event::parse(e.to_string().as_bytes()).unwrap();
        if let Applied::Changed(touched) = cluster.apply(event) {
            g.update(&mut index, &cluster, touched).unwrap();
            let serial = current.serial() + 1;
            if let Some(next) = next_version(&current, &mut index, &config, serial, n as u64 + 1) {
                let new = Arc::new(next.snapshot);
                let changed = SwappedNames::Names(next.changed);
                history.record(&Swapped {
                    old: Arc::clone(&current),
                    new: Arc::clone(&new),
                    changed,
                });
                current = new;
                versions.push(Arc::clone(&current));
            }
        }
    }

    let fresh = generate(&cluster.state(), &config, &masters, &resolver).unwrap();
    let fresh_zone = Zone::compile(&fresh, &config, current.serial());
    let responder = Responder::new(
        &config.domain,
        Settings { recurse_on: true, set_truncate_bit: true, ptr_on: true, ..Settings::default() },
    );

    // Every name either side knows, their ancestors, and one that never was.
    let mut names: BTreeSet<String> = fresh.iter().map(|(n, _)| n.to_owned()).collect();
    names.extend(current.records.iter().map(|(n, _)| n.to_owned()));
    names.extend(current.overlay.iter().flat_map(|o| o.names()));
    for name in names.clone() {
        let mut rest = name.as_str();
        while let Some((_, parent)) = rest.split_once('.') {
            names.insert(parent.to_owned());
            rest = parent;
        }
    }
    names.insert("nowhere.marathon.mesos.".into());
    for name in &names {
        let Ok(qname) = Name::from_ascii(name) else { continue };
        let qtypes = [RecordType::A, RecordType::AAAA, RecordType::SRV, RecordType::ANY];
        for qtype in qtypes.into_iter().chain(name.ends_with(".arpa.").then_some(RecordType::PTR)) {
            let live = answer(&responder, current.view(), &qname, qtype);
            let whole = answer(&responder, ZoneView::new(&fresh_zone, None), &qname, qtype);
            prop_assert_eq!(live, whole, "{} {} after {:?}", name, qtype, ops);
        }
        let (live, whole) = (current.get(name), fresh.get(name));
        let sorted = |set: Option<mesos_dns::records::RrSet>| {
            set.map(|mut s| {
                s.a.sort();
                s.aaaa.sort();
                s.srv.sort();
                s
            })
        };
        prop_assert_eq!(sorted(live), sorted(whole), "HTTP {}", name);
        let mut live = current.srv_targeting(name);
        let mut whole = fresh.srv_targeting(name);
        live.sort_unstable();
        whole.sort_unstable();
        prop_assert_eq!(live, whole, "HTTP {}/ports", name);
    }
    // `/v1/axfr`, byte for byte.
    let live = serde_json::to_string(&current.axfr_records()).unwrap();
    let whole = serde_json::to_string(&fresh.axfr_records()).unwrap();
    prop_assert!(live == whole, "/v1/axfr after {:?}", ops);

    // Zone transfers: the whole zone transferred holds the fresh compile's
    // records; the IXFR from every earlier version, applied to that
    // version's zone, gives it too.
    let transfers = Transfers::new(&config, Arc::clone(&history), &responder);
    let xfr = |snapshot: &Snapshot, from: Option<u32>| -> Vec<Record> {
        let packet = request("mesos.", from).to_vec().unwrap();
        let peer = std::net::IpAddr::from([127, 0, 0, 1]);
        let mut records = Vec::new();
        let mut send = |m: Vec<u8>| {
            records.extend(Message::from_vec(&m).unwrap().answers);
            true
        };
        transfers.respond(&packet, peer, false, Some(snapshot), &mut Scratch::new(1), &mut send);
        records
    };
    let whole = zone_of(&xfr(&current, None));
    prop_assert_eq!(&whole, &canonical(&fresh), "AXFR after {:?}", ops);
    for v in versions.iter().take(versions.len() - 1) {
        let ixfr = xfr(&current, Some(v.serial()));
        let incremental = ixfr.get(1).is_some_and(|r| r.record_type() == RecordType::SOA);
        let got = if incremental { apply(zone_of(&xfr(v, None)), &ixfr) } else { zone_of(&ixfr) };
        prop_assert_eq!(&got, &whole, "IXFR from {} after {:?}", v.serial(), ops);
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn versions_answer_as_a_fresh_compile(ops in prop::collection::vec(op(), 1..30)) {
        check(&ops)?;
    }
}
