//! Response rate limiting (`rateLimit`) over real sockets: a flood from one
//! loopback network is limited (beyond the rate, answers dropped, or one
//! in two at random sent truncated) while another network's queries are
//! all answered; a real client (`dig`) retries a slip over TCP and gets its
//! answer; without `rateLimit` nothing is limited; `/metrics` counts it.
//!
//! Loopback carries all of 127.0.0.0/8 on Linux: the flood comes from
//! 127.0.0.1, the other client from 127.1.0.1, another /24. (The two
//! networks land in the same slot of the limiter's table for 1 seed in
//! 16,384: then the other client is limited too, and the test fails.)

use std::net::{SocketAddr, UdpSocket};
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use crate::harness::*;
use hickory_proto::rr::RecordType;
use serde_json::json;

const NAME: &str = "liquor-store.marathon.mesos.";
/// Queries sent back to back before reading their answers: few enough
/// that the answers fit in the client socket's buffer.
const BURST: usize = 100;

/// The answers a source got, by kind.
#[derive(Debug, Default, Clone, Copy)]
struct Got {
    sent: usize,
    /// Full answers (records, no TC).
    full: usize,
    /// Slips: TC set, no records.
    truncated: usize,
}

fn query(id: u16) -> Vec<u8> {
    let mut q = query_msg(NAME, RecordType::A, None);
    q.metadata.id = id;
    q.to_vec().unwrap()
}

/// Classify one answer (TC flag, answer count).
fn tally(got: &mut Got, reply: &[u8]) {
    let tc = reply.get(2).is_some_and(|f| f & 0x02 != 0);
    let answers = reply.get(6..8).map_or(0, |c| u16::from_be_bytes([c[0], c[1]]));
    if tc {
        assert_eq!(answers, 0, "a slip carries no records");
        got.truncated += 1;
    } else {
        assert_eq!(answers, 2, "a full answer: {reply:?}");
        got.full += 1;
    }
}

/// Send `n` queries from `source` to `server` in bursts of [`BURST`] as
/// fast as the answers come back (waiting at most 30 ms for a missing
/// one), then collect stragglers.
fn flood(server: SocketAddr, source: &str, n: usize) -> Got {
    let sock = UdpSocket::bind(format!("{source}:0")).unwrap();
    sock.set_read_timeout(Some(Duration::from_millis(30))).unwrap();
    let mut got = Got::default();
    let mut buf = [0u8; 4096];
    let mut received = 0;
    while got.sent < n {
        let burst = BURST.min(n - got.sent);
        for _ in 0..burst {
            sock.send_to(&query(got.sent as u16), server).unwrap();
            got.sent += 1;
        }
        while received < got.sent {
            let Ok((len, _)) = sock.recv_from(&mut buf) else { break };
            tally(&mut got, &buf[..len]);
            received += 1;
        }
    }
    sock.set_read_timeout(Some(Duration::from_millis(500))).unwrap();
    while received < got.sent {
        let Ok((len, _)) = sock.recv_from(&mut buf) else { break };
        tally(&mut got, &buf[..len]);
        received += 1;
    }
    got
}

/// Query from `source` every `every` until `stop` (at least `min` times),
/// waiting up to a second for each answer; what came back, and how many
/// got none.
fn steady(
    server: SocketAddr,
    source: &str,
    every: Duration,
    stop: &AtomicBool,
    min: usize,
) -> (Got, usize) {
    let sock = UdpSocket::bind(format!("{source}:0")).unwrap();
    sock.set_read_timeout(Some(Duration::from_secs(1))).unwrap();
    let mut got = Got::default();
    let mut lost = 0;
    let mut buf = [0u8; 4096];
    while got.sent < min || !stop.load(Ordering::Relaxed) {
        sock.send_to(&query(got.sent as u16), server).unwrap();
        got.sent += 1;
        match sock.recv_from(&mut buf) {
            Ok((len, _)) => tally(&mut got, &buf[..len]),
            Err(_) => lost += 1,
        }
        std::thread::sleep(every);
    }
    (got, lost)
}

/// The value of a sample in `/metrics` text (0 when absent).
fn sample(metrics: &str, name: &str) -> u64 {
    metrics
        .lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.trim().parse().ok())
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread")]
async fn a_flood_is_limited_and_other_networks_are_not() {
    const RATE: usize = 50;
    const FLOOD: usize = 2_000;
    let _pass = exclusive::load();
    let extra = merged(with_http(), &json!({"rateLimit": RATE}));
    let Cluster { master: _m, running, addr } = cluster(extra).await;

    let stop = Arc::new(AtomicBool::new(false));
    let other = std::thread::spawn({
        let stop = Arc::clone(&stop);
        // Half the rate: never limited.
        let every = Duration::from_secs(1) / (RATE / 2) as u32;
        move || steady(addr, "127.1.0.1", every, &stop, 20)
    });
    let started = Instant::now();
    let flooded =
        tokio::task::spawn_blocking(move || flood(addr, "127.0.0.1", FLOOD)).await.unwrap();
    let elapsed = started.elapsed();
    stop.store(true, Ordering::Relaxed);
    let (other, lost) = other.join().unwrap();

    // The flood: the rate in full for each second it touched, and of the
    // rest about one in two slipped (TC) at random, the others dropped.
    let seconds = elapsed.as_secs() as usize + 2;
    let m = metrics(&running).await;
    let dropped = sample(&m, "mesos_dns_rrl_responses_total{action=\"dropped\"}") as usize;
    let slipped = sample(&m, "mesos_dns_rrl_responses_total{action=\"slipped\"}") as usize;
    eprintln!(
        "flood of {FLOOD} in {elapsed:?}: {} full, {} truncated; server: {dropped} dropped, \
         {slipped} slipped; other network: {} of {} in full, {lost} lost",
        flooded.full, flooded.truncated, other.full, other.sent
    );
    // The other network: every query answered in full.
    assert_eq!(lost, 0, "{other:?}");
    assert_eq!((other.full, other.truncated), (other.sent, 0), "{other:?}");
    assert!(flooded.full >= RATE, "{flooded:?}");
    assert!(flooded.full <= RATE * seconds, "{flooded:?} in {elapsed:?}");
    assert_eq!(flooded.truncated, slipped, "every slip arrives");
    assert_eq!(flooded.full + slipped + dropped, FLOOD, "{flooded:?}, {dropped} dropped");
    // (Binomial: 1,950 draws have a standard deviation of 22.)
    let beyond = FLOOD - flooded.full;
    assert!(slipped.abs_diff(beyond / 2) < 150, "{slipped} of {beyond} slipped");
    running.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn without_a_rate_limit_a_flood_is_all_answered() {
    const FLOOD: usize = 2_000;
    let _pass = exclusive::load();
    let extra = with_http();
    let Cluster { master: _m, running, addr } = cluster(extra).await;
    let flooded =
        tokio::task::spawn_blocking(move || flood(addr, "127.0.0.1", FLOOD)).await.unwrap();
    assert_eq!((flooded.full, flooded.truncated), (FLOOD, 0), "{flooded:?}");
    // No limiter, no counters.
    assert!(!metrics(&running).await.contains("mesos_dns_rrl_responses"));
    running.shutdown().await;
}

/// Run `dig` from 127.0.0.1 for [`NAME`]; its output.
fn dig(port: u16) -> String {
    let out = Command::new("dig")
        .args(["@127.0.0.1", "-p", &port.to_string(), "+time=1", "+tries=1", NAME, "A"])
        .output()
        .unwrap_or_else(|e| panic!("cannot run dig (scripts/test installs it): {e}"));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_real_client_retries_a_slip_over_tcp() {
    let _pass = exclusive::load();
    let Cluster { master: _m, running, addr } = cluster(json!({"rateLimit": 10})).await;
    // A flood from the client's own /24 (127.0.0.2) until dig is done.
    let stop = Arc::new(AtomicBool::new(false));
    let flooder = std::thread::spawn({
        let stop = Arc::clone(&stop);
        move || {
            let sock = UdpSocket::bind("127.0.0.2:0").unwrap();
            let mut id = 0u16;
            while !stop.load(Ordering::Relaxed) {
                for _ in 0..20 {
                    id = id.wrapping_add(1);
                    let _ = sock.send_to(&query(id), addr);
                }
                std::thread::sleep(Duration::from_millis(2));
            }
        }
    });
    // Each UDP query of dig's is now dropped or slipped; a drop times out
    // (exit 9): ask again until one slips.
    let port = addr.port();
    let mut tries = 0;
    let out = loop {
        tries += 1;
        let out = tokio::task::spawn_blocking(move || dig(port)).await.unwrap();
        if out.contains("Truncated, retrying in TCP mode") || tries == 30 {
            break out;
        }
    };
    stop.store(true, Ordering::Relaxed);
    flooder.join().unwrap();
    eprintln!("dig slipped after {tries} tries");
    assert!(out.contains(";; Truncated, retrying in TCP mode."), "{out}");
    assert!(out.contains("status: NOERROR"), "{out}");
    assert!(out.contains("ANSWER: 2,"), "{out}");
    assert!(out.contains("1.2.3.11") && out.contains("1.2.3.12"), "{out}");
    assert!(out.contains("(TCP)"), "the answer came over TCP: {out}");
    running.shutdown().await;
}
