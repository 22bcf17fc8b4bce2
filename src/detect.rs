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
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use prometheus_client::encoding::DescriptorEncoder;
use serde_json::Value;
use tokio::sync::watch as channel;
use zookeeper_client as zk;

use crate::addr::join_host_port;
use crate::config::ZkUrl;
use crate::metrics::{Export, counter};

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

impl Export for DetectStats {
    fn export(&self, e: &mut DescriptorEncoder) -> fmt::Result {
        counter(
            e,
            "mesos_dns_zk_events",
            "ZooKeeper detection events: sessions opened, errors, leader changes",
            &[
                (vec![("event", "session")], self.sessions.load(Ordering::Relaxed)),
                (vec![("event", "error")], self.errors.load(Ordering::Relaxed)),
                (vec![("event", "leader_change")], self.leader_changes.load(Ordering::Relaxed)),
            ],
        )
    }
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
    if let Some(auth) = url.digest_auth() {
        connector = connector.with_auth("digest", auth.as_bytes());
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
