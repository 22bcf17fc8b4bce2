//! Leading-master detection through ZooKeeper (docs/architecture.md, detect).
//!
//! Mesos masters elect their leader in ZooKeeper: each master holds an
//! ephemeral sequential child of the `zk` path named `json.info_<sequence>`
//! whose data is its `MasterInfo` as JSON; the member with the lowest
//! sequence leads. [`watch`] follows that group for as long as the process
//! lives and publishes every change of the masters on a
//! [`tokio::sync::watch`] channel.
//!
//! ZooKeeper trouble (unreachable servers, session expiry, a path nobody may
//! read) is logged, counted in [`DetectStats`] and retried with capped
//! exponential backoff; it never changes what was last published, so the
//! caller keeps serving the last known masters.

use std::fmt;
use std::net::{IpAddr, Ipv6Addr, SocketAddr};
use std::str::FromStr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use serde_json::Value;
use tokio::sync::watch as channel;
use zookeeper_client as zk;

use crate::addr::{join_host_port, parse_nonzero_port};

/// The ZooKeeper port assumed when a server in the URL has none.
pub const DEFAULT_ZK_PORT: u16 = 2181;

/// The prefix of the children that are Mesos masters (the JSON flavour of
/// the group membership, Mesos 0.24 and later).
const MEMBER_PREFIX: &str = "json.info_";

/// The session timeout asked of ZooKeeper (the server may clamp it); the
/// same as the Mesos masters' default.
const SESSION_TIMEOUT: Duration = Duration::from_secs(10);

/// First and longest wait between two attempts after a failure.
const BACKOFF_MIN: Duration = Duration::from_millis(100);
const BACKOFF_MAX: Duration = Duration::from_secs(5);

/// What detection knows: the leading master and every master, each
/// `host:port` (IPv6 in brackets).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Masters {
    /// The leading master: the member with the lowest sequence whose data
    /// names an address. `None` when no master is elected.
    pub leader: Option<String>,
    /// Every master: the leader first, then the others by sequence, without
    /// duplicates. Empty when `leader` is `None`.
    pub all: Vec<String>,
}

// ------------------------------------------------------------------ URL

/// A parsed `zk://[user:pass@]host:port[,host:port...]/path` URL.
///
/// Servers are kept as `host:port` (IPv6 hosts in brackets, port 2181 when
/// the URL gives none). The credentials, when given, are used for ZooKeeper
/// digest authentication; `Debug` and `Display` never show the password.
#[derive(Clone, PartialEq, Eq)]
pub struct ZkUrl {
    /// The ensemble, `host:port` each, in URL order.
    pub servers: Vec<String>,
    /// The znode whose children are the masters, e.g. `/mesos`.
    pub path: String,
    credentials: Option<Credentials>,
}

#[derive(Clone, PartialEq, Eq)]
struct Credentials {
    user: String,
    password: String,
}

/// Why a `zk` URL is unusable. `Display` is one line and never contains the
/// password.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ZkUrlError {
    /// The URL does not start with `zk://`.
    #[error("not a ZooKeeper URL: it must start with \"zk://\"")]
    Scheme,
    /// Nothing between `zk://` (or the credentials) and the path.
    #[error("no ZooKeeper server given (expected zk://host:port/path)")]
    NoServers,
    /// One server of the list is not `host[:port]`.
    #[error("bad ZooKeeper server {server:?}: {reason}")]
    Server { server: String, reason: &'static str },
    /// The credentials are not `user:password`.
    #[error("bad credentials: {0}")]
    Credentials(&'static str),
    /// An `@` after the first `/`: credentials with an unescaped `/`.
    #[error("'@' after the first '/': a '/' in the credentials must be written %2F")]
    AtAfterSlash,
    /// No path after the servers.
    #[error("missing path after the servers (expected zk://host:port/path, e.g. /mesos)")]
    NoPath,
    /// The path is not a valid znode path.
    #[error("bad path {path:?}: {reason}")]
    Path { path: String, reason: &'static str },
}

impl ZkUrl {
    /// Parses `zk://[user:pass@]host[:port][,host[:port]...]/path`.
    ///
    /// The scheme is case-insensitive; credentials may be percent-encoded
    /// (`p%40ss` is `p@ss`); a port defaults to 2181; IPv6 hosts must be in
    /// brackets (`[::1]:2181`); one trailing `/` of the path is dropped.
    pub fn parse(url: &str) -> Result<ZkUrl, ZkUrlError> {
        let rest = match url.get(..5) {
            Some(scheme) if scheme.eq_ignore_ascii_case("zk://") => &url[5..],
            _ => return Err(ZkUrlError::Scheme),
        };
        let (authority, path) = match rest.find('/') {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, ""),
        };
        if path.contains('@') {
            // Most likely a '/' in the password: say so without echoing it.
            return Err(ZkUrlError::AtAfterSlash);
        }
        let (userinfo, hosts) = match authority.rfind('@') {
            Some(i) => (Some(&authority[..i]), &authority[i + 1..]),
            None => (None, authority),
        };
        let credentials = userinfo.map(parse_credentials).transpose()?;
        if hosts.is_empty() {
            return Err(ZkUrlError::NoServers);
        }
        let servers = hosts.split(',').map(parse_server).collect::<Result<Vec<_>, _>>()?;
        let path = parse_path(path)?;
        Ok(ZkUrl { servers, path, credentials })
    }

    /// The user of the digest credentials, if any.
    pub fn user(&self) -> Option<&str> {
        self.credentials.as_ref().map(|c| c.user.as_str())
    }

    /// Whether the URL carries digest credentials.
    pub fn has_credentials(&self) -> bool {
        self.credentials.is_some()
    }

    /// The servers as a ZooKeeper connect string, `host:port,host:port`.
    pub fn connect_string(&self) -> String {
        self.servers.join(",")
    }

    /// The full znode path of the child `name`.
    fn child(&self, name: &str) -> String {
        if self.path == "/" { format!("/{name}") } else { format!("{}/{name}", self.path) }
    }
}

impl FromStr for ZkUrl {
    type Err = ZkUrlError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        ZkUrl::parse(s)
    }
}

/// `zk://user:***@host:port,.../path`: the URL with the password hidden.
impl fmt::Display for ZkUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("zk://")?;
        if let Some(c) = &self.credentials {
            write!(f, "{}:{}@", c.user, crate::config::REDACTED)?;
        }
        write!(f, "{}{}", self.servers.join(","), self.path)
    }
}

impl fmt::Debug for ZkUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ZkUrl")
            .field("servers", &self.servers)
            .field("path", &self.path)
            .field("user", &self.user())
            .field("password", &self.credentials.as_ref().map(|_| crate::config::REDACTED))
            .finish()
    }
}

fn parse_credentials(userinfo: &str) -> Result<Credentials, ZkUrlError> {
    let Some((user, password)) = userinfo.split_once(':') else {
        return Err(ZkUrlError::Credentials("expected user:password before '@'"));
    };
    let user = percent_decode(user)
        .ok_or(ZkUrlError::Credentials("invalid percent-escape in the user"))?;
    let password = percent_decode(password)
        .ok_or(ZkUrlError::Credentials("invalid percent-escape in the password"))?;
    if user.is_empty() {
        return Err(ZkUrlError::Credentials("the user is empty"));
    }
    if password.is_empty() {
        return Err(ZkUrlError::Credentials("the password is empty"));
    }
    Ok(Credentials { user, password })
}

/// Decodes `%XX` escapes; `None` on a malformed escape or non-UTF-8 result.
fn percent_decode(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = s.get(i + 1..i + 3)?;
            if !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
                return None;
            }
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

fn parse_server(server: &str) -> Result<String, ZkUrlError> {
    let bad = |reason| ZkUrlError::Server { server: server.to_owned(), reason };
    if server.is_empty() {
        return Err(bad("empty server in the list"));
    }
    let (host, port) = if let Some(bracketed) = server.strip_prefix('[') {
        let Some((inside, after)) = bracketed.split_once(']') else {
            return Err(bad("missing ']' after the IPv6 address"));
        };
        if inside.parse::<Ipv6Addr>().is_err() {
            return Err(bad("not an IPv6 address in brackets"));
        }
        let port = match after {
            "" => None,
            _ => match after.strip_prefix(':') {
                Some(port) => Some(port),
                None => return Err(bad("expected ':port' after the IPv6 address")),
            },
        };
        (inside, port)
    } else {
        let (host, port) = match server.split_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (server, None),
        };
        if port.is_some_and(|p| p.contains(':')) {
            return Err(bad("an IPv6 address must be in brackets, e.g. [::1]:2181"));
        }
        if host.is_empty() {
            return Err(bad("empty host"));
        }
        if !host.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_')) {
            return Err(bad("the host has characters other than letters, digits, '.', '-', '_'"));
        }
        (host, port)
    };
    let port = match port {
        None => DEFAULT_ZK_PORT,
        Some(p) => match parse_nonzero_port(p) {
            Some(n) if p.bytes().all(|b| b.is_ascii_digit()) => n,
            _ => return Err(bad("the port must be a number from 1 to 65535")),
        },
    };
    // An IPv6 address (it has a ':') goes back into brackets.
    Ok(join_host_port(host, port))
}

fn parse_path(path: &str) -> Result<String, ZkUrlError> {
    if path.is_empty() {
        return Err(ZkUrlError::NoPath);
    }
    let bad = |reason| ZkUrlError::Path { path: path.to_owned(), reason };
    if path.contains(['?', '#']) {
        return Err(bad("a query or fragment ('?', '#') is not allowed"));
    }
    let trimmed = if path.len() > 1 { path.strip_suffix('/').unwrap_or(path) } else { path };
    if trimmed == "/" {
        return Ok(trimmed.to_owned());
    }
    for segment in trimmed[1..].split('/') {
        if segment.is_empty() {
            return Err(bad("empty node name ('//')"));
        }
        if segment == "." || segment == ".." {
            return Err(bad("relative node names ('.', '..') are not allowed"));
        }
        if segment.chars().any(invalid_znode_char) {
            return Err(bad("characters ZooKeeper does not allow in paths"));
        }
    }
    Ok(trimmed.to_owned())
}

/// Characters ZooKeeper refuses in node names.
fn invalid_znode_char(c: char) -> bool {
    matches!(u32::from(c), 0x00..=0x1f | 0x7f..=0x9f | 0xd800..=0xf8ff | 0xfff0..=0xffff)
}

// ------------------------------------------------------------ members

/// The sequence number of a member child (`json.info_0000000012` → 12);
/// `None` for every other child.
fn member_sequence(name: &str) -> Option<u64> {
    let digits = name.strip_prefix(MEMBER_PREFIX)?;
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// The `host:port` a `MasterInfo` JSON document names: `address.ip` (or
/// `address.hostname`) with `address.port`; without a usable `address`,
/// `hostname` with `port`; for the oldest masters, the numeric `ip` (four
/// bytes in network order, as Mesos writes it on little-endian hosts) with
/// `port`.
fn master_address(data: &[u8]) -> Result<String, String> {
    let info: Value = serde_json::from_slice(data).map_err(|e| format!("not JSON: {e}"))?;
    if !info.is_object() {
        return Err("not a JSON object".to_owned());
    }
    if let Some(address) = info.get("address").filter(|a| a.is_object()) {
        let host = address
            .get("ip")
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .or_else(|| address.get("hostname").and_then(Value::as_str));
        if let (Some(host), Some(port)) = (host, port_of(address.get("port")))
            && let Some(addr) = master_host_port(host, port)
        {
            return Ok(addr);
        }
    }
    let port = port_of(info.get("port")).ok_or("no usable address.port nor port")?;
    if let Some(host) = info.get("hostname").and_then(Value::as_str)
        && let Some(addr) = master_host_port(host, port)
    {
        return Ok(addr);
    }
    if let Some(ip) = info.get("ip").and_then(Value::as_u64).and_then(|ip| u32::try_from(ip).ok())
        && ip != 0
    {
        return Ok(SocketAddr::new(IpAddr::from(ip.to_le_bytes()), port).to_string());
    }
    Err("no usable address (address.ip/address.port, hostname/port or ip/port)".to_owned())
}

fn port_of(value: Option<&Value>) -> Option<u16> {
    value.and_then(Value::as_u64).and_then(|p| u16::try_from(p).ok()).filter(|&p| p != 0)
}

/// `host:port` for a master's host (in brackets or not) and port: an IP
/// address in its canonical text, IPv6 in brackets; `None` when `host` is
/// neither an IP address nor a plausible host name.
fn master_host_port(host: &str, port: u16) -> Option<String> {
    let bare = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')).unwrap_or(host);
    if let Ok(ip) = bare.parse::<IpAddr>() {
        return Some(join_host_port(&ip.to_string(), port));
    }
    let plausible = !bare.is_empty()
        && bare.len() <= 253
        && bare.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_'));
    plausible.then(|| join_host_port(bare, port))
}

// ------------------------------------------------------------ watching

/// Counters for metrics.
#[derive(Debug, Default)]
pub struct DetectStats {
    /// ZooKeeper sessions established.
    pub sessions: AtomicU64,
    /// Failures: connections refused or timed out, sessions lost or expired,
    /// reads refused, member data that names no address, and reads that
    /// found no leader.
    pub errors: AtomicU64,
    /// Published changes of the leader (including to and from "none").
    pub leader_changes: AtomicU64,
}

/// Why a session was given up.
#[derive(Debug, thiserror::Error)]
enum SessionError {
    #[error("cannot connect: {0}")]
    Connect(zk::Error),
    #[error("no session established within {0:?}")]
    ConnectTimeout(Duration),
    #[error("reading {path}: {error}")]
    Read { path: String, error: zk::Error },
    #[error("reading {path} took longer than {limit:?}")]
    ReadTimeout { path: String, limit: Duration },
    #[error("session ended: {0:?}")]
    Ended(zk::SessionState),
}

/// Watch `url` forever: connect (digest auth when credentials are given),
/// watch the path's children, and publish every change of the masters on
/// `tx` (only when the value changes).
///
/// Session expiry, connection loss, unreadable paths and garbage member data
/// are logged, counted in `stats`, and retried with capped exponential
/// backoff (100 ms doubling to 5 s, with jitter). A path that exists without
/// members, or does not exist, publishes `Masters::default()`; an
/// unreachable ZooKeeper publishes nothing, so the last known masters stay.
/// Never returns; cancel it by dropping (aborting) the task.
pub async fn watch(url: ZkUrl, tx: channel::Sender<Masters>, stats: Arc<DetectStats>) {
    let mut backoff = Backoff::new();
    tracing::info!(url = %url, "ZooKeeper master detection started");
    loop {
        let error = run_session(&url, &tx, &stats, &mut backoff).await;
        stats.errors.fetch_add(1, Ordering::Relaxed);
        let delay = backoff.next_delay();
        tracing::warn!(url = %url, "ZooKeeper: {error}; retrying in {delay:?}");
        tokio::time::sleep(delay).await;
    }
}

/// One ZooKeeper session, from connecting until it fails.
async fn run_session(
    url: &ZkUrl,
    tx: &channel::Sender<Masters>,
    stats: &DetectStats,
    backoff: &mut Backoff,
) -> SessionError {
    let mut connector =
        zk::Client::connector().with_session_timeout(SESSION_TIMEOUT).with_fail_eagerly();
    if let Some(c) = &url.credentials {
        connector = connector.with_auth("digest", format!("{}:{}", c.user, c.password).as_bytes());
    }
    // Generous: the client gives up by itself after trying every server.
    let connect_limit = SESSION_TIMEOUT + Duration::from_secs(2);
    let client =
        match tokio::time::timeout(connect_limit, connector.connect(&url.connect_string())).await {
            Ok(Ok(client)) => client,
            Ok(Err(e)) => return SessionError::Connect(e),
            Err(_) => return SessionError::ConnectTimeout(connect_limit),
        };
    stats.sessions.fetch_add(1, Ordering::Relaxed);
    tracing::info!(
        url = %url,
        session = %client.session_id(),
        timeout = ?client.session_timeout(),
        "ZooKeeper session established"
    );
    let mut state = client.state_watcher();
    // A read must finish within the session's lifetime; past that the
    // session is as good as lost.
    let read_limit = client.session_timeout().max(Duration::from_secs(1)) * 2;
    loop {
        let (masters, watcher) =
            match tokio::time::timeout(read_limit, read_masters(&client, url, stats)).await {
                Ok(Ok(read)) => read,
                Ok(Err(e)) => return e,
                Err(_) => {
                    return SessionError::ReadTimeout { path: url.path.clone(), limit: read_limit };
                }
            };
        backoff.reset();
        if masters.leader.is_none() {
            stats.errors.fetch_add(1, Ordering::Relaxed);
            tracing::warn!(path = %url.path, "ZooKeeper: no leading Mesos master elected");
        }
        publish(tx, stats, masters);
        if let Err(e) = wait_for_change(watcher, &mut state).await {
            return e;
        }
    }
}

/// Waits until the watched node changes, or the connection was lost and
/// regained (the view must be rebuilt), or the session ends.
async fn wait_for_change(
    watcher: zk::OneshotWatcher,
    state: &mut zk::StateWatcher,
) -> Result<(), SessionError> {
    let changed = watcher.changed();
    tokio::pin!(changed);
    let mut disconnected = false;
    loop {
        tokio::select! {
            event = &mut changed => {
                return match event.event_type {
                    zk::EventType::Session if event.session_state.is_terminated() => {
                        Err(SessionError::Ended(event.session_state))
                    }
                    _ => Ok(()),
                };
            }
            now = state.changed() => match now {
                zk::SessionState::Disconnected => {
                    disconnected = true;
                    tracing::warn!("ZooKeeper connection lost; reconnecting (the last masters stay)");
                }
                zk::SessionState::SyncConnected | zk::SessionState::ConnectedReadOnly => {
                    if disconnected {
                        tracing::info!("ZooKeeper connection regained");
                        return Ok(());
                    }
                }
                ended => return Err(SessionError::Ended(ended)),
            },
        }
    }
}

/// Reads the members and their data; returns the masters and a watcher of
/// the path's children (or of the path's creation when it does not exist).
async fn read_masters(
    client: &zk::Client,
    url: &ZkUrl,
    stats: &DetectStats,
) -> Result<(Masters, zk::OneshotWatcher), SessionError> {
    let read_error = |path: &str, error| SessionError::Read { path: path.to_owned(), error };
    let (children, watcher) = loop {
        match client.get_and_watch_children(&url.path).await {
            Ok((children, _, watcher)) => break (children, watcher),
            Err(zk::Error::NoNode) => {}
            Err(e) => return Err(read_error(&url.path, e)),
        }
        // No such node: watch for its creation instead.
        match client.check_and_watch_stat(&url.path).await {
            Ok((None, watcher)) => {
                tracing::warn!(path = %url.path, "ZooKeeper: the path does not exist (yet)");
                return Ok((Masters::default(), watcher));
            }
            Ok((Some(_), _)) => continue, // created meanwhile: list it
            Err(e) => return Err(read_error(&url.path, e)),
        }
    };
    let mut members: Vec<(u64, String)> = children
        .into_iter()
        .filter_map(|name| member_sequence(&name).map(|seq| (seq, name)))
        .collect();
    members.sort();
    // Requests are sent when created: ask for every member's data at once.
    let paths: Vec<String> = members.iter().map(|(_, name)| url.child(name)).collect();
    let reads: Vec<_> = paths.iter().map(|path| client.get_data(path)).collect();
    let mut masters = Masters::default();
    for (path, read) in paths.iter().zip(reads) {
        let data = match read.await {
            Ok((data, _)) => data,
            Err(zk::Error::NoNode) => {
                tracing::debug!(path = %path, "ZooKeeper: member left while being read");
                continue;
            }
            Err(e) => return Err(read_error(path, e)),
        };
        match master_address(&data) {
            Ok(addr) => {
                if masters.leader.is_none() {
                    masters.leader = Some(addr.clone());
                }
                if !masters.all.contains(&addr) {
                    masters.all.push(addr);
                }
            }
            Err(why) => {
                stats.errors.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(path = %path, "ZooKeeper: ignoring member whose data is unusable: {why}");
            }
        }
    }
    Ok((masters, watcher))
}

/// Publishes `masters` if they differ from the last value.
fn publish(tx: &channel::Sender<Masters>, stats: &DetectStats, masters: Masters) {
    tx.send_if_modified(|current| {
        if *current == masters {
            return false;
        }
        if current.leader != masters.leader {
            stats.leader_changes.fetch_add(1, Ordering::Relaxed);
            tracing::info!(
                leader = masters.leader.as_deref().unwrap_or("none"),
                previous = current.leader.as_deref().unwrap_or("none"),
                "ZooKeeper: leading Mesos master changed"
            );
        }
        tracing::info!(masters = ?masters.all, "ZooKeeper: Mesos masters");
        *current = masters;
        true
    });
}

/// Capped exponential backoff with jitter.
struct Backoff {
    next: Duration,
}

impl Backoff {
    fn new() -> Self {
        Backoff { next: BACKOFF_MIN }
    }

    fn reset(&mut self) {
        self.next = BACKOFF_MIN;
    }

    /// The next wait: between half and all of the current step.
    fn next_delay(&mut self) -> Duration {
        let step = self.next;
        self.next = (step * 2).min(BACKOFF_MAX);
        step.mul_f64(rand::random_range(0.5..=1.0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn members_are_json_info_with_digits() {
        assert_eq!(member_sequence("json.info_0000000007"), Some(7));
        assert_eq!(member_sequence("json.info_12"), Some(12));
        for other in ["info_0000000001", "log_replicas", "json.info_", "json.info_12a", "json.info"]
        {
            assert_eq!(member_sequence(other), None, "{other}");
        }
    }

    #[test]
    fn address_from_master_info() {
        let full = br#"{"address":{"hostname":"m1","ip":"10.0.0.1","port":5050},
            "hostname":"m1","id":"x","ip":16777226,"pid":"master@10.0.0.1:5050","port":5050}"#;
        assert_eq!(master_address(full).unwrap(), "10.0.0.1:5050");
        let v6 = br#"{"address":{"ip":"fd00::1","port":5050}}"#;
        assert_eq!(master_address(v6).unwrap(), "[fd00::1]:5050");
        let by_name = br#"{"address":{"hostname":"m2.example","port":5050}}"#;
        assert_eq!(master_address(by_name).unwrap(), "m2.example:5050");
        let old = br#"{"hostname":"m3","port":5051}"#;
        assert_eq!(master_address(old).unwrap(), "m3:5051");
        let oldest = br#"{"ip":16777226,"port":5050}"#;
        assert_eq!(master_address(oldest).unwrap(), "10.0.0.1:5050");
        let bad_address = br#"{"address":{"ip":"10.0.0.1"},"hostname":"m4","port":5050}"#;
        assert_eq!(master_address(bad_address).unwrap(), "m4:5050");
        for garbage in [
            &b"garbage"[..],
            b"[]",
            b"{}",
            b"{\"address\":{\"ip\":\"10.0.0.1\",\"port\":0}}",
            b"{\"hostname\":\"bad host\",\"port\":5050}",
            b"{\"hostname\":\"m\",\"port\":70000}",
        ] {
            assert!(master_address(garbage).is_err(), "{}", String::from_utf8_lossy(garbage));
        }
    }

    #[test]
    fn backoff_doubles_up_to_the_cap() {
        let mut b = Backoff::new();
        let mut last = Duration::ZERO;
        for _ in 0..20 {
            last = b.next_delay();
            assert!(last <= BACKOFF_MAX);
        }
        assert!(last >= BACKOFF_MAX / 2);
        b.reset();
        assert!(b.next_delay() <= BACKOFF_MIN);
    }
}
