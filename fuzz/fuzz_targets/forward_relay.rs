//! An upstream's answer relayed to a client: any bytes from the network
//! must be accepted or ignored, never panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mesos_dns::dns::forward::relay;
use mesos_dns::dns::wire;

fuzz_target!(|data: &[u8]| {
    // The first byte splits the input: a query, then an "answer".
    let Some((&split, rest)) = data.split_first() else { return };
    let split = usize::from(split).min(rest.len());
    let (query, answer) = rest.split_at(split);
    let Ok(q) = wire::parse(query) else { return };
    let id = u16::from_be_bytes([
        answer.first().copied().unwrap_or(0),
        answer.get(1).copied().unwrap_or(0),
    ]);
    for udp in [true, false] {
        if let Some(out) = relay(&q, query, id, answer, udp) {
            assert_eq!(out.get(..2), Some(&q.id.to_be_bytes()[..]));
        }
    }
});
