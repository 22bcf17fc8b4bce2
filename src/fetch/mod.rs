//! State fetch (docs/architecture.md, fetch): get one state document from the first master
//! that answers, over HTTP or HTTPS, with the configured authentication and
//! timeout. Knows nothing about DNS.
//!
//! - HTTPS (`mesosHTTPSOn`): the master is verified against `caCertFile`
//!   when set, else the system's roots; `certFile` + `keyFile` give a client
//!   certificate (module `tls`).
//! - Authentication: HTTP basic with `mesosCredentials`, or DC/OS IAM with
//!   the service account of `IAMConfigFile` (module `iam`).
//!
//! Every file is read when the [`Fetcher`] is built: a missing or unusable
//! one is a [`SetupError::Config`]. Secrets (the credentials' secret, the
//! private key, IAM tokens) never appear in errors, logs or `Debug`.

mod iam;
mod recordio;
mod stream;
mod tls;

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use reqwest::StatusCode;
use reqwest::header::{ACCEPT, AUTHORIZATION, CONTENT_TYPE, HeaderValue, LOCATION};

use crate::config::{Config, ConfigError, MesosAuth, REDACTED};

pub use recordio::{RecordIo, RecordIoError};
pub use stream::{StreamError, Subscription};

/// Where the leader a state names is fetched from.
pub use crate::addr::upid_address;

/// The operator API's endpoint.
const API: &str = "/api/v1";

/// The default cap on a state document's size; a master sending more is
/// abandoned with an error rather than exhausting memory.
pub const DEFAULT_MAX_STATE_BYTES: usize = 256 << 20;

/// Why a fetch from one master failed. `Display` is one line that names the
/// cause plainly (with what to check, for TLS and authentication failures).
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    /// The request failed: connection, TLS handshake, timeout, reading the
    /// body. `cause` is the chain of causes (`a: b: c`); a TLS failure reads
    /// `TLS handshake failed: <reason>: <what to check>`.
    #[error("{url}: {cause}")]
    Http {
        /// The URL asked.
        url: String,
        /// The chain of causes.
        cause: String,
    },
    /// The master answered with another status than 2xx, 401 or 403.
    #[error("{url}: HTTP status {status}")]
    Status {
        /// The URL asked.
        url: String,
        /// The status it answered.
        status: StatusCode,
    },
    /// The master answered 401 or 403: credentials missing, wrong, or not
    /// allowed. `message` says which and what to check.
    #[error("{url}: {message}")]
    Auth {
        /// The URL asked.
        url: String,
        /// 401 or 403.
        status: StatusCode,
        /// Which credentials failed, and what to check.
        message: String,
    },
    /// The DC/OS IAM login failed (transport, status, or unreadable reply).
    #[error("IAM login at {endpoint} failed: {reason}")]
    Login {
        /// The IAM login endpoint.
        endpoint: String,
        /// Why the login failed.
        reason: String,
    },
    /// The master answered with a redirect (a non-leading master sends
    /// operator API calls to the leader).
    #[error("{url}: HTTP status {status}, redirected to {location}")]
    Redirect {
        /// The URL asked.
        url: String,
        /// The 3xx status.
        status: StatusCode,
        /// The `Location` header, e.g. `//10.0.0.2:5050/api/v1`.
        location: String,
    },
    /// The state document was larger than `stateMaxMegabytes`.
    #[error("{url}: state document larger than {limit} bytes")]
    TooLarge {
        /// The URL asked.
        url: String,
        /// The cap, in bytes.
        limit: usize,
    },
    /// There was no master to ask.
    #[error("no master to ask (empty masters list and no leader known)")]
    NoMasters,
}

/// Why a [`Fetcher`] could not be built.
#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    /// A file named in the config (`caCertFile`, `certFile`, `keyFile`,
    /// `IAMConfigFile`) is missing or unusable: a configuration error, naming
    /// the key and the path (exit code 2, as for any bad config).
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The HTTP client could not be built for another reason.
    #[error("cannot build the HTTP client: {0}")]
    Client(String),
}

/// A string never shown: `Debug` prints `"***"`.
#[derive(Clone, Default, PartialEq, Eq)]
pub(crate) struct Secret(pub(crate) String);

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(REDACTED)
    }
}

/// How state requests authenticate.
#[derive(Clone)]
enum Auth {
    None,
    Basic { principal: String, secret: Secret },
    Iam(Arc<iam::Iam>),
}

impl fmt::Debug for Auth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Auth::None => f.write_str("None"),
            Auth::Basic { principal, secret } => f
                .debug_struct("Basic")
                .field("principal", principal)
                .field("secret", secret)
                .finish(),
            Auth::Iam(iam) => iam.fmt(f),
        }
    }
}

/// Fetches `/master/state` documents. Cheap to clone; clones share the HTTP
/// connections and the IAM token.
#[derive(Debug, Clone)]
pub struct Fetcher {
    client: reqwest::Client,
    /// For the event stream: no overall timeout, no automatic redirects.
    stream_client: reqwest::Client,
    /// `stateTimeoutSeconds`.
    timeout: Duration,
    scheme: &'static str,
    auth: Auth,
    tls: tls::Context,
    max_bytes: usize,
}

impl Fetcher {
    /// A fetcher with the config's timeout, scheme, TLS files and
    /// credentials. Reads `caCertFile`, `certFile`, `keyFile` and
    /// `IAMConfigFile` now (those set; as the original, even when HTTPS or
    /// IAM is off).
    pub fn new(config: &Config) -> Result<Fetcher, SetupError> {
        let files = tls::load(config)?;
        let auth = match config.mesos_authentication {
            MesosAuth::None => Auth::None,
            MesosAuth::Basic => {
                let c = &config.mesos_credentials;
                Auth::Basic { principal: c.principal.clone(), secret: Secret(c.secret.clone()) }
            }
            MesosAuth::Iam => Auth::Iam(Arc::new(iam::Iam::new(config, &config.iam_config_file)?)),
        };
        if config.mesos_authentication != MesosAuth::Iam && !config.iam_config_file.is_empty() {
            // The original decodes the file whenever it is named.
            iam::read_file(config, &config.iam_config_file)?;
        }

        let https = config.mesos_https_on;
        if !https && (!config.ca_cert_file.is_empty() || !config.cert_file.is_empty()) {
            tracing::warn!(
                "caCertFile/certFile are set but mesosHTTPSOn is false: state is fetched over plain HTTP"
            );
        }
        let timeout = Duration::from_secs(config.state_timeout_seconds);
        let builder = |files: &tls::TlsFiles| {
            let mut builder = reqwest::Client::builder()
                .connect_timeout(timeout.min(Duration::from_secs(10)))
                .user_agent("Mesos-DNS");
            if https {
                if !files.roots.is_empty() {
                    builder = builder.tls_certs_only(files.roots.clone());
                }
                if let Some(identity) = &files.identity {
                    builder = builder.identity(identity.clone());
                }
            }
            builder
        };
        let client = builder(&files)
            .timeout(timeout)
            .build()
            .map_err(|e| SetupError::Client(tls::chain(&e)))?;
        // The event stream lasts: no overall timeout (the first event must
        // come within `stateTimeoutSeconds`, then heartbeats keep it
        // alive), and a non-leading master's redirect is followed by hand,
        // with the credentials (a client drops them for another host).
        let stream_client = builder(&files)
            .redirect(reqwest::redirect::Policy::none())
            .tcp_keepalive(Duration::from_secs(30))
            .build()
            .map_err(|e| SetupError::Client(tls::chain(&e)))?;

        let fetcher = Fetcher {
            client,
            stream_client,
            timeout,
            scheme: if https { "https" } else { "http" },
            auth,
            // The TLS files only apply with HTTPS (as in the original).
            tls: if https { tls::Context::new(config) } else { tls::Context::default() },
            max_bytes: usize::try_from(config.state_max_megabytes.saturating_mul(1 << 20))
                .unwrap_or(DEFAULT_MAX_STATE_BYTES),
        };
        fetcher.log_setup();
        Ok(fetcher)
    }

    fn log_setup(&self) {
        let transport = match (self.scheme, &self.tls.ca_file, &self.tls.cert_file) {
            ("http", _, _) => "HTTP".to_owned(),
            (_, ca, cert) => format!(
                "HTTPS (trusting {}{})",
                ca.as_ref().map_or("the system's CAs".to_owned(), |c| format!("caCertFile {c:?}")),
                cert.as_ref().map_or(String::new(), |c| format!(", client certificate {c:?}")),
            ),
        };
        match &self.auth {
            Auth::None => tracing::info!("fetching state over {transport}, no authentication"),
            Auth::Basic { principal, .. } => tracing::info!(
                "fetching state over {transport}, basic authentication as principal {principal:?}"
            ),
            Auth::Iam(iam) => tracing::info!(
                "fetching state over {transport}, IAM authentication as uid {:?} via {}",
                iam.uid(),
                iam.endpoint()
            ),
        }
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
            Err(FetchError::Status { status, .. }) if status == StatusCode::NOT_FOUND => {
                self.get(master, "/master/state.json").await
            }
            other => other,
        }
    }

    async fn get(&self, master: &str, path: &str) -> Result<Vec<u8>, FetchError> {
        let resp = self.send(&self.request(&self.client, master, path, None)).await?;
        self.body(resp).await
    }

    /// One call of the master's operator API (`POST /api/v1`, JSON), e.g.
    /// `{"type":"GET_MASTER"}`; the answer's body.
    pub async fn call(&self, master: &str, call: &'static str) -> Result<Vec<u8>, FetchError> {
        let resp = self.send(&self.request(&self.client, master, API, Some(call))).await?;
        self.body(resp).await
    }

    fn request<'a>(
        &self,
        client: &'a reqwest::Client,
        master: &str,
        path: &str,
        call: Option<&'static str>,
    ) -> Request<'a> {
        Request { client, url: format!("{}://{master}{path}", self.scheme), call }
    }

    /// Send `request` with the configured authentication. With IAM, a 401
    /// drops the token, logs in again and retries once.
    async fn send(&self, request: &Request<'_>) -> Result<reqwest::Response, FetchError> {
        let Auth::Iam(iam) = &self.auth else {
            return self.send_once(request, None).await;
        };
        let token = iam.token(&self.client, &self.tls).await?;
        match self.send_once(request, Some(&token.header)).await {
            Err(FetchError::Auth { status: StatusCode::UNAUTHORIZED, .. }) => {
                let url = &request.url;
                tracing::info!(uid = %iam.uid(), "{url}: IAM token refused (401); logging in again");
                iam.invalidate(&token).await;
                let token = iam.token(&self.client, &self.tls).await?;
                self.send_once(request, Some(&token.header)).await
            }
            other => other,
        }
    }

    async fn send_once(
        &self,
        request: &Request<'_>,
        token: Option<&HeaderValue>,
    ) -> Result<reqwest::Response, FetchError> {
        let url = request.url.as_str();
        let mut req = match request.call {
            None => request.client.get(url),
            Some(call) => {
                request.client.post(url).header(CONTENT_TYPE, "application/json").body(call)
            }
        }
        .header(ACCEPT, "application/json");
        match &self.auth {
            Auth::None => {}
            Auth::Basic { principal, secret } => req = req.basic_auth(principal, Some(&secret.0)),
            Auth::Iam(_) => {
                if let Some(token) = token {
                    req = req.header(AUTHORIZATION, token.clone());
                }
            }
        }
        let resp = req.send().await.map_err(|e| self.http_error(url, e))?;
        let status = resp.status();
        if status == StatusCode::UNAUTHORIZED || status == StatusCode::FORBIDDEN {
            let message = self.auth_failure(status);
            return Err(FetchError::Auth { url: url.to_owned(), status, message });
        }
        let location = resp.headers().get(LOCATION).and_then(|l| l.to_str().ok());
        if let Some(location) = location.filter(|_| status.is_redirection()) {
            let location = location.to_owned();
            return Err(FetchError::Redirect { url: url.to_owned(), status, location });
        }
        if !status.is_success() {
            return Err(FetchError::Status { url: url.to_owned(), status });
        }
        Ok(resp)
    }

    /// The whole body, up to the size cap.
    async fn body(&self, mut resp: reqwest::Response) -> Result<Vec<u8>, FetchError> {
        let url = resp.url().to_string();
        let mut body = Vec::with_capacity(
            resp.content_length().unwrap_or(0).min(self.max_bytes as u64) as usize,
        );
        while let Some(chunk) = resp.chunk().await.map_err(|e| self.http_error(&url, e))? {
            if body.len() + chunk.len() > self.max_bytes {
                return Err(FetchError::TooLarge { url, limit: self.max_bytes });
            }
            body.extend_from_slice(&chunk);
        }
        Ok(body)
    }

    fn http_error(&self, url: &str, e: reqwest::Error) -> FetchError {
        FetchError::Http { url: url.to_owned(), cause: transport_cause(e, &self.tls) }
    }

    /// What a 401 or 403 means with our authentication, and what to check.
    fn auth_failure(&self, status: StatusCode) -> String {
        let who = match &self.auth {
            Auth::None => "anonymous requests".to_owned(),
            Auth::Basic { principal, .. } => format!("principal {principal:?}"),
            Auth::Iam(iam) => format!("IAM uid {:?}", iam.uid()),
        };
        if status == StatusCode::FORBIDDEN {
            return format!(
                "access denied (HTTP {status}): {who} may not read the state: check the master's ACLs"
            );
        }
        match &self.auth {
            Auth::None => format!(
                "authentication required (HTTP {status}): set mesosAuthentication (\"basic\" with mesosCredentials, or \"iam\" with IAMConfigFile)"
            ),
            Auth::Basic { .. } => format!(
                "authentication failed (HTTP {status}): the master refused {who}: check mesosCredentials"
            ),
            Auth::Iam(_) => format!(
                "authentication failed (HTTP {status}): the master refused a fresh token for {who}: check the service account in IAMConfigFile"
            ),
        }
    }
}

/// One request to a master: a GET, or an operator API call.
struct Request<'a> {
    client: &'a reqwest::Client,
    url: String,
    /// The JSON body of an operator API call (`POST /api/v1`).
    call: Option<&'static str>,
}

/// The cause of a failed request, one line: the TLS failure explained when
/// there is one, else the chain of causes.
fn transport_cause(err: reqwest::Error, tls: &tls::Context) -> String {
    let err = err.without_url();
    if let Some(t) = tls::rustls_error(&err) {
        return tls.explain(t);
    }
    let cause = tls::chain(&err);
    if err.is_timeout() && !cause.contains("timed out") {
        format!("{cause}: timed out")
    } else {
        cause
    }
}

/// The masters to ask, in the given order of preference, without repeats.
pub fn candidates(preferred: impl IntoIterator<Item = String>) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for m in preferred {
        if !out.contains(&m) {
            out.push(m);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn candidate_order() {
        let order = ["b:1", "a:1", "b:1"].map(String::from);
        assert_eq!(candidates(order), vec!["b:1", "a:1"]);
    }
}
