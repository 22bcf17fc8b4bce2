//! A config file: one clear error or a valid config, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mesos_dns::config::Config;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    if let Err(e) = Config::from_json(text, "fuzz.json".into()) {
        assert!(!e.to_string().contains('\n'), "multi-line error: {e}");
    }
});
