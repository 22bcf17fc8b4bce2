//! The floor under our UDP CPU per query: the server's own socket loop
//! (the same socket, worker threads and `recvmmsg`/`sendmmsg` batches:
//! `mesos_dns::dns::batch::spawn_workers`) answering every query with its
//! own bytes and the QR bit set, so no name is looked up and no answer is
//! built. `bench/dnsperf.sh` measures it beside our server and NSD: what
//! it costs per query is the kernel's and the loop's share, which no
//! answer path can go below.
//!
//!   [WORKERS=N] cargo run --release --example udp_floor -- PORT

use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use mesos_dns::dns::{batch, server};

fn main() -> std::io::Result<()> {
    let port = std::env::args().nth(1).and_then(|p| p.parse().ok()).unwrap_or(5353);
    let (udp, _tcp) = server::bind([127, 0, 0, 1].into(), port)?;
    // As many workers as the server starts, unless WORKERS says otherwise.
    let workers = std::env::var("WORKERS")
        .ok()
        .and_then(|w| w.parse().ok())
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(2, |n| n.get()));
    let stop = Arc::new(AtomicBool::new(false));
    let threads = batch::spawn_workers(Arc::new(udp), "floor", workers, stop, |_| {
        |packet: &[u8], _, out: &mut Vec<u8>| {
            out.extend_from_slice(packet);
            match out.get_mut(2) {
                Some(flags) => *flags |= 0x80,
                None => return false,
            }
            true
        }
    })?;
    for t in threads {
        let _ = t.join();
    }
    Ok(())
}
