//! State fetch (SPEC.md §2): get one state document from the first master
//! that answers, over HTTP or HTTPS, with the configured authentication and
//! timeout. Knows nothing about DNS.

use std::time::Duration;

use crate::config::{Config, MesosAuth};
use crate::generate::split_host_port;

/// The default cap on a state document's size; a master sending more is
/// abandoned with an error rather than exhausting memory.
pub const DEFAULT_MAX_STATE_BYTES: usize = 256 << 20;

/// Why a fetch from one master failed.
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    #[error("{url}: {source}")]
    Http {
        url: String,
        #[source]
        source: reqwest::Error,
    },
    #[error("{url}: HTTP status {status}")]
    Status { url: String, status: reqwest::StatusCode },
    #[error("{url}: state document larger than {limit} bytes")]
    TooLarge { url: String, limit: usize },
    #[error("no master to ask (empty masters list and no leader known)")]
    NoMasters,
    #[error("could not build the HTTP client: {0}")]
    Client(#[source] reqwest::Error),
}

/// Fetches `/master/state` documents.
#[derive(Debug, Clone)]
pub struct Fetcher {
    client: reqwest::Client,
    scheme: &'static str,
    auth: Option<(String, String)>,
    max_bytes: usize,
}

impl Fetcher {
    /// A fetcher with the config's timeout, scheme and credentials.
    pub fn new(config: &Config) -> Result<Fetcher, FetchError> {
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(config.state_timeout_seconds))
            .connect_timeout(Duration::from_secs(config.state_timeout_seconds.min(10)))
            .user_agent("Mesos-DNS")
            .build()
            .map_err(FetchError::Client)?;
        let auth = (config.mesos_authentication == MesosAuth::Basic).then(|| {
            let c = &config.mesos_credentials;
            (c.principal.clone(), c.secret.clone())
        });
        Ok(Fetcher {
            client,
            scheme: if config.mesos_https_on { "https" } else { "http" },
            auth,
            max_bytes: DEFAULT_MAX_STATE_BYTES,
        })
    }

    /// Set the size cap of a state document.
    pub fn with_max_bytes(mut self, max_bytes: usize) -> Self {
        self.max_bytes = max_bytes;
        self
    }

    /// GET the state from one master (`host:port`): `/master/state`, then
    /// `/master/state.json` when that is 404 (masters before Mesos 0.25).
    pub async fn fetch(&self, master: &str) -> Result<Vec<u8>, FetchError> {
        match self.get(master, "/master/state").await {
            Err(FetchError::Status { status, .. }) if status == reqwest::StatusCode::NOT_FOUND => {
                self.get(master, "/master/state.json").await
            }
            other => other,
        }
    }

    async fn get(&self, master: &str, path: &str) -> Result<Vec<u8>, FetchError> {
        let url = format!("{}://{master}{path}", self.scheme);
        let http = |source| FetchError::Http { url: url.clone(), source };
        let mut req = self.client.get(&url).header("Accept", "application/json");
        if let Some((user, secret)) = &self.auth {
            req = req.basic_auth(user, Some(secret));
        }
        let mut resp = req.send().await.map_err(http)?;
        let status = resp.status();
        if !status.is_success() {
            return Err(FetchError::Status { url, status });
        }
        let mut body = Vec::with_capacity(
            resp.content_length().unwrap_or(0).min(self.max_bytes as u64) as usize,
        );
        while let Some(chunk) = resp.chunk().await.map_err(http)? {
            if body.len() + chunk.len() > self.max_bytes {
                return Err(FetchError::TooLarge { url, limit: self.max_bytes });
            }
            body.extend_from_slice(&chunk);
        }
        Ok(body)
    }
}

/// The `host:port` of a UPID such as `master@10.0.0.1:5050`.
pub fn upid_address(upid: &str) -> Option<String> {
    let (_, addr) = upid.split_once('@')?;
    let (host, port) = split_host_port(addr)?;
    if host.contains(':') {
        Some(format!("[{host}]:{port}"))
    } else {
        Some(format!("{host}:{port}"))
    }
}

/// The order in which to ask masters: the last known leader first, then the
/// configured masters, without repeats.
pub fn candidates(last_leader: Option<&str>, masters: &[String]) -> Vec<String> {
    let mut out: Vec<String> = Vec::with_capacity(masters.len() + 1);
    for m in last_leader.into_iter().chain(masters.iter().map(String::as_str)) {
        if !out.iter().any(|o| o == m) {
            out.push(m.to_owned());
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn upid_addresses() {
        assert_eq!(upid_address("master@10.0.0.1:5050").as_deref(), Some("10.0.0.1:5050"));
        assert_eq!(upid_address("master@[::1]:5050").as_deref(), Some("[::1]:5050"));
        assert_eq!(upid_address("10.0.0.1:5050"), None);
    }

    #[test]
    fn candidate_order() {
        let masters = vec!["a:1".to_owned(), "b:1".to_owned()];
        assert_eq!(candidates(Some("b:1"), &masters), vec!["b:1", "a:1"]);
        assert_eq!(candidates(None, &masters), vec!["a:1", "b:1"]);
    }
}
