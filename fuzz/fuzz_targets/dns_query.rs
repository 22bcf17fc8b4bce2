//! Raw packet in → response out, against a real zone (the demo state):
//! never a panic, and every response fits the transport.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use mesos_dns::config::Config;
use mesos_dns::dns::wire::{self, Disposition, Responder, Scratch, Settings};
use mesos_dns::generate::{StaticResolver, generate};
use mesos_dns::state::State;
use mesos_dns::zone::{Zone, ZoneView};

fn zone() -> &'static (Zone, Responder) {
    static ZONE: OnceLock<(Zone, Responder)> = OnceLock::new();
    ZONE.get_or_init(|| {
        // The demo's config, with reverse lookups on (the PTR path too).
        let mut doc: serde_json::Value =
            serde_json::from_str(include_str!("../../demo/config.json")).expect("demo config");
        doc["ptrOn"] = true.into();
        let config = Config::from_json(&doc.to_string(), "demo.json".into()).expect("config");
        let state = State::from_slice(include_bytes!("../../demo/state.json")).expect("demo state");
        let records = generate(&state, &config, &config.masters, &StaticResolver::localhost_only())
            .expect("demo records");
        let settings = Settings {
            recurse_on: true,
            set_truncate_bit: true,
            ptr_on: true,
            ..Settings::default()
        };
        (Zone::compile(&records, &config, 1), Responder::new(&config.domain, settings))
    })
}

fuzz_target!(|packet: &[u8]| {
    let (zone, responder) = zone();
    let mut out = Vec::new();
    let mut scratch = Scratch::new(7);
    for udp in [true, false] {
        match wire::parse(packet) {
            Ok(q) => {
                let limit = wire::size_limit(&q, udp);
                if let Disposition::Answered { .. } = responder.answer(
                    &mut out,
                    packet,
                    &q,
                    Some(ZoneView::new(zone, None)),
                    udp,
                    &mut scratch,
                ) {
                    assert!(out.len() <= limit + 11, "{} > {limit}", out.len());
                }
                responder.answer(&mut out, packet, &q, None, udp, &mut scratch);
            }
            Err(e) => {
                wire::error_response(&mut out, packet, None, e);
            }
        }
    }
});
