//! Raw packet in → the messages of a zone transfer (or a signed query's
//! answer) out, against a real zone (the demo state) with one version of
//! IXFR history and a TSIG key configured: never a panic, and every
//! message fits a TCP frame.
#![no_main]

use std::net::IpAddr;
use std::sync::{Arc, OnceLock};

use libfuzzer_sys::fuzz_target;
use mesos_dns::config::Config;
use mesos_dns::dns::journal::History;
use mesos_dns::dns::transfer::Transfers;
use mesos_dns::dns::wire::{Responder, Scratch, Settings};
use mesos_dns::generate::{StaticResolver, generate};
use mesos_dns::snapshot::{Snapshot, Swapped, SwappedNames, Timings};
use mesos_dns::state::State;
use mesos_dns::zone::Zone;

struct World {
    transfers: Transfers,
    snapshot: Arc<Snapshot>,
}

fn world() -> &'static World {
    static WORLD: OnceLock<World> = OnceLock::new();
    WORLD.get_or_init(|| {
        let mut doc: serde_json::Value =
            serde_json::from_str(include_str!("../../demo/config.json")).expect("demo config");
        doc["allowTransferFrom"] = serde_json::json!(["127.0.0.1"]);
        doc["tsigKeys"] = serde_json::json!({"k": "c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0LTEyMzQ="});
        let config = Config::from_json(&doc.to_string(), "demo.json".into()).expect("config");
        let state = State::from_slice(include_bytes!("../../demo/state.json")).expect("demo state");
        let records = generate(&state, &config, &config.masters, &StaticResolver::localhost_only())
            .expect("demo records");
        let mut more = records.clone();
        more.insert_ip("fuzz.mesos.", IpAddr::from([10, 9, 9, 9]));
        more.seal();
        let old = Arc::new(Snapshot::new(
            Zone::compile(&records, &config, 1),
            records,
            None,
            Timings::default(),
        ));
        let new = Arc::new(Snapshot::new(
            Zone::compile(&more, &config, 2),
            more,
            None,
            Timings::default(),
        ));
        let history = Arc::new(History::default());
        history.record(&Swapped { old, new: Arc::clone(&new), changed: SwappedNames::Everything });
        let settings = Settings {
            recurse_on: true,
            set_truncate_bit: true,
            verify_signatures: true,
            ..Settings::default()
        };
        let responder = Responder::new(&config.domain, settings);
        World { transfers: Transfers::new(&config, history, &responder), snapshot: new }
    })
}

fuzz_target!(|packet: &[u8]| {
    let w = world();
    let mut scratch = Scratch::new(7);
    for (peer, udp) in [([127, 0, 0, 1], false), ([127, 0, 0, 1], true), ([10, 0, 0, 1], false)] {
        let peer = IpAddr::from(peer);
        let mut sent = 0;
        let mut check = |m: Vec<u8>| {
            assert!(m.len() <= usize::from(u16::MAX), "{} bytes", m.len());
            sent += 1;
            true
        };
        w.transfers.respond(packet, peer, udp, Some(&w.snapshot), &mut scratch, &mut check);
        assert!(!udp || sent <= 1, "{sent} messages over UDP");
        w.transfers.respond(packet, peer, udp, None, &mut scratch, &mut |_| true);
    }
});
