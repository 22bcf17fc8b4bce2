//! Forwarding of names outside the domain (docs/differences.md, forwarding): the client's query
//! goes unchanged (apart from the message id) to the upstreams of the
//! longest matching `zoneResolvers` zone, else to `resolvers`, tried in
//! order over the client's protocol, each try bounded by `timeout`. The
//! first answer comes back unchanged apart from the id (RFC 5625). All fail:
//! SERVFAIL. Outstanding forwards are capped; beyond the cap, SERVFAIL at
//! once.
//!
//! Each upstream address has a health, shared by every route naming it:
//! [`DOWN_AFTER`] failed tries in a row mark it down. A down upstream is
//! skipped while another of the route is up, and one background task
//! probes it until it answers (so does any forwarded query it answers).
//! When every upstream of a route is down, all are tried in order.

use std::collections::BTreeMap;
use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use prometheus_client::encoding::DescriptorEncoder;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream, UdpSocket};
use tokio::sync::Semaphore;
use tokio::time::Instant;

use super::wire::{self, ParseError};
use crate::config::Config;
use crate::metrics::{AtomicHistogram, Export, Labels, SLOW_BUCKETS, counter, gauge, histogram};
use crate::proto::{header, label_count, name_text, u16_at, wire_name};

/// The most forwarded queries in flight at once.
pub const DEFAULT_MAX_OUTSTANDING: usize = 4096;
/// Idle TCP connections kept per upstream for reuse.
const TCP_POOL_PER_UPSTREAM: usize = 8;
/// Failed tries in a row (timeouts, I/O errors, no matching answer) that
/// mark an upstream down. One lost datagram is not enough; an answer of
/// any rcode resets the count.
pub const DOWN_AFTER: u64 = 3;
/// The wait before the first probe of a down upstream; doubled after each
/// unanswered probe, up to [`PROBE_MAX_INTERVAL`].
const PROBE_FIRST_INTERVAL: Duration = Duration::from_secs(1);
/// The longest wait between two probes of a down upstream.
const PROBE_MAX_INTERVAL: Duration = Duration::from_secs(10);
/// How long a probe waits for its answer (`timeout` if shorter).
const PROBE_TIMEOUT: Duration = Duration::from_secs(1);

/// Counters for one zone (`"."` for the default resolvers).
#[derive(Debug, Default)]
struct ZoneCounters {
    forwarded: AtomicU64,
    answered: AtomicU64,
    failed: AtomicU64,
}

/// One set of upstreams and the zone it serves.
#[derive(Debug)]
struct Route {
    /// Lower-case wire name of the zone (`\0` for the default).
    zone: Vec<u8>,
    labels: usize,
    /// In the configured order.
    upstreams: Vec<Arc<Upstream>>,
    counters: ZoneCounters,
}

/// One upstream address: its health and counters, shared by every route
/// that names it.
#[derive(Debug)]
struct Upstream {
    addr: SocketAddr,
    /// `addr` as text, the `upstream` label of the metrics.
    label: String,
    /// Tries sent to it (probes aside).
    queries: AtomicU64,
    /// Tries that failed.
    failures: AtomicU64,
    /// Failed tries since its last answer.
    failing: AtomicU64,
    down: AtomicBool,
    /// Whether a probe task runs for it (at most one does).
    probing: AtomicBool,
}

/// Forwards queries outside the domain.
#[derive(Debug)]
pub struct Forwarder {
    /// Longest zones first; the default route (root) last.
    routes: Vec<Route>,
    timeout: Duration,
    slots: Arc<Semaphore>,
    /// Every upstream once, by address.
    upstreams: Vec<Arc<Upstream>>,
    tcp_pool: Mutex<BTreeMap<SocketAddr, Vec<TcpStream>>>,
    /// Queries refused at once because too many were in flight.
    overloaded: AtomicU64,
    latency: AtomicHistogram,
}

/// Why one upstream did not answer.
#[derive(Debug, thiserror::Error)]
enum TryError {
    #[error("timed out")]
    Timeout,
    #[error(transparent)]
    Io(#[from] io::Error),
    #[error("malformed answer")]
    Malformed,
    /// Our side: no socket to send from. Not held against the upstream.
    #[error("cannot open a socket: {0}")]
    Local(io::Error),
}

impl Upstream {
    fn new(addr: SocketAddr) -> Upstream {
        Upstream {
            addr,
            label: addr.to_string(),
            queries: AtomicU64::new(0),
            failures: AtomicU64::new(0),
            failing: AtomicU64::new(0),
            down: AtomicBool::new(false),
            probing: AtomicBool::new(false),
        }
    }

    fn is_up(&self) -> bool {
        !self.down.load(Ordering::Relaxed)
    }

    /// A try failed with `e`: after [`DOWN_AFTER`] in a row it is down, and
    /// probed (each probe waiting up to `probe_timeout`) until it answers.
    fn failed(self: &Arc<Self>, e: &TryError, probe_timeout: Duration) {
        self.failures.fetch_add(1, Ordering::Relaxed);
        let failing = self.failing.fetch_add(1, Ordering::Relaxed) + 1;
        if failing < DOWN_AFTER || self.down.swap(true, Ordering::SeqCst) {
            return;
        }
        tracing::warn!(
            "upstream {} is down after {failing} failures in a row (the last: {e}); \
             the others are asked first until it answers",
            self.addr
        );
        if self.probing.swap(true, Ordering::SeqCst) {
            return; // The probe task still running carries on.
        }
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            self.probing.store(false, Ordering::SeqCst);
            return;
        };
        runtime.spawn(probe(Arc::downgrade(self), probe_timeout));
    }

    /// It answered (a query or a probe, `how`): up, failures forgotten.
    fn answered(&self, how: &str) {
        if self.failing.load(Ordering::Relaxed) != 0 {
            self.failing.store(0, Ordering::Relaxed);
        }
        if !self.is_up() && self.down.swap(false, Ordering::SeqCst) {
            tracing::info!("upstream {} answered {how}: up again, asked in order", self.addr);
        }
    }
}

impl Forwarder {
    /// The forwarder for `config`, or `None` when nothing is forwarded
    /// (`externalon` false, or no resolvers at all): such queries are
    /// refused.
    pub fn from_config(config: &Config) -> Option<Forwarder> {
        if !config.external_on {
            return None;
        }
        let mut by_addr: BTreeMap<SocketAddr, Arc<Upstream>> = BTreeMap::new();
        let mut shared = |addrs: &[SocketAddr]| -> Vec<Arc<Upstream>> {
            addrs
                .iter()
                .map(|&a| {
                    Arc::clone(by_addr.entry(a).or_insert_with(|| Arc::new(Upstream::new(a))))
                })
                .collect()
        };
        let mut routes: Vec<Route> = config
            .parsed
            .zone_resolvers
            .iter()
            .filter_map(|(zone, addrs)| {
                let zone = wire_name(zone)?;
                Some(Route {
                    labels: label_count(&zone),
                    zone,
                    upstreams: shared(addrs),
                    counters: ZoneCounters::default(),
                })
            })
            .collect();
        routes.sort_by_key(|r| std::cmp::Reverse(r.labels));
        routes.push(Route {
            zone: vec![0],
            labels: 0,
            upstreams: shared(&config.parsed.resolvers),
            counters: ZoneCounters::default(),
        });
        if routes.iter().all(|r| r.upstreams.is_empty()) {
            return None;
        }
        Some(Forwarder {
            routes,
            timeout: Duration::from_secs(if config.timeout == 0 { 5 } else { config.timeout }),
            slots: Arc::new(Semaphore::new(DEFAULT_MAX_OUTSTANDING)),
            upstreams: by_addr.into_values().collect(),
            tcp_pool: Mutex::new(BTreeMap::new()),
            overloaded: AtomicU64::new(0),
            latency: AtomicHistogram::new(SLOW_BUCKETS),
        })
    }

    /// Cap the number of forwarded queries in flight.
    pub fn with_max_outstanding(mut self, n: usize) -> Self {
        self.slots = Arc::new(Semaphore::new(n));
        self
    }

    /// The zones forwarded, longest first (`"."`: the default resolvers).
    pub fn zones(&self) -> Vec<String> {
        self.routes.iter().map(|r| name_text(&r.zone)).collect()
    }

    /// Forward `packet` (a query already parsed once by the caller) and
    /// return the response to send: the upstream's answer with the client's
    /// id, or SERVFAIL/REFUSED. `udp` is the client's transport.
    pub async fn forward(&self, packet: &[u8], udp: bool) -> Option<Vec<u8>> {
        let q = wire::parse(packet).ok()?;
        let Ok(_slot) = self.slots.try_acquire() else {
            self.overloaded.fetch_add(1, Ordering::Relaxed);
            return Some(self.error(packet, &q, wire::rcode::SERVFAIL));
        };
        let route = self.routes.iter().find(|r| q.apex_offset(&r.zone, r.labels).is_some())?;
        if route.upstreams.is_empty() {
            return Some(self.error(packet, &q, wire::rcode::REFUSED));
        }
        route.counters.forwarded.fetch_add(1, Ordering::Relaxed);
        // Those up, in order; when none is, all of them in order.
        let any_up = route.upstreams.iter().any(|u| u.is_up());
        for upstream in route.upstreams.iter().filter(|u| !any_up || u.is_up()) {
            upstream.queries.fetch_add(1, Ordering::Relaxed);
            let started = std::time::Instant::now();
            let result = if udp {
                self.try_udp(upstream.addr, packet, &q).await
            } else {
                self.try_tcp(upstream.addr, packet, &q).await
            };
            match result {
                Ok(answer) => {
                    self.latency.observe(started.elapsed());
                    route.counters.answered.fetch_add(1, Ordering::Relaxed);
                    upstream.answered("a query");
                    return Some(answer);
                }
                Err(e @ TryError::Local(_)) => tracing::debug!("upstream {}: {e}", upstream.addr),
                Err(e) => {
                    tracing::debug!("upstream {}: {e}", upstream.addr);
                    upstream.failed(&e, self.timeout.min(PROBE_TIMEOUT));
                }
            }
        }
        route.counters.failed.fetch_add(1, Ordering::Relaxed);
        tracing::debug!("every upstream failed for a query; SERVFAIL");
        Some(self.error(packet, &q, wire::rcode::SERVFAIL))
    }

    fn error(&self, packet: &[u8], q: &wire::Query, rcode: u8) -> Vec<u8> {
        let mut out = Vec::with_capacity(64);
        let e = ParseError::Reply { id: q.id, flags: q.flags, rcode };
        wire::error_response(&mut out, packet, Some(q), e);
        out
    }

    async fn try_udp(
        &self,
        upstream: SocketAddr,
        packet: &[u8],
        q: &wire::Query,
    ) -> Result<Vec<u8>, TryError> {
        let deadline = Instant::now() + self.timeout;
        let sock = connected_udp(upstream).await?;
        let (query, id) = with_new_id(packet);
        sock.send(&query).await?;
        // Room for the largest datagram, not zeroed (zeroing 64 KiB was an
        // eighth of the CPU a forwarded query took).
        let mut buf = Vec::with_capacity(65535);
        loop {
            buf.clear();
            tokio::time::timeout_at(deadline, sock.recv_buf(&mut buf))
                .await
                .map_err(|_| TryError::Timeout)??;
            if let Some(answer) = relay(q, &query, id, &buf, true) {
                return Ok(answer);
            }
            // Wrong id or question: not ours (spoofed or late); keep waiting.
        }
    }

    async fn try_tcp(
        &self,
        upstream: SocketAddr,
        packet: &[u8],
        q: &wire::Query,
    ) -> Result<Vec<u8>, TryError> {
        let deadline = Instant::now() + self.timeout;
        let (query, id) = with_new_id(packet);
        // A pooled connection may have been closed by the upstream: on any
        // failure with one, retry once on a fresh connection.
        if let Some(stream) = self.pooled(upstream)
            && let Ok(answer) = self.tcp_exchange(stream, upstream, q, &query, id, deadline).await
        {
            return Ok(answer);
        }
        let socket = if upstream.is_ipv4() { TcpSocket::new_v4() } else { TcpSocket::new_v6() }
            .map_err(TryError::Local)?;
        let stream = tokio::time::timeout_at(deadline, socket.connect(upstream))
            .await
            .map_err(|_| TryError::Timeout)??;
        self.tcp_exchange(stream, upstream, q, &query, id, deadline).await
    }

    async fn tcp_exchange(
        &self,
        mut stream: TcpStream,
        upstream: SocketAddr,
        client: &wire::Query,
        query: &[u8],
        id: u16,
        deadline: Instant,
    ) -> Result<Vec<u8>, TryError> {
        let exchange = async {
            let mut framed = Vec::with_capacity(query.len() + 2);
            framed.extend_from_slice(
                &u16::try_from(query.len()).map_err(|_| TryError::Malformed)?.to_be_bytes(),
            );
            framed.extend_from_slice(query);
            stream.write_all(&framed).await?;
            loop {
                let len = usize::from(stream.read_u16().await?);
                let mut answer = vec![0u8; len];
                stream.read_exact(&mut answer).await?;
                if let Some(answer) = relay(client, query, id, &answer, false) {
                    return Ok::<_, TryError>(answer);
                }
            }
        };
        let answer =
            tokio::time::timeout_at(deadline, exchange).await.map_err(|_| TryError::Timeout)??;
        self.return_to_pool(upstream, stream);
        Ok(answer)
    }

    fn pooled(&self, upstream: SocketAddr) -> Option<TcpStream> {
        self.tcp_pool.lock().ok()?.get_mut(&upstream)?.pop()
    }

    fn return_to_pool(&self, upstream: SocketAddr, stream: TcpStream) {
        if let Ok(mut pool) = self.tcp_pool.lock() {
            let idle = pool.entry(upstream).or_default();
            if idle.len() < TCP_POOL_PER_UPSTREAM {
                idle.push(stream);
            }
        }
    }
}

impl Export for Forwarder {
    fn export(&self, e: &mut DescriptorEncoder) -> fmt::Result {
        let zones: Vec<(String, &ZoneCounters)> =
            self.routes.iter().map(|r| (name_text(&r.zone), &r.counters)).collect();
        let mut rows = Vec::new();
        for (zone, c) in &zones {
            for (outcome, v) in
                [("forwarded", &c.forwarded), ("answered", &c.answered), ("failed", &c.failed)]
            {
                rows.push((
                    vec![("zone", zone.as_str()), ("outcome", outcome)],
                    v.load(Ordering::Relaxed),
                ));
            }
        }
        rows.push((
            vec![("zone", ""), ("outcome", "overloaded")],
            self.overloaded.load(Ordering::Relaxed),
        ));
        counter(
            e,
            "mesos_dns_forward_queries",
            "Queries forwarded upstream, by zone and outcome",
            &rows,
        )?;
        let per_upstream = |value: fn(&Upstream) -> u64| -> Vec<(Labels, u64)> {
            self.upstreams
                .iter()
                .map(|u| (vec![("upstream", u.label.as_str())], value(u)))
                .collect()
        };
        counter(
            e,
            "mesos_dns_forward_upstream_queries",
            "Tries sent to each upstream (probes aside)",
            &per_upstream(|u| u.queries.load(Ordering::Relaxed)),
        )?;
        counter(
            e,
            "mesos_dns_forward_upstream_failures",
            "Tries of each upstream that failed: timeout, I/O error, no matching answer",
            &per_upstream(|u| u.failures.load(Ordering::Relaxed)),
        )?;
        let up: Vec<(Labels, f64)> = self
            .upstreams
            .iter()
            .map(|u| (vec![("upstream", u.label.as_str())], if u.is_up() { 1.0 } else { 0.0 }))
            .collect();
        gauge(
            e,
            "mesos_dns_forward_upstream_up",
            &format!("Whether each upstream is up (0: down after {DOWN_AFTER} failures in a row)"),
            &up,
        )?;
        histogram(
            e,
            "mesos_dns_forward_upstream_duration_seconds",
            "Time for an upstream to answer a forwarded query",
            vec![(vec![], vec![&self.latency])],
        )
    }
}

/// Probe the down `upstream` until it answers, waiting longer after each
/// unanswered probe; then stop, unless it went down again meanwhile. Ends
/// with the forwarder.
async fn probe(upstream: Weak<Upstream>, timeout: Duration) {
    let mut wait = PROBE_FIRST_INTERVAL;
    loop {
        tokio::time::sleep(wait).await;
        let Some(u) = upstream.upgrade() else { return };
        if !u.is_up() {
            match probe_once(u.addr, timeout).await {
                Ok(()) => u.answered("a probe"),
                Err(e) => {
                    tracing::debug!("probe of upstream {}: {e}", u.addr);
                    wait = (wait * 2).min(PROBE_MAX_INTERVAL);
                    continue;
                }
            }
        }
        u.probing.store(false, Ordering::SeqCst);
        // Down again since, and no other task took over: keep probing.
        if u.is_up() || u.probing.swap(true, Ordering::SeqCst) {
            return;
        }
        wait = PROBE_FIRST_INTERVAL;
    }
}

/// One probe: `. NS` over UDP; any response with its id is an answer.
async fn probe_once(upstream: SocketAddr, timeout: Duration) -> Result<(), TryError> {
    let deadline = Instant::now() + timeout;
    let sock = connected_udp(upstream).await?;
    let id: u16 = rand::random();
    let mut query = id.to_be_bytes().to_vec();
    // RD, one question: the root, NS, IN.
    query.extend_from_slice(&[1, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 2, 0, 1]);
    sock.send(&query).await?;
    let mut buf = [0u8; 512];
    loop {
        let n = tokio::time::timeout_at(deadline, sock.recv(&mut buf))
            .await
            .map_err(|_| TryError::Timeout)??;
        let answer = buf.get(..n).unwrap_or_default();
        if answer.len() >= header::LEN
            && answer.get(..2) == Some(&id.to_be_bytes()[..])
            && header::is_response(answer)
        {
            return Ok(());
        }
    }
}

/// A UDP socket on a random port, connected to `upstream`: it only sees
/// datagrams from there, and an ICMP port unreachable fails its `recv`.
async fn connected_udp(upstream: SocketAddr) -> Result<UdpSocket, TryError> {
    let local: SocketAddr =
        if upstream.is_ipv4() { ([0, 0, 0, 0], 0).into() } else { ([0u16; 8], 0).into() };
    let sock = UdpSocket::bind(local).await.map_err(TryError::Local)?;
    sock.connect(upstream).await?;
    Ok(sock)
}

/// The query with a fresh random id.
fn with_new_id(packet: &[u8]) -> (Vec<u8>, u16) {
    let id: u16 = rand::random();
    let mut query = packet.to_vec();
    if let Some(slot) = query.get_mut(..2) {
        slot.copy_from_slice(&id.to_be_bytes());
    }
    (query, id)
}

/// The client's answer from an upstream's `answer` to `sent` (the client's
/// query `client`, sent with our id `id`): `None` when it answers something
/// else (wrong id or question: spoofed or late). Otherwise the upstream's
/// bytes unchanged but for the client's id, and — over UDP — cut to the
/// header and question with TC when larger than the client's UDP size.
pub fn relay(
    client: &wire::Query,
    sent: &[u8],
    id: u16,
    answer: &[u8],
    udp: bool,
) -> Option<Vec<u8>> {
    if !is_answer_to(answer, id, sent, client.question_end) {
        return None;
    }
    if udp && answer.len() > wire::size_limit(client, true) {
        let mut out = truncated(answer, client.question_end);
        out.get_mut(..2)?.copy_from_slice(&client.id.to_be_bytes());
        return Some(out);
    }
    let mut out = answer.to_vec();
    out.get_mut(..2)?.copy_from_slice(&client.id.to_be_bytes());
    Some(out)
}

/// Whether `answer` responds to `query`: same id, QR set, same question
/// (case-insensitively).
fn is_answer_to(answer: &[u8], id: u16, query: &[u8], question_end: usize) -> bool {
    let question = header::LEN..question_end;
    let (Some(a), Some(q)) = (answer.get(question.clone()), query.get(question)) else {
        return false;
    };
    answer.get(..2) == Some(&id.to_be_bytes()[..])
        && header::is_response(answer)
        && u16_at(answer, header::QDCOUNT) == Some(1)
        && a.eq_ignore_ascii_case(q)
}

/// Header and question of `answer`, with TC set and no records.
fn truncated(answer: &[u8], question_end: usize) -> Vec<u8> {
    let mut out = answer.get(..question_end).unwrap_or(answer).to_vec();
    header::set_flags(&mut out, header::TC);
    if let Some(counts) = out.get_mut(header::ANCOUNT..header::LEN) {
        counts.fill(0);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_must_match_id_and_question() {
        let query = b"\x12\x34\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00\x01a\x00\x00\x01\x00\x01";
        let mut answer = query.to_vec();
        answer[2] |= 0x80;
        assert!(is_answer_to(&answer, 0x1234, query, query.len()));
        assert!(!is_answer_to(&answer, 0x1235, query, query.len()));
        answer[13] = b'A';
        assert!(is_answer_to(&answer, 0x1234, query, query.len()), "0x20 case is fine");
        answer[13] = b'b';
        assert!(!is_answer_to(&answer, 0x1234, query, query.len()));
        assert!(!is_answer_to(&answer[..10], 0x1234, query, query.len()));
    }

    #[tokio::test]
    async fn down_after_three_failures_in_a_row_with_one_probe_until_it_answers() {
        // Nothing listens there: every probe is refused at once.
        let addr = std::net::UdpSocket::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
        let u = Arc::new(Upstream::new(addr));
        let timeout = Duration::from_millis(100);
        for _ in 0..2 {
            u.failed(&TryError::Timeout, timeout);
        }
        u.answered("a query");
        for _ in 0..2 {
            u.failed(&TryError::Timeout, timeout);
        }
        assert!(u.is_up(), "an answer starts the count again");
        u.failed(&TryError::Timeout, timeout);
        assert!(!u.is_up());
        assert!(u.probing.load(Ordering::SeqCst));
        u.failed(&TryError::Timeout, timeout);
        assert_eq!(Arc::weak_count(&u), 1, "one probe task");
        tokio::time::sleep(Duration::from_millis(1500)).await;
        assert!(!u.is_up(), "probes refused");
        u.answered("a query");
        assert!(u.is_up());
        assert_eq!(u.failing.load(Ordering::SeqCst), 0);
        assert_eq!(u.failures.load(Ordering::SeqCst), 6, "probes are not counted");
        // The probe task ends at its next turn (at most 2 s on).
        for _ in 0..30 {
            if Arc::weak_count(&u) == 0 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert_eq!(Arc::weak_count(&u), 0);
        assert!(!u.probing.load(Ordering::SeqCst));
    }
}
