//! Batched UDP I/O (Linux `recvmmsg`/`sendmmsg`): one system call takes up
//! to [`BATCH`] queries off the socket and one sends all their answers,
//! instead of two system calls per query. The buffers are allocated once
//! per worker.

use std::io;
use std::mem::{size_of, zeroed};
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};
use std::os::fd::RawFd;

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

// The raw pointers inside only ever point into the struct's own vectors.
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
    /// Receive a batch (blocking until at least one datagram, or the
    /// socket's read timeout), call `answer(packet, peer, out)` for each —
    /// it returns whether `out` is to be sent to `peer` — then send every
    /// answer with one call. Returns how many datagrams were received.
    pub fn serve_once(
        &mut self,
        fd: RawFd,
        mut answer: impl FnMut(&[u8], SocketAddr, &mut Vec<u8>) -> bool,
    ) -> io::Result<usize> {
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
                libc::MSG_WAITFORONE,
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
