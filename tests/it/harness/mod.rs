//! The test harness, shared by every integration test (and by the soak
//! benchmark, `benches/soak.rs`):
//!
//! - [`master`]: a fake Mesos master (a real HTTP server on 127.0.0.1 that
//!   can be told to misbehave or to want credentials), plain or over TLS;
//! - [`operator`]: the same cluster as the operator API shows it, and its
//!   RecordIO event stream (served by the fake master);
//! - [`dns`]: raw DNS queries over real UDP and TCP sockets;
//! - [`process`]: the real `mesos-dns` binary as a child process, free
//!   ports;
//! - [`pki`]: a CA, server and client certificates and keys as PEM files;
//! - [`secondary`]: real NSD and Knot DNS servers as secondaries of a zone;
//! - [`zk`]: a real ZooKeeper server, its members, a link that can be cut;
//! - [`logs`]: log output, and logs captured for a test to look at;
//! - [`exclusive`]: keeps load tests and timing-sensitive tests apart;
//! - here: the server in-process, its configuration, the fixtures.
//!
//! Every `mesos_dns` path the harness needs is imported in this file.

pub mod dns;
pub mod exclusive;
pub mod logs;
pub mod master;
pub mod operator;
pub mod pki;
pub mod process;
pub mod secondary;
pub mod zk;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

pub use dns::*;
pub use master::*;
pub use process::*;

pub use mesos_dns::app::Running;
use mesos_dns::app::start;
use mesos_dns::config::Config;
use mesos_dns::fetch::Fetcher;
use mesos_dns::generate::StaticResolver;
use mesos_dns::refresh::Source;

/// The fixture served by the fake masters unless a test says otherwise.
pub const FIXTURE: &str = "mesos-dns-fake.json";

/// The shared fixtures folder.
pub fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

/// The Mesos state fixture `name`, as it is on disk.
pub fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(fixtures().join("mesos-state").join(name)).unwrap()
}

/// A fixture state with its `leader` pointing at `leader`.
pub fn state_with_leader(fixture_name: &str, leader: SocketAddr) -> Vec<u8> {
    let mut v: serde_json::Value = serde_json::from_slice(&fixture(fixture_name)).unwrap();
    v["leader"] = format!("master@{leader}").into();
    serde_json::to_vec(&v).unwrap()
}

/// `base` with the keys of `changes` set (a shallow merge of two objects).
pub fn merged(mut base: serde_json::Value, changes: &serde_json::Value) -> serde_json::Value {
    if let (Some(b), Some(c)) = (base.as_object_mut(), changes.as_object()) {
        for (k, v) in c {
            b.insert(k.clone(), v.clone());
        }
    }
    base
}

/// A config for tests: DNS on 127.0.0.1, an ephemeral port.
pub fn test_config(masters: &[SocketAddr], extra: serde_json::Value) -> Config {
    let doc = serde_json::json!({
        "masters": masters.iter().map(ToString::to_string).collect::<Vec<_>>(),
        "listener": "127.0.0.1",
        "port": 0,
        "httpon": false,
        "externalon": false,
        "refreshSeconds": 1,
        "stateTimeoutSeconds": 2,
        "SOAMinttl": 30,
    });
    config_from(&merged(doc, &extra))
}

/// A config from a JSON document (as if read from `test-config.json`).
pub fn config_from(doc: &serde_json::Value) -> Config {
    Config::from_json(&doc.to_string(), PathBuf::from("test-config.json")).unwrap()
}

/// A fetcher of `master`'s state with [`test_config`] plus `extra`.
pub fn fetcher(master: SocketAddr, extra: serde_json::Value) -> Fetcher {
    Fetcher::new(&test_config(&[master], extra)).unwrap()
}

/// Start the server in-process against masters.
pub async fn start_with_masters(config: Config) -> Running {
    let config = Arc::new(config);
    let fetcher = Fetcher::new(&config).unwrap();
    let source = Source::Masters { fetcher, masters: config.masters.clone(), detected: None };
    start(config, source, Arc::new(StaticResolver::localhost_only())).await.unwrap()
}

/// Start the server in-process on a state file.
pub async fn start_with_file(config: Config, path: &Path) -> Running {
    let source = Source::File(path.to_path_buf());
    start(Arc::new(config), source, Arc::new(StaticResolver::localhost_only())).await.unwrap()
}

/// A fake master leading with [`FIXTURE`] and the server in-process,
/// loaded from it.
pub struct Cluster {
    pub master: FakeMaster,
    pub running: Running,
    /// The server's DNS address.
    pub addr: SocketAddr,
}

/// One master serving [`FIXTURE`], the server (`test_config` plus
/// `extra`) loaded from it.
pub async fn cluster(extra: serde_json::Value) -> Cluster {
    let master = FakeMaster::leading(FIXTURE).await;
    let running = start_with_masters(test_config(&[master.addr], extra)).await;
    wait_loaded(&running).await;
    let addr = running.dns_addr.unwrap();
    Cluster { master, running, addr }
}

/// The server in-process on a state file holding `state`, loaded; the
/// directory of the file, the server and its DNS address.
pub async fn serve_state_file(
    state: &[u8],
    config: Config,
) -> (tempfile::TempDir, Running, SocketAddr) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.json");
    std::fs::write(&path, state).unwrap();
    let running = start_with_file(config, &path).await;
    wait_loaded(&running).await;
    let addr = running.dns_addr.unwrap();
    (dir, running, addr)
}

/// Wait until `cond` holds (polling), or panic after `secs`.
pub async fn wait_for(secs: u64, what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The server's `/metrics` (it must serve HTTP).
pub async fn metrics(r: &Running) -> String {
    let url = format!("http://{}/metrics", r.http_addr.expect("httpon"));
    reqwest::get(url).await.unwrap().text().await.unwrap()
}

/// Wait until the server's `/metrics` holds `text`, or panic after `secs`.
pub async fn wait_metrics(r: &Running, secs: u64, text: &str) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        let now = metrics(r).await;
        if now.contains(text) {
            return;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {text:?} in /metrics:\n{now}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The HTTP settings of a test server serving `/metrics`.
pub fn with_http() -> serde_json::Value {
    serde_json::json!({"httpon": true, "httpport": 0, "httpListener": "127.0.0.1"})
}

/// Wait until the server has records.
pub async fn wait_loaded(r: &Running) {
    let current = Arc::clone(&r.current);
    wait_for(10, "records to load", move || current.load().is_some()).await;
}
