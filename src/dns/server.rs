//! The DNS listeners: UDP worker threads (one blocking on the socket, the
//! others called in when queries queue up: [`batch::spawn_workers`]), and a
//! TCP server (two-byte length framing, pipelined queries answered in
//! order, idle timeout, a cap on concurrent connections that makes room by
//! closing the idlest: [`super::tcp`]). Names outside the
//! domain go to the [`Forwarder`] on the async runtime, so a slow upstream
//! never holds up a worker. With `rateLimit`, the UDP answers the server
//! writes itself pass the [`RateLimiter`] ([`super::rrl`]) on their way out.

use std::io;
use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::batch;
use super::forward::Forwarder;
use super::journal::History;
use super::metrics::{DnsMetrics, DnsShard};
use super::rrl::RateLimiter;
use super::tcp::{MAX_TCP_CONNECTIONS, Slot, TCP_IDLE_TIMEOUT, Table};
use super::transfer::Transfers;
use super::wire::{self, Disposition, ParseError, Responder, Scratch, Settings};
use crate::config::Config;
use crate::snapshot::Current;

/// Socket buffer size asked for on the UDP socket, so bursts of queries
/// wait in the kernel instead of being dropped (capped by
/// `net.core.rmem_max`/`wmem_max`).
pub const UDP_BUFFER_BYTES: usize = 4 << 20;

/// Messages of a zone transfer made ahead of the connection taking them
/// (each up to 64 KiB): what a transfer holds in memory.
const TRANSFER_MESSAGES_AHEAD: usize = 4;

/// What every listener shares: the records in service, the settings, the
/// forwarder for names outside the domain, and the counters.
pub struct Handler {
    current: Current,
    responder: Responder,
    forwarder: Option<Arc<Forwarder>>,
    /// Clients allowed to use the forwarder (empty: everyone).
    allow_forward: Vec<ipnet::IpNet>,
    runtime: tokio::runtime::Handle,
    pub(crate) metrics: Arc<DnsMetrics>,
    /// Zone transfers and signed queries.
    transfers: Arc<Transfers>,
    /// `rateLimit` on UDP answers (`None`: no limit).
    rate_limiter: Option<Arc<RateLimiter>>,
}

/// What became of one packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Handled {
    pub(crate) disposition: Disposition,
    /// The question's type (0 when the packet did not parse).
    pub(crate) qtype: u16,
}

impl Handler {
    /// `runtime` runs forwarded queries for the UDP worker threads;
    /// `history` is what IXFR answers from.
    pub fn new(
        config: &Config,
        current: Current,
        forwarder: Option<Arc<Forwarder>>,
        metrics: Arc<DnsMetrics>,
        history: Arc<History>,
        runtime: tokio::runtime::Handle,
    ) -> Handler {
        let settings = Settings {
            recurse_on: config.recurse_on,
            set_truncate_bit: config.set_truncate_bit,
            verify_signatures: !config.parsed.tsig_keys.is_empty(),
            answer_limit: config.answer_limit,
            ptr_on: config.ptr_on,
        };
        let responder = Responder::new(&config.domain, settings);
        Handler {
            current,
            transfers: Arc::new(Transfers::new(config, history, &responder)),
            responder,
            forwarder,
            allow_forward: config.parsed.allow_forward_from.clone(),
            runtime,
            metrics,
            rate_limiter: RateLimiter::new(config.rate_limit),
        }
    }

    /// The limiter of UDP answers (`rateLimit`), for its counters.
    pub fn rate_limiter(&self) -> Option<Arc<RateLimiter>> {
        self.rate_limiter.clone()
    }

    /// Zone transfers and signed queries, for their counters.
    pub fn transfers(&self) -> Arc<Transfers> {
        Arc::clone(&self.transfers)
    }

    /// Answer a zone transfer or signed query over UDP into `out` (one
    /// message at most).
    fn transfer_udp(
        &self,
        packet: &[u8],
        peer: IpAddr,
        out: &mut Vec<u8>,
        scratch: &mut Scratch,
    ) -> Disposition {
        let snapshot = self.current.load_full();
        let mut reply = None;
        let mut send = |message| reply.replace(message).is_none();
        self.transfers.respond(packet, peer, true, snapshot.as_deref(), scratch, &mut send);
        match reply {
            Some(message) => {
                let rcode = header_rcode(&message) as u8;
                *out = message;
                Disposition::Answered { rcode, truncated: false }
            }
            None => Disposition::Dropped,
        }
    }

    /// Answer a zone transfer or signed query over TCP: its messages, made
    /// on a blocking thread (a whole zone takes a while) and handed over a
    /// few at a time, as the connection takes them.
    fn transfer_tcp(&self, packet: &[u8], peer: IpAddr) -> tokio::sync::mpsc::Receiver<Vec<u8>> {
        let (tx, rx) = tokio::sync::mpsc::channel(TRANSFER_MESSAGES_AHEAD);
        let transfers = Arc::clone(&self.transfers);
        let snapshot = self.current.load_full();
        let packet = packet.to_vec();
        tokio::task::spawn_blocking(move || {
            let mut scratch = Scratch::new(rand::random());
            let mut send = |message| tx.blocking_send(message).is_ok();
            transfers.respond(&packet, peer, false, snapshot.as_deref(), &mut scratch, &mut send);
        });
        rx
    }

    /// Answer one query packet into `out`. `Disposition::Dropped` means
    /// send nothing; `Disposition::Outside` means hand the packet to the
    /// forwarder (names outside the domain are refused without one).
    pub fn handle(
        &self,
        packet: &[u8],
        udp: bool,
        peer: IpAddr,
        out: &mut Vec<u8>,
        scratch: &mut Scratch,
    ) -> Handled {
        let q = match wire::parse(packet) {
            Ok(q) => q,
            Err(e) => {
                let d = wire::error_response(out, packet, None, e);
                return Handled { disposition: d, qtype: 0 };
            }
        };
        let guard = self.current.load();
        let zone = guard.as_ref().map(|s| s.view());
        let mut d = self.responder.answer(out, packet, &q, zone, udp, scratch);
        if d == Disposition::Outside && !self.may_forward(peer) {
            let refused =
                ParseError::Reply { id: q.id, flags: q.flags, rcode: wire::rcode::REFUSED };
            d = wire::error_response(out, packet, Some(&q), refused);
        }
        Handled { disposition: d, qtype: q.qtype }
    }
}

impl Handler {
    /// Whether queries from `peer` outside the domain are forwarded.
    fn may_forward(&self, peer: IpAddr) -> bool {
        let peer = crate::records::canonical_ip(peer);
        self.forwarder.is_some()
            && (self.allow_forward.is_empty()
                || self.allow_forward.iter().any(|n| n.contains(&peer)))
    }
}

/// The rcode of a response, extended rcode included (from the OPT record
/// is not read here: forwarded answers count by their header rcode).
fn header_rcode(answer: &[u8]) -> u16 {
    answer.get(3).map_or(u16::MAX, |b| u16::from(b & 0x0F))
}

/// Count an answer sent from the zone.
fn count_local(shard: &DnsShard, udp: bool, h: Handled, started: Instant) {
    if let Disposition::Answered { rcode, .. } = h.disposition {
        shard.count(udp, h.qtype, u16::from(rcode));
        shard.observe(started.elapsed());
    }
}

/// Bind the UDP socket and TCP listener on `listener:port`. With port 0
/// both get the same ephemeral port (retrying if TCP's is taken).
pub fn bind(listener: IpAddr, port: u16) -> io::Result<(UdpSocket, std::net::TcpListener)> {
    let mut attempts = 0;
    loop {
        let udp = bind_udp(SocketAddr::new(listener, port))?;
        let tcp_addr = SocketAddr::new(listener, udp.local_addr()?.port());
        match std::net::TcpListener::bind(tcp_addr) {
            Ok(tcp) => {
                tcp.set_nonblocking(true)?;
                return Ok((udp, tcp));
            }
            Err(e) if port == 0 && attempts < 16 => {
                attempts += 1;
                tracing::debug!("tcp {tcp_addr}: {e}; trying another port");
            }
            Err(e) => return Err(e),
        }
    }
}

fn bind_udp(addr: SocketAddr) -> io::Result<UdpSocket> {
    let udp = socket2::Socket::new(
        socket2::Domain::for_address(addr),
        socket2::Type::DGRAM,
        Some(socket2::Protocol::UDP),
    )?;
    // Best effort: a smaller buffer still works.
    let _ = udp.set_recv_buffer_size(UDP_BUFFER_BYTES);
    let _ = udp.set_send_buffer_size(UDP_BUFFER_BYTES);
    udp.bind(&addr.into())?;
    Ok(udp.into())
}

/// Start `workers` threads answering on `socket` until `stop` is set
/// (see [`batch::spawn_workers`] for how they share it).
pub fn spawn_udp(
    socket: UdpSocket,
    handler: Arc<Handler>,
    workers: usize,
    stop: Arc<AtomicBool>,
) -> io::Result<Vec<std::thread::JoinHandle<()>>> {
    let socket = Arc::new(socket);
    batch::spawn_workers(Arc::clone(&socket), "dns-udp", workers, stop, |i| {
        let (handler, socket) = (Arc::clone(&handler), Arc::clone(&socket));
        let mut scratch = Scratch::new(rand::random::<u64>() ^ i as u64);
        let shard = handler.metrics.shard();
        let mut rrl = handler.rate_limiter.as_ref().map(RateLimiter::worker);
        move |packet, peer, out| {
            let started = Instant::now();
            let mut h = handler.handle(packet, true, peer.ip(), out, &mut scratch);
            // Answers the server writes itself are rate-limited; zone
            // transfers and forwarded answers are not.
            let mut limit = rrl.as_mut();
            if h.disposition == Disposition::Transfer {
                limit = None;
                h.disposition = handler.transfer_udp(packet, peer.ip(), out, &mut scratch);
            }
            match h.disposition {
                Disposition::Answered { rcode, .. } => {
                    if let Some(rrl) = limit
                        && !rrl.admit(packet, peer.ip(), started, rcode, out)
                    {
                        return false;
                    }
                    count_local(&shard, true, h, started);
                    true
                }
                Disposition::Outside => {
                    forward_udp(&handler, &socket, &shard, packet, peer, h.qtype);
                    false
                }
                Disposition::Dropped | Disposition::Transfer => false,
            }
        }
    })
}

/// Hand a query outside the domain to the forwarder on the async runtime.
fn forward_udp(
    handler: &Handler,
    socket: &Arc<UdpSocket>,
    shard: &Arc<DnsShard>,
    packet: &[u8],
    peer: SocketAddr,
    qtype: u16,
) {
    let Some(fwd) = &handler.forwarder else { return };
    let fwd = Arc::clone(fwd);
    let socket = Arc::clone(socket);
    let shard = Arc::clone(shard);
    let packet = packet.to_vec();
    handler.runtime.spawn(async move {
        if let Some(answer) = fwd.forward(&packet, true).await {
            if let Err(e) = socket.send_to(&answer, peer) {
                tracing::debug!("udp send to {peer}: {e}");
            }
            shard.count(true, qtype, header_rcode(&answer));
        }
    });
}

/// Accept and serve TCP connections until the runtime stops.
pub async fn serve_tcp(listener: std::net::TcpListener, handler: Arc<Handler>) -> io::Result<()> {
    let listener = tokio::net::TcpListener::from_std(listener)?;
    let table = Arc::new(Table::new(MAX_TCP_CONNECTIONS));
    handler.metrics.tcp_table(Arc::clone(&table));
    let shard = handler.metrics.shard();
    loop {
        let (stream, peer) = match listener.accept().await {
            Ok(x) => x,
            Err(e) => {
                tracing::warn!("tcp accept: {e}");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        // At the cap: the connection idle longest is closed for this one
        // (or, all being busy, this one waits for one to close).
        let slot = table.admit().await;
        let handler = Arc::clone(&handler);
        let shard = Arc::clone(&shard);
        let table = Arc::clone(&table);
        tokio::spawn(async move {
            if let Err(e) = tcp_connection(stream, peer.ip(), &handler, &shard, &table, &slot).await
            {
                tracing::debug!("tcp {peer}: {e}");
            }
            drop(slot);
        });
    }
}

/// Serve one connection's queries, in order, until it closes, idles out,
/// or is closed to make room for another (only while idle).
async fn tcp_connection(
    mut stream: TcpStream,
    peer: IpAddr,
    handler: &Handler,
    shard: &DnsShard,
    table: &Table,
    slot: &Slot,
) -> io::Result<()> {
    let _ = stream.set_nodelay(true);
    let mut scratch = Scratch::new(rand::random());
    let mut packet = Vec::with_capacity(512);
    let mut out = Vec::with_capacity(4096);
    let mut framed = Vec::with_capacity(4098);
    loop {
        slot.idle();
        let idle = table.idle_timeout();
        let len = tokio::select! {
            read = tokio::time::timeout(idle, stream.read_u16()) => match read {
                Ok(Ok(len)) => usize::from(len),
                Ok(Err(e)) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(()),
                Ok(Err(e)) => return Err(e),
                Err(_) => return Ok(()), // idle
            },
            () = slot.evicted() => return Ok(()),
        };
        slot.busy();
        packet.resize(len, 0);
        match tokio::time::timeout(TCP_IDLE_TIMEOUT, stream.read_exact(&mut packet)).await {
            Ok(r) => r?,
            Err(_) => return Ok(()),
        };
        let started = Instant::now();
        let h = handler.handle(&packet, false, peer, &mut out, &mut scratch);
        let forwarded;
        let answer = match h.disposition {
            Disposition::Answered { .. } => {
                count_local(shard, false, h, started);
                Some(&out[..])
            }
            Disposition::Transfer => {
                let mut messages = handler.transfer_tcp(&packet, peer);
                let mut first = true;
                while let Some(message) = messages.recv().await {
                    if std::mem::take(&mut first) {
                        shard.count(false, h.qtype, header_rcode(&message));
                    }
                    write_framed(&mut stream, &mut framed, &message).await?;
                }
                None
            }
            Disposition::Outside => match &handler.forwarder {
                Some(fwd) => {
                    forwarded = fwd.forward(&packet, false).await;
                    if let Some(a) = &forwarded {
                        shard.count(false, h.qtype, header_rcode(a));
                    }
                    forwarded.as_deref()
                }
                None => None,
            },
            Disposition::Dropped => None,
        };
        if let Some(answer) = answer {
            write_framed(&mut stream, &mut framed, answer).await?;
        }
    }
}

/// Write one message to a TCP connection, its two-byte length first, in
/// one write (`framed` is the reused buffer).
async fn write_framed(
    stream: &mut TcpStream,
    framed: &mut Vec<u8>,
    message: &[u8],
) -> io::Result<()> {
    framed.clear();
    framed.extend_from_slice(&(message.len() as u16).to_be_bytes());
    framed.extend_from_slice(message);
    stream.write_all(framed).await
}
