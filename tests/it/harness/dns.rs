//! DNS over real UDP and TCP sockets: queries built with hickory or byte
//! by byte, sent raw, replies decoded.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream, UdpSocket};
use std::time::Duration;

use hickory_proto::op::{Edns, Message, Query};
use hickory_proto::rr::{Name, RecordType};

/// How long [`udp_raw`] waits for a reply.
pub const UDP_WAIT: Duration = Duration::from_millis(1000);

/// Build a query message (recursion desired; EDNS with this payload size
/// if `edns`).
pub fn query_msg(name: &str, rtype: RecordType, edns: Option<u16>) -> Message {
    let mut m = Message::query();
    m.add_query(Query::query(Name::from_ascii(name).unwrap(), rtype));
    m.metadata.recursion_desired = true;
    if let Some(size) = edns {
        let mut e = Edns::new();
        e.set_max_payload(size);
        m.set_edns(e);
    }
    m
}

/// A query written byte by byte: the header fields and the bytes after
/// the header (question and whatever else) as given.
pub fn raw_query(id: u16, flags: u16, counts: [u16; 4], body: &[u8]) -> Vec<u8> {
    let mut p = id.to_be_bytes().to_vec();
    p.extend_from_slice(&flags.to_be_bytes());
    for c in counts {
        p.extend_from_slice(&c.to_be_bytes());
    }
    p.extend_from_slice(body);
    p
}

/// `packet` with the two-byte length prefix of DNS over TCP.
pub fn tcp_framed(packet: &[u8]) -> Vec<u8> {
    let mut framed = u16::try_from(packet.len()).unwrap().to_be_bytes().to_vec();
    framed.extend_from_slice(packet);
    framed
}

/// Send raw bytes over UDP; the raw reply, or None after [`UDP_WAIT`].
pub fn udp_raw(addr: SocketAddr, packet: &[u8]) -> Option<Vec<u8>> {
    udp_raw_within(addr, packet, UDP_WAIT)
}

/// Send raw bytes over UDP; the raw reply, or None after `wait`.
pub fn udp_raw_within(addr: SocketAddr, packet: &[u8], wait: Duration) -> Option<Vec<u8>> {
    let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
    sock.set_read_timeout(Some(wait)).unwrap();
    sock.send_to(packet, addr).unwrap();
    let mut buf = vec![0u8; 65535];
    match sock.recv_from(&mut buf) {
        Ok((n, _)) => Some(buf[..n].to_vec()),
        Err(_) => None,
    }
}

/// One query over an open TCP connection (framed); the raw reply.
pub fn tcp_exchange(s: &mut TcpStream, packet: &[u8]) -> std::io::Result<Vec<u8>> {
    s.write_all(&tcp_framed(packet))?;
    read_tcp_reply(s)
}

/// Reads one framed reply from a TCP connection.
pub fn read_tcp_reply(s: &mut TcpStream) -> std::io::Result<Vec<u8>> {
    let mut len = [0u8; 2];
    s.read_exact(&mut len)?;
    let mut buf = vec![0u8; usize::from(u16::from_be_bytes(len))];
    s.read_exact(&mut buf)?;
    Ok(buf)
}

/// Send raw bytes over a new TCP connection (framed); the raw reply.
pub fn tcp_raw(addr: SocketAddr, packet: &[u8]) -> Vec<u8> {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    tcp_exchange(&mut s, packet).unwrap()
}

/// Query over UDP and decode the reply.
pub fn udp(addr: SocketAddr, name: &str, rtype: RecordType, edns: Option<u16>) -> Message {
    udp_within(addr, name, rtype, edns, UDP_WAIT)
}

/// Query over UDP, waiting up to `wait` for the reply, and decode it.
pub fn udp_within(
    addr: SocketAddr,
    name: &str,
    rtype: RecordType,
    edns: Option<u16>,
    wait: Duration,
) -> Message {
    let q = query_msg(name, rtype, edns);
    let reply = udp_raw_within(addr, &q.to_vec().unwrap(), wait).expect("no UDP reply");
    let m = Message::from_vec(&reply).unwrap();
    assert_eq!(m.metadata.id, q.metadata.id);
    m
}

/// [`udp`] off the async runtime's workers (on a blocking thread).
pub async fn udp_async(
    addr: SocketAddr,
    name: &str,
    rtype: RecordType,
    edns: Option<u16>,
) -> Message {
    let name = name.to_owned();
    tokio::task::spawn_blocking(move || udp(addr, &name, rtype, edns)).await.unwrap()
}

/// Query over TCP and decode the reply.
pub fn tcp(addr: SocketAddr, name: &str, rtype: RecordType) -> Message {
    let q = query_msg(name, rtype, None);
    let m = Message::from_vec(&tcp_raw(addr, &q.to_vec().unwrap())).unwrap();
    assert_eq!(m.metadata.id, q.metadata.id);
    m
}

/// The A addresses in a message's answer section, sorted.
pub fn a_answers(m: &Message) -> Vec<String> {
    let mut v: Vec<String> = m
        .answers
        .iter()
        .filter(|r| r.record_type() == RecordType::A || r.record_type() == RecordType::AAAA)
        .map(|r| r.data.to_string())
        .collect();
    v.sort();
    v
}
