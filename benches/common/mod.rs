//! Shared by the benches: the benchmark config and a realistic Mesos state
//! made by `bench/gen-state.py` (deterministic: same size, same bytes).

use std::collections::HashMap;
use std::path::Path;
use std::process::Command;
use std::sync::{Mutex, OnceLock};

use mesos_dns::config::Config;

/// The config every bench uses (defaults, one master, 127.0.0.1 listener).
pub fn config() -> Config {
    Config::from_json(
        r#"{"masters":["127.0.0.1:5050"],"listener":"127.0.0.1"}"#,
        "bench.json".into(),
    )
    .expect("bench config is valid")
}

/// The `/master/state` document of `tasks` running tasks, from
/// `bench/gen-state.py` (run with python3, output captured in memory).
/// Made once per size, on first use (so a filtered-out bench costs nothing).
pub fn state_json(tasks: usize) -> &'static [u8] {
    static CACHE: OnceLock<Mutex<HashMap<usize, &'static [u8]>>> = OnceLock::new();
    let mut cache = CACHE.get_or_init(Default::default).lock().unwrap();
    cache.entry(tasks).or_insert_with(|| Vec::leak(run_generator(tasks)))
}

fn run_generator(tasks: usize) -> Vec<u8> {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("bench/gen-state.py");
    let out = Command::new("python3")
        .arg(&script)
        .arg(tasks.to_string())
        .output()
        .unwrap_or_else(|e| panic!("cannot run python3 {}: {e}", script.display()));
    assert!(
        out.status.success(),
        "{} failed: {}",
        script.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}
