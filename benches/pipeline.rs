//! The refresh pipeline off the DNS path: state JSON → `State` (parse) →
//! `RecordSet` (generate) → `Zone` (compile).
//!
//! `pipeline/*`: each stage alone on a 20,000-task state, on one thread
//! (`parse` reads the outline and then every task).
//! `end_to_end/N`: parse + generate + compile for N = 1k, 5k, 20k, 100k
//! tasks, as the server does it: from 1,000 tasks on, the task objects are
//! parsed on a second thread while generation reads them
//! (`State::from_vec`).
//!
//! Run: `cargo bench --bench pipeline` (see bench/README.md).

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failure should panic

mod common;

use std::hint::black_box;
use std::sync::OnceLock;
use std::time::Duration;

use criterion::{
    BatchSize, BenchmarkId, Criterion, SamplingMode, Throughput, criterion_group, criterion_main,
};

use mesos_dns::config::Config;
use mesos_dns::generate::{StaticResolver, generate};
use mesos_dns::records::RecordSet;
use mesos_dns::state::State;
use mesos_dns::zone::Zone;

const TASKS: usize = 20_000;

/// The inputs of each stage, made on first use.
struct Inputs {
    json: &'static [u8],
    state: State,
    records: RecordSet,
}

fn inputs(config: &Config, resolver: &StaticResolver) -> &'static Inputs {
    static INPUTS: OnceLock<Inputs> = OnceLock::new();
    INPUTS.get_or_init(|| {
        let json = common::state_json(TASKS);
        let state = State::from_slice(json).expect("generated state parses");
        let records = generate(&state, config, &config.masters, resolver).expect("has a leader");
        let zone = Zone::compile(&records, config, 1);
        eprintln!(
            "pipeline: {TASKS} tasks, {} bytes of JSON -> {} names ({} A, {} AAAA, {} SRV)",
            json.len(),
            zone.stats.names,
            zone.stats.a,
            zone.stats.aaaa,
            zone.stats.srv
        );
        Inputs { json, state, records }
    })
}

fn stages(c: &mut Criterion) {
    let config = common::config();
    let resolver = StaticResolver::localhost_only();
    let mut g = c.benchmark_group("pipeline");
    // Tens to hundreds of milliseconds per iteration: few samples, the same
    // iteration count in each, and the results dropped outside the timing.
    g.sample_size(10)
        .sampling_mode(SamplingMode::Flat)
        .throughput(Throughput::Elements(TASKS as u64));
    g.bench_function(BenchmarkId::new("parse", TASKS), |b| {
        let json = inputs(&config, &resolver).json;
        b.iter_with_large_drop(|| State::from_slice(black_box(json)).unwrap());
    });
    g.bench_function(BenchmarkId::new("generate", TASKS), |b| {
        let state = &inputs(&config, &resolver).state;
        b.iter_with_large_drop(|| {
            generate(black_box(state), &config, &config.masters, &resolver).unwrap()
        });
    });
    g.bench_function(BenchmarkId::new("compile", TASKS), |b| {
        let records = &inputs(&config, &resolver).records;
        b.iter_with_large_drop(|| Zone::compile(black_box(records), &config, 1));
    });
    g.finish();
}

fn end_to_end(c: &mut Criterion) {
    let config = common::config();
    let resolver = StaticResolver::localhost_only();
    let mut g = c.benchmark_group("end_to_end");
    // 100k tasks take seconds per iteration: keep it short.
    g.sample_size(10)
        .sampling_mode(SamplingMode::Flat)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(5));
    for tasks in [1_000usize, 5_000, 20_000, 100_000] {
        g.throughput(Throughput::Elements(tasks as u64));
        g.bench_function(BenchmarkId::from_parameter(tasks), |b| {
            let json = common::state_json(tasks);
            // The server owns the body it fetched: the copy is set-up.
            b.iter_batched(
                || json.to_vec(),
                |body| {
                    let state = State::from_vec(black_box(body)).unwrap();
                    let records = generate(&state, &config, &config.masters, &resolver).unwrap();
                    let zone = Zone::compile(&records, &config, 1);
                    (state, records, zone)
                },
                BatchSize::PerIteration,
            );
        });
    }
    g.finish();
}

criterion_group!(benches, stages, end_to_end);
criterion_main!(benches);
