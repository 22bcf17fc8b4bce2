//! The HTTP API (README, HTTP API): read-only JSON views of the records in
//! service, shaped as the original's, plus Prometheus `/metrics` and a
//! health check.

use std::io;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use axum::Router;
use axum::extract::{Path, State};
use axum::http::{StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use bytes::Bytes;
use serde::Serialize;
use serde_json::{Value, json};

use crate::config::Config;
use crate::labels::{MAX_LABEL_LEN, MAX_NAME_LEN};
use crate::metrics::Exporter;
use crate::records::{Axfr, RecordSet};
use crate::snapshot::{Current, Snapshot};

/// What the handlers share.
pub struct Api {
    pub config: Arc<Config>,
    pub current: Current,
    pub exporter: Exporter,
}

type Shared = State<Arc<Api>>;

/// The most HTTP connections served at once; more wait in the backlog.
pub const MAX_HTTP_CONNECTIONS: usize = 256;
/// The longest a request may take to be answered.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// A TCP listener that holds at most [`MAX_HTTP_CONNECTIONS`] connections
/// open at once (hyper already bounds header size and count).
pub struct CappedListener {
    inner: tokio::net::TcpListener,
    slots: Arc<tokio::sync::Semaphore>,
}

impl CappedListener {
    pub fn new(inner: tokio::net::TcpListener, max: usize) -> Self {
        CappedListener { inner, slots: Arc::new(tokio::sync::Semaphore::new(max)) }
    }
}

/// A connection and the slot it occupies, released when it closes.
pub struct CappedStream {
    stream: tokio::net::TcpStream,
    _slot: tokio::sync::OwnedSemaphorePermit,
}

impl axum::serve::Listener for CappedListener {
    type Io = CappedStream;
    type Addr = std::net::SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        loop {
            let Ok(slot) = Arc::clone(&self.slots).acquire_owned().await else {
                // The semaphore is never closed.
                return std::future::pending().await;
            };
            match self.inner.accept().await {
                Ok((stream, addr)) => return (CappedStream { stream, _slot: slot }, addr),
                Err(e) => {
                    tracing::warn!("http accept: {e}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            }
        }
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        self.inner.local_addr()
    }
}

impl tokio::io::AsyncRead for CappedStream {
    fn poll_read(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.get_mut().stream).poll_read(cx, buf)
    }
}

impl tokio::io::AsyncWrite for CappedStream {
    fn poll_write(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        std::pin::Pin::new(&mut self.get_mut().stream).poll_write(cx, buf)
    }

    fn poll_flush(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.get_mut().stream).poll_flush(cx)
    }

    fn poll_shutdown(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.get_mut().stream).poll_shutdown(cx)
    }
}

/// Answers 503 to a request that takes longer than [`REQUEST_TIMEOUT`].
async fn with_timeout(req: axum::extract::Request, next: axum::middleware::Next) -> Response {
    match tokio::time::timeout(REQUEST_TIMEOUT, next.run(req)).await {
        Ok(resp) => resp,
        Err(_) => error(StatusCode::SERVICE_UNAVAILABLE, "request timed out".to_owned()),
    }
}

/// The routes; `/v1/enumerate` and `/v1/axfr` only with `enumerationon`.
pub fn router(api: Arc<Api>) -> Router {
    let mut r = Router::new()
        .route("/v1/version", get(version))
        .route("/v1/config", get(config))
        .route("/v1/hosts/{host}", get(hosts))
        .route("/v1/hosts/{host}/ports", get(ports))
        .route("/v1/services/{service}", get(services))
        .route("/metrics", get(metrics))
        .route("/health", get(health))
        .route("/healthz", get(health));
    if api.config.enumeration_on {
        r = r.route("/v1/enumerate", get(enumerate)).route("/v1/axfr", get(axfr));
    }
    r.fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(axum::middleware::from_fn(with_timeout))
        .with_state(api)
}

fn error(status: StatusCode, message: String) -> Response {
    (status, axum::Json(json!({ "error": message, "code": status.as_u16() }))).into_response()
}

async fn not_found(uri: Uri) -> Response {
    error(StatusCode::NOT_FOUND, format!("no such path: {}", uri.path()))
}

async fn method_not_allowed(uri: Uri) -> Response {
    error(StatusCode::METHOD_NOT_ALLOWED, format!("only GET is allowed on {}", uri.path()))
}

async fn version() -> Response {
    axum::Json(json!({
        "Service": "Mesos-DNS",
        "Version": crate::VERSION,
        "URL": "https://github.com/mesosphere/mesos-dns",
    }))
    .into_response()
}

async fn config(State(api): Shared) -> Response {
    let mut v = api.config.redacted();
    if let (Some(obj), Some(s)) = (v.as_object_mut(), api.current.load().as_ref()) {
        obj.insert("SOASerial".into(), s.zone.serial.into());
    }
    axum::Json(v).into_response()
}

/// A queried name as the original normalises it: `.*` removed, lower
/// case, fully qualified. Too long for DNS: 400.
fn normalize(name: &str) -> Result<String, Box<Response>> {
    let mut dom = name.replace(".*", "").to_lowercase();
    if !dom.ends_with('.') {
        dom.push('.');
    }
    let bare = dom.strip_suffix('.').unwrap_or(&dom);
    if bare.len() > MAX_NAME_LEN || bare.split('.').any(|l| l.len() > MAX_LABEL_LEN) {
        return Err(Box::new(error(
            StatusCode::BAD_REQUEST,
            format!("{name:?} is longer than DNS allows"),
        )));
    }
    Ok(dom)
}

/// The records in service (empty before the first load).
fn with_records<T>(api: &Api, f: impl FnOnce(&RecordSet, Option<&Snapshot>) -> T) -> T {
    with_snapshot(api.current.load().as_deref(), f)
}

/// The records of `snapshot`, empty without one.
fn with_snapshot<T>(
    snapshot: Option<&Snapshot>,
    f: impl FnOnce(&RecordSet, Option<&Snapshot>) -> T,
) -> T {
    match snapshot {
        Some(s) => f(&s.records, Some(s)),
        None => f(&RecordSet::default(), None),
    }
}

/// A lookup's records; with none, the original's shape: one record of
/// empty strings (scripts rely on it).
fn records_or_empty<T: Serialize + Default>(mut records: Vec<T>) -> Response {
    if records.is_empty() {
        records.push(T::default());
    }
    axum::Json(records).into_response()
}

#[derive(Serialize, Default)]
struct HostRecord {
    host: String,
    ip: String,
}

async fn hosts(State(api): Shared, Path(host): Path<String>) -> Response {
    let dom = match normalize(&host) {
        Ok(d) => d,
        Err(e) => return *e,
    };
    let out: Vec<HostRecord> = with_records(&api, |rs, _| {
        rs.get(&dom).map_or_else(Vec::new, |set| {
            let v4 = set.a.iter().map(ToString::to_string);
            let v6 = set.aaaa.iter().map(ToString::to_string);
            v4.chain(v6).map(|ip| HostRecord { host: dom.clone(), ip }).collect()
        })
    });
    records_or_empty(out)
}

#[derive(Serialize, Default)]
struct ServiceRecord {
    service: String,
    host: String,
    ip: String,
    port: String,
}

async fn services(State(api): Shared, Path(service): Path<String>) -> Response {
    let dom = match normalize(&service) {
        Ok(d) => d,
        Err(e) => return *e,
    };
    let out: Vec<ServiceRecord> = with_records(&api, |rs, _| {
        let mut out = Vec::new();
        for srv in rs.get(&dom).map(|s| s.srv).unwrap_or_default() {
            let target = rs.get(&srv.target).unwrap_or_default();
            let first_v4 = target.a.first().map(ToString::to_string);
            let first_v6 = target.aaaa.first().map(ToString::to_string);
            for ip in first_v4.into_iter().chain(first_v6) {
                out.push(ServiceRecord {
                    service: service.clone(),
                    host: srv.target.clone(),
                    ip,
                    port: srv.port.to_string(),
                });
            }
        }
        out
    });
    records_or_empty(out)
}

#[derive(Serialize, Default)]
struct PortRecord {
    service: String,
    host: String,
    port: String,
}

/// The SRV records whose target is this host (the original answered 501).
async fn ports(State(api): Shared, Path(host): Path<String>) -> Response {
    let dom = match normalize(&host) {
        Ok(d) => d,
        Err(e) => return *e,
    };
    let out: Vec<PortRecord> = with_records(&api, |rs, _| {
        let mut out: Vec<PortRecord> = rs
            .srv_targeting(&dom)
            .into_iter()
            .map(|(service, port)| PortRecord {
                service: service.to_owned(),
                host: dom.clone(),
                port: port.to_string(),
            })
            .collect();
        out.sort_by(|a, b| (&a.service, &a.port).cmp(&(&b.service, &b.port)));
        out
    });
    records_or_empty(out)
}

async fn enumerate(State(api): Shared) -> Response {
    stream_json(api.current.load_full(), |out, rs, _| serde_json::to_writer(out, &rs.enumeration()))
}

async fn axfr(State(api): Shared) -> Response {
    let config = Arc::clone(&api.config);
    stream_json(api.current.load_full(), move |out, rs, snap| {
        let serial = snap.map_or(0, |s| s.zone.serial);
        serde_json::to_writer(out, &Axfr::new(rs, &config, serial))
    })
}

/// Bytes of JSON per piece of a streamed body.
const CHUNK: usize = 64 * 1024;
/// Pieces written ahead of the client.
const CHUNKS_AHEAD: usize = 2;

/// A document of the records in `snapshot` ([`with_snapshot`]: none
/// before the first load), written by `write` on a blocking thread and
/// streamed as it is made, in pieces of [`CHUNK`] bytes. `/v1/enumerate`
/// of a 20,000-task cluster is 26 MB and takes ~150 ms of CPU to write:
/// made whole, it took the resident set from 31 to 92 MB and held one of
/// the async threads, which DNS over TCP and forwarding share, for all
/// that time. Streamed, a download holds a few pieces, and the snapshot it
/// started with (a reload meanwhile keeps the old records until it ends).
/// A client that takes no piece for [`REQUEST_TIMEOUT`] is cut off; a body
/// cut short ends with an error, never as if complete: it is complete only
/// when the writer's end marker ([`Piece::End`]) arrives.
fn stream_json<F>(snapshot: Option<Arc<Snapshot>>, write: F) -> Response
where
    F: FnOnce(&mut ChunkWriter, &RecordSet, Option<&Snapshot>) -> serde_json::Result<()>
        + Send
        + 'static,
{
    let (tx, rx) = tokio::sync::mpsc::channel(CHUNKS_AHEAD);
    let runtime = tokio::runtime::Handle::current();
    tokio::task::spawn_blocking(move || {
        let mut out = ChunkWriter { buf: Vec::with_capacity(CHUNK), tx, runtime };
        let written = with_snapshot(snapshot.as_deref(), |rs, snap| write(&mut out, rs, snap))
            .map_err(io::Error::from);
        if let Err(e) = written.and_then(|()| out.finish()) {
            // The writer goes without its end marker: the body ends in an
            // error (if the client is still there to see it).
            tracing::debug!("HTTP body cut short: {e}");
        }
    });
    let body = Chunks { rx, ended: false };
    ([(header::CONTENT_TYPE, "application/json")], axum::body::Body::from_stream(body))
        .into_response()
}

/// What a streamed body's writer hands on.
enum Piece {
    Bytes(Bytes),
    /// The document is complete.
    End,
}

/// Collects a streamed body's bytes and hands them on a piece at a time.
struct ChunkWriter {
    buf: Vec<u8>,
    tx: tokio::sync::mpsc::Sender<Piece>,
    runtime: tokio::runtime::Handle,
}

impl ChunkWriter {
    /// Hand over what is collected, waiting for the client to take it.
    fn send(&mut self) -> io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let bytes = Bytes::from(std::mem::replace(&mut self.buf, Vec::with_capacity(CHUNK)));
        self.hand_on(Piece::Bytes(bytes))
    }

    /// Hand over the rest and the end marker.
    fn finish(mut self) -> io::Result<()> {
        self.send()?;
        self.hand_on(Piece::End)
    }

    fn hand_on(&self, piece: Piece) -> io::Result<()> {
        let sent =
            self.runtime.block_on(tokio::time::timeout(REQUEST_TIMEOUT, self.tx.send(piece)));
        match sent {
            Ok(Ok(())) => Ok(()),
            Ok(Err(_)) => Err(io::Error::new(io::ErrorKind::BrokenPipe, "the client went away")),
            Err(_) => Err(io::Error::new(io::ErrorKind::TimedOut, "the client stopped reading")),
        }
    }
}

impl io::Write for ChunkWriter {
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        self.buf.extend_from_slice(bytes);
        if self.buf.len() >= CHUNK {
            self.send()?;
        }
        Ok(bytes.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// The pieces of a streamed body, as they come; an error if the writer
/// goes without its end marker.
struct Chunks {
    rx: tokio::sync::mpsc::Receiver<Piece>,
    ended: bool,
}

impl futures_core::Stream for Chunks {
    type Item = io::Result<Bytes>;

    fn poll_next(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Self::Item>> {
        if self.ended {
            return std::task::Poll::Ready(None);
        }
        self.rx.poll_recv(cx).map(|piece| match piece {
            Some(Piece::Bytes(bytes)) => Some(Ok(bytes)),
            Some(Piece::End) => {
                self.ended = true;
                None
            }
            None => {
                self.ended = true;
                let cut =
                    io::Error::new(io::ErrorKind::UnexpectedEof, "the document was cut short");
                Some(Err(cut))
            }
        })
    }
}

async fn metrics(State(api): Shared) -> Response {
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")], api.exporter.render())
        .into_response()
}

/// 200 once records are loaded and fresher than `healthStaleRefreshes` ×
/// `refreshSeconds`; else 503 with the reason.
async fn health(State(api): Shared) -> Response {
    let current = api.current.load();
    let Some(s) = current.as_ref() else {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            axum::Json(json!({"status": "unavailable", "reason": "no records loaded yet"})),
        )
            .into_response();
    };
    let age = SystemTime::now().duration_since(s.loaded_at).unwrap_or_default();
    let limit = api.config.health_stale_refreshes.saturating_mul(api.config.refresh_seconds);
    let body = |status: &str, reason: Option<String>| -> Value {
        let mut v = json!({
            "status": status,
            "age_seconds": age.as_secs(),
            "max_age_seconds": limit,
            "leader": s.leader,
            "serial": s.zone.serial,
        });
        if let (Some(r), Some(o)) = (reason, v.as_object_mut()) {
            o.insert("reason".into(), r.into());
        }
        v
    };
    if limit > 0 && age > Duration::from_secs(limit) {
        let reason = format!(
            "records are {}s old (limit {limit}s): the masters have not answered",
            age.as_secs()
        );
        return (StatusCode::SERVICE_UNAVAILABLE, axum::Json(body("stale", Some(reason))))
            .into_response();
    }
    axum::Json(body("ok", None)).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    /// Writes `len` bytes of one JSON string, then fails if `fail`, and
    /// reports how its writes ended (the error's kind, if any).
    fn writer(
        len: usize,
        fail: bool,
        done: std::sync::mpsc::Sender<Option<io::ErrorKind>>,
    ) -> impl FnOnce(&mut ChunkWriter, &RecordSet, Option<&Snapshot>) -> serde_json::Result<()>
    {
        move |out, _, _| {
            let written = out
                .write_all(b"\"")
                .and_then(|()| (2..len).try_for_each(|_| out.write_all(b"x")))
                .and_then(|()| out.write_all(b"\""));
            let _ = done.send(written.as_ref().err().map(io::Error::kind));
            written.map_err(serde_json::Error::io)?;
            if fail { Err(serde::ser::Error::custom("failed on purpose")) } else { Ok(()) }
        }
    }

    async fn body(response: Response) -> Result<Vec<u8>, axum::Error> {
        axum::body::to_bytes(response.into_body(), usize::MAX).await.map(|b| b.to_vec())
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn a_document_of_many_pieces_arrives_whole() {
        let (done, report) = std::sync::mpsc::channel();
        let len = 5 * CHUNK + 123;
        let response = stream_json(None, writer(len, false, done));
        assert_eq!(response.headers()[header::CONTENT_TYPE], "application/json");
        let bytes = body(response).await.unwrap();
        assert_eq!(bytes.len(), len);
        assert!(bytes.starts_with(b"\"xx") && bytes.ends_with(b"xx\""));
        assert_eq!(report.recv().unwrap(), None);
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn a_document_that_fails_to_be_written_ends_in_an_error_not_cut_short() {
        let (done, _report) = std::sync::mpsc::channel();
        // Whole pieces went out before the failure: the body still fails.
        let response = stream_json(None, writer(3 * CHUNK, true, done));
        assert!(body(response).await.is_err());
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn a_failure_while_the_client_lags_still_ends_the_body_in_an_error() {
        let (done, report) = std::sync::mpsc::channel();
        // Two whole pieces fill the pieces written ahead; the writer then
        // fails with nobody reading, and only then the client reads.
        let response = stream_json(None, writer(CHUNKS_AHEAD * CHUNK + 10, true, done));
        let written = tokio::task::spawn_blocking(move || report.recv().unwrap()).await.unwrap();
        assert_eq!(written, None);
        tokio::time::sleep(Duration::from_millis(100)).await; // (the writer returns)
        assert!(body(response).await.is_err());
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn writing_stops_when_the_client_goes_away() {
        let (done, report) = std::sync::mpsc::channel();
        // Far more than the pieces written ahead: the writer must notice.
        drop(stream_json(None, writer(100 * CHUNK, false, done)));
        let written = tokio::task::spawn_blocking(move || report.recv().unwrap()).await.unwrap();
        assert_eq!(written, Some(io::ErrorKind::BrokenPipe));
    }
}
