//! The watch client's side of the HTTP API: lookups of services and hosts,
//! blocking on `?index=` (`X-Mesos-DNS-Index`), failing over between
//! `--api` servers.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use serde::Deserialize;

use crate::http::watch::INDEX_HEADER;

/// How long a blocking lookup asks the server to hold it.
pub const BLOCK: Duration = Duration::from_secs(300);
/// A server that does not answer within this (beyond the hold) is down.
const GRACE: Duration = Duration::from_secs(15);

/// What a template asks for.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Lookup {
    /// `service("_web._tcp.marathon.mesos")`: its SRV records, resolved.
    Service(String),
    /// `hosts("web.marathon.mesos")`: its addresses.
    Hosts(String),
}

impl Lookup {
    fn path(&self) -> String {
        match self {
            Lookup::Service(name) => format!("/v1/services/{name}"),
            Lookup::Hosts(name) => format!("/v1/hosts/{name}"),
        }
    }
}

impl std::fmt::Display for Lookup {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Lookup::Service(name) => write!(f, "service({name:?})"),
            Lookup::Hosts(name) => write!(f, "hosts({name:?})"),
        }
    }
}

/// One record of an answer: a host and its address, with the port for a
/// service.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Deserialize)]
pub struct Entry {
    /// The host name (`web-….marathon.slave.mesos.` for a service).
    pub host: String,
    /// Its address.
    pub ip: String,
    /// The port (services only).
    #[serde(default, deserialize_with = "port")]
    pub port: Option<u16>,
}

fn port<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<u16>, D::Error> {
    let text = String::deserialize(d)?;
    Ok(text.parse().ok())
}

/// An answer and its index.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    /// The index since which the answer has been this.
    pub index: u64,
    /// The records, sorted (the API's empty shape removed).
    pub entries: Vec<Entry>,
}

/// Why no server answered.
#[derive(Debug, thiserror::Error)]
#[error("no --api server answered {lookup}: {reasons}")]
pub struct Unanswered {
    lookup: Lookup,
    reasons: String,
}

/// The servers, the one that answered last asked first.
#[derive(Debug)]
pub struct Api {
    servers: Vec<String>,
    client: reqwest::Client,
    preferred: AtomicUsize,
}

impl Api {
    /// A client of `servers` (base URLs: `http://10.0.0.11:8123`). Its
    /// lookups share one HTTP/2 connection per server (the server speaks
    /// it without TLS), or with `http1`, one HTTP/1.1 connection per held
    /// lookup (for a proxy in between that only speaks HTTP/1.1).
    pub fn new(servers: Vec<String>, http1: bool) -> Result<Api, reqwest::Error> {
        let mut client = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(5))
            .user_agent(concat!("mesos-dns-watch/", env!("CARGO_PKG_VERSION")));
        client = if http1 { client.http1_only() } else { client.http2_prior_knowledge() };
        let client = client.build()?;
        let servers = servers.into_iter().map(|s| s.trim_end_matches('/').to_owned()).collect();
        Ok(Api { servers, client, preferred: AtomicUsize::new(0) })
    }

    /// The answer to `lookup`; with `after`, held by the server until the
    /// answer differs from the one at that index (or its hold passes).
    pub async fn get(&self, lookup: &Lookup, after: Option<u64>) -> Result<Answer, Unanswered> {
        let mut reasons = Vec::new();
        let first = self.preferred.load(Ordering::Relaxed);
        for k in 0..self.servers.len() {
            let i = (first + k) % self.servers.len();
            let Some(server) = self.servers.get(i) else { continue };
            match self.ask(server, lookup, after).await {
                Ok(answer) => {
                    if i != first {
                        tracing::info!("{server} answers; asking it first from now on");
                        self.preferred.store(i, Ordering::Relaxed);
                    }
                    return Ok(answer);
                }
                Err(e) => reasons.push(format!("{server}: {e}")),
            }
        }
        Err(Unanswered { lookup: lookup.clone(), reasons: reasons.join("; ") })
    }

    async fn ask(
        &self,
        server: &str,
        lookup: &Lookup,
        after: Option<u64>,
    ) -> Result<Answer, String> {
        let mut url = format!("{server}{}", lookup.path());
        let mut timeout = GRACE;
        if let Some(index) = after {
            url.push_str(&format!("?index={index}&wait={}s", BLOCK.as_secs()));
            timeout += BLOCK;
        }
        let response =
            self.client.get(&url).timeout(timeout).send().await.map_err(|e| e.to_string())?;
        let status = response.status();
        if !status.is_success() {
            return Err(format!("HTTP {status}"));
        }
        let index = response
            .headers()
            .get(INDEX_HEADER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse().ok())
            .ok_or("no X-Mesos-DNS-Index header (a server too old for watch)")?;
        let body = response.bytes().await.map_err(|e| e.to_string())?;
        let mut entries: Vec<Entry> =
            serde_json::from_slice(&body).map_err(|e| format!("{url}: {e}"))?;
        // The API's "nothing" is one record of empty strings.
        entries.retain(|e| !e.host.is_empty());
        entries.sort();
        Ok(Answer { index, entries })
    }
}
