//! The JSON config loader on arbitrary text: a config or a positioned error,
//! never a panic; an accepted config serializes and loads back unchanged.
#![no_main]

use libfuzzer_sys::fuzz_target;
use std::path::Path;

fuzz_target!(|data: &[u8]| {
    let Ok(src) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(loaded) = gojinn_config::parse_json(src, Path::new("/fuzz/config.json")) else {
        return;
    };
    let json = serde_json::to_string_pretty(&loaded.config).expect("a config serializes");
    let back = gojinn_config::parse_json(&json, Path::new("/fuzz/config.json"))
        .unwrap_or_else(|e| panic!("a loaded config does not load again: {e}\n{json}"));
    assert_eq!(back.config.sites.len(), loaded.config.sites.len());
    assert_eq!(
        json,
        serde_json::to_string_pretty(&back.config).expect("a config serializes"),
        "second load changed the config"
    );
});
