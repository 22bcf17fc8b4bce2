//! Response rate limiting (`rateLimit`, off by default) of the answers the
//! server writes itself over UDP: at most `rateLimit` responses a second
//! to each client network (its /24 for IPv4, IPv4-mapped addresses
//! included; its /56 for IPv6), as NSD's and Knot's RRL do. Beyond the
//! rate an answer is dropped, or, one time in two at random ("slip 2"),
//! sent truncated: header and question (and an OPT record when the query
//! had one), TC set, no records, so a real client retries over TCP, which
//! is never limited, while a spoofed victim receives no more bytes than
//! the query had. (At random, as NSD does, rather than every second one:
//! a flood sent in even bursts would otherwise leave every query between
//! its bursts on the dropped side.) Forwarded answers and zone transfers
//! are not limited either.
//!
//! The counts live in a fixed table of [`SLOTS`] atomic words, each packing
//! the second it counts in and the responses counted in it: no lock, no
//! allocation per query, 128 KiB whatever the number of clients. A
//! network's slot is chosen by a hash keyed with a random seed drawn at
//! start, so no client can aim at another's slot. Two networks whose hash
//! lands in the same slot share its budget (NSD instead resets a bucket
//! taken over by another source; sharing means a flood cannot reset its
//! own count by alternating sources); with 16,384 slots another network
//! shares a flooded one's slot with a chance of 1 in 16,384. The count
//! starts again each second, so a network gets up to `rateLimit` answers
//! in a burst at the start of a second.

use std::fmt;
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use prometheus_client::encoding::DescriptorEncoder;

use super::wire;
use crate::metrics::{Export, counter};
use crate::proto::header;

/// Slots in the table (a power of two).
pub const SLOTS: usize = 1 << SLOT_BITS;
const SLOT_BITS: u32 = 14;
/// Beyond the rate, one answer in this many (at random) is sent
/// truncated (TC); the others are dropped.
pub const SLIP: u64 = 2;

/// The response counts of every client network, and what was limited.
pub struct RateLimiter {
    /// Responses a second per network.
    rate: u32,
    /// Per slot: the second counted in (high 32 bits, since `epoch`) and
    /// the responses counted in it (low 32 bits).
    slots: Box<[AtomicU64]>,
    /// Keys the slot hash.
    seed: u64,
    epoch: Instant,
    /// One set of counters per UDP worker.
    counts: Mutex<Vec<Arc<Counts>>>,
}

impl fmt::Debug for RateLimiter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RateLimiter").field("rate", &self.rate).finish_non_exhaustive()
    }
}

/// One UDP worker's counts of limited answers.
#[derive(Debug, Default)]
#[repr(align(128))]
pub struct Counts {
    dropped: AtomicU64,
    slipped: AtomicU64,
}

impl RateLimiter {
    /// A limiter of `rate` responses a second per client network; `None`
    /// for 0 (no limit).
    pub fn new(rate: u32) -> Option<Arc<RateLimiter>> {
        (rate > 0).then(|| {
            Arc::new(RateLimiter {
                rate,
                slots: (0..SLOTS).map(|_| AtomicU64::new(0)).collect(),
                seed: rand::random(),
                epoch: Instant::now(),
                counts: Mutex::new(Vec::new()),
            })
        })
    }

    /// A handle for one UDP worker thread, with counters of its own.
    pub fn worker(self: &Arc<Self>) -> Worker {
        let counts = Arc::new(Counts::default());
        if let Ok(mut all) = self.counts.lock() {
            all.push(Arc::clone(&counts));
        }
        Worker { limiter: Arc::clone(self), counts, rng: rand::random::<u64>() | 1 }
    }

    /// Count one answer to `peer` at `now`: whether it is within the rate.
    pub fn within(&self, peer: IpAddr, now: Instant) -> bool {
        let second =
            u32::try_from(now.saturating_duration_since(self.epoch).as_secs()).unwrap_or(u32::MAX);
        let Some(slot) = self.slots.get(self.slot_of(peer)) else {
            return true;
        };
        let mut seen = slot.load(Ordering::Relaxed);
        let n = loop {
            if second_of(seen) >= second {
                // This second's count (or, a worker's clock being a little
                // ahead, the next one's): one more. It would take four
                // billion answers in one second to carry into the second.
                break count_of(slot.fetch_add(1, Ordering::Relaxed)).saturating_add(1);
            }
            let fresh = (u64::from(second) << 32) | 1;
            match slot.compare_exchange_weak(seen, fresh, Ordering::Relaxed, Ordering::Relaxed) {
                Ok(_) => break 1,
                Err(now_there) => seen = now_there,
            }
        };
        n <= self.rate
    }

    /// The slot of `peer`'s network: its /24 or /56, hashed with the seed.
    fn slot_of(&self, peer: IpAddr) -> usize {
        // The network's bits, and the family in the low byte.
        let network = match crate::records::canonical_ip(peer) {
            IpAddr::V4(v4) => u64::from(u32::from(v4) & !0xFF) | 4,
            IpAddr::V6(v6) => ((u128::from(v6) >> 64) as u64 & !0xFF) | 6,
        };
        (mix(network ^ self.seed) >> (64 - SLOT_BITS)) as usize
    }

    fn counts(&self) -> Vec<Arc<Counts>> {
        self.counts.lock().map(|c| c.clone()).unwrap_or_default()
    }
}

/// The second a slot counts in.
fn second_of(slot: u64) -> u32 {
    (slot >> 32) as u32
}

/// The responses a slot counted in its second.
fn count_of(slot: u64) -> u32 {
    slot as u32
}

/// SplitMix64's finalizer: every bit of `x` reaches every bit of the
/// result.
fn mix(mut x: u64) -> u64 {
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

/// One UDP worker's use of the limiter.
#[derive(Debug)]
pub struct Worker {
    limiter: Arc<RateLimiter>,
    counts: Arc<Counts>,
    /// xorshift64 state, for the slips.
    rng: u64,
}

impl Worker {
    /// Whether to send the answer `out` (with header rcode `rcode`,
    /// extended bits included) to the query `packet` from `peer`, received
    /// at `now`; a slip rewrites `out` into its truncated form first.
    pub fn admit(
        &mut self,
        packet: &[u8],
        peer: IpAddr,
        now: Instant,
        rcode: u8,
        out: &mut Vec<u8>,
    ) -> bool {
        if self.limiter.within(peer, now) {
            return true;
        }
        if self.slip_turn() && slip(out, packet, rcode) {
            self.counts.slipped.fetch_add(1, Ordering::Relaxed);
            return true;
        }
        self.counts.dropped.fetch_add(1, Ordering::Relaxed);
        false
    }

    /// Whether an answer beyond the rate slips: one time in [`SLIP`].
    fn slip_turn(&mut self) -> bool {
        let mut x = self.rng;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.rng = x;
        x.is_multiple_of(SLIP)
    }
}

/// Rewrite the answer `out` to the query `packet` into a slip: its header
/// with TC set and no records, the question, and our OPT record if the
/// query had one. False (send nothing) when the query has no question to
/// echo.
fn slip(out: &mut Vec<u8>, packet: &[u8], rcode: u8) -> bool {
    let Ok(q) = wire::parse(packet) else { return false };
    // The answer starts with the header and the question as received.
    if out.len() < q.question_end {
        return false;
    }
    out.truncate(q.question_end);
    for section in [header::ANSWER, header::AUTHORITY, header::ADDITIONAL] {
        let at = header::count_offset(section);
        if let Some(count) = out.get_mut(at..at + 2) {
            count.fill(0);
        }
    }
    header::set_flags(out, header::TC);
    wire::finish_with_opt(out, &q, rcode >> 4);
    true
}

impl Export for RateLimiter {
    fn export(&self, e: &mut DescriptorEncoder) -> fmt::Result {
        let counts = self.counts();
        let sum = |f: fn(&Counts) -> &AtomicU64| -> u64 {
            counts.iter().map(|c| f(c).load(Ordering::Relaxed)).sum()
        };
        counter(
            e,
            "mesos_dns_rrl_responses",
            "UDP answers over rateLimit, by what became of them: dropped, or slipped (sent truncated)",
            &[
                (vec![("action", "dropped")], sum(|c| &c.dropped)),
                (vec![("action", "slipped")], sum(|c| &c.slipped)),
            ],
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::{Ipv4Addr, Ipv6Addr};
    use std::time::Duration;

    fn limiter(rate: u32) -> Arc<RateLimiter> {
        RateLimiter::new(rate).unwrap_or_else(|| panic!("rate {rate} is a limit"))
    }

    fn v4(a: u8, b: u8, c: u8, d: u8) -> IpAddr {
        IpAddr::V4(Ipv4Addr::new(a, b, c, d))
    }

    /// A query for `a.mesos` A with an OPT record (payload 1232), and
    /// where its question ends.
    fn query() -> (Vec<u8>, usize) {
        let mut packet = vec![0x12, 0x34, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 1];
        packet.extend_from_slice(b"\x01a\x05mesos\x00\x00\x01\x00\x01");
        let question_end = packet.len();
        packet.extend_from_slice(&[0, 0, 41, 0x04, 0xD0, 0, 0, 0, 0, 0, 0]);
        (packet, question_end)
    }

    /// An answer to [`query`]: one A record and the OPT record.
    fn answer(packet: &[u8], question_end: usize) -> Vec<u8> {
        let mut out = vec![0x12, 0x34, 0x85, 0x80, 0, 1, 0, 1, 0, 0, 0, 1];
        out.extend_from_slice(packet.get(12..question_end).unwrap_or_default());
        out.extend_from_slice(&[0xC0, 12, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4, 10, 0, 0, 1]);
        out.extend_from_slice(&[0, 0, 41, 0x04, 0xD0, 0, 0, 0, 0, 0, 0]);
        out
    }

    #[test]
    fn zero_is_no_limit() {
        assert!(RateLimiter::new(0).is_none());
    }

    #[test]
    fn the_rate_holds_for_a_second_then_starts_again() {
        let l = limiter(3);
        let now = Instant::now();
        let within: Vec<bool> = (0..5).map(|_| l.within(v4(10, 0, 0, 1), now)).collect();
        assert_eq!(within, [true, true, true, false, false]);
        let later = now + Duration::from_secs(1);
        assert!(l.within(v4(10, 0, 0, 1), later));
        // A worker whose clock is a little behind counts in the newer
        // second, and does not start it again.
        assert!(l.within(v4(10, 0, 0, 1), now));
        assert!(l.within(v4(10, 0, 0, 1), later));
        assert!(!l.within(v4(10, 0, 0, 1), later));
    }

    #[test]
    fn a_network_shares_its_count_and_others_have_their_own() {
        let l = limiter(2);
        let now = Instant::now();
        assert!(l.within(v4(10, 0, 0, 1), now));
        assert!(l.within(v4(10, 0, 0, 200), now));
        // The same /24, also as an IPv4-mapped IPv6 address.
        let mapped = IpAddr::V6(Ipv4Addr::new(10, 0, 0, 7).to_ipv6_mapped());
        assert_eq!(l.slot_of(mapped), l.slot_of(v4(10, 0, 0, 1)));
        assert!(!l.within(mapped, now));
        // Another /24 (barring a collision, which this seed may make: the
        // slots tell).
        if l.slot_of(v4(10, 0, 1, 1)) != l.slot_of(v4(10, 0, 0, 1)) {
            assert!(l.within(v4(10, 0, 1, 1), now));
        }
        // IPv6: the /56.
        let a: Ipv6Addr = "2001:db8:0:100::1".parse().unwrap_or(Ipv6Addr::LOCALHOST);
        let b: Ipv6Addr = "2001:db8:0:1ff:ffff::9".parse().unwrap_or(Ipv6Addr::LOCALHOST);
        assert_eq!(l.slot_of(IpAddr::V6(a)), l.slot_of(IpAddr::V6(b)));
    }

    #[test]
    fn networks_spread_over_the_slots() {
        let l = limiter(1);
        let mut used = vec![0u32; SLOTS];
        for i in 0..SLOTS as u32 {
            let ip = IpAddr::V4(Ipv4Addr::from(0x0A00_0000 + (i << 8)));
            if let Some(n) = used.get_mut(l.slot_of(ip)) {
                *n += 1;
            }
        }
        // As many networks as slots: a good hash fills about 63% of them.
        let filled = used.iter().filter(|&&n| n > 0).count();
        assert!(filled > SLOTS / 2, "{filled} of {SLOTS}");
    }

    #[test]
    fn concurrent_workers_count_every_answer() {
        let l = limiter(1000);
        let now = Instant::now();
        let sent: usize = std::thread::scope(|s| {
            let workers: Vec<_> = (0..4)
                .map(|_| s.spawn(|| (0..1000).filter(|_| l.within(v4(192, 0, 2, 1), now)).count()))
                .collect();
            workers.into_iter().map(|w| w.join().unwrap_or(0)).sum()
        });
        assert_eq!(sent, 1000);
    }

    #[test]
    fn a_slip_is_the_header_and_question_with_tc() {
        let (packet, question_end) = query();
        let mut out = answer(&packet, question_end);
        assert!(slip(&mut out, &packet, 0));
        let flags = header::flags(&out).unwrap_or_default();
        assert_eq!(flags, 0x8580 | header::TC, "QR AA RD RA kept, TC set");
        assert_eq!(out.get(4..12), Some(&[0, 1, 0, 0, 0, 0, 0, 1][..]), "question and OPT");
        assert_eq!(out.get(12..question_end), packet.get(12..question_end));
        assert_eq!(out.get(question_end..), Some(&[0, 0, 41, 0x04, 0xD0, 0, 0, 0, 0, 0, 0][..]));
        // Without a question there is nothing to slip.
        let mut out = vec![0x12, 0x34, 0x80, 0x01, 0, 0, 0, 0, 0, 0, 0, 0];
        assert!(!slip(&mut out, &[0x12, 0x34, 0x01, 0x00, 0, 2, 0, 0, 0, 0, 0, 0], 1));
    }

    #[test]
    fn beyond_the_rate_about_one_in_two_slips_and_all_are_counted() {
        let l = limiter(10);
        let mut w = l.worker();
        let (packet, question_end) = query();
        let now = Instant::now();
        let peer = v4(203, 0, 113, 5);
        let (mut full, mut slipped) = (0, 0);
        for _ in 0..1010 {
            let mut out = answer(&packet, question_end);
            if w.admit(&packet, peer, now, 0, &mut out) {
                let tc = header::flags(&out).is_some_and(|f| f & header::TC != 0);
                if tc { slipped += 1 } else { full += 1 }
            }
        }
        assert_eq!(full, 10);
        assert!((400..600).contains(&slipped), "{slipped} of 1000 slipped");
        assert_eq!(w.counts.slipped.load(Ordering::Relaxed), slipped);
        assert_eq!(w.counts.dropped.load(Ordering::Relaxed), 1000 - slipped);
    }
}
