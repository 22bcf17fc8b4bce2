//! What each stage of the pipeline holds in memory, counted allocation by
//! allocation (a counting allocator around the system's): the parsed
//! state, the record set and the compiled zone (kept when polling), and
//! for live records the cluster model and the records by part.
//!
//! Run: `cargo bench --bench memory [-- TASKS...]` (default 20000 100000;
//! see bench/README.md). Prints one line per size, in MiB.

#![allow(clippy::unwrap_used, clippy::expect_used)] // bench code: a failure should panic

mod common;

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use serde_json::{Value, json};

use mesos_dns::generate::{StaticResolver, generate};
use mesos_dns::refresh::live::Generation;
use mesos_dns::state::State;
use mesos_dns::state::cluster::Cluster;
use mesos_dns::state::v1::GetState;
use mesos_dns::zone::Zone;

/// The system allocator, counting the bytes it holds for us.
struct Counting;

static HELD: AtomicUsize = AtomicUsize::new(0);

// SAFETY: every call is passed on to `System` unchanged; only a counter is
// added.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        HELD.fetch_add(layout.size(), Ordering::Relaxed);
        // SAFETY: the caller's contract is `System`'s.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        HELD.fetch_sub(layout.size(), Ordering::Relaxed);
        // SAFETY: the caller's contract is `System`'s.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        HELD.fetch_add(new_size, Ordering::Relaxed);
        HELD.fetch_sub(layout.size(), Ordering::Relaxed);
        // SAFETY: the caller's contract is `System`'s.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// The bytes `make` leaves held (what it returns, and anything it keeps).
fn held<T>(make: impl FnOnce() -> T) -> (T, f64) {
    let before = HELD.load(Ordering::Relaxed);
    let value = make();
    let after = HELD.load(Ordering::Relaxed);
    (value, after.saturating_sub(before) as f64 / (1 << 20) as f64)
}

/// The `SUBSCRIBED` event's `get_state` for the same cluster as the
/// `/master/state` document `doc` (one framework, as gen-state.py makes).
fn get_state(doc: &Value) -> Vec<u8> {
    let fw = &doc["frameworks"][0];
    let fw_id = fw["id"].as_str().unwrap();
    let tasks: Vec<Value> = fw["tasks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| {
            let id = t["id"].as_str().unwrap();
            let ports = t["resources"]["ports"].as_str().unwrap();
            let (begin, end) = ports.trim_matches(['[', ']']).split_once('-').unwrap();
            let statuses: Vec<Value> = t["statuses"]
                .as_array()
                .unwrap()
                .iter()
                .map(|s| {
                    let mut s = s.clone();
                    s["task_id"] = json!({ "value": id });
                    s
                })
                .collect();
            let mut v = json!({
                "name": t["name"], "task_id": {"value": id}, "framework_id": {"value": fw_id},
                "agent_id": {"value": t["slave_id"]}, "state": t["state"], "statuses": statuses,
                "resources": [{"name": "ports", "type": "RANGES", "ranges": {"range": [
                    {"begin": begin.parse::<u64>().unwrap(), "end": end.parse::<u64>().unwrap()}
                ]}}],
            });
            if let Some(d) = t.get("discovery") {
                v["discovery"] = d.clone();
            }
            v
        })
        .collect();
    let agents: Vec<Value> = doc["slaves"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| {
            json!({"agent_info": {"id": {"value": a["id"]}, "hostname": a["hostname"]},
                   "pid": a["pid"]})
        })
        .collect();
    serde_json::to_vec(&json!({"get_state": {
        "get_frameworks": {"frameworks": [{"framework_info": {
            "id": {"value": fw_id}, "name": fw["name"], "hostname": fw["hostname"]}}]},
        "get_agents": {"agents": agents},
        "get_tasks": {"tasks": tasks},
    }}))
    .unwrap()
}

fn main() {
    let sizes: Vec<usize> = std::env::args().skip(1).filter_map(|a| a.parse().ok()).collect();
    let sizes = if sizes.is_empty() { vec![20_000, 100_000] } else { sizes };
    let config = common::config();
    let resolver = StaticResolver::localhost_only();
    let masters = config.masters.clone();
    println!(
        "tasks    state  records  zone  | model  records by part  (MiB held; the index's build time)"
    );
    for tasks in sizes {
        let json = common::state_json(tasks);
        let v1 = get_state(&serde_json::from_slice(json).unwrap());

        let (state, state_mib) = held(|| State::from_vec(json.to_vec()).unwrap());
        let (records, records_mib) =
            held(|| generate(&state, &config, &masters, &resolver).unwrap());
        let (zone, zone_mib) = held(|| Zone::compile(&records, &config, 1));
        drop(state);

        let ((cluster, _), model_mib) = held(|| {
            let state = GetState::parse(&v1).unwrap();
            Cluster::subscribed(state, "master@127.0.0.1:5050".into(), None)
        });
        let g = Generation { config: &config, masters: &masters, resolver: &resolver };
        let started = Instant::now();
        let (index, index_mib) = held(|| g.index(&cluster).unwrap());
        let index_time = started.elapsed();
        println!(
            "{tasks:<8} {state_mib:>5.1} {records_mib:>8.1} {zone_mib:>5.1}  | \
             {model_mib:>5.1} {index_mib:>16.1}  ({} names live; {:.2} s)",
            index.len(),
            index_time.as_secs_f64()
        );
        drop((records, zone, cluster, index));
    }
}
