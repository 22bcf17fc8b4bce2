//! The HTTP API (README, HTTP API): read-only JSON views of the records in
//! service, shaped as the original's, plus Prometheus `/metrics` and a
//! health check.

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::{Path, RawQuery, State};
use axum::http::{StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde::Serialize;
use serde_json::{Value, json};

use crate::config::Config;
use crate::labels::{MAX_LABEL_LEN, MAX_NAME_LEN};
use crate::metrics::Exporter;
use crate::records::{Axfr, RecordSet};
use crate::snapshot::{Current, Snapshot};

/// What the handlers share.
pub struct Api {
    pub(crate) config: Arc<Config>,
    pub(crate) current: Current,
    pub(crate) exporter: Exporter,
    /// The lookups' answers and their indexes (blocking queries).
    pub(crate) answers: Answers,
}

type Shared = State<Arc<Api>>;

/// The longest a request may take to be answered (beyond its `wait`, for
/// a blocking query).
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// Answers 503 to a request that takes longer than [`REQUEST_TIMEOUT`]
/// (plus the longest `wait`, for a blocking query).
async fn with_timeout(req: axum::extract::Request, next: axum::middleware::Next) -> Response {
    let blocking = req.uri().query().is_some_and(|q| q.split('&').any(|p| p.starts_with("index=")));
    let limit = if blocking { REQUEST_TIMEOUT + watch::MAX_WAIT } else { REQUEST_TIMEOUT };
    match tokio::time::timeout(limit, next.run(req)).await {
        Ok(resp) => resp,
        Err(_) => error(StatusCode::SERVICE_UNAVAILABLE, "request timed out".to_owned()),
    }
}

/// The longest `/v1/enumerate` waits for a full compile.
const WHOLE_WAIT: Duration = Duration::from_secs(30);

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
        obj.insert("SOASerial".into(), s.serial().into());
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

#[derive(Serialize, Default)]
struct HostRecord {
    host: String,
    ip: String,
}

async fn hosts(State(api): Shared, Path(host): Path<String>, RawQuery(q): RawQuery) -> Response {
    let dom = match normalize(&host) {
        Ok(d) => d,
        Err(e) => return *e,
    };
    let answer = |snapshot: Option<&Snapshot>| -> Vec<HostRecord> {
        snapshot.and_then(|s| s.get(&dom)).map_or_else(Vec::new, |set| {
            let v4 = set.a.iter().map(ToString::to_string);
            let v6 = set.aaaa.iter().map(ToString::to_string);
            v4.chain(v6).map(|ip| HostRecord { host: dom.clone(), ip }).collect()
        })
    };
    watch::lookup(&api, &format!("hosts/{host}"), &dom, q.as_deref(), answer).await
}

#[derive(Serialize, Default)]
struct ServiceRecord {
    service: String,
    host: String,
    ip: String,
    port: String,
}

async fn services(
    State(api): Shared,
    Path(service): Path<String>,
    RawQuery(q): RawQuery,
) -> Response {
    let dom = match normalize(&service) {
        Ok(d) => d,
        Err(e) => return *e,
    };
    let answer = |snapshot: Option<&Snapshot>| -> Vec<ServiceRecord> {
        let get = |name: &str| snapshot.and_then(|s| s.get(name));
        let mut out = Vec::new();
        for srv in get(&dom).map(|s| s.srv).unwrap_or_default() {
            let target = get(&srv.target).unwrap_or_default();
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
    };
    watch::lookup(&api, &format!("services/{service}"), &dom, q.as_deref(), answer).await
}

#[derive(Serialize, Default)]
struct PortRecord {
    service: String,
    host: String,
    port: String,
}

/// The SRV records whose target is this host (the original answered 501).
async fn ports(State(api): Shared, Path(host): Path<String>, RawQuery(q): RawQuery) -> Response {
    let dom = match normalize(&host) {
        Ok(d) => d,
        Err(e) => return *e,
    };
    let answer = |snapshot: Option<&Snapshot>| -> Vec<PortRecord> {
        let mut out: Vec<PortRecord> = snapshot
            .map(|s| s.srv_targeting(&dom))
            .unwrap_or_default()
            .into_iter()
            .map(|(service, port)| PortRecord {
                service: service.to_owned(),
                host: dom.clone(),
                port: port.to_string(),
            })
            .collect();
        out.sort_by(|a, b| (&a.service, &a.port).cmp(&(&b.service, &b.port)));
        out
    };
    watch::lookup(&api, &format!("ports/{host}"), &dom, q.as_deref(), answer).await
}

/// The records each task contributed. With live records this waits for
/// a full compile of a state at least as new as the request (at most
/// [`WHOLE_WAIT`]): which task owns a record shared by several is only
/// known in a compile of the whole cluster.
async fn enumerate(State(api): Shared) -> Response {
    let snapshot = api.current.whole(WHOLE_WAIT).await;
    stream_json(snapshot, |out, rs, _| serde_json::to_writer(out, &rs.enumeration()))
}

/// The newest version's records, its serial the SOA's.
async fn axfr(State(api): Shared) -> Response {
    let config = Arc::clone(&api.config);
    stream_json(api.current.load_full(), move |out, rs, snap| match snap {
        Some(s) => serde_json::to_writer(out, &Axfr::new(s.axfr_records(), &config, s.serial())),
        None => serde_json::to_writer(out, &Axfr::new(rs.axfr_records(), &config, 0)),
    })
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
    // While the event stream flows, every event and heartbeat confirms the
    // records; when polling, each refresh does.
    let age = s.unconfirmed_for();
    let limit = api.config.health_stale_refreshes.saturating_mul(api.config.refresh_seconds);
    let body = |status: &str, reason: Option<String>| -> Value {
        let mut v = json!({
            "status": status,
            "age_seconds": age.as_secs(),
            "max_age_seconds": limit,
            "leader": s.leader,
            "serial": s.serial(),
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

mod listener;
mod stream;
pub mod watch;

pub use listener::{CappedListener, serve};
use stream::stream_json;
use watch::Answers;
