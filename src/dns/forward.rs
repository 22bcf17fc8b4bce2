//! Forwarding of names outside the domain (docs/differences.md, forwarding): the client's query
//! goes unchanged (apart from the message id) to the upstreams of the
//! longest matching `zoneResolvers` zone, else to `resolvers`, tried in
//! order over the client's protocol, each try bounded by `timeout`. The
//! first answer comes back unchanged apart from the id (RFC 5625). All fail:
//! SERVFAIL. Outstanding forwards are capped; beyond the cap, SERVFAIL at
//! once.

use std::collections::BTreeMap;
use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use prometheus_client::encoding::DescriptorEncoder;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpStream, UdpSocket};
use tokio::sync::Semaphore;
use tokio::time::Instant;

use super::wire::{self, ParseError};
use crate::config::Config;
use crate::metrics::{AtomicHistogram, Export, SLOW_BUCKETS, counter, histogram};
use crate::proto::{header, label_count, name_text, u16_at, wire_name};

/// The most forwarded queries in flight at once.
pub const DEFAULT_MAX_OUTSTANDING: usize = 4096;
/// Idle TCP connections kept per upstream for reuse.
const TCP_POOL_PER_UPSTREAM: usize = 8;

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
    upstreams: Vec<SocketAddr>,
    counters: ZoneCounters,
}

/// Forwards queries outside the domain.
#[derive(Debug)]
pub struct Forwarder {
    /// Longest zones first; the default route (root) last.
    routes: Vec<Route>,
    timeout: Duration,
    slots: Arc<Semaphore>,
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
}

impl Forwarder {
    /// The forwarder for `config`, or `None` when nothing is forwarded
    /// (`externalon` false, or no resolvers at all): such queries are
    /// refused.
    pub fn from_config(config: &Config) -> Option<Forwarder> {
        if !config.external_on {
            return None;
        }
        let mut routes: Vec<Route> = config
            .parsed
            .zone_resolvers
            .clone()
            .into_iter()
            .filter_map(|(zone, upstreams)| {
                let zone = wire_name(&zone)?;
                Some(Route {
                    labels: label_count(&zone),
                    zone,
                    upstreams,
                    counters: ZoneCounters::default(),
                })
            })
            .collect();
        routes.sort_by_key(|r| std::cmp::Reverse(r.labels));
        let default = config.parsed.resolvers.clone();
        routes.push(Route {
            zone: vec![0],
            labels: 0,
            upstreams: default,
            counters: ZoneCounters::default(),
        });
        if routes.iter().all(|r| r.upstreams.is_empty()) {
            return None;
        }
        Some(Forwarder {
            routes,
            timeout: Duration::from_secs(if config.timeout == 0 { 5 } else { config.timeout }),
            slots: Arc::new(Semaphore::new(DEFAULT_MAX_OUTSTANDING)),
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
        for &upstream in &route.upstreams {
            let started = std::time::Instant::now();
            let result = if udp {
                self.try_udp(upstream, packet, &q).await
            } else {
                self.try_tcp(upstream, packet, &q).await
            };
            match result {
                Ok(answer) => {
                    self.latency.observe(started.elapsed());
                    route.counters.answered.fetch_add(1, Ordering::Relaxed);
                    return Some(answer);
                }
                Err(e) => tracing::debug!("upstream {upstream}: {e}"),
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
        let local: SocketAddr =
            if upstream.is_ipv4() { ([0, 0, 0, 0], 0).into() } else { ([0u16; 8], 0).into() };
        let sock = UdpSocket::bind(local).await?;
        // A connected socket only sees datagrams from the upstream's address.
        sock.connect(upstream).await?;
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
        let stream = tokio::time::timeout_at(deadline, TcpStream::connect(upstream))
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
        histogram(
            e,
            "mesos_dns_forward_upstream_duration_seconds",
            "Time for an upstream to answer a forwarded query",
            vec![(vec![], vec![&self.latency])],
        )
    }
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
}
