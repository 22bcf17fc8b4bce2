//! A fake Mesos master: a real HTTP server on 127.0.0.1 (plain, or TLS
//! with [`serve_tls`]) whose `/master/state` can be told to misbehave, and
//! can want credentials.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::State as AxState;
use axum::http::{HeaderMap, StatusCode, Uri, header};
use axum::response::Response;
use axum::routing::post;
use serde_json::Value;
use tokio::sync::mpsc::UnboundedSender;
use tokio_rustls::rustls;

use super::{operator, state_with_leader};

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

/// How the fake master answers the operator API (`POST /api/v1`).
#[derive(Clone, Debug)]
pub enum Api {
    /// 404: a master before Mesos 1.0 (the default, so that tests of
    /// polling poll).
    Absent,
    /// Streams events: `SUBSCRIBED` made from the `/master/state` document
    /// served, then what [`MasterState::send`] sends.
    Stream {
        /// `heartbeat_interval_seconds`.
        heartbeat: f64,
        /// The version `GET_MASTER` reports.
        version: &'static str,
    },
    /// 307 to this master, as a master that does not lead answers.
    Redirect(SocketAddr),
    /// This status with an empty body.
    Status(u16),
    /// Streams a recorded stream, once: its first event (`SUBSCRIBED`),
    /// then each record the test sends down the channel.
    Replay(Recorded),
}

/// A recorded stream to replay: its first event, and the channel the
/// rest comes down (taken by the first subscription).
pub type Recorded = Arc<Mutex<Option<(Value, tokio::sync::mpsc::UnboundedReceiver<Bytes>)>>>;

impl Api {
    /// A streaming Mesos 1.5 master with heartbeats every `heartbeat` s.
    pub fn stream(heartbeat: f64) -> Api {
        Api::Stream { heartbeat, version: "1.5.0" }
    }
}

/// Which requests a master accepts: the others get 401 with a
/// `WWW-Authenticate: Basic` challenge.
pub type Allow = Arc<dyn Fn(&HeaderMap) -> bool + Send + Sync>;

/// What a fake master serves and has seen: its routes, without a server
/// (so that more routes can be added before serving them).
#[derive(Clone)]
pub struct MasterState {
    behaviour: Arc<Mutex<Behaviour>>,
    /// Requests received (refused ones too), but for the operator API's.
    pub hits: Arc<AtomicUsize>,
    allow: Allow,
    api: Arc<Mutex<Api>>,
    /// The open event streams.
    streams: Arc<Mutex<Vec<UnboundedSender<Bytes>>>>,
    /// `SUBSCRIBE` calls answered with a stream.
    pub subscriptions: Arc<AtomicUsize>,
}

impl MasterState {
    /// Answering 503 until told otherwise; every request accepted.
    pub fn new() -> MasterState {
        MasterState::with_allow(Arc::new(|_| true))
    }

    /// Answering 503 until told otherwise; requests `allow` refuses get 401.
    pub fn with_allow(allow: Allow) -> MasterState {
        MasterState {
            behaviour: Arc::new(Mutex::new(Behaviour::Status(503))),
            hits: Arc::new(AtomicUsize::new(0)),
            allow,
            api: Arc::new(Mutex::new(Api::Absent)),
            streams: Arc::new(Mutex::new(Vec::new())),
            subscriptions: Arc::new(AtomicUsize::new(0)),
        }
    }

    pub fn set_api(&self, api: Api) {
        *self.api.lock().unwrap() = api;
    }

    /// The `/master/state` document served (`null` when none is).
    pub fn document(&self) -> Value {
        match &*self.behaviour.lock().unwrap() {
            Behaviour::Serve(body) => serde_json::from_slice(body).unwrap(),
            _ => Value::Null,
        }
    }

    /// Serve `doc` as `/master/state`.
    pub fn set_document(&self, doc: &Value) {
        self.set(Behaviour::Serve(serde_json::to_vec(doc).unwrap()));
    }

    /// Send `event` to every open stream.
    pub fn send(&self, event: &Value) {
        self.send_raw(operator::record(event));
    }

    /// Send bytes as they are to every open stream.
    pub fn send_raw(&self, bytes: Bytes) {
        self.streams.lock().unwrap().retain(|s| s.send(bytes.clone()).is_ok());
    }

    /// End every open stream (between records).
    pub fn end_streams(&self) {
        self.streams.lock().unwrap().clear();
    }

    pub fn set(&self, behaviour: Behaviour) {
        *self.behaviour.lock().unwrap() = behaviour;
    }

    /// Serve `fixture` naming `addr` the leader.
    pub fn lead(&self, fixture: &str, addr: SocketAddr) {
        self.set(Behaviour::Serve(state_with_leader(fixture, addr)));
    }

    /// The master's routes.
    pub fn router(&self) -> Router {
        Router::new()
            .route("/api/v1", post(api_handler))
            .fallback(master_handler)
            .with_state(self.clone())
    }
}

impl Default for MasterState {
    fn default() -> Self {
        MasterState::new()
    }
}

async fn master_handler(AxState(s): AxState<MasterState>, uri: Uri, h: HeaderMap) -> Response {
    s.hits.fetch_add(1, Ordering::SeqCst);
    if !(s.allow)(&h) {
        return unauthorized();
    }
    let behaviour = s.behaviour.lock().unwrap().clone();
    let path = uri.path();
    let respond = |status: u16, body: Vec<u8>| json_response(status, body);
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

async fn api_handler(AxState(s): AxState<MasterState>, h: HeaderMap, body: Bytes) -> Response {
    if !(s.allow)(&h) {
        return unauthorized();
    }
    let call: Value = serde_json::from_slice(&body).unwrap_or_default();
    let api = s.api.lock().unwrap().clone();
    let (heartbeat, version) = match api {
        Api::Absent => return json_response(404, Vec::new()),
        Api::Status(code) => return json_response(code, Vec::new()),
        Api::Redirect(to) => {
            return Response::builder()
                .status(StatusCode::TEMPORARY_REDIRECT)
                .header(header::LOCATION, format!("//{to}/master/api/v1"))
                .body(Body::empty())
                .unwrap();
        }
        Api::Stream { heartbeat, version } => (heartbeat, version),
        Api::Replay(replay) => {
            if call["type"] != "SUBSCRIBE" {
                return json_response(404, Vec::new());
            }
            let Some((first, mut rx)) = replay.lock().unwrap().take() else {
                return json_response(503, Vec::new());
            };
            let (tx, out) = tokio::sync::mpsc::unbounded_channel();
            tx.send(operator::record(&first)).unwrap();
            tokio::spawn(async move {
                while let Some(chunk) = rx.recv().await {
                    if tx.send(chunk).is_err() {
                        return;
                    }
                }
            });
            s.subscriptions.fetch_add(1, Ordering::SeqCst);
            return Response::builder()
                .status(200)
                .header(header::CONTENT_TYPE, "application/json")
                .body(Body::from_stream(operator::Chunks(out)))
                .unwrap();
        }
    };
    let doc = s.document();
    match call["type"].as_str() {
        Some("GET_MASTER") => {
            let answer = serde_json::json!({"type": "GET_MASTER", "get_master": {"master_info": {
                "pid": doc["leader"], "version": version, "port": 5050}}});
            json_response(200, answer.to_string().into_bytes())
        }
        Some("SUBSCRIBE") => {
            let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
            tx.send(operator::record(&operator::subscribed(&doc, heartbeat))).unwrap();
            s.streams.lock().unwrap().push(tx);
            s.subscriptions.fetch_add(1, Ordering::SeqCst);
            Response::builder()
                .status(200)
                .header(header::CONTENT_TYPE, "application/json")
                .body(Body::from_stream(operator::Chunks(rx)))
                .unwrap()
        }
        _ => json_response(400, Vec::new()),
    }
}

/// 401 with a `WWW-Authenticate: Basic` challenge.
fn unauthorized() -> Response {
    Response::builder()
        .status(StatusCode::UNAUTHORIZED)
        .header(header::WWW_AUTHENTICATE, "Basic realm=\"mesos\"")
        .body(Body::empty())
        .unwrap()
}

/// A response with a JSON content type.
pub fn json_response(status: u16, body: Vec<u8>) -> Response {
    Response::builder()
        .status(status)
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(body))
        .unwrap()
}

/// A real HTTP server playing a Mesos master.
pub struct FakeMaster {
    pub addr: SocketAddr,
    state: MasterState,
    pub hits: Arc<AtomicUsize>,
    task: tokio::task::JoinHandle<()>,
}

impl FakeMaster {
    pub async fn start(behaviour: Behaviour) -> FakeMaster {
        let state = MasterState::new();
        state.set(behaviour);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let task = serve_on(listener, state.router());
        FakeMaster { addr, hits: Arc::clone(&state.hits), state, task }
    }

    /// A master serving `fixture`, in which it is the leader.
    pub async fn leading(fixture: &str) -> FakeMaster {
        let master = FakeMaster::start(Behaviour::Status(503)).await;
        master.state.lead(fixture, master.addr);
        master
    }

    pub fn set(&self, behaviour: Behaviour) {
        self.state.set(behaviour);
    }

    /// What the master serves and has seen.
    pub fn state(&self) -> &MasterState {
        &self.state
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
        self.task = serve_on(listener, self.state.router());
    }
}

/// Serves `router` on `listener` until the task is aborted.
fn serve_on(listener: tokio::net::TcpListener, router: Router) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let _ = axum::serve(listener, router).await;
    })
}

/// A router served on a free 127.0.0.1 port, over HTTP or HTTPS; stopped
/// on drop.
pub struct HttpServer {
    pub addr: SocketAddr,
    /// TLS handshakes the server refused.
    pub refused: Arc<AtomicUsize>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Drop for HttpServer {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

/// Serves `router` over plain HTTP.
pub async fn serve(router: Router) -> HttpServer {
    let tcp = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = tcp.local_addr().unwrap();
    let serve = serve_on(tcp, router);
    HttpServer { addr, refused: Arc::new(AtomicUsize::new(0)), tasks: vec![serve] }
}

/// Serves `router` over HTTPS with `config` (handshakes off the accept
/// loop; refused ones counted).
pub async fn serve_tls(router: Router, config: rustls::ServerConfig) -> HttpServer {
    let tcp = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = tcp.local_addr().unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let refused = Arc::new(AtomicUsize::new(0));
    let (tx, rx) = tokio::sync::mpsc::channel(16);
    let counter = Arc::clone(&refused);
    let accept = tokio::spawn(async move {
        loop {
            let Ok((stream, peer)) = tcp.accept().await else { continue };
            let (acceptor, tx, counter) = (acceptor.clone(), tx.clone(), Arc::clone(&counter));
            tokio::spawn(async move {
                match acceptor.accept(stream).await {
                    Ok(tls) => {
                        let _ = tx.send((tls, peer)).await;
                    }
                    Err(_) => {
                        counter.fetch_add(1, Ordering::SeqCst);
                    }
                }
            });
        }
    });
    let serve = tokio::spawn(async move {
        let _ = axum::serve(TlsListener { addr, rx }, router).await;
    });
    HttpServer { addr, refused, tasks: vec![accept, serve] }
}

/// The connections whose TLS handshake succeeded, as a listener for axum.
struct TlsListener {
    addr: SocketAddr,
    rx: tokio::sync::mpsc::Receiver<(
        tokio_rustls::server::TlsStream<tokio::net::TcpStream>,
        SocketAddr,
    )>,
}

impl axum::serve::Listener for TlsListener {
    type Io = tokio_rustls::server::TlsStream<tokio::net::TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        match self.rx.recv().await {
            Some(conn) => conn,
            None => std::future::pending().await,
        }
    }

    fn local_addr(&self) -> std::io::Result<SocketAddr> {
        Ok(self.addr)
    }
}
