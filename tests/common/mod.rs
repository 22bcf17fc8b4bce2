//! Test harness shared by the integration tests: a fake Mesos master (a
//! real HTTP server on 127.0.0.1 that can be told to misbehave), a DNS
//! client over real UDP/TCP sockets, and an in-process server.
#![allow(dead_code)]

pub mod zk;

use std::net::{SocketAddr, TcpStream, UdpSocket};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Body;
use axum::extract::State as AxState;
use axum::http::{StatusCode, Uri};
use axum::response::Response;
use hickory_proto::op::{Edns, Message, Query};
use hickory_proto::rr::{Name, RecordType};

use mesos_dns::app::{Running, start};
use mesos_dns::config::Config;
use mesos_dns::fetch::Fetcher;
use mesos_dns::generate::StaticResolver;
use mesos_dns::refresh::Source;

/// The shared fixtures folder.
pub fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

/// A fixture state with its `leader` pointing at `leader`.
pub fn state_with_leader(fixture: &str, leader: SocketAddr) -> Vec<u8> {
    let bytes = std::fs::read(fixtures().join("mesos-state").join(fixture)).unwrap();
    let mut v: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
    v["leader"] = format!("master@{leader}").into();
    serde_json::to_vec(&v).unwrap()
}

/// How the fake master answers `/master/state`.
#[derive(Clone, Debug)]
pub enum Behaviour {
    /// 200 with this body.
    Serve(Vec<u8>),
    /// This status with an empty body.
    Status(u16),
    /// Never answer.
    Hang,
    /// 404 on `/master/state`, the body on `/master/state.json`.
    OldMaster(Vec<u8>),
}

/// A real HTTP server playing a Mesos master.
pub struct FakeMaster {
    pub addr: SocketAddr,
    behaviour: Arc<Mutex<Behaviour>>,
    pub hits: Arc<AtomicUsize>,
    task: tokio::task::JoinHandle<()>,
}

#[derive(Clone)]
struct MasterState {
    behaviour: Arc<Mutex<Behaviour>>,
    hits: Arc<AtomicUsize>,
}

async fn master_handler(AxState(s): AxState<MasterState>, uri: Uri) -> Response {
    s.hits.fetch_add(1, Ordering::SeqCst);
    let behaviour = s.behaviour.lock().unwrap().clone();
    let path = uri.path();
    let respond = |status: u16, body: Vec<u8>| {
        Response::builder()
            .status(status)
            .header("content-type", "application/json")
            .body(Body::from(body))
            .unwrap()
    };
    match behaviour {
        Behaviour::Serve(body) if path == "/master/state" => respond(200, body),
        Behaviour::Status(code) => respond(code, Vec::new()),
        Behaviour::Hang => {
            tokio::time::sleep(Duration::from_secs(3600)).await;
            respond(500, Vec::new())
        }
        Behaviour::OldMaster(body) if path == "/master/state.json" => respond(200, body),
        _ => respond(StatusCode::NOT_FOUND.as_u16(), Vec::new()),
    }
}

impl FakeMaster {
    pub async fn start(behaviour: Behaviour) -> FakeMaster {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        Self::serve_on(listener, behaviour)
    }

    fn serve_on(listener: tokio::net::TcpListener, behaviour: Behaviour) -> FakeMaster {
        let addr = listener.local_addr().unwrap();
        let behaviour = Arc::new(Mutex::new(behaviour));
        let hits = Arc::new(AtomicUsize::new(0));
        let task = Self::spawn(listener, Arc::clone(&behaviour), Arc::clone(&hits));
        FakeMaster { addr, behaviour, hits, task }
    }

    fn spawn(
        listener: tokio::net::TcpListener,
        behaviour: Arc<Mutex<Behaviour>>,
        hits: Arc<AtomicUsize>,
    ) -> tokio::task::JoinHandle<()> {
        let app =
            Router::new().fallback(master_handler).with_state(MasterState { behaviour, hits });
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        })
    }

    pub fn set(&self, behaviour: Behaviour) {
        *self.behaviour.lock().unwrap() = behaviour;
    }

    /// Stop listening: connections are refused from now on (open ones
    /// are closed too).
    pub fn stop(&self) {
        self.task.abort();
    }

    /// Listen again on the same address after [`FakeMaster::stop`], with
    /// the same behaviour and hit count (a master process coming back).
    pub async fn restart(&mut self) {
        let _ = (&mut self.task).await; // the old listener is closed
        let listener = tokio::net::TcpListener::bind(self.addr).await.unwrap();
        self.task = Self::spawn(listener, Arc::clone(&self.behaviour), Arc::clone(&self.hits));
    }
}

/// A config for tests: DNS on 127.0.0.1, an ephemeral port.
pub fn test_config(masters: &[SocketAddr], extra: serde_json::Value) -> Config {
    let mut doc = serde_json::json!({
        "masters": masters.iter().map(ToString::to_string).collect::<Vec<_>>(),
        "listener": "127.0.0.1",
        "port": 0,
        "httpon": false,
        "externalon": false,
        "refreshSeconds": 1,
        "stateTimeoutSeconds": 2,
        "SOAMinttl": 30,
    });
    if let (Some(d), Some(e)) = (doc.as_object_mut(), extra.as_object()) {
        for (k, v) in e {
            d.insert(k.clone(), v.clone());
        }
    }
    Config::from_json(&doc.to_string(), PathBuf::from("test-config.json")).unwrap()
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

/// Wait until `cond` holds (polling), or panic after `secs`.
pub async fn wait_for(secs: u64, what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Wait until the server has records.
pub async fn wait_loaded(r: &Running) {
    let current = Arc::clone(&r.current);
    wait_for(10, "records to load", move || current.load().is_some()).await;
}

/// Build a query message.
pub fn query_msg(name: &str, rtype: RecordType, edns: Option<u16>) -> Message {
    let mut m = Message::query();
    m.add_query(Query::query(Name::from_ascii(name).unwrap(), rtype));
    m.metadata.recursion_desired = true;
    if let Some(size) = edns {
        let mut e = Edns::new();
        e.set_max_payload(size);
        m.set_edns(e);
    }
    m
}

/// Send raw bytes over UDP; the raw reply, or None after 1 s.
pub fn udp_raw(addr: SocketAddr, packet: &[u8]) -> Option<Vec<u8>> {
    let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
    sock.set_read_timeout(Some(Duration::from_millis(1000))).unwrap();
    sock.send_to(packet, addr).unwrap();
    let mut buf = vec![0u8; 65535];
    match sock.recv_from(&mut buf) {
        Ok((n, _)) => Some(buf[..n].to_vec()),
        Err(_) => None,
    }
}

/// Send raw bytes over TCP (framed); the raw reply.
pub fn tcp_raw(addr: SocketAddr, packet: &[u8]) -> Vec<u8> {
    use std::io::{Read, Write};
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut framed = (packet.len() as u16).to_be_bytes().to_vec();
    framed.extend_from_slice(packet);
    s.write_all(&framed).unwrap();
    let mut len = [0u8; 2];
    s.read_exact(&mut len).unwrap();
    let mut buf = vec![0u8; u16::from_be_bytes(len) as usize];
    s.read_exact(&mut buf).unwrap();
    buf
}

/// Query over UDP and decode the reply.
pub fn udp(addr: SocketAddr, name: &str, rtype: RecordType, edns: Option<u16>) -> Message {
    let q = query_msg(name, rtype, edns);
    let reply = udp_raw(addr, &q.to_vec().unwrap()).expect("no UDP reply");
    let m = Message::from_vec(&reply).unwrap();
    assert_eq!(m.metadata.id, q.metadata.id);
    m
}

/// Query over TCP and decode the reply.
pub fn tcp(addr: SocketAddr, name: &str, rtype: RecordType) -> Message {
    let q = query_msg(name, rtype, None);
    let m = Message::from_vec(&tcp_raw(addr, &q.to_vec().unwrap())).unwrap();
    assert_eq!(m.metadata.id, q.metadata.id);
    m
}

/// The A addresses in a message's answer section, sorted.
pub fn a_answers(m: &Message) -> Vec<String> {
    let mut v: Vec<String> = m
        .answers
        .iter()
        .filter(|r| r.record_type() == RecordType::A || r.record_type() == RecordType::AAAA)
        .map(|r| r.data.to_string())
        .collect();
    v.sort();
    v
}
