//! Batched UDP I/O (Linux `recvmmsg`/`sendmmsg`): one system call takes up
//! to [`BATCH`] queries off the socket and one sends all their answers,
//! instead of two system calls per query. The buffers are allocated once
//! per worker. [`spawn_workers`] runs the worker threads: one blocks on
//! the socket, the others are called in when queries queue up.

use std::io;
use std::mem::{size_of, zeroed};
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6, UdpSocket};
use std::os::fd::{AsRawFd, RawFd};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::thread::{JoinHandle, Thread};
use std::time::Duration;

/// Queries taken per system call, at most.
pub const BATCH: usize = 32;
/// Largest query kept (longer datagrams are cut and then fail to parse).
const SLOT: usize = 4096;

/// One worker's receive and send buffers.
pub struct Batch {
    bufs: Vec<[u8; SLOT]>,
    addrs: Vec<libc::sockaddr_storage>,
    iovs: Vec<libc::iovec>,
    hdrs: Vec<libc::mmsghdr>,
    outs: Vec<Vec<u8>>,
    out_addrs: Vec<libc::sockaddr_storage>,
    out_iovs: Vec<libc::iovec>,
    out_hdrs: Vec<libc::mmsghdr>,
}

// SAFETY: `Batch` is not `Send` by itself only because the `iovec`s and
// `mmsghdr`s hold raw pointers. Those are null (from `Default`) or point
// into the heap buffers of this same `Batch`'s vectors, which do not move
// when the `Batch` does; they are only dereferenced by the kernel, inside
// `serve_once(&mut self)`, which rewrites every one of them before each
// system call. No pointer is shared with anything outside the `Batch`, so
// sending it to another thread hands over exclusive ownership of all it
// points to, as sending the vectors themselves would.
unsafe impl Send for Batch {}

impl Default for Batch {
    fn default() -> Self {
        // SAFETY: all-zero is a valid value of these plain C structs.
        let (addr, iov, hdr) = unsafe {
            (zeroed::<libc::sockaddr_storage>(), zeroed::<libc::iovec>(), zeroed::<libc::mmsghdr>())
        };
        Batch {
            bufs: vec![[0u8; SLOT]; BATCH],
            addrs: vec![addr; BATCH],
            iovs: vec![iov; BATCH],
            hdrs: vec![hdr; BATCH],
            outs: (0..BATCH).map(|_| Vec::with_capacity(4096)).collect(),
            out_addrs: vec![addr; BATCH],
            out_iovs: vec![iov; BATCH],
            out_hdrs: vec![hdr; BATCH],
        }
    }
}

impl Batch {
    /// Receive a batch (with `wait`, blocking until at least one datagram
    /// or the socket's read timeout; without, `WouldBlock` when none is
    /// queued), call `answer(packet, peer, out)` for each — it returns
    /// whether `out` is to be sent to `peer` — then send every answer with
    /// one call. Returns how many datagrams were received.
    pub fn serve_once(
        &mut self,
        fd: RawFd,
        wait: bool,
        mut answer: impl FnMut(&[u8], SocketAddr, &mut Vec<u8>) -> bool,
    ) -> io::Result<usize> {
        let flags = if wait { libc::MSG_WAITFORONE } else { libc::MSG_DONTWAIT };
        for i in 0..BATCH {
            self.iovs[i] =
                libc::iovec { iov_base: self.bufs[i].as_mut_ptr().cast(), iov_len: SLOT };
            let hdr = &mut self.hdrs[i].msg_hdr;
            hdr.msg_name = (&raw mut self.addrs[i]).cast();
            hdr.msg_namelen = size_of::<libc::sockaddr_storage>() as libc::socklen_t;
            hdr.msg_iov = &raw mut self.iovs[i];
            hdr.msg_iovlen = 1;
            hdr.msg_control = std::ptr::null_mut();
            hdr.msg_controllen = 0;
            hdr.msg_flags = 0;
            self.hdrs[i].msg_len = 0;
        }
        // SAFETY: every header points at buffers owned by `self`, sized as
        // declared; the kernel writes at most that much.
        let n = unsafe {
            libc::recvmmsg(
                fd,
                self.hdrs.as_mut_ptr(),
                BATCH as libc::c_uint,
                flags,
                std::ptr::null_mut(),
            )
        };
        if n < 0 {
            return Err(io::Error::last_os_error());
        }
        let n = n as usize;
        let mut k = 0;
        for i in 0..n.min(BATCH) {
            let len = (self.hdrs[i].msg_len as usize).min(SLOT);
            let Some(peer) = to_socket_addr(&self.addrs[i]) else { continue };
            let packet = &self.bufs[i][..len];
            let out = &mut self.outs[k];
            out.clear();
            if answer(packet, peer, out) {
                self.out_addrs[k] = self.addrs[i];
                self.out_iovs[k] =
                    libc::iovec { iov_base: out.as_mut_ptr().cast(), iov_len: out.len() };
                let hdr = &mut self.out_hdrs[k].msg_hdr;
                hdr.msg_name = (&raw mut self.out_addrs[k]).cast();
                hdr.msg_namelen = self.hdrs[i].msg_hdr.msg_namelen;
                hdr.msg_iov = &raw mut self.out_iovs[k];
                hdr.msg_iovlen = 1;
                hdr.msg_control = std::ptr::null_mut();
                hdr.msg_controllen = 0;
                hdr.msg_flags = 0;
                k += 1;
            }
        }
        let mut sent = 0;
        while sent < k {
            // SAFETY: headers `sent..k` point at live buffers owned by `self`.
            let m = unsafe {
                libc::sendmmsg(
                    fd,
                    self.out_hdrs[sent..k].as_mut_ptr(),
                    (k - sent) as libc::c_uint,
                    0,
                )
            };
            if m <= 0 {
                let e = io::Error::last_os_error();
                if e.kind() == io::ErrorKind::Interrupted {
                    continue;
                }
                // Skip the datagram that failed (e.g. an unreachable peer).
                tracing::debug!("udp send: {e}");
                sent += 1;
            } else {
                sent += m as usize;
            }
        }
        Ok(n)
    }
}

/// A batch of at least this many datagrams means they arrive faster than
/// one worker answers them: it calls a worker in from [`Standby`].
const BACKLOG: usize = 8;

/// How often a waiting worker checks whether the server is stopping.
const STOP_CHECK: Duration = Duration::from_millis(200);

/// Start `workers` threads (named `name-N`) answering the datagrams of
/// `socket`, each with the function `make(N)` gives it (as in
/// [`Batch::serve_once`]), until `stop` is set; they notice within 200 ms.
///
/// The first blocks on the socket. The others wait (`Standby`) until a
/// worker receives a backlog, then take datagrams without blocking until
/// none are queued, and go back. So at a moderate rate one thread answers
/// alone: threads blocked on one socket would be woken in turn, and a
/// wake-up on another core costs more than the answer (the socket work
/// alone at 20,000 q/s: 7.4 µs per query with one thread, 9.2 with two;
/// `bench/dnsperf.sh`, the floor). Under load every core answers. Should
/// the blocking worker's thread die (a panic: a bug), a waiting worker
/// takes its place.
pub fn spawn_workers<F>(
    socket: Arc<UdpSocket>,
    name: &str,
    workers: usize,
    stop: Arc<AtomicBool>,
    mut make: impl FnMut(usize) -> F,
) -> io::Result<Vec<JoinHandle<()>>>
where
    F: FnMut(&[u8], SocketAddr, &mut Vec<u8>) -> bool + Send + 'static,
{
    socket.set_read_timeout(Some(STOP_CHECK))?;
    let standby = Arc::new(Standby::default());
    (0..workers.max(1))
        .map(|i| {
            let (socket, stop, standby) =
                (Arc::clone(&socket), Arc::clone(&stop), Arc::clone(&standby));
            let answer = make(i);
            std::thread::Builder::new()
                .name(format!("{name}-{i}"))
                .spawn(move || worker(&socket, i == 0, &standby, &stop, answer))
        })
        .collect()
}

fn worker(
    socket: &UdpSocket,
    first: bool,
    standby: &Standby,
    stop: &AtomicBool,
    mut answer: impl FnMut(&[u8], SocketAddr, &mut Vec<u8>) -> bool,
) {
    let fd = socket.as_raw_fd();
    let mut batch = Box::<Batch>::default();
    let mut role = Role { standby, blocking: first };
    while !stop.load(Ordering::Relaxed) {
        if !role.blocking {
            // Take the place of a blocking worker that died (a bug:
            // answering never panics on purpose), or wait to be called in,
            // maybe for that.
            let lost = standby.blocker_lost.swap(false, Ordering::AcqRel);
            if !lost && !standby.wait(stop) {
                return;
            }
            role.blocking = lost || standby.blocker_lost.swap(false, Ordering::AcqRel);
        }
        while !stop.load(Ordering::Relaxed) {
            match batch.serve_once(fd, role.blocking, &mut answer) {
                Ok(n) if n >= BACKLOG => standby.call_one(),
                Ok(_) => {}
                Err(e) => {
                    use io::ErrorKind::{Interrupted, TimedOut, WouldBlock};
                    if !matches!(e.kind(), WouldBlock | TimedOut | Interrupted) {
                        tracing::warn!("udp receive: {e}");
                    }
                    // One called in goes back when nothing is queued (or
                    // the socket fails: the blocking worker still serves).
                    if !role.blocking && e.kind() != Interrupted {
                        break;
                    }
                }
            }
        }
    }
}

/// Whether a worker is the one blocking on the socket. If that worker's
/// thread dies (a panic while answering), a waiting worker takes its
/// place, so the socket is never left without one.
struct Role<'s> {
    standby: &'s Standby,
    blocking: bool,
}

impl Drop for Role<'_> {
    fn drop(&mut self) {
        if self.blocking && std::thread::panicking() {
            self.standby.blocker_lost.store(true, Ordering::Release);
            self.standby.call_one();
        }
    }
}

/// Workers waiting to be called in (see [`spawn_workers`]).
#[derive(Default)]
struct Standby {
    waiting: Mutex<Vec<Thread>>,
    /// The blocking worker died: the next worker to wait takes its place.
    blocker_lost: AtomicBool,
}

impl Standby {
    fn waiting(&self) -> MutexGuard<'_, Vec<Thread>> {
        // Nothing is left half-done under the lock: a panic elsewhere does
        // not make the list wrong.
        self.waiting.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Call one waiting worker in, if any.
    fn call_one(&self) {
        if let Some(worker) = self.waiting().pop() {
            worker.unpark();
        }
    }

    /// Wait until called in (`true`), or until `stop` is set (`false`).
    fn wait(&self, stop: &AtomicBool) -> bool {
        let me = std::thread::current();
        self.waiting().push(me.clone());
        loop {
            std::thread::park_timeout(STOP_CHECK);
            let mut waiting = self.waiting();
            let Some(at) = waiting.iter().position(|t| t.id() == me.id()) else {
                return true; // `call_one` took it off the list
            };
            if stop.load(Ordering::Relaxed) {
                waiting.swap_remove(at);
                return false;
            }
        }
    }
}

fn to_socket_addr(ss: &libc::sockaddr_storage) -> Option<SocketAddr> {
    match i32::from(ss.ss_family) {
        libc::AF_INET => {
            // SAFETY: the family says the storage holds a sockaddr_in.
            let a = unsafe { &*(std::ptr::from_ref(ss).cast::<libc::sockaddr_in>()) };
            let ip = Ipv4Addr::from(u32::from_be(a.sin_addr.s_addr));
            Some(SocketAddr::V4(SocketAddrV4::new(ip, u16::from_be(a.sin_port))))
        }
        libc::AF_INET6 => {
            // SAFETY: the family says the storage holds a sockaddr_in6.
            let a = unsafe { &*(std::ptr::from_ref(ss).cast::<libc::sockaddr_in6>()) };
            let ip = Ipv6Addr::from(a.sin6_addr.s6_addr);
            Some(SocketAddr::V6(SocketAddrV6::new(
                ip,
                u16::from_be(a.sin6_port),
                a.sin6_flowinfo,
                a.sin6_scope_id,
            )))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;
    use std::sync::mpsc;

    /// Workers on a loopback socket that echo each datagram and report
    /// which thread answered it (after `delay`).
    fn echo_workers(
        delay: Duration,
    ) -> (SocketAddr, Arc<AtomicBool>, Vec<JoinHandle<()>>, mpsc::Receiver<String>) {
        let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
        let addr = socket.local_addr().unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let (tx, rx) = mpsc::channel();
        let threads = spawn_workers(Arc::new(socket), "echo", 2, Arc::clone(&stop), |_| {
            let tx = tx.clone();
            move |packet: &[u8], _, out: &mut Vec<u8>| {
                std::thread::sleep(delay);
                let name = std::thread::current().name().unwrap_or_default().to_owned();
                tx.send(name).unwrap();
                out.extend_from_slice(packet);
                true
            }
        })
        .unwrap();
        (addr, stop, threads, rx)
    }

    fn stop_all(stop: &AtomicBool, threads: Vec<JoinHandle<()>>) {
        stop.store(true, Ordering::Relaxed);
        for t in threads {
            t.join().unwrap();
        }
    }

    fn answered_by(rx: &mpsc::Receiver<String>) -> BTreeMap<String, usize> {
        let mut by = BTreeMap::new();
        for name in rx.try_iter() {
            *by.entry(name).or_default() += 1;
        }
        by
    }

    #[test]
    fn one_query_at_a_time_is_answered_by_the_first_worker_alone() {
        let (addr, stop, threads, rx) = echo_workers(Duration::ZERO);
        let client = UdpSocket::bind("127.0.0.1:0").unwrap();
        client.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let mut buf = [0u8; 64];
        for i in 0u16..200 {
            client.send_to(&i.to_be_bytes(), addr).unwrap();
            let (n, _) = client.recv_from(&mut buf).unwrap();
            assert_eq!(buf.get(..n), Some(&i.to_be_bytes()[..]));
        }
        stop_all(&stop, threads);
        assert_eq!(answered_by(&rx), BTreeMap::from([("echo-0".to_owned(), 200)]));
    }

    #[test]
    fn a_waiting_worker_takes_the_place_of_a_blocking_one_that_died() {
        let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
        let addr = socket.local_addr().unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let threads = spawn_workers(Arc::new(socket), "echo", 2, Arc::clone(&stop), |i| {
            move |packet: &[u8], _, out: &mut Vec<u8>| {
                assert!(i != 0 || packet != b"die", "the first worker dies");
                out.extend_from_slice(packet);
                true
            }
        })
        .unwrap();
        let client = UdpSocket::bind("127.0.0.1:0").unwrap();
        client.send_to(b"die", addr).unwrap();
        // Queries taken in the same batch as the fatal one are lost with
        // it: ask until answered.
        client.set_read_timeout(Some(Duration::from_millis(100))).unwrap();
        let mut buf = [0u8; 64];
        let answered = (0..50).any(|_| {
            client.send_to(b"first", addr).unwrap();
            client.recv_from(&mut buf).is_ok_and(|(n, _)| buf.get(..n) == Some(&b"first"[..]))
        });
        assert!(answered);
        client.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        for i in 0u16..50 {
            client.send_to(&i.to_be_bytes(), addr).unwrap();
            let mut reply = b"first".to_vec();
            while reply == b"first" {
                let (n, _) = client.recv_from(&mut buf).unwrap();
                reply = buf.get(..n).unwrap().to_vec(); // (a retry's late answer)
            }
            assert_eq!(reply, i.to_be_bytes());
        }
        stop.store(true, Ordering::Relaxed);
        let died = threads.into_iter().map(|t| t.join().is_err()).collect::<Vec<_>>();
        assert_eq!(died, [true, false]);
    }

    #[test]
    fn a_backlog_calls_the_other_worker_in_and_every_query_is_answered() {
        // The first worker answers slowly, so queries queue up behind it.
        // Few enough that the default socket buffers hold them all.
        const QUERIES: u16 = 150;
        let (addr, stop, threads, rx) = echo_workers(Duration::from_micros(500));
        let client = UdpSocket::bind("127.0.0.1:0").unwrap();
        client.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let reader = client.try_clone().unwrap();
        let replies = std::thread::spawn(move || {
            let mut seen = vec![false; usize::from(QUERIES)];
            let mut buf = [0u8; 64];
            for _ in 0..QUERIES {
                let (n, _) = reader.recv_from(&mut buf).unwrap();
                let i = u16::from_be_bytes(buf.get(..n).unwrap().try_into().unwrap());
                seen[usize::from(i)] = true;
            }
            seen
        });
        for i in 0..QUERIES {
            client.send_to(&i.to_be_bytes(), addr).unwrap();
        }
        assert!(replies.join().unwrap().iter().all(|&s| s));
        stop_all(&stop, threads);
        let by = answered_by(&rx);
        assert_eq!(by.values().sum::<usize>(), usize::from(QUERIES));
        assert!(by.get("echo-1").is_some_and(|&n| n > 0), "{by:?}");
    }
}
