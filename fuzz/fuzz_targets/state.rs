//! A state document from a master: parsed leniently, then generated,
//! compiled and enumerated; never a panic. The fast outline (task objects
//! located by the scanner) is always the one serde reads.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use mesos_dns::config::Config;
use mesos_dns::generate::{StaticResolver, generate};
use mesos_dns::state::State;
use mesos_dns::zone::Zone;

fn config() -> &'static Config {
    static CONFIG: OnceLock<Config> = OnceLock::new();
    CONFIG.get_or_init(|| {
        Config::from_json(include_str!("../../demo/config.json"), "demo.json".into())
            .expect("demo config")
    })
}

fuzz_target!(|data: &[u8]| {
    assert!(State::scan_agrees(data), "the scanner's outline is not serde's");
    // As the server parses a fetched body (big ones: tasks on a thread).
    let Ok(state) = State::from_vec(data.to_vec()) else { return };
    let config = config();
    if let Ok(records) =
        generate(&state, config, &config.masters, &StaticResolver::localhost_only())
    {
        let _ = Zone::compile(&records, config, 1);
        let _ = serde_json::to_vec(&records.axfr_records());
        let _ = serde_json::to_vec(&records.enumeration());
    }
});
